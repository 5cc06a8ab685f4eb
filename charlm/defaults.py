"""Default settings for `charlm train`, chosen by measurement (benchmarks/RESULTS.md).

What gives the best validation loss depends on how many steps the run can take:
few steps want a model small enough to see the text several times, many steps a
bigger model with dropout to keep it from memorising. Machines differ 2–3× in
speed, so with a time budget the model is chosen from the speed measured on this
machine at the start (charlm/speed.py: a few timed steps of each candidate, largest
first) and not from the budget alone. Every choice is printed; an option given on
the command line always wins.

The rule, for a run with time budget S seconds: the first tier, from the top, whose
model can take at least `min_steps` steps in S at the measured rate:
    GRU 2×384, embedding 384, dropout 0.2     ≥ 1,850 steps
    GRU 2×256, embedding 256, no dropout      ≥ 500 steps
    GRU 2×128, embedding 128, no dropout      otherwise
With no time budget the 2×256 tier is used and nothing is measured.
Always Adam 3e-3 (RMSprop 3e-3, SGD 1.0 when chosen), batch 50 × sequence 100, clip 5, 100 warm-up steps
then a cosine decay of the learning rate to a tenth, timed to end with the run.
Why these numbers (tinyshakespeare, RESULTS.md "Defaults by measured speed"): on
the Intel box the 2×384 tier won from 600 s up, where it took 1,850 steps. The 2×128
model trains about twice as fast as the 2×256; in equal time it won at 300 steps
against 150 (1.8756 against 1.9228 nats/char) and lost at 1,400 against 700 (1.5380
against 1.5217), so the 2×256 needs about 500 steps to be the better choice.
Validation (and best.pkl) comes every 200 steps, or every epoch when an epoch is
shorter than that (but not under 10 steps): on a small corpus the best point can
come within a few epochs.
A run with a validation split stops after 5 validations without a new best
(--patience; RESULTS.md "Early stopping"): in every step-budgeted run measured the
validation loss fell to its best with at most one validation's pause, so the stop
never cost any loss, and the 1,000-step Korean run, best at step 198, stopped at
step 253 instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from charlm.data import batches


@dataclass(frozen=True)
class Tier:
    min_steps: int          # chosen when its model can take at least this many steps in the budget
    hidden: int             # H (and the embedding width E)
    dropout: float

    def describe(self) -> str:
        return f"gru 2×{self.hidden}, embedding {self.hidden}, dropout {self.dropout:g}"


TIERS = (
    Tier(1850, 384, 0.2),
    Tier(500, 256, 0.0),
    Tier(0, 128, 0.0),
)
NO_BUDGET = TIERS[1]
# Peak learning rate per optimizer (RESULTS.md, "Learning rate per optimizer"): Adam's from the
# 300 s runs; SGD's and RMSprop's the second-highest rate tried over 150 steps, each level
# with or better than Adam's there (the highest did better still, but was not tried for longer).
LEARNING_RATES = {"adam": 3e-3, "rmsprop": 3e-3, "sgd": 1.0}
NO_BUDGET_EPOCHS = 10.0  # a run given no budget option at all stops after this many passes
PATIENCE = 5  # a run with a validation split stops after this many validations without a new best
MIN_EVAL_EVERY = 10


def choose(time_budget: float, steps_per_second: Callable[[dict], float] | None = None,
           optimizer: str = "adam") -> tuple[dict, dict, dict, str]:
    """(model, optimizer, training) keyword defaults for a run, and what was measured
    to choose them ("" when nothing was).

    steps_per_second(model_kw) measures a candidate's training speed here; without
    it (or without a budget) the no-budget tier is used."""
    tier, measured = NO_BUDGET, ""
    if time_budget and steps_per_second is not None:
        for tier in TIERS:
            rate = steps_per_second(_model_kw(tier))
            steps = rate * time_budget
            if steps >= tier.min_steps:
                break
        need = f"it needs ≥ {tier.min_steps:,}" if tier.min_steps else "the smallest tier"
        measured = (f"measured {rate:.2f} steps/s here for the {tier.describe()} tier: about {steps:,.0f} steps "
                    f"in {time_budget:g}s ({need})")
    optim_kw = {"name": optimizer, "lr": LEARNING_RATES[optimizer], "schedule": "cosine", "warmup_steps": 100}
    return _model_kw(tier), optim_kw, dict(TRAIN), measured


TRAIN = {"batch_size": 50, "seq_len": 100}


def rule() -> str:
    """The rule in words, for `charlm train --help`."""
    tiers = "; ".join(f"{t.describe()} if it can take ≥ {t.min_steps:,} steps" if t.min_steps
                      else f"else {t.describe()}" for t in TIERS)
    return (f"Defaults: with --time-budget, a few timed steps measure this machine's speed and pick the first "
            f"of: {tiers}. With no budget option given: {NO_BUDGET.describe()}, for {NO_BUDGET_EPOCHS:g} epochs (an "
            f"explicit 0 for every budget trains until Ctrl-C). Always "
            f"{', '.join(f'{k} lr {v:g}' for k, v in LEARNING_RATES.items())} (adam unless --optimizer), "
            f"{TRAIN['batch_size']} lanes × {TRAIN['seq_len']} steps, 100 warm-up steps, "
            f"then a cosine decay to a tenth that ends with the run, stopping early after {PATIENCE} validations "
            "without a new best. Options you give win.")


def _model_kw(tier: Tier) -> dict:
    return {"cell": "gru", "layers": 2, "hidden": tier.hidden, "embedding_dim": tier.hidden, "dropout": tier.dropout}


def eval_every(every: int, train_chars: int, batch: int, seq_len: int) -> int:
    """Steps between validations: `every`, or one epoch if that is shorter, but
    not under 10 steps (or `every`, if less) however short an epoch is."""
    epoch = batches.windows_per_epoch(train_chars, batches.fit_batch(train_chars, batch, seq_len), seq_len)
    return min(every, max(epoch, MIN_EVAL_EVERY))
