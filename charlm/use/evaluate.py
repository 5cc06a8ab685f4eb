"""Scoring text under a model: mean nats/char with the state carried across windows,
and the text a run held out to be scored on."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm import defaults
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.data import batches, files
from charlm.data import corpus as corpus_mod
from charlm.errors import CharlmError
from charlm.nn import model


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


WARMUP = 256   # characters each lane is run over, unscored, before its first scored one


def score_ids(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int = 64, seq_len: int = 256,
              warmup: int = WARMUP, progress: Callable[[int], None] | None = None) -> Score:
    """Score every character of `ids` (n,) but the first (it has no context).

    The text is laid out in `batch` lanes (fewer for a short text, so that each is
    at least `warmup` long) read side by side, with the state carried from window
    to window, so each lane is scored like one long stream.
    Each lane but the first is first run over the `warmup` characters before it,
    unscored: without that, every lane would start from a blank state and the
    score would rise with the number of lanes (64 lanes: +0.005 nats/char on a
    trained model). With it, the score is that of reading the text as one stream.
    `progress(k)` is called with the characters scored by each window.
    """
    total, count = score_part(params, cfg, ids, batch=batch, seq_len=seq_len, warmup=warmup, progress=progress)
    return Score(total / count if count else float("nan"), count)


def score_part(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int, seq_len: int, warmup: int,
               part: tuple[int, int] = (0, 1), progress: Callable[[int], None] | None = None
               ) -> tuple[float, int]:
    """Part r of k of `score_ids` (part=(r, k)): the r-th share of its lanes (the last
    share also scores the tail that continues the last lane). Returns (nll sum in
    nats, characters scored); the parts of k add up to the whole."""
    x_lanes, y_lanes, warm, (x_tail, y_tail) = batches.eval_lanes(ids, batch, warmup)
    B, L = x_lanes.shape
    lo, hi = batches.shares(B, part[1])[part[0]]
    total, count = 0.0, 0
    if hi == lo:
        return total, count
    state = model.init_state(cfg, hi - lo, params["decoder.bias"].dtype)
    if warm.shape[1]:
        _, state = model.evaluate(params, cfg, warm[lo:hi], warm[lo:hi], state)  # (n, W) unscored
        if lo == 0:
            for v in state.values():
                v[:, 0] = 0                                             # lane 0 starts the text

    def score(x, y, state):
        nonlocal total, count
        nll, state = model.evaluate(params, cfg, x, y, state)           # (N, T) forward only
        total += float(nll.sum(dtype=np.float64))
        count += y.size
        if progress:
            progress(y.size)
        return state

    for start in range(0, L, seq_len):
        state = score(x_lanes[lo:hi, start: start + seq_len], y_lanes[lo:hi, start: start + seq_len], state)
    if len(y_tail) and hi == B:
        score(x_tail[None], y_tail[None], {k: v[:, -1:] for k, v in state.items()})
    return total, count


def held_out(ckpt: Checkpoint, note: Callable[[str], None] = lambda text: None,
             instead: str = "a text file") -> np.ndarray:
    """The validation split of a run's own corpus (read through the run's id cache, in the
    model's vocabulary), refusing when the run has none, or the corpus is gone or changed;
    the refusal says to give `instead` (how the caller takes a text: a FILE, --text FILE)."""
    info = ckpt.corpus
    val_fraction = ckpt.train.val_fraction if ckpt.train else defaults.VAL_FRACTION
    if not val_fraction:
        raise CharlmError(f"the run has no validation split (it was trained with --val-fraction 0); give {instead} "
                          "to use instead")
    source = files.from_record(info.to_dict()) if info else None
    if source is None or not all(Path(f).is_file() for f in source.files):
        raise CharlmError(f"the run's corpus {info.path if info else '(unknown)'} is gone; give {instead} to use "
                          "instead")
    data = corpus_mod.load(source, ckpt.run_dir, info.encoding, note, ckpt.vocab, extend=True)
    if data.fingerprint.get("sha256") != info.fingerprint.get("sha256"):
        raise CharlmError(f"{source.label} changed since training, so its validation split is not the text the "
                          f"model held out; give {instead} to use instead")
    val = data.split(val_fraction)[1]
    if len(val) < 2:
        raise CharlmError(f"the run's validation split has {len(val)} character(s), too few to score; give {instead} "
                          "to use instead")
    return val
