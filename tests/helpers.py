"""What many test files share: the real `charlm` executable, a small text to train on, and how
to judge the errors of a command, run in a subprocess or in-process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_SCRIPT = Path(sys.executable).with_name("charlm")
CHARLM = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "charlm"]
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

ERROR, USAGE = 1, 2  # the exit codes of an error and of bad usage
# the smallest runs the command tests train (3 steps of gru 1×8 train in about a second)
MINI = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3"]


def english(lines: int = 200) -> str:
    """Plain ASCII lines of words (about 50 characters each), the same every time."""
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while birds sing in green trees".split()
    return "\n".join(" ".join(words[i] for i in rng.integers(0, len(words), 9)) for _ in range(lines)) + "\n"


def charlm(args, cwd: Path, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """The real executable, as a user would run it; stdout and stderr captured unless told otherwise."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(CHARLM + [str(a) for a in args], cwd=cwd, env={**ENV, **(env or {})}, text=True,
                          encoding="utf-8", timeout=timeout, **kw)


def run_cli(args, cwd: Path, stdout=subprocess.PIPE, timeout: float = 60) -> subprocess.CompletedProcess:
    """`charlm` with a minute's limit where `charlm` gives two: the limit the bad-input and edge
    tests have always run under; `stdout` may be a file (a full disk: /dev/full)."""
    return charlm(args, cwd, timeout=timeout, stdout=stdout)


def invoke(args: list, cwd: Path, monkeypatch) -> object:
    """The same command in-process through Typer's CliRunner (cwd matters: runs/latest)."""
    from typer.testing import CliRunner

    from charlm.cli import app

    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str = "") -> str:
    """Exit `code`, no traceback, exactly one line on stderr starting "error:" and holding `needle`,
    and nothing on stdout (where it was captured)."""
    err = proc.stderr.strip()
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}; stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert err and "\n" not in err, f"expected exactly one line on stderr, got:\n{proc.stderr}"
    assert err.startswith("error: "), err
    assert needle.lower() in err.lower(), f"{needle!r} not in {err!r}"
    if proc.stdout is not None:
        assert proc.stdout == "", f"stdout should be empty on error, got {proc.stdout!r}"
    return err


def assert_runner_error(result, code: int, needle: str | None = "") -> None:
    """`invoke`'s result: a clean exit `code`, nothing on stdout, one line on stderr starting "error:" and
    holding `needle`. `needle=None`: a click parse error (multi-line usage box) — only the exit code is checked."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"raised {result.exception!r}, not a clean exit"
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}; stderr:\n{result.stderr}"
    assert result.stdout == "", f"stdout should be empty on error, got {result.stdout!r}"
    if needle is None:
        return
    err = result.stderr.strip()
    assert err and "\n" not in err, f"expected exactly one line on stderr, got:\n{result.stderr}"
    assert err.startswith("error: ") and needle.lower() in err.lower(), err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(path: Path) -> dict:
    """A checkpoint file's stored dict as it is on disk (trusted test files only: plain
    pickle), for tests that damage one field and write it back."""
    import pickle
    return pickle.loads(Path(path).read_bytes())


def run_events(plan, stop_at: int | None = None) -> list[dict]:
    """Every event of training `plan`; with stop_at, a Ctrl-C (SIGINT to this process, as a user's
    would be) once that many steps have been taken."""
    import signal

    from charlm.training import loop

    events, steps = [], 0
    for ev in loop.run(plan):
        events.append(ev)
        if ev["event"] == loop.STEP:
            steps += 1
            if steps == stop_at:
                os.kill(os.getpid(), signal.SIGINT)
    return events
