"""The gradients lesson: an RNN, an LSTM and a GRU of one size, side by side, at
initialisation and after a short training run on the same text.

Letters: N streams, T time steps, K the largest lag.

The text is Python source from this interpreter's standard library (what
`charlm corpus get python` builds, offline), cut to TEXT_BYTES; the first 90% trains,
the rest is where the gradient flow is measured (charlm/lessons/gradflow.py). Training records
the global gradient norm before clipping at every step and how often it passed the
clip limit. `summary` says in words what the numbers show, whatever they show.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm.config import ModelConfig, OptimConfig
from charlm.data.sources import python_text
from charlm.data.vocab import Vocab
from charlm.lessons import gradflow
from charlm.lessons.gradflow import Flow
from charlm.lessons.hello import train_step
from charlm.nn import model, optim

CELLS = ("rnn", "lstm", "gru")
TEXT_BYTES = 200_000
HIDDEN = 64
STEPS = 80
BATCH, SEQ = 16, 32
MAX_LAG = 20
POSITIONS = 24
OPTIM = OptimConfig(lr=3e-3, clip=1.0, schedule="constant")   # a low limit, so the student sees clipping at work


@dataclass(frozen=True)
class CellResult:
    cell: str
    at_init: Flow
    trained: Flow
    losses: list[float]      # training loss per step, nats/char
    norms: list[float]       # global gradient norm before clipping, per step
    clip: float

    @property
    def clipped(self) -> int:
        return sum(n > self.clip for n in self.norms) if self.clip > 0 else 0


def demo_text() -> str:
    """The lesson's text: the start of the Python standard library's source."""
    return python_text(Path(sysconfig.get_paths()["stdlib"]), max_bytes=TEXT_BYTES)


def _windows(ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    starts = rng.integers(0, len(ids) - SEQ - 1, BATCH)                   # (N,)
    x = ids[starts[:, None] + np.arange(SEQ)]                              # (N, T)
    return x, ids[starts[:, None] + np.arange(1, SEQ + 1)]                 # (N, T) each


def run_cell(cell: str, vocab_size: int, train_ids: np.ndarray, val_ids: np.ndarray, *, steps: int = STEPS,
             max_lag: int = MAX_LAG, seed: int = 0) -> CellResult:
    """One cell: its flow at initialisation, `steps` clipped Adam steps on random windows, its flow again."""
    cfg = ModelConfig(vocab_size=vocab_size, cell=cell, layers=1, hidden=HIDDEN, embedding_dim=0)
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng)
    at_init = gradflow.measure(params, cfg, val_ids, max_lag=max_lag, count=POSITIONS)
    opt_state = optim.init_state(OPTIM, params)
    zero = model.init_state(cfg, BATCH)
    losses, norms = [], []
    for _ in range(steps):
        loss, norm = train_step(params, cfg, OPTIM, opt_state, *_windows(train_ids, rng), zero)
        losses.append(loss)
        norms.append(norm)
    trained = gradflow.measure(params, cfg, val_ids, max_lag=max_lag, count=POSITIONS)
    return CellResult(cell, at_init, trained, losses, norms, OPTIM.clip)


def run(text: str | None = None, *, steps: int = STEPS, max_lag: int = MAX_LAG, seed: int = 0,
        progress: Callable[[str], None] = lambda cell: None) -> list[CellResult]:
    """All three cells on the same text (default `demo_text()`), same size, same seed."""
    text = demo_text() if text is None else text
    chars = "".join(sorted(set(text)))
    ids = Vocab(chars, [0] * len(chars)).encode(text)                      # (n,)
    cut = len(ids) * 9 // 10
    results = []
    for cell in CELLS:
        progress(cell)
        results.append(run_cell(cell, len(chars), ids[:cut], ids[cut:], steps=steps, max_lag=max_lag, seed=seed))
    return results


def summary(results: list[CellResult]) -> list[str]:
    """What the numbers show, in sentences, read off the numbers (nothing assumed)."""
    lines = []
    for phase in ("at_init", "trained"):
        kept = {r.cell: gradflow.decay(getattr(r, phase)) for r in results}
        order = sorted(kept, key=kept.get)
        when = "At initialisation" if phase == "at_init" else "After training"
        lag = getattr(results[0], phase).lags[-1]
        parts = ", ".join(f"{c.upper()} {kept[c]:.2g}" for c in order)
        lines.append(f"{when}, the share of the lag-1 gradient left at lag {lag}: {parts}.")
        rnn = kept.get("rnn")
        if rnn is not None and order[0] == "rnn" and rnn < 0.1:
            lines.append("  The vanilla RNN's gradient vanishes fastest: the loss barely depends on the state "
                         f"{lag} steps back, so it cannot learn from that far.")
        elif rnn is not None and order[0] != "rnn":
            lines.append(f"  Here the vanilla RNN does not lose its gradient fastest: the {order[0].upper()} does.")
        elif rnn is not None:
            lines.append(f"  The vanilla RNN keeps the least, but still {rnn:.2g} of it: no sharp vanishing over "
                         f"{lag} steps here.")
        grew = [c for c in order if kept[c] > 1.0]
        if grew:
            lines.append(f"  Growing with the lag (exploding): {', '.join(c.upper() for c in grew)}.")
    for r in results:
        lines.append(f"{r.cell.upper()}: clipping fired on {r.clipped:,} of {len(r.norms):,} steps (limit {r.clip:g}); "
                     f"pre-clip norm median {np.median(r.norms):.3g}, max {max(r.norms):.3g}.")
    return lines
