"""`charlm info` through the real executable: which checkpoint it shows and its fractional epochs,
a runs/latest that dangles (and every command that falls back to it), bad input."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import CKPT_CASES, bad_input_tests, copy_run, damaged, english
from tests.helpers import ERROR, assert_one_line_error, assert_runner_error, charlm, invoke, run_cli


@pytest.mark.parametrize("args, given_as", [
    (["info"], "MODEL or --model"), (["report"], "RUN or --model"), (["sample", "-n", "5"], "--model"),
    (["eval", "perplexity"], "--model"),
])
def test_a_dangling_runs_latest_says_where_it_points(tmp_path, args, given_as):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to("gone")
    err = assert_one_line_error(charlm(args, cwd=tmp_path), 1)
    assert err == ("error: runs/latest points at runs/gone, which is gone: train a run with `charlm train CORPUS`, "
                   f"or give {given_as} as a checkpoint or run directory")


def test_info_names_its_checkpoint_and_fractional_epochs(shared, tmp_path):
    copy = copy_run(shared, tmp_path / "R")
    best = (copy / "best.pkl").read_bytes()
    assert run_cli(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path).returncode == 0
    (copy / "best.pkl").write_bytes(best)  # as if the validation got worse after step 3
    proc = run_cli(["info", copy], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"progress  3 steps, 0\.0\d+ epochs, .* as saved in best.pkl \(its best validation; "
                     r"the run went on to step 6, in last.pkl\)", proc.stdout), proc.stdout
    data = json.loads(run_cli(["info", copy / "last.pkl", "--json"], cwd=tmp_path).stdout)
    windows = ((len(english(60)) * 9 // 10) // 2 - 1) // 8  # B 2, T 8, 90% of the text for training
    assert data["steps"] == data["run_steps"] == 6 and data["epochs"] == pytest.approx(6 / windows)


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = (
    [(f"info-{k}", ["info", f"{{{k}}}"], ERROR, w) for k, w in CKPT_CASES]
    + [("info-no-model", ["info"], ERROR, "no MODEL or --model given")]
)
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, runner_only={
    "info-missing", "info-directory", "info-empty", "info-random", "info-other", "info-array",
    "info-incomplete", "info-bad_shape",
})

MALFORMED = {  # the charlm marker and version, but a field of the wrong type: a damaged or hand-made file
    "progress-not-a-dict": lambda d: {**d, "progress": "step 3"},
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_checkpoint_fields(name, shared, tmp_path, monkeypatch):
    bad = damaged(shared, tmp_path / f"{name}.pkl", MALFORMED[name])
    assert_runner_error(invoke(["info", bad], tmp_path, monkeypatch), ERROR, "checkpoint")
