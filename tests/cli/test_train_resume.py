"""`charlm train --resume`, through the real executable: a resume continues the run exactly as it was
saved. Budgets and reporting may change, each with a note; every other option that differs from the
run is refused with one line that names the option, the run's value and the value given. A resume
names a text other than the run's, or one changed since; a finished run says to raise its budget; a
run without last.pkl resumes from best.pkl; bad input."""

from __future__ import annotations

import pytest

from charlm import checkpoint
from tests.cli.conftest import bad_input_tests, copy_run, english
from tests.helpers import ERROR, MINI, USAGE, assert_one_line_error, charlm, run_cli

TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-every", "5",
        "--workers", "1", "--sample-every", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    (root / "c.txt").write_text("the cat sat on the mat. a dog ran to a tree.\n" * 60)
    proc = charlm(["train", root / "c.txt", "--out", root / "run", "--max-steps", "10", *TINY], root)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize(("option", "value", "was"), [
    ("--val-fraction", "0.5", "0.1"), ("--seq-len", "10", "8"), ("--optimizer", "sgd", "adam"),
    ("--lr", "0.1", "0.003"), ("--seed", "5", "1337"), ("--schedule", "constant", "cosine"), ("--clip", "0", "5"),
    ("--workers", "2", "1"), ("--batch-size", "10", "4"), ("--val-max-chars", "100", "200000"),
    ("--warmup-steps", "3", "100"), ("--encoding", "latin-1", "utf-8"),
])
def test_a_changed_setting_is_refused(run, option, value, was):
    before = (run / "run" / "last.pkl").read_bytes()
    err = assert_one_line_error(charlm(["train", "--resume", run / "run", option, value], run), USAGE)
    assert f"{option} {value} differs from this run's {was}" in err
    assert "--init-from" in err  # how to start a new run from this one's weights
    assert (run / "run" / "last.pkl").read_bytes() == before  # nothing was touched


@pytest.mark.parametrize(("option", "value"), [("--hidden", "16"), ("--cell", "lstm"), ("--dropout", "0.3")])
def test_a_changed_architecture_is_refused(run, option, value):
    err = assert_one_line_error(charlm(["train", "--resume", run / "run", option, value], run), USAGE)
    assert f"{option} {value} differs from this run's" in err and f"train a new run with {option} {value}" in err


def test_the_same_value_and_the_run_s_own_out_are_accepted(run, tmp_path):
    proc = charlm(["train", "--resume", run / "run", "--out", run / "run", "--seq-len", "8", "--lr", "0.003",
                   "--max-steps", "10"], run)
    assert proc.returncode == 0, proc.stderr
    assert "differs" not in proc.stderr and "resuming with" not in proc.stderr
    err = assert_one_line_error(charlm(["train", "--resume", run / "run", "--out", tmp_path / "x"], run), USAGE)
    assert "is not the directory of the run being resumed" in err and "--init-from" in err


def test_budgets_and_reporting_may_change_with_a_note(run, tmp_path):
    import shutil
    shutil.copytree(run / "run", tmp_path / "run")
    proc = charlm(["train", "--resume", tmp_path / "run", "--max-steps", "15", "--patience", "3", "--eval-every", "3",
                   "--sample-every", "1"], run)
    assert proc.returncode == 0, proc.stderr
    for note in ("--max-steps 15, where the run had 10", "--patience 3, where the run had 5",
                 "--eval-every 3, where the run had 5", "--sample-every 1, where the run had 0"):
        assert f"resuming with {note}" in proc.stderr
    saved = checkpoint.load(tmp_path / "run" / "last.pkl")
    assert saved.step == 15 and saved.train.max_steps == 15 and saved.train.eval_every == 3  # recorded


def test_resume_names_a_different_file_or_a_changed_one(shared, tmp_path):
    err = assert_one_line_error(run_cli(["train", "--resume", shared["run"], shared["other_text"], "--max-steps",
                                            "6"], cwd=tmp_path), ERROR, "a different text from the run")
    assert str(shared["corpus"]) in err and "changed" not in err
    own = tmp_path / "own.txt"
    own.write_text(english(60), encoding="utf-8")
    assert run_cli(["train", own, "--out", tmp_path / "R", "--max-steps", "3", *MINI],
                      cwd=tmp_path).returncode == 0
    own.write_text(english(60)[::-1], encoding="utf-8")
    before = (tmp_path / "R" / "last.pkl").read_bytes()
    assert_one_line_error(run_cli(["train", "--resume", tmp_path / "R", "--max-steps", "6"], cwd=tmp_path),
                          ERROR, "changed since the run was trained on it")
    assert (tmp_path / "R" / "last.pkl").read_bytes() == before


def test_resume_of_a_finished_run_says_to_raise_the_budget(shared, tmp_path):
    copy = copy_run(shared, tmp_path / "R")
    proc = run_cli(["train", "--resume", copy], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"already reached its budget, so nothing was trained; to train on, raise it: " \
           f"charlm train --resume {copy} --max-steps 6" in proc.stderr
    proc = run_cli(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path)
    assert proc.returncode == 0 and "already reached" not in proc.stderr, proc.stderr


def test_resume_without_last_pkl_says_it_uses_best(shared, tmp_path):
    copy = copy_run(shared, tmp_path / "R")
    (copy / "last.pkl").unlink()
    proc = run_cli(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{copy} has no last.pkl; resuming from best.pkl, saved at step 3" in proc.stderr


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = [
    ("train-resume-missing", ["train", "--resume", "{missing}"], ERROR, "not found"),
    ("train-resume-with-out", ["train", "--resume", "{run}", "--out", "{tmp}/branch"], USAGE,
     "is not the directory of the run being resumed"),
    ("train-resume-crafted", ["train", "--resume", "{crafted}"], ERROR, "refused"),
]
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, runner_only={"train-resume-missing"})
