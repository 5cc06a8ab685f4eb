"""`charlm eval perplexity | surprisal | gradient-flow` through the real executable: characters
outside the vocabulary (counted, listed, shown), and a run whose corpus is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import TINY, english
from tests.helpers import assert_one_line_error, charlm

OUTSIDE = "#$%()*+/0123456789"  # 18 characters the tiny run's English never holds


def test_the_excluded_list_says_how_many_more(run, tmp_path):
    (tmp_path / "t.txt").write_text("the fox " * 200 + OUTSIDE * 100, encoding="utf-8")
    proc = charlm(["eval", "perplexity", "-m", run, tmp_path / "t.txt"], cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("charlm: excluded 1,800 character(s) outside the vocabulary: '#', '$', '%', '(', ')', '*', "
                           "'+', '/', '0', '1' and 8 more\n")
    strict = charlm(["eval", "perplexity", "-m", run, tmp_path / "t.txt", "--strict"], cwd=run.parent)
    assert assert_one_line_error(strict, 1).endswith("'0', '1' and 8 more); drop --strict to score without them")


def test_surprisal_counts_and_shows_the_passage_s_own_outsiders(run, tmp_path):
    """--chars 100 reads the passage's 100 characters: the 2 outside the vocabulary in them are
    counted (not the file's 1,802) and shown in place, marked '?', not scored."""
    (tmp_path / "t.txt").write_text("# the fox (and a dog)\n" + "the fox " * 30 + OUTSIDE * 100, encoding="utf-8")
    proc = charlm(["eval", "surprisal", "-m", run, tmp_path / "t.txt", "--chars", "100"], cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "charlm: excluded 3 character(s) outside the vocabulary: '#', '(', ')'\n"
    lines = proc.stdout.splitlines()
    assert lines[0] == "# the fox (and a dog)"
    assert lines[1][0] == "?" and lines[1][10] == "?" and lines[1][20] == "?"   # under '#', '(' and ')'
    assert "'?' outside the vocabulary (not scored)" in lines[-2]
    assert lines[-1].startswith("Text from t.txt: 96 characters scored")    # 100 − 3 outside − the first
    coloured = charlm(["eval", "surprisal", "-m", run, tmp_path / "t.txt", "--chars", "100"], cwd=run.parent,
                      env={"NO_COLOR": "", "FORCE_COLOR": "1", "COLORTERM": "truecolor"})
    assert coloured.returncode == 0 and coloured.stdout.startswith("\x1b[9;"), coloured.stdout[:40]  # '#' struck
    assert "outside the vocabulary, not scored" in coloured.stdout


@pytest.fixture
def goner(tmp_path) -> Path:
    """A run whose corpus was deleted after training."""
    (tmp_path / "gone.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", "gone.txt", "--out", "R", "--max-steps", "3", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "gone.txt").unlink()
    return tmp_path / "R"


@pytest.mark.parametrize("args, how", [
    (["eval", "perplexity", "-m", "R"], "a text FILE"),
    (["eval", "surprisal", "-m", "R"], "a text FILE"),
    (["eval", "gradient-flow", "-m", "R"], "a text FILE"),
    (["report", "R"], "--text FILE"),
])
def test_a_gone_corpus_names_what_to_give_instead(goner, args, how):
    err = assert_one_line_error(charlm(args, cwd=goner.parent), 1)
    assert err == f"error: the run's corpus {goner.parent / 'gone.txt'} is gone; give {how} to use instead"


@pytest.mark.parametrize("command", ["perplexity", "surprisal", "gradient-flow"])
def test_an_unknown_encoding_is_bad_usage(run, command):
    proc = charlm(["eval", command, "-m", run, run.parent / "corpus.txt", "--encoding", "bogus"], cwd=run.parent)
    assert_one_line_error(proc, 2, "unknown encoding 'bogus'")
