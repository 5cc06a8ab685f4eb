"""A run directory's layout: what charlm writes where, and the runs/ folder that holds runs.

    RUN/best.pkl        the model with the best validation loss so far: what sample and eval read
    RUN/last.pkl        the run as it stood at its last validation: what --resume continues
    RUN/metrics.jsonl   one JSON object per line, `METRICS_FIELDS` below: every LOG_EVERY-th step and
                        every validation (a resume first drops the lines after its checkpoint)
    RUN/corpus.ids      the corpus as ids, and corpus.json, what they are (charlm/data/corpus.py)
    runs/NAME           where a new run goes when --out is not given: NAME, NAME-2, NAME-3 …
    runs/latest         a link to the newest run: the model a command uses when none is named

The checkpoints' own format is charlm/checkpoint.py's. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

from charlm.errors import CharlmError, UsageError

BEST, LAST, METRICS = "best.pkl", "last.pkl", "metrics.jsonl"
CORPUS_IDS, CORPUS_META = "corpus.ids", "corpus.json"
RUNS = Path("runs")
LATEST = RUNS / "latest"

# metrics.jsonl, one line per logged step: field → what it holds. val_loss is null on a step
# without validation; seconds is training time, validation excluded.
METRICS_FIELDS = {
    "step": "optimizer steps taken",
    "seconds": "training seconds so far (validation excluded)",
    "epoch": "whole passes over the training text",
    "train_loss": "the step's mean training loss, nats/char",
    "val_loss": "validation loss at this step, nats/char (null when not validated)",
    "lr": "the learning rate of the step",
    "grad_norm": "global gradient norm before clipping",
    "chars_per_sec": "training characters per second, over the last LOG_EVERY steps",
}


def holds_run(run_dir: Path) -> bool:
    return (run_dir / LAST).exists() or (run_dir / BEST).exists()


def fresh_run_dir(name: str, runs: Path = RUNS) -> Path:
    """runs/NAME, or runs/NAME-2, -3 … if that already holds a run."""
    base = runs / name
    candidate, k = base, 1
    while holds_run(candidate):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


@contextlib.contextmanager
def new_run_dir(out: Path | None, name: str) -> Iterator[Path]:
    """The directory a new run writes to: `out`, or runs/NAME(-2, -3 …). Refused when it already
    holds a run, checked writable, and removed again when the run ends (error, Ctrl-C) before
    any checkpoint is in it, so a failed start leaves no debris."""
    run_dir = Path(out) if out is not None else fresh_run_dir(name)
    if holds_run(run_dir):
        raise UsageError(f"{run_dir} already holds a run; continue it with --resume {quote(run_dir)}, "
                         "or pick another --out")
    created = not run_dir.exists()
    check_writable(run_dir)
    try:
        yield run_dir
    except BaseException:
        if created and not holds_run(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CharlmError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from None


def quote(path: Path | str) -> str:
    """A path as a shell reads it back (quoted when it holds spaces or the like), for the
    commands charlm prints for a user to copy."""
    return shlex.quote(str(path))


def link_latest(run_dir: Path) -> bool | None:
    """Point runs/latest at `run_dir`, replacing the link atomically (best effort). A run whose
    directory is outside ./runs links only where ./runs already exists. Returns True when
    it linked a run outside ./runs, False when there was no ./runs to link in, None otherwise."""
    outside = RUNS.resolve() not in run_dir.resolve().parents
    if outside and not RUNS.is_dir():
        return False
    try:
        RUNS.mkdir(exist_ok=True)
        tmp = RUNS / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(run_dir.resolve(), RUNS.resolve()))
        os.replace(tmp, LATEST)
    except OSError:
        return None
    return True if outside else None


# ---------------------------------------------------------------- metrics.jsonl


def metrics_row(**values) -> str:
    """One line of metrics.jsonl: exactly the fields of METRICS_FIELDS, in its order."""
    if set(values) != set(METRICS_FIELDS):
        raise ValueError(f"a metrics row has the fields {', '.join(METRICS_FIELDS)}; got {', '.join(values)}")
    return json.dumps({k: values[k] for k in METRICS_FIELDS}) + "\n"


def _step_of(line: str) -> float:
    """The step a metrics.jsonl line logs; infinity for a line that is not a JSON object."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return float("inf")


def open_metrics(run_dir: Path, resume_step: int | None):
    """metrics.jsonl opened for appending, line-buffered: emptied for a new run; for a resume at
    `resume_step`, without the lines after it (or a line torn by a crash mid-write)."""
    path = run_dir / METRICS
    if resume_step is not None and path.exists():
        kept = [line for line in path.read_text().splitlines() if _step_of(line) <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))
    elif resume_step is None:
        path.write_text("")
    return open(path, "a", buffering=1)


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl rows (unreadable lines skipped; [] when there is none)."""
    try:
        lines = (run_dir / METRICS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows
