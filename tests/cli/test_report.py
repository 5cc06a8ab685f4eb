"""`charlm report` through the real executable: the page shows characters outside the vocabulary,
--chars 0 is bounded, bad input."""

from __future__ import annotations

import re

from tests.cli.conftest import bad_input_tests, english
from tests.helpers import ERROR, USAGE, assert_one_line_error, charlm, run_cli


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


def test_report_chars_0_is_bounded_and_says_so(shared, tmp_path):
    long_text = tmp_path / "long.txt"
    long_text.write_text(english(60) * 8, encoding="utf-8")  # ~25,000 characters
    out = tmp_path / "r.html"
    proc = run_cli(["report", shared["run"], "--text", long_text, "--chars", "0", "--out", out], cwd=tmp_path,
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"--chars 0: showing the first 20,000 of [\d,]+ characters", proc.stderr), proc.stderr
    assert "20,000 characters" in proc.stderr.splitlines()[-1]
    assert out.read_text(encoding="utf-8").count('<span class="ch') == 2 * 20_000  # surprisal and cell views


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = [
    ("report-no-model", ["report"], ERROR, "no RUN or --model given"),
    ("report-seed-negative", ["report", "{run}", "--seed", "-1"], USAGE, "--seed"),
]
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, parse_errors={"report-seed-negative"})
