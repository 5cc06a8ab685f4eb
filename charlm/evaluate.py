"""Scoring text under a model: mean nats/char with the state carried across windows."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm import batches, model
from charlm.model import ModelConfig


@dataclass(frozen=True)
class Score:
    nats_per_char: float
    chars: int

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_char)


def score_ids(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int = 64, seq_len: int = 256,
              progress: Callable[[int], None] | None = None) -> Score:
    """Score every character of `ids` (n,) but the first (it has no context).

    The text is laid out in `batch` lanes read in order with the state carried
    from window to window, so each lane is scored like one long stream.
    `progress(k)` is called with the characters scored by each window.
    """
    total, count = 0.0, 0
    state = None
    for x, y in batches.eval_windows(ids, batch, seq_len):
        if state is None:
            state = model.init_state(cfg, x.shape[0], params["decoder.bias"].dtype)
        nll, state = model.evaluate(params, cfg, x, y, state)           # (N, T) forward only
        total += float(nll.sum(dtype=np.float64))
        count += y.size
        if progress:
            progress(y.size)
    return Score(total / count if count else float("nan"), count)
