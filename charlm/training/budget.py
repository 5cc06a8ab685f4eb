"""What a training run is asked to do: the TrainConfig, and the budget arithmetic on it.

Budgets (--max-steps, --epochs, --time-budget) are totals for the run, so a resumed
run continues toward the same end, on the same schedule. Field defaults come from
charlm/defaults.py, the one owner of every default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from charlm import defaults, engines
from charlm.errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = defaults.SEQ_LEN            # T: BPTT window
    batch_size: int = defaults.BATCH_SIZE      # B: contiguous lanes
    max_steps: int | None = None    # stop after this many steps; 0 = no limit; None = not given (see below)
    epochs: float | None = None     # stop after this many passes; 0 = no limit
    time_budget: float | None = None  # stop after this many seconds of training, validation excluded; 0 = none
    val_fraction: float = defaults.VAL_FRACTION    # last fraction of the text held out for validation
    eval_every: int | None = None   # validate and checkpoint every this many steps; None = defaults.eval_every
    val_max_chars: int = defaults.VAL_MAX_CHARS    # validate on this many chars during training (0 = all)
    log_every: int = defaults.LOG_EVERY            # metrics.jsonl line every this many steps
    sample_every: int = defaults.SAMPLE_EVERY      # sample every this many validations, 10% of a run apart; 0 = never
    seed: int = defaults.SEED       # init, dropout masks: same seed, same run
    workers: int = 0                # processes sharing the lanes (0 = by charlm/threads.py); same K, same run
    patience: int | None = None     # stop after this many validations without a new best; 0 = never;
                                    # None = defaults.PATIENCE when there is a validation split
    engine: str = defaults.ENGINE   # numpy | torch (charlm/engines): who computes the steps; same model either way

    def __post_init__(self):
        steps, epochs, seconds = defaults.budgets(self.max_steps, self.epochs, self.time_budget)
        object.__setattr__(self, "max_steps", steps)   # budgets not given: defaults.budgets decides
        object.__setattr__(self, "epochs", epochs)
        object.__setattr__(self, "time_budget", seconds)
        if self.patience is None:
            object.__setattr__(self, "patience", defaults.PATIENCE if self.val_fraction > 0 else 0)
        if self.seq_len < 1 or self.batch_size < 1:
            raise UsageError("--seq-len and --batch-size must be ≥ 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_steps < 0 or self.epochs < 0 or not self.time_budget >= 0:
            raise UsageError("budgets (--max-steps, --epochs, --time-budget) must be ≥ 0")
        if (self.eval_every is not None and self.eval_every < 1) or self.log_every < 1:
            raise UsageError("--eval-every and --log-every must be ≥ 1")
        if self.val_max_chars == 1:
            raise UsageError("--val-max-chars must be 0 (all) or at least 2: scoring needs two characters")
        if self.workers < 0 or self.val_max_chars < 0 or self.patience < 0:
            raise UsageError("--workers, --val-max-chars and --patience must be ≥ 0")
        if self.patience and not self.val_fraction:
            raise UsageError("--patience needs a validation split to watch; drop --val-fraction 0")
        if self.engine not in engines.ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose one of {', '.join(engines.ENGINES)}")

    def with_eval_every(self, train_chars: int) -> TrainConfig:
        """This config with eval_every decided when it was not given: defaults.EVAL_EVERY,
        or one epoch of `train_chars` when that is shorter (not with no validation split)."""
        if self.eval_every is not None:
            return self
        every = defaults.EVAL_EVERY
        if self.val_fraction > 0:
            every = defaults.eval_every(every, train_chars, self.batch_size, self.seq_len)
        return dataclasses.replace(self, eval_every=every)


def fraction_done(tc: TrainConfig, progress: dict, windows: int) -> float:
    """How far the run is toward whichever budget ends it first (for the cosine schedule)."""
    parts = [0.0]
    if tc.max_steps:
        parts.append(progress["step"] / tc.max_steps)
    if tc.epochs:
        parts.append((progress["epoch"] + progress["window"] / windows) / tc.epochs)
    if tc.time_budget:
        parts.append(progress["elapsed"] / tc.time_budget)
    return max(parts)


def budget_reached(tc: TrainConfig, progress: dict, windows: int) -> str | None:
    """Why the run ends now, or None while every budget has room."""
    if tc.max_steps and progress["step"] >= tc.max_steps:
        return f"reached --max-steps {tc.max_steps}"
    if tc.epochs and progress["epoch"] + progress["window"] / windows >= tc.epochs - 1e-9:
        return f"reached --epochs {tc.epochs:g}"
    if tc.time_budget and progress["elapsed"] >= tc.time_budget:
        return f"reached --time-budget {tc.time_budget:g}s"
    return None
