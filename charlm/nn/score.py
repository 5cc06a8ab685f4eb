"""Scoring a text: mean nats/char with the state carried from window to window.

Letters: n characters, B lanes, N lanes of one part, L pairs per lane, W warm-up characters.

The n − 1 (input, target) pairs are laid out in B lanes read side by side
(`data.batches.eval_lanes`), each carrying its state from window to window, so each
lane is scored like one long stream. Every lane but the first is first run over the
W characters before it, unscored: without that, every lane would start from a blank
state and the score would rise with the number of lanes (64 lanes: +0.005 nats/char
on a trained model). With it, the score is that of reading the text as one stream.

`walk` is that lane walk, written once for every engine: it takes the engine's
forward pass as a function, so the numpy engine (`score_part`, below) and the torch
engine (charlm/engines/torch_team.py) score the same lanes, warm-up and tail. A part
(r, k) is the r-th of k shares of the lanes (the last also scores the tail that
continues the last lane): the worker processes each walk one, and the parts add up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig
from charlm.data import batches
from charlm.nn import model

WARMUP = 256   # characters each lane is run over, unscored, before its first scored one


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


# forward(x (N, T) ids, y (N, T) ids, state) -> (nll summed over the N·T positions, final state);
# the state is a dict of (L, N, H) arrays in the engine's own form (numpy arrays, torch tensors).
Forward = Callable[[np.ndarray, np.ndarray, dict], tuple[object, dict]]


def walk(ids: np.ndarray, forward: Forward, init_state: Callable[[int], dict], *, batch: int, seq_len: int,
         warmup: int = WARMUP, part: tuple[int, int] = (0, 1),
         progress: Callable[[int], None] | None = None) -> tuple[object, int]:
    """Part `part` of the lane walk over ids (n,): (nll sum, characters scored). The sum is what
    `forward` returns added up (a float, or the engine's scalar); init_state(N) is a zero state."""
    x_lanes, y_lanes, warm, (x_tail, y_tail) = batches.eval_lanes(ids, batch, warmup)
    B, L = x_lanes.shape
    lo, hi = batches.shares(B, part[1])[part[0]]
    total, count = 0.0, 0
    if hi == lo:
        return total, count
    state = init_state(hi - lo)
    if warm.shape[1]:
        _, state = forward(warm[lo:hi], warm[lo:hi], state)             # (N, W) read, not scored
        if lo == 0:
            for v in state.values():
                v[:, 0] = 0                                             # lane 0 starts the text
    for start in range(0, L, seq_len):
        y = y_lanes[lo:hi, start: start + seq_len]                      # (N, T)
        nll, state = forward(x_lanes[lo:hi, start: start + seq_len], y, state)
        total, count = total + nll, count + y.size
        if progress:
            progress(y.size)
    if len(y_tail) and hi == B:  # the tail continues lane B − 1
        nll, _ = forward(x_tail[None], y_tail[None], {k: v[:, -1:] for k, v in state.items()})
        total, count = total + nll, count + len(y_tail)
        if progress:
            progress(len(y_tail))
    return total, count


def score_part(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int, seq_len: int,
               warmup: int = WARMUP, part: tuple[int, int] = (0, 1),
               progress: Callable[[int], None] | None = None) -> tuple[float, int]:
    """`walk` with the numpy model: (nll sum in nats, characters scored) of part (r, k)."""
    dtype = params["decoder.bias"].dtype

    def forward(x: np.ndarray, y: np.ndarray, state: dict) -> tuple[float, dict]:
        nll, state = model.evaluate(params, cfg, x, y, state)           # (N, T) forward only
        return float(nll.sum(dtype=np.float64)), state

    return walk(ids, forward, lambda n: model.init_state(cfg, n, dtype), batch=batch, seq_len=seq_len,
                warmup=warmup, part=part, progress=progress)


def score_ids(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int, seq_len: int,
              warmup: int = WARMUP, progress: Callable[[int], None] | None = None) -> Score:
    """The score of every character of `ids` (n,) but the first (it has no context), in one process."""
    total, count = score_part(params, cfg, ids, batch=batch, seq_len=seq_len, warmup=warmup, progress=progress)
    return Score(total / count if count else float("nan"), count)
