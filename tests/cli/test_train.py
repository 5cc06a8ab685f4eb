"""`charlm train` through the real executable: a folder that holds its own runs, files that are not
text, a file named twice; a model too big for memory, files made only where asked, a corpus built in
the user's cache, explicit zero budgets; places a run cannot be written and a full disk; bad input.
What train says: test_train_output.py; --resume: test_train_resume.py."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from charlm import checkpoint, fileio
from tests.cli.conftest import CORPUS_CASES, TINY, bad_input_tests, copy_run, english
from tests.helpers import (
    CHARLM,
    ENV,
    ERROR,
    IS_ROOT,
    MINI,
    USAGE,
    assert_one_line_error,
    assert_runner_error,
    charlm,
    invoke,
    run_cli,
    sha,
)

STEPS = ["--max-steps", "4"]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"


@pytest.fixture
def proj(tmp_path) -> Path:
    """A project folder with one text file, trained on once: runs/proj now sits inside it."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "notes.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", ".", *STEPS, *TINY], cwd=proj)
    assert proc.returncode == 0, proc.stderr
    assert (proj / "runs" / "proj" / "last.pkl").is_file()
    return proj


def test_a_folder_skips_the_runs_it_holds_and_files_that_are_not_text(proj):
    (proj / "logo.png").write_bytes(PNG)
    resumed = charlm(["train", "--resume", "runs/proj", "--max-steps", "8", "--quiet"], cwd=proj)
    assert resumed.returncode == 0 and "after 8 steps" in resumed.stderr, resumed.stderr
    again = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY], cwd=proj)
    assert again.returncode == 0, again.stderr
    first, second = (proj / "runs" / name / "corpus.json" for name in ("proj", "second"))
    assert second.read_text().count(".txt") == first.read_text().count(".txt") == 1  # notes.txt alone


def test_a_folder_says_what_it_skipped_in_one_line(proj):
    (proj / "logo.png").write_bytes(PNG)
    (proj / "data.bin").write_bytes(b"\x00" * 64)
    proc = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY[:-1]], cwd=proj)
    lines = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert lines == ["charlm: skipped 1 charlm run directory (proj/runs/proj) and 2 files that are not text "
                     "(proj/data.bin, proj/logo.png)"], proc.stderr


def test_a_folder_of_nothing_but_runs_and_binaries_says_so(proj):
    (proj / "notes.txt").unlink()
    (proj / "logo.png").write_bytes(PNG)
    proc = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY], cwd=proj)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: the folder {proj} holds no text files (hidden files and folders are "
                                  "skipped; skipped 1 charlm run directory (proj/runs/proj) and 1 file that is "
                                  "not text (proj/logo.png))"), proc.stderr


def test_a_file_named_twice_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", "a.txt", "a.txt", "./a.txt", "--out", "R", *STEPS, *TINY[:-1]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"on {tmp_path / 'a.txt'} —" in proc.stderr and "files" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("corpus", ["notes.txt", "."])
def test_an_unknown_encoding_is_bad_usage(tmp_path, corpus):
    (tmp_path / "notes.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", corpus, "--encoding", "bogus", "--out", "R", *STEPS, *TINY], cwd=tmp_path)
    assert_one_line_error(proc, 2, "unknown encoding 'bogus'")
    assert not (tmp_path / "R").exists()


def test_counts_in_messages_have_thousands_separators(tmp_path):
    (tmp_path / "a.txt").write_text(english(400), encoding="utf-8")  # 16,005 characters to train on
    proc = charlm(["train", "a.txt", "--out", "R", *STEPS, *TINY, "--seq-len", "100000"], cwd=tmp_path)
    assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1, proc.stderr  # its exit code: training's
    assert " characters, too short for one window of --seq-len 100000 (needs 100,001)" in proc.stderr
    assert "has only 16,005 characters" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- memory, files in the current directory, budgets


