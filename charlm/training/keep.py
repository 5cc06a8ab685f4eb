"""Checkpoints kept along the way (`--keep-every N`): what one weighs, how many a run keeps, and
whether the disk holds them.

A kept checkpoint (RUN/step-000400.pkl, named by charlm/rundir.py) is a checkpoint without the
optimizer's moments and the carried state (charlm/checkpoint.py's `weights_only`): what sample,
eval, info and report read, at a third of a resumable Adam checkpoint's size. It cannot be
resumed; `--init-from RUN/step-000400.pkl` starts a new run from its weights.

The plan (charlm/training/plans.py) calls `check` once: a run whose step budget says how many it
will keep is refused when they would not fit on the disk (keeping back room for best.pkl and
last.pkl); one with no step budget is told how many fit. The loop calls `room` before each
write and stops keeping, with a warning, when the disk fills regardless. Nothing here prints.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from charlm import defaults
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.errors import CharlmError
from charlm.nn.model import param_shapes
from charlm.training import memory

OVERHEAD = 8 * 1024  # configs, vocabulary, history and the pickle's framing (~2 KiB measured, + ~80 B a validation)


def weights_bytes(mcfg: ModelConfig) -> int:
    """About what one kept checkpoint weighs on disk: the float32 parameters, plus the rest."""
    return memory.BYTES * sum(math.prod(shape) for shape in param_shapes(mcfg).values()) + OVERHEAD


def reserve_bytes(mcfg: ModelConfig, ocfg: OptimConfig) -> int:
    """Free space kept clear of kept checkpoints: KEEP_DISK_RESERVE, plus two full checkpoints (a
    new best.pkl and last.pkl are written beside the old ones before they replace them)."""
    full = weights_bytes(mcfg) * (1 + memory.SLOTS.get(ocfg.name, 2))
    return defaults.KEEP_DISK_RESERVE + 2 * full


def free_bytes(run_dir: Path) -> int | None:
    """Free space on the disk that holds `run_dir` (or its nearest existing parent); None if unknown."""
    path = Path(run_dir).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def room(run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig) -> bool:
    """Whether one more kept checkpoint fits, leaving the reserve free."""
    free = free_bytes(run_dir)
    return free is None or free - weights_bytes(mcfg) >= reserve_bytes(mcfg, ocfg)


def planned_steps(tcfg: TrainConfig, windows: int) -> int | None:
    """The step the run's budget ends at, when a step budget (steps or epochs) says; None otherwise."""
    ends = [s for s in (tcfg.max_steps, math.ceil(tcfg.epochs * windows) if tcfg.epochs else 0) if s]
    return min(ends) if ends else None


def check(run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, windows: int,
          start_step: int = 0) -> str:
    """What keeping will take, as a note, or a one-line refusal when the checkpoints the budget
    implies would not fit on the disk ("" when the run keeps none)."""
    every = tcfg.keep_every
    if not every:
        return ""
    size, reserve, free = weights_bytes(mcfg), reserve_bytes(mcfg, ocfg), free_bytes(run_dir)
    fits = max((free - reserve) // size, 0) if free is not None else None
    end = planned_steps(tcfg, windows)
    count = end // every - start_step // every if end is not None else None
    each = (f"keeping a checkpoint every {every} steps beside best.pkl and last.pkl (step-N.pkl: the weights, "
            f"without the optimizer's moments, about {memory.human(size)} each)")
    disk = f"{memory.human(free)} free on the disk of {run_dir}" if free is not None else "free space unknown"
    if count is not None and fits is not None and count > fits:
        least = math.ceil((end - start_step) / fits) if fits else None
        fix = (f"use --keep-every {least} or more, or free some space" if least else "free some space first")
        raise CharlmError(f"--keep-every {every} would keep {count} checkpoints of about {memory.human(size)} "
                          f"({memory.human(count * size)} in all), and the disk of {run_dir} has room for "
                          f"{fits} ({memory.human(free)} free, of which {memory.human(reserve)} stays clear "
                          f"for best.pkl, last.pkl and the rest); {fix}")
    if count is not None:
        more = " more" if start_step else ""
        return f"{each}: {count}{more} by the end of the budget, {memory.human(count * size)}; {disk}"
    room_for = f"room for about {fits:,} of them" if fits is not None else "no way to tell how many fit"
    return (f"{each}; with no step budget the number is open: {disk}, {room_for}; keeping stops, with a "
            "warning, if the disk fills")
