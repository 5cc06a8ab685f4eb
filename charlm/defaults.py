"""Default settings for `charlm train`, chosen by measurement (benchmarks/RESULTS.md).

What gives the best validation loss depends on how long the run may train:
a short budget wants a model small enough to see the text several times, a long
one a bigger model with dropout to keep it from memorising. So the defaults are a
small table keyed by the time budget, and every choice is printed. An option given
on the command line always wins.

The rule, for a run with time budget S seconds (no budget: as for S ≤ 600):
    S ≤ 600    GRU 2×256, embedding 256, no dropout, Adam 3e-3
    S > 600    GRU 2×384, embedding 384, dropout 0.2, Adam 3e-3
always with batch 50 × sequence 100, gradient clip 5, and 100 warm-up steps then a
cosine decay of the learning rate to a tenth, timed to end with the run.
Validation (and best.pkl) comes every 200 steps, or every epoch when an epoch is
shorter than that (but not under 10 steps): on a small corpus the best point can
come within a few epochs.
On tinyshakespeare in 300 s the GRU reached 1.464 nats/char where an LSTM of the
same width reached 1.539 (PyTorch's LSTM reference: 1.525).
"""

from __future__ import annotations

from dataclasses import dataclass

from charlm import batches


@dataclass(frozen=True)
class Tier:
    up_to_seconds: float    # applies to budgets up to this long
    hidden: int             # H (and the embedding width E)
    dropout: float
    lr: float


TIERS = (
    Tier(600, 256, 0.0, 3e-3),
    Tier(float("inf"), 384, 0.2, 3e-3),
)
NO_BUDGET_AS = 600.0
MIN_EVAL_EVERY = 10


def choose(time_budget: float) -> tuple[dict, dict, dict, str]:
    """(model, optimizer, training) keyword defaults for a budget, and a one-line why."""
    seconds = time_budget or NO_BUDGET_AS
    tier = next(t for t in TIERS if seconds <= t.up_to_seconds)
    model_kw = {"cell": "gru", "layers": 2, "hidden": tier.hidden, "embedding_dim": tier.hidden,
                "dropout": tier.dropout}
    optim_kw = {"name": "adam", "lr": tier.lr, "schedule": "cosine", "warmup_steps": 100}
    train_kw = {"batch_size": 50, "seq_len": 100}
    span = "no time budget" if not time_budget else f"a {time_budget:g}s budget"
    why = (f"defaults for {span}: gru 2×{tier.hidden}, embedding {tier.hidden}, dropout {tier.dropout:g}, "
           f"adam lr {tier.lr:g} with cosine decay (rule in charlm/defaults.py; options you give win)")
    return model_kw, optim_kw, train_kw, why


def eval_every(every: int, train_chars: int, batch: int, seq_len: int) -> int:
    """Steps between validations: `every`, or one epoch if that is shorter, but
    not under 10 steps (or `every`, if less) however short an epoch is."""
    epoch = batches.windows_per_epoch(train_chars, batches.fit_batch(train_chars, batch, seq_len), seq_len)
    return min(every, max(epoch, MIN_EVAL_EVERY))
