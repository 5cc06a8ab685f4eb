"""What many test files share: the real `charlm` executable and how to judge its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("charlm")
CHARLM = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "charlm"]
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}


def charlm(args, cwd: Path, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """The real executable, as a user would run it; stdout and stderr captured unless told otherwise."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(CHARLM + [str(a) for a in args], cwd=cwd, env={**ENV, **(env or {})}, text=True,
                          encoding="utf-8", timeout=timeout, **kw)


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
