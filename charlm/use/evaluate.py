"""Scoring text under a trained model: the lane walk (charlm/nn/score.py) over worker
processes, and the text a run held out to be scored on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from charlm import defaults, threads
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.data import corpus as corpus_mod
from charlm.engines.parallel import Team
from charlm.errors import CharlmError
from charlm.nn.score import Score, score_ids


def score(params: dict, cfg: ModelConfig, ids: np.ndarray, *, batch: int = defaults.EVAL_BATCH,
          seq_len: int = defaults.EVAL_SEQ_LEN, workers: int | None = None, threads_n: int | None = None,
          progress: Callable[[int], None] | None = None) -> Score:
    """The score of ids (n,) laid out in `batch` lanes, over worker processes (charlm/threads.py
    picks how many when workers is None) with threads_n BLAS threads each: the same score as
    one process gives, sooner."""
    k = threads.score_workers(workers, len(ids))
    n = threads.blas_threads(threads_n)
    with threads.limited(n):
        if k == 1:
            return score_ids(params, cfg, ids, batch=batch, seq_len=seq_len, progress=progress)
        with Team(cfg, params, batch, min(k, batch), {"text": ids}, threads=n) as team:
            return team.score("text", batch, seq_len, progress=progress)


def held_out(ckpt: Checkpoint, note: Callable[[str], None] = lambda text: None,
             instead: str = "a text file") -> np.ndarray:
    """The validation split of a run's own corpus (read through the run's id cache, in the
    model's vocabulary), refusing when the run has none, or the corpus is gone or changed;
    the refusal says to give `instead` (how the caller takes a text: a FILE, --text FILE)."""
    give = f"give {instead} to use instead"
    val_fraction = ckpt.train.val_fraction if ckpt.train else defaults.VAL_FRACTION
    if not val_fraction:
        raise CharlmError(f"the run has no validation split (it was trained with --val-fraction 0); {give}")
    if ckpt.corpus is None:
        raise CharlmError(f"the checkpoint does not record its corpus; {give}")
    data = corpus_mod.reopen(ckpt.corpus, ckpt.run_dir, ckpt.vocab, give, note=note)
    val = data.split(val_fraction)[1]
    if len(val) < 2:
        raise CharlmError(f"the run's validation split has {len(val)} character(s), too few to score; {give}")
    return val
