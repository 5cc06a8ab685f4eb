"""Early stopping (--patience K) through the real executable: it stops, says why, and resumes exactly."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from charlm import defaults
from charlm.training import budget
from tests.helpers import assert_one_line_error, charlm

# lr 0.03 on a tiny GRU overfits a 4 KB text within ~200 steps; constant rate so a resume with
# another --max-steps follows the same trajectory
FAST = ["--hidden", "16", "--layers", "1", "--batch-size", "4", "--seq-len", "20", "--eval-every", "5",
        "--lr", "0.03", "--schedule", "constant", "--sample-every", "0", "--quiet"]


def _text() -> str:
    rng = np.random.default_rng(0)
    words = ["the cat", "a dog", "my bird", "sat on", "ran to", "saw", "the mat", "a tree"]
    return "\n".join(" ".join(rng.choice(words, 5)) + "." for _ in range(150)) + "\n"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict:
    """One run that stops early with --patience 3."""
    d = tmp_path_factory.mktemp("patience")
    (d / "t.txt").write_text(_text())
    proc = charlm(["train", "t.txt", "--out", "A", "--max-steps", "600", "--patience", "3", *FAST], cwd=d)
    assert proc.returncode == 0, proc.stderr
    ckpt = pickle.loads((d / "A" / "last.pkl").read_bytes())
    return {"dir": d, "stderr": proc.stderr, "history": ckpt["history"], "step": ckpt["progress"]["step"]}


def test_it_stops_after_k_validations_without_a_new_best_and_says_so(stopped):
    vals = [h["val_loss"] for h in stopped["history"]]
    best_at = int(np.argmin(vals))
    assert stopped["step"] < 600 and len(vals) - 1 - best_at == 3, vals  # exactly K after the best
    assert all(v >= vals[best_at] for v in vals[best_at + 1:])
    best_step = stopped["history"][best_at]["step"]
    assert (f"done — stopped early: no new best in the last 3 validations (--patience 3; the best, in "
            f"best.pkl, was at step {best_step}) after {stopped['step']} steps") in stopped["stderr"]
    best = pickle.loads((stopped["dir"] / "A" / "best.pkl").read_bytes())
    assert best["progress"]["step"] == best_step


def test_the_count_survives_a_resume_exactly(stopped):
    d, end = stopped["dir"], stopped["step"]
    first = end - 10  # two validations before the stop: the count is 1 there
    assert budget.since_best([h for h in stopped["history"] if h["step"] <= first])[0] == 1
    assert charlm(["train", "t.txt", "--out", "B", "--max-steps", first, "--patience", "3", *FAST],
                  cwd=d).returncode == 0
    proc = charlm(["train", "--resume", "B", "--max-steps", "600", "--quiet"], cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "stopped early: no new best in the last 3 validations" in proc.stderr
    assert f"after {end} steps" in proc.stderr
    a, b = (pickle.loads((d / r / "last.pkl").read_bytes()) for r in ("A", "B"))
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    for name in a["params"]:
        np.testing.assert_array_equal(a["params"][name], b["params"][name])


def test_resuming_a_stopped_run_says_how_to_go_on(stopped, tmp_path):
    d = stopped["dir"]
    proc = charlm(["train", "--resume", "A", "--quiet"], cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "already stopped early, so nothing was trained" in proc.stderr
    assert "--patience 6" in proc.stderr
    proc = charlm(["train", "--resume", "A", "--patience", "4", "--quiet"], cwd=d)
    assert proc.returncode == 0 and "nothing was trained" not in proc.stderr, proc.stderr
    assert pickle.loads((d / "A" / "last.pkl").read_bytes())["progress"]["step"] > stopped["step"]


def test_patience_needs_a_validation_split(tmp_path: Path):
    (tmp_path / "t.txt").write_text(_text())
    assert_one_line_error(charlm(["train", "t.txt", "--patience", "2", "--val-fraction", "0", *FAST],
                                 cwd=tmp_path), 2, "--patience needs a validation split")
    assert not (tmp_path / "runs" / "t").exists()


def test_the_default_comes_from_defaults_and_needs_a_split(tmp_path: Path):
    (tmp_path / "t.txt").write_text(_text())
    for name, extra, expected in (("D", [], defaults.PATIENCE), ("N", ["--val-fraction", "0"], 0)):
        proc = charlm(["train", "t.txt", "--out", name, "--max-steps", "2", *FAST, *extra], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert pickle.loads((tmp_path / name / "last.pkl").read_bytes())["train_config"]["patience"] == expected
    shown = " ".join(charlm(["train", "--help"], cwd=tmp_path).stdout.split())  # the rule, however it wraps
    assert f"stopping early after {defaults.PATIENCE} validations without a new best" in shown
