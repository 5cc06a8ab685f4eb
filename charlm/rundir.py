"""A run directory's layout: what charlm writes where, and the runs/ folder that holds runs.

    RUN/best.pkl        the model with the best validation loss so far: what sample and eval read
    RUN/last.pkl        the run as it stood at its last validation: what --resume continues
    RUN/metrics.jsonl   one JSON object per line, `METRICS_FIELDS` below: every LOG_EVERY-th step and
                        every validation (a resume first drops the lines after its checkpoint)
    RUN/samples.jsonl   one JSON object per line, `SAMPLE_FIELDS` below: the text the model wrote at each
                        validation, from a fixed prime, seed and temperature (a resume drops lines as above)
    RUN/step-000400.pkl a checkpoint kept along the way (--keep-every N): `kept_name`, `kept`, `kept_path`
    RUN/report.html     the report: `charlm report`'s, or the live page of a run trained with --report
                        (report-full.html: `charlm report` of a run whose live page is still running)
    RUN/corpus.ids      the corpus as ids, and corpus.json, what they are (charlm/data/corpus.py)
    runs/NAME           where a new run goes when --out is not given: NAME, NAME-2, NAME-3 …
    runs/latest         a link to the newest run: the model a command uses when none is named

The checkpoints' own format is charlm/checkpoint.py's. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

from charlm.errors import CharlmError, UsageError
from charlm.fileio import atomic_write

BEST, LAST, METRICS, SAMPLES = "best.pkl", "last.pkl", "metrics.jsonl", "samples.jsonl"
REPORT, FULL_REPORT = "report.html", "report-full.html"
LIVE_MARK = '<meta name="charlm-live" content="running">'  # in the head of a live page while its run goes
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

# samples.jsonl, one line per validation: what the model wrote then, and how it was drawn (the settings
# are defaults.TRAINING_SAMPLE's, recorded on every line so that a record read alone says what it is).
SAMPLE_FIELDS = {
    "step": "optimizer steps taken",
    "seconds": "training seconds so far (validation excluded)",
    "val_loss": "validation loss at this step, nats/char (null without a validation split)",
    "prime": "the text the sample starts from (\"\" = none: the model's first character is its own)",
    "seed": "the random seed of the draw (the same at every step, so only the model changes)",
    "temperature": "the softmax temperature",
    "length": "characters generated",
    "text": "what the model wrote, the prime first",
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


# ---------------------------------------------------------------- metrics.jsonl and samples.jsonl


def _row(fields: dict, what: str, values: dict) -> str:
    if set(values) != set(fields):
        raise ValueError(f"a {what} row has the fields {', '.join(fields)}; got {', '.join(values)}")
    return json.dumps({k: values[k] for k in fields}, ensure_ascii=False) + "\n"


def metrics_row(**values) -> str:
    """One line of metrics.jsonl: exactly the fields of METRICS_FIELDS, in its order."""
    return _row(METRICS_FIELDS, "metrics", values)


def sample_row(**values) -> str:
    """One line of samples.jsonl: exactly the fields of SAMPLE_FIELDS, in its order."""
    return _row(SAMPLE_FIELDS, "samples", values)


def _step_of(line: str) -> float:
    """The step a record's line logs; infinity for a line that is not a JSON object."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return float("inf")


def _open_record(path: Path, resume_step: int | None):
    """A record (one JSON object a line) opened for appending, line-buffered: emptied for a new run;
    for a resume at `resume_step`, without the lines after it (or a line torn by a crash mid-write),
    rewritten atomically so that a crash while trimming loses nothing."""
    if resume_step is not None and path.exists():
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= resume_step]
        atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode("utf-8")))
    elif resume_step is None:
        path.write_text("")
    return open(path, "a", buffering=1, encoding="utf-8")


def open_metrics(run_dir: Path, resume_step: int | None):
    """metrics.jsonl opened for appending (see `_open_record`)."""
    return _open_record(run_dir / METRICS, resume_step)


def open_samples(run_dir: Path, resume_step: int | None):
    """samples.jsonl opened for appending (see `_open_record`)."""
    return _open_record(run_dir / SAMPLES, resume_step)


def _read_record(path: Path) -> list[dict]:
    """A record's rows: unreadable lines (a line torn by a run still writing it) skipped; [] when none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
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


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl rows (unreadable lines skipped; [] when there is none)."""
    return _read_record(run_dir / METRICS)


def read_samples(run_dir: Path) -> list[dict]:
    """A run's samples.jsonl rows with a text (unreadable lines skipped; [] when there is none)."""
    return [r for r in _read_record(run_dir / SAMPLES) if isinstance(r.get("text"), str)]


# ---------------------------------------------------------------- checkpoints kept along the way

_KEPT = re.compile(r"step-(\d+)\.pkl")


def kept_name(step: int) -> str:
    """The file a checkpoint kept at `step` goes to: step-000400.pkl (padded so that `ls` sorts them)."""
    return f"step-{step:06d}.pkl"


def kept_step(path: Path | str) -> int | None:
    """The step of a kept checkpoint's file name (step-000400.pkl → 400); None for any other name."""
    m = _KEPT.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def kept(run_dir: Path) -> dict[int, Path]:
    """The checkpoints kept along the way in `run_dir`, by step, in step order."""
    try:
        found = [(step, p) for p in Path(run_dir).iterdir() if (step := kept_step(p)) is not None]
    except OSError:
        return {}
    return dict(sorted(found))


def kept_path(run_dir: Path, step: int) -> Path:
    """The checkpoint kept at `step` in `run_dir`; a one-line error naming the kept ones otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        where = f"; give the run directory, {quote(run_dir.parent)}" if run_dir.exists() else ""
        raise UsageError(f"--step picks a checkpoint kept in a run directory, and {run_dir} is not one{where}")
    found = kept(run_dir)
    if step in found:
        return found[step]
    if not found:
        raise CharlmError(f"{run_dir} kept no checkpoints along the way (it was trained without --keep-every), "
                          f"so there is none at step {step}; its checkpoints are {BEST} and {LAST}")
    raise CharlmError(f"{run_dir} kept no checkpoint at step {step}; it kept steps {steps_list(list(found))}")


def steps_list(steps: list[int], most: int = 12) -> str:
    """"100, 200, 300" — or the first and last few, with how many are left out between."""
    if len(steps) <= most:
        return ", ".join(map(str, steps))
    half = most // 2
    return f"{', '.join(map(str, steps[:half]))}, … ({len(steps) - most} more) …, {', '.join(map(str, steps[-half:]))}"


# ---------------------------------------------------------------- the report


def is_live(run_dir: Path) -> bool:
    """Whether RUN/report.html is the live page of a run that is still going (or was killed mid-run)."""
    try:
        with open(Path(run_dir) / REPORT, encoding="utf-8", errors="replace") as f:
            return LIVE_MARK in f.read(4096)
    except OSError:
        return False
