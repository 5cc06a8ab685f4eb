"""What a run is: the model, its optimizer and the training run, as typed frozen configs.

Every floor reads them: nn/ builds the model from a ModelConfig and steps the optimizer
by an OptimConfig, training/ runs a TrainConfig, and a checkpoint stores all three. Field
defaults come from charlm/defaults.py, the one owner of every default, so a config built
with no arguments is what `charlm train` with no options runs. The choices (cells,
optimizers, schedules, engines) are named here; nn/ and engines/ implement them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from charlm import defaults
from charlm.errors import UsageError

GATES = {"rnn": 1, "lstm": 4, "gru": 3}     # cell → G, the gate blocks of H rows in W_ih and W_hh
OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine")
ENGINES = ("numpy", "torch")                # who computes the steps (charlm/engines)
NUMPY_ONLY = ("locked_dropout", "weight_drop", "embed_dropout")  # ModelConfig fields torch.nn's modules lack


def check_engine(engine: str | None, model_kw: dict) -> None:
    """Refuse the numpy engine's dropout variants (NUMPY_ONLY, when on in `model_kw`: ModelConfig
    fields) on the torch engine, whose torch.nn modules lack them, in one line."""
    given = [f"--{k.replace('_', '-')}" for k in NUMPY_ONLY if model_kw.get(k)]
    if engine == "torch" and given:
        raise UsageError(f"{given[0]} is the numpy engine's (torch.nn's modules have no such dropout); train "
                         "with --engine numpy, or without it")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture. Defaults are the CLI's for a run with no time budget
    (charlm/defaults.py owns them)."""
    vocab_size: int                 # V: distinct characters
    cell: str = defaults.CELL       # rnn | lstm | gru
    layers: int = defaults.LAYERS   # L: stacked recurrent layers
    hidden: int = defaults.NO_BUDGET.hidden   # H: units per layer
    embedding_dim: int | None = None          # E: learned embedding width; 0 = one-hot input; None = H
    dropout: float = defaults.NO_BUDGET.dropout  # inverted dropout between layers and before the decoder
    locked_dropout: bool = defaults.LOCKED_DROPOUT  # those masks: one per lane per window, shared by its steps
    weight_drop: float = defaults.WEIGHT_DROP  # DropConnect on each W_hh: one mask per training step
    embed_dropout: float = defaults.EMBED_DROPOUT  # drop whole characters: rows of the input embedding
    tie_weights: bool = False       # decoder.weight shared with embedding.weight (E == H)
    forget_bias: float = 1.0        # LSTM: initial forget-gate bias

    def __post_init__(self):
        if self.embedding_dim is None:  # the embedding follows the hidden width unless given
            object.__setattr__(self, "embedding_dim", self.hidden)
        if self.cell not in GATES:
            raise UsageError(f"unknown cell {self.cell!r}; choose one of {', '.join(GATES)}")
        if self.vocab_size < 1 or self.layers < 1 or self.hidden < 1 or self.embedding_dim < 0:
            raise UsageError("vocab size, layers and hidden size must be positive, embedding dim ≥ 0")
        for name in ("dropout", "weight_drop", "embed_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UsageError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if self.tie_weights and self.embedding_dim != self.hidden:
            raise UsageError("--tie-weights needs an embedding as wide as the hidden layer "
                             f"(embedding dim {self.embedding_dim} ≠ hidden {self.hidden})")

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def stochastic(self) -> bool:
        """Training draws random masks (any dropout): the steps need a generator."""
        return self.dropout > 0 or self.weight_drop > 0 or self.embed_dropout > 0

    def describe(self) -> str:
        """e.g. "gru 2×256, embedding 256 input, locked dropout 0.2, weight drop 0.1"."""
        inp = f"embedding {self.embedding_dim}" if self.embedding_dim else "one-hot"
        extras = [f"{'locked ' if self.locked_dropout else ''}dropout {self.dropout:g}" if self.dropout else "",
                  f"weight drop {self.weight_drop:g}" if self.weight_drop else "",
                  f"embedding dropout {self.embed_dropout:g}" if self.embed_dropout else "",
                  "tied" if self.tie_weights else ""]
        return f"{self.cell} {self.layers}×{self.hidden}, {inp} input" + "".join(f", {e}" for e in extras if e)


@dataclass(frozen=True)
class OptimConfig:
    """The optimizer and its schedule; defaults are the CLI's (charlm/defaults.py)."""
    name: str = defaults.OPTIMIZER  # adam | rmsprop | sgd
    lr: float | None = None         # peak learning rate; None = the optimizer's default (defaults.LEARNING_RATES)
    beta1: float = 0.9              # adam: first-moment decay
    beta2: float = 0.999            # adam: second-moment decay
    alpha: float = 0.99             # rmsprop: squared-gradient decay
    momentum: float = 0.9           # sgd: heavy-ball momentum
    eps: float = 1e-8               # adam / rmsprop: denominator guard
    clip: float = defaults.CLIP     # global gradient-norm limit; 0 disables
    schedule: str = defaults.SCHEDULE             # constant | cosine (warm-up, then cosine to the end)
    warmup_steps: int = defaults.WARMUP_STEPS     # linear warm-up length (cosine schedule)
    min_lr_ratio: float = defaults.MIN_LR_RATIO   # cosine ends at lr · min_lr_ratio
    weight_decay: float | None = None  # decoupled (AdamW): each weight matrix shrinks by lr·wd a step;
                                       # None = the optimizer's default (defaults.WEIGHT_DECAYS)
    ema: float = defaults.EMA          # validate and save an average of the weights with this decay; 0 = off

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.name!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.lr is None:
            object.__setattr__(self, "lr", defaults.learning_rate(self.name))
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", defaults.WEIGHT_DECAYS[self.name])
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"learning rate must be a positive number, got {self.lr}")
        if not (self.clip >= 0 and math.isfinite(self.clip)):
            raise UsageError(f"--clip must be ≥ 0 (0 disables), got {self.clip}")
        if self.warmup_steps < 0:
            raise UsageError(f"--warmup-steps must be ≥ 0, got {self.warmup_steps}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise UsageError(f"--weight-decay must be ≥ 0, got {self.weight_decay}")
        if self.lr * self.weight_decay >= 1:
            raise UsageError(f"--weight-decay {self.weight_decay:g} with --lr {self.lr:g} would scale the weights "
                             f"by {1 - self.lr * self.weight_decay:g} each step; lr × weight decay must be under 1")
        if not 0.0 <= self.ema < 1.0:
            raise UsageError(f"--ema must be in [0, 1) (0 = off), got {self.ema}")

    def describe(self) -> str:
        """e.g. "adam lr 0.003 (cosine), weight decay 0.3, ema 0.999"."""
        extras = [f"weight decay {self.weight_decay:g}" if self.weight_decay else "",
                  f"ema {self.ema:g}" if self.ema else ""]
        return f"{self.name} lr {self.lr:g} ({self.schedule})" + "".join(f", {e}" for e in extras if e)


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = defaults.SEQ_LEN            # T: BPTT window
    batch_size: int = defaults.BATCH_SIZE      # B: contiguous lanes
    max_steps: int | None = None    # stop after this many steps; 0 = no limit; None = not given: the plan decides
    epochs: float | None = None     # stop after this many passes; 0 = no limit
    time_budget: float | None = None  # stop after this many seconds of training, validation excluded; 0 = none
    val_fraction: float = defaults.VAL_FRACTION    # last fraction of the text held out for validation
    eval_every: int | None = None   # validate and checkpoint every this many steps; None = decided by the plan
    val_max_chars: int = defaults.VAL_MAX_CHARS    # validate on this many chars during training (0 = all)
    log_every: int = defaults.LOG_EVERY            # metrics.jsonl line every this many steps
    sample_every: int = defaults.SAMPLE_EVERY      # sample every this many validations, 10% of a run apart; 0 = never
    seed: int = defaults.SEED       # init, dropout masks: same seed, same run
    workers: int = 0                # processes sharing the lanes (0 = decided by the plan, charlm/threads.py)
    patience: int | None = None     # stop after this many validations without a new best; 0 = never;
                                    # None = defaults.PATIENCE when there is a validation split
    engine: str = defaults.ENGINE   # numpy | torch (charlm/engines): who computes the steps; same model either way
    keep_every: int = 0             # keep a checkpoint (the weights) every this many steps, step-N.pkl; 0 = none

    @property
    def budget_given(self) -> bool:
        """Whether any budget was given (else the plan decides one by the text's size: defaults.budgets)."""
        return not (self.max_steps is None and self.epochs is None and self.time_budget is None)

    def __post_init__(self):
        if self.budget_given:  # giving one budget leaves the others unlimited
            for name in ("max_steps", "epochs", "time_budget"):
                object.__setattr__(self, name, getattr(self, name) or 0)
        if self.patience is None:
            object.__setattr__(self, "patience", defaults.PATIENCE if self.val_fraction > 0 else 0)
        if self.seq_len < 1 or self.batch_size < 1:
            raise UsageError("--seq-len and --batch-size must be ≥ 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.budget_given and (self.max_steps < 0 or self.epochs < 0 or not self.time_budget >= 0):
            raise UsageError("budgets (--max-steps, --epochs, --time-budget) must be ≥ 0")
        if (self.eval_every is not None and self.eval_every < 1) or self.log_every < 1:
            raise UsageError("--eval-every and --log-every must be ≥ 1")
        if self.val_max_chars == 1:
            raise UsageError("--val-max-chars must be 0 (all) or at least 2: scoring needs two characters")
        if self.workers < 0 or self.val_max_chars < 0 or self.patience < 0:
            raise UsageError("--workers, --val-max-chars and --patience must be ≥ 0")
        if self.patience and not self.val_fraction:
            raise UsageError("--patience needs a validation split to watch; drop --val-fraction 0")
        if self.keep_every < 0:
            raise UsageError(f"--keep-every must be ≥ 1 (0 in a config: keep none), got {self.keep_every}")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
