"""What `charlm train` says, through the real executable: a closed pipe does not end a run, the
commands it prints quote their paths, runs/latest is mentioned once at the end, settings that
cannot help are said to be so, the settings line shows what runs, progress lines have an ETA,
the log stays in proportion to the run, and the validation slice is said."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from charlm import checkpoint
from tests.helpers import CHARLM, ENV, MINI, assert_one_line_error, charlm, run_cli

TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch-size", "4", "--eval-every", "5",
        "--sample-every", "0"]


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("the cat sat on the mat. a dog ran to a tree.\n" * 80)
    return path


def test_a_closed_pipe_does_not_end_the_run(text, tmp_path):
    """`charlm train … 2>&1 | head -2`: the reader leaves after two lines; the run trains on and saves."""
    cmd = " ".join(shlex.quote(str(a)) for a in [*CHARLM, "train", text, "--out", tmp_path / "run",
                                                  "--max-steps", "30", *TINY, "--workers", "1"])
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{cmd} 2>&1 | head -2"], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert checkpoint.load(tmp_path / "run" / "last.pkl").step == 30  # the whole run, saved


def test_printed_commands_quote_their_paths(text, tmp_path):
    run_dir = tmp_path / "my runs" / "first run"
    proc = charlm(["train", text, "--out", run_dir, "--max-steps", "5", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"charlm sample --model {shlex.quote(str(run_dir))}" in proc.stderr
    assert f"charlm eval perplexity --model {shlex.quote(str(run_dir))}" in proc.stderr
    p = subprocess.Popen(CHARLM + [str(a) for a in ["train", "--resume", run_dir, "--max-steps", "100000"]],
                         cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and metrics.read_text().count("\n") < 4:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert f"charlm train --resume {shlex.quote(str(run_dir))}" in err


def test_runs_latest_is_said_once_in_the_summary(text, tmp_path):
    (tmp_path / "runs").mkdir()
    proc = charlm(["train", text, "--out", tmp_path / "elsewhere", "--max-steps", "10", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    at = [i for i, line in enumerate(lines) if "runs/latest now points at" in line]
    done = next(i for i, line in enumerate(lines) if line.startswith("charlm: done"))
    assert len(at) == 1 and at[0] > done  # after every progress and validation line


def test_more_workers_than_cores_or_lanes_is_said(text, tmp_path):
    proc = charlm(["train", text, "--out", tmp_path / "run", "--max-steps", "2", *TINY, "--workers", "1000"],
                  tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--workers 1000 is more than the 4 lanes of a batch; using 4" in proc.stderr
    if os.cpu_count() and len(os.sched_getaffinity(0)) < 4:
        assert "worker processes on" in proc.stderr and "usable core" in proc.stderr


def test_a_window_longer_than_the_text_is_bad_usage(text, tmp_path):
    err = assert_one_line_error(charlm(["train", text, "--out", tmp_path / "run", "--seq-len", "100000"],
                                       tmp_path), 2, "too short for one window of --seq-len 100000")
    assert "3,240 characters" in err and not (tmp_path / "run").exists()


def test_counts_have_thousands_separators(text, tmp_path):
    proc = charlm(["train", text, "--out", tmp_path / "run", "--max-steps", "1005", "--eval-every", "1005",
                   "--hidden", "4", "--layers", "1", "--seq-len", "4", "--batch-size", "2", "--workers", "1",
                   "--sample-every", "0"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "step 1,005: val" in proc.stderr and "after 1,005 steps" in proc.stderr


def test_settings_line_shows_what_runs_and_help_gives_the_rule(shared, tmp_path):
    log = shared["run_log"]
    assert "defaults for no time budget, with your --layers, --hidden: gru 1×8, embedding 8 input" in log
    assert "2×256" not in log and "defaults.py" not in log and "README" not in log
    proc = subprocess.run(CHARLM + ["train", "--help"], cwd=tmp_path, env={**ENV, "COLUMNS": "400"},
                          capture_output=True, text=True, timeout=60)
    assert "384 or 256 or 128 by measured speed (rule below); 256 with no budget" in " ".join(
        proc.stdout.split()), proc.stdout  # help wraps at 80 columns
    assert "defaults.py" not in proc.stdout


def test_log_lines_have_eta_and_rate(shared):
    """stderr is a pipe here, not a terminal: progress comes as lines, the first one at once."""
    line = next(x for x in shared["run_log"].splitlines() if "ETA" in x)
    assert re.search(r"\d+% step \d+ .* [\d.]+k chars/s, ETA \d\d:\d\d", line), line


def test_log_stays_proportional_and_quiet_is_quiet(shared, tmp_path):
    """100 validations (every 2 of 200 steps): the log shows each improvement and the last,
    the other validation lines at most every 5% of the run, and at most 10 sample blocks;
    --sample-every 0 shows none, and --quiet only the summary."""
    args = ["train", shared["corpus"], "--max-steps", "200", *MINI, "--eval-every", "2"]
    loud = run_cli([*args, "--out", tmp_path / "loud"], cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    history = checkpoint.load(tmp_path / "loud" / "last.pkl").history
    best, improved = float("inf"), 0
    for h in history:
        if h["val_loss"] < best:
            best, improved = h["val_loss"], improved + 1
    lines = [x for x in loud.stderr.splitlines() if re.match(r"step \d+: val ", x)]
    assert len(history) == 100 and improved <= len(lines) <= improved + 21, (improved, len(lines))
    assert 1 <= loud.stderr.count("--- sample at step") <= 10
    none = run_cli([*args, "--out", tmp_path / "none", "--sample-every", "0"], cwd=tmp_path)
    assert none.returncode == 0 and "--- sample" not in none.stderr
    quiet = run_cli([*args, "--out", tmp_path / "quiet", "--quiet"], cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "charlm: done — reached --max-steps 200" in quiet.stderr
    summary = ("  val loss ", "charlm: done — ", "  checkpoints: ", "  next: ")
    assert all(line.startswith(summary) for line in quiet.stderr.splitlines()), quiet.stderr


def test_validation_slice_then_more_at_the_end(shared, tmp_path):
    """--val-max-chars N scores N chars during training and up to 10 N at the end, and says both."""
    for n, final in ((20, "the first 200"), (40, "all 268")):  # the corpus's validation split: 268 chars
        proc = run_cli(["train", shared["corpus"], "--out", tmp_path / f"v{n}", "--max-steps", "6", *MINI,
                           "--val-max-chars", str(n)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        said = final.replace("all 268", "all")
        assert f"validating on the first {n} of them during training, on {said} at the end" in proc.stderr
        assert re.search(rf"on the first {n} validation chars; on {final}: [\d.]+ nats/char", proc.stderr), \
            proc.stderr