def test_too_big_is_refused_before_anything_is_made(shared, tmp_path):
    err = assert_one_line_error(run_cli(["train", shared["corpus"], "--out", tmp_path / "big", "--hidden",
                                            "100000"], cwd=tmp_path), ERROR, "available")
    assert re.search(r"needs about [\d.]+ TiB of memory .* this machine has [\d.]+ [GMT]iB available", err), err
    assert not (tmp_path / "big").exists() and not (tmp_path / "runs").exists()


def test_out_elsewhere_makes_no_runs_folder_here(shared, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    proc = run_cli(["train", shared["corpus"], "--out", tmp_path / "away", "--max-steps", "1", *MINI], cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert list(here.iterdir()) == [] and "no runs/latest was made" in proc.stderr
    (here / "runs").mkdir()  # a directory that keeps runs: runs/latest follows the newest one
    proc = run_cli(["train", shared["corpus"], "--out", tmp_path / "away2", "--max-steps", "1", *MINI], cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert (here / "runs" / "latest").resolve() == (tmp_path / "away2").resolve()
    assert "runs/latest now points at" in proc.stderr


def test_bare_train_builds_its_corpus_in_the_user_cache(tmp_path):
    here, cache = tmp_path / "here", tmp_path / "cache"
    here.mkdir()
    env = {**ENV, "XDG_CACHE_HOME": str(cache)}
    args = ["train", "--max-steps", "1", *MINI, "--val-max-chars", "200", "--out", tmp_path / "run"]
    proc = subprocess.run(CHARLM + [str(a) for a in args], cwd=here, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    built = cache / "charlm" / "corpora" / "python.txt"
    assert built.is_file() and list(here.iterdir()) == []
    assert f"building the offline python corpus (about 9 MB, once) at {built}" in proc.stderr
    listed = subprocess.run(CHARLM + ["corpus", "list"], cwd=here, env=env, capture_output=True, text=True)
    assert str(built) in listed.stdout


def test_explicit_zero_budgets_mean_no_limit(shared, tmp_path):
    """--max-steps 0 given means no limit (until Ctrl-C), not the 10 epochs of a run given no budget."""
    proc = subprocess.Popen(CHARLM + ["train", str(shared["corpus"]), "--out", str(tmp_path / "z"), "--max-steps",
                                      "0", *MINI], cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "z" / "last.pkl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "no budget: until Ctrl-C" in err


# ---------------------------------------------------------------- a failed run leaves nothing behind


def test_failed_train_leaves_latest_alone(shared, tmp_path, monkeypatch):
    """A train that fails on its corpus must not repoint runs/latest at a run that does not exist."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(shared["run"])
    result = invoke(["train", shared["binary"], "--out", tmp_path / "new"], tmp_path, monkeypatch)
    assert_runner_error(result, ERROR, "utf-8")
    assert (tmp_path / "runs" / "latest").resolve() == shared["run"].resolve()


def test_failed_train_leaves_no_empty_run_dir(shared, tmp_path, monkeypatch):
    result = invoke(["train", shared["missing"], "--out", tmp_path / "new"], tmp_path, monkeypatch)
    assert_runner_error(result, ERROR, "not found")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- unwritable places


def test_unwritable_out_under_proc(shared, tmp_path):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    proc = run_cli(["train", shared["corpus"], "--out", "/proc/charlm-nope", "--max-steps", "1"], cwd=tmp_path)
    assert_one_line_error(proc, ERROR, "cannot write")


def test_unwritable_out_read_only_dir(shared, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:  # root (and some filesystems) ignore the mode: then this case cannot be set up
            (ro / "probe").write_text("")
            pytest.skip("chmod 0o500 does not stop writes here (running as root?)")
        except PermissionError:
            pass
        proc = run_cli(["train", shared["corpus"], "--out", ro / "run", "--max-steps", "1"], cwd=tmp_path)
        assert_one_line_error(proc, ERROR, "permission denied")
        assert_runner_error(invoke(["train", shared["corpus"], "--out", ro / "run", "--max-steps", "1"],
                                   tmp_path, monkeypatch), ERROR, "permission denied")
    finally:
        ro.chmod(0o700)


# ---------------------------------------------------------------- a full disk
# A real ENOSPC where the machine allows it (a small tmpfs in a private mount namespace), and a
# simulated one always. A full stdout (/dev/full): test_sample.py.


class _FillsUp:
    """A file that takes a little, then reports the disk full (what a real ENOSPC looks like)."""

    def __init__(self, path, mode):
        self.f = open(path, mode)
        self.room = 1000

    def write(self, b):
        if len(b) > self.room:
            self.f.write(b[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_full_disk_while_saving_simulated(shared, tmp_path, monkeypatch):
    """ENOSPC halfway through writing last.pkl: exit 1, one line, both old checkpoints intact."""
    run_dir = copy_run(shared, tmp_path / "RUN")
    before = {n: sha(run_dir / n) for n in ("best.pkl", "last.pkl")}
    monkeypatch.setattr(fileio, "open", _FillsUp, raising=False)  # shadows the builtin where checkpoints are written
    result = invoke(["train", "--resume", run_dir, "--max-steps", "6"], tmp_path, monkeypatch)
    monkeypatch.undo()
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == ERROR
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1], result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1 and "Traceback" not in result.stderr
    assert {n: sha(run_dir / n) for n in before} == before
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name], "temporary files left behind"
    for name in before:
        checkpoint.load_model(run_dir / name)


def _can_mount_tmpfs(where: Path) -> bool:
    if not (IS_ROOT and shutil.which("unshare") and shutil.which("mount")):
        return False
    where.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{where}'"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


def test_full_disk_while_saving_real(shared, tmp_path):
    """A run on a nearly full tmpfs (private mount namespace): the resumed run cannot save."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("needs root and `unshare -m` to mount a small tmpfs")
    src = shared["run"]
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in src.iterdir())
    out = tmp_path / "after"
    out.mkdir()
    charlm = " ".join(f"'{a}'" for a in CHARLM)
    script = (f"mount -t tmpfs -o size={used + 4096} tmpfs '{disk}' && cp -a '{src}/.' '{disk}/' || exit 99; "
              f"{charlm} train --resume '{disk}' --max-steps 6; rc=$?; "
              f"cp '{disk}'/*.pkl '{out}/'; ls -a '{disk}' > '{out}/listing'; exit $rc")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 99, proc.stderr
    assert proc.returncode == ERROR, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()  # the "resuming …" line, then the error
    assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1], proc.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1
    for name in ("best.pkl", "last.pkl"):
        assert sha(out / name) == sha(src / name), f"{name} changed"
        checkpoint.load_model(out / name)
    assert ".tmp" not in (out / "listing").read_text()


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = (
    [(f"train-{k}", ["train", f"{{{k}}}", "--out", "{tmp}/out", "--max-steps", "1"], ERROR, w)
     for k, w in CORPUS_CASES]
    + [
        ("train-seed-negative", ["train", "{corpus}", "--out", "{tmp}/out", "--seed", "-1"], USAGE, "--seed"),
        ("train-too-big-for-memory", ["train", "{corpus}", "--out", "{tmp}/out", "--hidden", "100000"], ERROR,
         "available"),
        ("train-out-is-a-file", ["train", "{corpus}", "--out", "{afile}/run", "--max-steps", "1"], ERROR,
         "cannot write"),
        ("train-out-exists", ["train", "{corpus}", "--out", "{run}", "--max-steps", "1", *MINI], USAGE,
         "already holds a run"),
        ("train-out-current-dir", ["train", "{corpus}", "--out", "", "--max-steps", "1"], USAGE,
         "--out needs a directory name"),
        ("train-device-numpy-engine", ["train", "{corpus}", "--out", "{tmp}/out", "--device", "cuda"], USAGE,
         "--device chooses where --engine torch trains"),
        ("train-val-max-chars-1", ["train", "{corpus}", "--out", "{tmp}/out", "--val-max-chars", "1"], USAGE,
         "--val-max-chars must be 0"),
        ("train-weight-decay-past-lr", ["train", "{corpus}", "--out", "{tmp}/out", "--optimizer", "sgd",
                                        "--weight-decay", "1"], USAGE, "lr × weight decay must be under 1"),
    ]
)
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(
    CASES, runner_only={"train-nul"}, parse_errors={"train-seed-negative"})
