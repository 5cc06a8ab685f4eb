"""`charlm train --resume`, through the real executable: a resume continues the run exactly as it was
saved. Budgets and reporting may change, each with a note; every other option that differs from the
run is refused with one line that names the option, the run's value and the value given."""

from __future__ import annotations

import pytest

from charlm import checkpoint
from tests.helpers import assert_one_line_error, charlm

USAGE = 2
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
