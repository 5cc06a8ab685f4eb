"""`charlm report` through the real executable: the page shows characters outside the vocabulary."""

from __future__ import annotations

import re

from tests.helpers import assert_one_line_error, charlm


def test_the_page_shows_outsiders_struck_and_not_scored(run, tmp_path):
    (tmp_path / "t.txt").write_text("# the fox (and a dog)\n" + "the fox " * 30, encoding="utf-8")
    proc = charlm(["report", run, "-o", tmp_path / "r.html", "--text", tmp_path / "t.txt"], cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    surprisal = page[page.index('id="surprisal"'):page.index("The most surprising moments")]
    assert re.findall(r'<span class="oov"[^>]*>(.)</span>', surprisal) == ["#", "(", ")"]
    assert surprisal.count('class="ch') == len("# the fox (and a dog)\n" + "the fox " * 30) - 3  # the data's own


def test_an_unknown_encoding_is_bad_usage(run, tmp_path):
    text = run.parent / "corpus.txt"
    proc = charlm(["report", run, "-o", tmp_path / "r.html", "--text", text, "--encoding", "bogus"], cwd=run.parent)
    assert_one_line_error(proc, 2, "unknown encoding 'bogus'")
    assert not (tmp_path / "r.html").exists()


def test_wrote_gives_the_page_s_size_and_the_passage_s_length_apart(run, tmp_path):
    (tmp_path / "tiny.txt").write_text("the fox and\nthe dog\n", encoding="utf-8")
    out = tmp_path / "tiny.html"
    proc = charlm(["report", run, "-o", out, "--text", tmp_path / "tiny.txt"], cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    kb = out.stat().st_size / 1e3
    assert 1 <= kb < 1000 and proc.stderr.splitlines()[-1] == (
        f"charlm: wrote {out} ({kb:.0f} kB, with a passage of 20 characters); open it in a browser")
