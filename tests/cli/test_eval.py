"""`charlm eval perplexity | surprisal | gradient-flow` through the real executable: characters
outside the vocabulary (counted, listed, shown), a run whose corpus is gone, a run without a
validation split, a damaged id cache, the terminal's colours, bad input."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import CKPT_CASES, CORPUS_CASES, TINY, bad_input_tests, copy_run, english
from tests.helpers import CHARLM, ENV, ERROR, assert_one_line_error, charlm, run_cli

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


def test_no_validation_split(shared, tmp_path):
    assert f"next: charlm sample --model {shared['noval']}   |   charlm eval perplexity TEXT_FILE --model" \
        in shared["noval_log"]
    assert "eval perplexity TEXT_FILE" not in shared["run_log"]
    for args in (["eval", "perplexity", "-m", shared["noval"]], ["eval", "surprisal", "-m", shared["noval"]]):
        err = assert_one_line_error(run_cli(args, cwd=tmp_path), ERROR, "no validation split")
        assert "FILE" in err and "vocabulary" not in err
    ok = run_cli(["eval", "perplexity", shared["corpus"], "-m", shared["noval"]], cwd=tmp_path)
    assert ok.returncode == 0 and "bits/char" in ok.stdout, ok.stderr


def test_damaged_id_cache_is_rebuilt_with_a_note(shared, tmp_path):
    copy = copy_run(shared, tmp_path / "R")
    expected = run_cli(["eval", "perplexity", "-m", copy], cwd=tmp_path)
    ids = copy / "corpus.ids"
    for command in (["eval", "perplexity", "-m", copy], ["train", "--resume", copy, "--max-steps", "6"]):
        ids.write_bytes(ids.read_bytes()[: ids.stat().st_size // 2])
        proc = run_cli(command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert re.search(r"the id cache \S+corpus.ids is damaged \([\d,]+ bytes where [\d,]+ were expected\); "
                         "rebuilding it", proc.stderr), proc.stderr
        if command[0] == "eval":
            assert proc.stdout == expected.stdout
    assert "damaged" not in run_cli(["eval", "perplexity", "-m", copy], cwd=tmp_path).stderr  # rebuilt once


def test_terminal_surprisal_has_the_scale_and_a_legend(shared, tmp_path):
    env = {k: v for k, v in ENV.items() if k != "NO_COLOR"} | {"FORCE_COLOR": "1", "COLORTERM": "truecolor"}
    proc = subprocess.run(CHARLM + ["eval", "surprisal", "-m", str(shared["run"]), "--chars", "100"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "48;2;252;253;191" in proc.stdout and "48;2;0;0;4" in proc.stdout  # the legend's two ends
    assert re.search(r"surprisal  0 .* 8\+ bits", re.sub(r"\x1b\[[\d;]*m", "", proc.stdout))


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = (
    [(f"perplexity-{k}", ["eval", "perplexity", f"{{{k}}}", "--model", "{run}"], ERROR, w)
     for k, w in CORPUS_CASES]
    + [(f"perplexity-model-{k}", ["eval", "perplexity", "--model", f"{{{k}}}"], ERROR, w)
       for k, w in CKPT_CASES if k in ("truncated", "crafted")]
    + [("perplexity-file-is-not-a-corpus", ["eval", "perplexity", "{missing}", "--model", "{run}"], ERROR,
        "text file not found")]
)
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, runner_only={
    "perplexity-nul", "perplexity-model-truncated", "perplexity-model-crafted",
})
