"""Option values that cannot work, refused in one voice: typer's own checks of a type, a bound or
a choice read like charlm's ("--seed must be ≥ 0, got -1"); no float option takes inf or nan;
--threads beyond the usable cores is capped with one line."""

from __future__ import annotations

import os

import pytest

from tests.helpers import assert_one_line_error, charlm

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("args, said", [
    (["train", "c.txt", "--time-budget", "nan"], "--time-budget must be a finite number ≥ 0, got nan"),
    (["train", "c.txt", "--time-budget", "-1"], "--time-budget must be ≥ 0, got -1"),
    (["train", "c.txt", "--epochs", "inf"], "--epochs must be a finite number, got inf"),
    (["train", "c.txt", "--lr", "nan"], "--lr must be a finite number, got nan"),
    (["train", "c.txt", "--eval-every", "0"], "--eval-every must be ≥ 1, got 0"),
    (["train", "c.txt", "--dropout", "2"], "--dropout must be ≤ 0.95, got 2"),
    (["train", "c.txt", "--cell", "foo"], "--cell must be one of gru, lstm, rnn, got 'foo'"),
    (["sample", "--seed", "-1"], "--seed must be ≥ 0, got -1"),
    (["sample", "--lines", "x"], "--lines must be a whole number, got 'x'"),
    (["sample", "--top-p", "abc"], "--top-p must be a number, got 'abc'"),
    (["sample", "-t", "inf"], "--temperature must be a finite number, got inf"),
    (["eval", "surprisal", "--chars", "1.5"], "--chars must be a whole number, got 1.5"),
    (["eval", "gradient-flow", "--max-lag", "500"], "--max-lag must be ≤ 200, got 500"),
])
def test_typer_s_checks_speak_as_charlm_s(tmp_path, args, said):
    err = assert_one_line_error(charlm(args, cwd=tmp_path), 2)
    assert err == f"error: {said}"
    assert not (tmp_path / "runs").exists()


def test_click_s_own_errors_still_point_at_the_help(tmp_path):
    err = assert_one_line_error(charlm(["sample", "--bogus"], cwd=tmp_path), 2)
    assert err.startswith("error: No such option: --bogus") and err.endswith("(see `charlm sample --help`)")


def test_threads_beyond_the_cores_are_capped_with_one_line(run):
    proc = charlm(["sample", "-m", run, "--threads", "1000", "--length", "5", "--seed", "1"], cwd=run.parent)
    cores = f"{CORES} usable core" + "s" * (CORES > 1)
    assert proc.returncode == 0 and proc.stderr == (
        f"charlm: --threads 1,000 is more than the {cores}; using {CORES} BLAS thread{'s' * (CORES > 1)}\n")
    env = charlm(["eval", "perplexity", "-m", run], cwd=run.parent, env={"CHARLM_THREADS": "999"})
    assert env.returncode == 0 and env.stderr.startswith("charlm: CHARLM_THREADS=999 is more than the"), env.stderr
    fits = charlm(["sample", "-m", run, "--threads", "1", "--length", "5", "--seed", "1"], cwd=run.parent)
    assert fits.returncode == 0 and fits.stderr == ""
