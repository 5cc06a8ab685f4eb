"""Default settings for `charlm train`, chosen by measurement (benchmarks/RESULTS.md).

What gives the best validation loss depends on how many steps the run can take:
few steps want a model small enough to see the text several times, many steps a
bigger model with dropout to keep it from memorising. Machines differ 2–3× in
speed, so with a time budget the model is chosen from the speed measured on this
machine at the start (charlm/training/speed.py: a few timed steps of each candidate, largest
first) and not from the budget alone. Every choice is printed; an option given on
the command line always wins.

The rule, for a run with time budget S seconds: the first tier, from the top, whose
model can take at least `min_steps` steps in S at the measured rate:
    GRU 2×384, embedding 384, dropout 0.2     ≥ 1,850 steps
    GRU 2×256, embedding 256, no dropout      ≥ 500 steps
    GRU 2×128, embedding 128, no dropout      otherwise
With no time budget the 2×256 tier is used and nothing is measured.
Always Adam 3e-3 (RMSprop 3e-3, SGD 1.0 when chosen), batch 50 × sequence 100, clip 5, 100 warm-up steps
then a cosine decay of the learning rate to a tenth, timed to end with the run; Adam's weight decay 0.3
(decoupled), and validation and best.pkl on an average of the weights (decay 0.999).
Why these numbers (tinyshakespeare, RESULTS.md "Defaults by measured speed"): on
the Intel box the 2×384 tier won from 600 s up, where it took 1,850 steps. The 2×128
model trains about twice as fast as the 2×256; in equal time it won at 300 steps
against 150 (1.8756 against 1.9228 nats/char) and lost at 1,400 against 700 (1.5380
against 1.5217), so the 2×256 needs about 500 steps to be the better choice.
Validation (and best.pkl) comes every 200 steps, or every epoch when an epoch is
shorter than that (but not under 10 steps): on a small corpus the best point can
come within a few epochs.

This module is the one owner of every default: the config dataclasses (ModelConfig,
OptimConfig, TrainConfig) take their field defaults from the constants below, and
`charlm train --help` is generated from them, so a run given no options is exactly
what the help says.
A run with a validation split stops after 5 validations without a new best
(--patience; RESULTS.md "Early stopping"): in every step-budgeted run measured the
validation loss fell to its best with at most one validation's pause, so the stop
never cost any loss, and the 1,000-step Korean run, best at step 198, stopped at
step 253 instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    min_steps: int          # chosen when its model can take at least this many steps in the budget
    hidden: int             # H (and the embedding width E)
    dropout: float

    def describe(self) -> str:
        return f"{CELL} {LAYERS}×{self.hidden}, embedding {self.hidden}, dropout {self.dropout:g}"


# The model: the cell and depth always; the width and dropout by tier; E = H unless given.
CELL, LAYERS = "gru", 2
TIERS = (
    Tier(1850, 384, 0.2),
    Tier(500, 256, 0.0),
    Tier(0, 128, 0.0),
)
NO_BUDGET = TIERS[1]        # the tier of a run with no --time-budget (nothing is measured)
# The optimizer. Peak learning rate per optimizer (RESULTS.md, "Learning rate per optimizer"): Adam's
# from the 300 s runs; SGD's and RMSprop's the second-highest rate tried over 150 steps, each level
# with or better than Adam's there (the highest did better still, but was not tried for longer).
OPTIMIZER = "adam"
LEARNING_RATES = {"adam": 3e-3, "rmsprop": 3e-3, "sgd": 1.0}
CLIP = 5.0                  # global gradient-norm limit
SCHEDULE, WARMUP_STEPS, MIN_LR_RATIO = "cosine", 100, 0.1
# Regularisers (RESULTS.md, "Regularisers for the data-limited regime"): of those measured, weight decay
# and an average of the weights won, together (the 2×256 screen, the 300 s and 1800 s runs, the small
# Korean text; the 2×128 tier takes them unmeasured); the dropout variants did not, and are off.
# Weight decay is per optimizer, as its rate: 0.3 measured for Adam; the others' were not measured, and
# stay 0. A checkpoint saved before one of them existed reads it as off (charlm/checkpoint.py).
LOCKED_DROPOUT = False      # dropout masks shared by the steps of a window (variational)
WEIGHT_DROP = 0.0           # DropConnect on the hidden-to-hidden weights
EMBED_DROPOUT = 0.0         # whole characters dropped from the input
WEIGHT_DECAYS = {"adam": 0.3, "rmsprop": 0.0, "sgd": 0.0}  # decoupled, as AdamW; per optimizer, as its rate
EMA = 0.999                 # decay of the average of the weights that is validated and saved; 0 = none
# The run: lanes × window, what "no budget" means, validation and logging cadence.
BATCH_SIZE, SEQ_LEN = 50, 100
# A run given no budget option trains until early stopping ends it, on a schedule of at least NO_BUDGET_EPOCHS
# passes and NO_BUDGET_STEPS steps, and at most NO_BUDGET_MAX_EPOCHS passes: the cap that ends a run without a
# validation split (RESULTS.md, "No budget given": a 60k-character text peaks after about 20 passes; on 1 MB a
# schedule of 20 passes overfits before its rate has decayed, 10 do not).
NO_BUDGET_EPOCHS, NO_BUDGET_STEPS, NO_BUDGET_MAX_EPOCHS = 10.0, 2000, 50.0
VAL_FRACTION = 0.1
EVAL_EVERY, MIN_EVAL_EVERY = 200, 10
VAL_MAX_CHARS = 200_000     # validation chars scored during training …
VAL_FINAL_FACTOR = 10       # … and the end scores the best parameters on up to this many times as many
LOG_EVERY, SAMPLE_EVERY, SEED = 10, 5, 1337
PATIENCE = 5                # a run with a validation split stops after this many validations without a new best
ENGINE = "numpy"            # charlm's own; --engine torch is the optional PyTorch one (charlm/engines)

# Writing text (`charlm sample`, the API, the interactive session, the report's samples).
TEMPERATURE, TOP_K, TOP_P, LENGTH = 0.8, 0, 1.0, 500   # 0.8: varied but mostly words; top-k 0 and top-p 1 = all
BEAM_WIDTH, BEAM_LENGTH = 4, 100                      # `Model.beam` (the CLI asks for --beam K itself)
# What a run writes as it trains, at every validation, into RUN/samples.jsonl (charlm/rundir.py): the same
# prime, seed and temperature each time, so that only the model changes from one sample to the next.
TRAINING_SAMPLE = {"prime": "", "seed": 0, "temperature": TEMPERATURE, "length": 200}
# Scoring (`charlm eval perplexity`, `Model.score`, and validation during training, so that a run's own
# scores are the ones `eval perplexity` gives): EVAL_BATCH lanes read side by side, EVAL_SEQ_LEN
# characters per forward window (the state is carried across windows; the window changes no score).
EVAL_BATCH, EVAL_SEQ_LEN = 64, 256
# The report (`charlm report`): a passage of REPORT_CHARS, samples of REPORT_SAMPLE_LENGTH at each
# temperature, drawn from REPORT_SEED.
REPORT_CHARS, REPORT_SAMPLE_LENGTH, REPORT_SEED = 2000, 300, 0
REPORT_TEMPERATURES = (0.2, 0.5, 0.8, 1.0)
GROWTH_SHOWN = 12           # "how the text grew" shows at most this many samples, spaced evenly in log(step)
# The live report (`charlm train --report`): the page reloads itself every LIVE_REFRESH seconds while the run
# goes, and is rewritten after a validation unless the last write was under LIVE_SPACING times its own cost
# ago, so that it takes at most about 1/LIVE_SPACING of the run's time however often the run validates.
LIVE_REFRESH, LIVE_SPACING = 5, 50
# Checkpoints kept along the way (--keep-every): they may fill the disk's free space but for this much, and
# room for two full checkpoints (best.pkl and last.pkl are written beside their old copies).
KEEP_DISK_RESERVE = 512 * 2**20


def learning_rate(optimizer: str) -> float:
    return LEARNING_RATES[optimizer]


def budgets(max_steps: int | None, epochs: float | None, time_budget: float | None,
            windows: int) -> tuple[int, float, float]:
    """The three budgets of a run, None meaning not given, for a text of `windows` steps an epoch. A
    run given none of them has a budget of no_budget_epochs and stops early; an explicit 0 means
    no limit of that kind."""
    if max_steps is None and epochs is None and time_budget is None:
        return 0, no_budget_epochs(windows), 0.0
    return max_steps or 0, epochs or 0.0, time_budget or 0.0


def no_budget_epochs(windows: int) -> float:
    """The passes of a run given no budget, over a text of `windows` steps an epoch: enough for
    NO_BUDGET_STEPS steps, at least NO_BUDGET_EPOCHS and at most NO_BUDGET_MAX_EPOCHS."""
    return float(min(NO_BUDGET_MAX_EPOCHS, max(NO_BUDGET_EPOCHS, math.ceil(NO_BUDGET_STEPS / max(windows, 1)))))


def choose(time_budget: float, steps_per_second: Callable[[dict], float] | None = None) -> tuple[dict, str]:
    """The model keywords (cell, layers, hidden, dropout) for a run, and what was
    measured to choose them ("" when nothing was).

    steps_per_second(model_kw) measures a candidate's training speed here; without
    it (or without a budget) the no-budget tier is used."""
    tier, measured = NO_BUDGET, ""
    if time_budget and steps_per_second is not None:
        for tier in TIERS:
            rate = steps_per_second(tier_model(tier))
            steps = rate * time_budget
            if steps >= tier.min_steps:
                break
        need = f"it needs ≥ {tier.min_steps:,}" if tier.min_steps else "the smallest tier"
        measured = (f"measured {rate:.2f} steps/s here for the {tier.describe()} tier: about {steps:,.0f} steps "
                    f"in {time_budget:g}s ({need})")
    return tier_model(tier), measured


def tier_model(tier: Tier) -> dict:
    """A tier's model keywords; the embedding width follows the hidden width (ModelConfig)."""
    return {"cell": CELL, "layers": LAYERS, "hidden": tier.hidden, "dropout": tier.dropout}


def by_tier(field: str) -> str:
    """A tier setting as --help shows it, e.g. "384 or 256 or 128 by measured speed …"."""
    values = " or ".join(f"{getattr(t, field):g}" for t in TIERS)
    return f"{values} by measured speed (rule below); {getattr(NO_BUDGET, field):g} with no budget"


def _decays() -> str:
    """The weight decays that are on, as the rule says them, e.g. "weight decay 0.3 with adam"."""
    on = [f"{v:g} with {k}" for k, v in WEIGHT_DECAYS.items() if v]
    return "weight decay " + ", ".join(on) if on else "no weight decay"


def rule() -> str:
    """The rule in words, for `charlm train --help`."""
    tiers = "; ".join(f"{t.describe()} if it can take ≥ {t.min_steps:,} steps" if t.min_steps
                      else f"else {t.describe()}" for t in TIERS)
    return (f"Defaults: with --time-budget, a few timed steps measure this machine's speed and pick the first "
            f"of: {tiers}. With no budget option given: {NO_BUDGET.describe()}, until validation stops improving, "
            f"on a schedule of at least {NO_BUDGET_EPOCHS:g} epochs and {NO_BUDGET_STEPS:,} steps and at most "
            f"{NO_BUDGET_MAX_EPOCHS:g} epochs (an explicit 0 for every budget trains until Ctrl-C). Always "
            f"{', '.join(f'{k} lr {v:g}' for k, v in LEARNING_RATES.items())} ({OPTIMIZER} unless --optimizer), "
            f"{BATCH_SIZE} lanes × {SEQ_LEN} steps, {WARMUP_STEPS} warm-up steps, then a {SCHEDULE} decay to "
            f"{MIN_LR_RATIO:g} of the peak that ends with the run, {_decays()}, validation and best.pkl on an "
            f"average of the weights (--ema {EMA:g}), stopping early after {PATIENCE} validations "
            f"without a new best. Validation every {EVAL_EVERY} steps, or every "
            f"epoch if that is shorter (not under {MIN_EVAL_EVERY}), on the first {VAL_MAX_CHARS:,} held-out "
            f"characters; the best checkpoint is scored on up to {VAL_FINAL_FACTOR} times as many at the end. "
            "Options you give win.")
