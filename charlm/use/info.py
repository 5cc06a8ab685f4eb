"""What a checkpoint holds, as plain data: the facts `charlm info` shows and prints as JSON."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from charlm import __version__, checkpoint, rundir
from charlm.checkpoint import Checkpoint
from charlm.data import batches
from charlm.data import corpus as corpus_mod
from charlm.errors import CharlmError


def summary(ckpt: Checkpoint) -> dict:
    """Architecture, size, vocabulary, progress (and the run's, when last.pkl is further), best
    score, corpus and configs, as JSON-ready data."""
    cfg, params, vocab = ckpt.model, ckpt.params, ckpt.vocab
    progress, best, corpus = ckpt.progress, ckpt.best_val_loss, ckpt.corpus
    later = _last_step(ckpt.path)
    return {
        "checkpoint": str(ckpt.path.resolve()), "charlm_version": __version__,
        "saved_by": ckpt.saved_by, "format_version": ckpt.version,
        "model": dataclasses.asdict(cfg), "parameters": int(sum(p.size for p in params.values())),
        "vocab_size": len(vocab), "vocab_preview": vocab.preview(),
        "steps": ckpt.step, "epochs": _epochs(ckpt), "run_steps": later or ckpt.step,
        "chars_trained": progress and progress.chars, "train_seconds": progress and progress.elapsed,
        "best_val_loss": best, "best_val_bits_per_char": best / math.log(2) if best is not None else None,
        "corpus": corpus and corpus.path, "corpus_fingerprint": corpus and corpus.fingerprint,
        "train_config": ckpt.train and dataclasses.asdict(ckpt.train),
        "optim_config": ckpt.optim and dataclasses.asdict(ckpt.optim),
        "init_from": ckpt.init_from,
    }


def _last_step(path: Path) -> int | None:
    """The step of last.pkl beside a checkpoint (the run's latest state), if there is one."""
    last = path.with_name(rundir.LAST)
    try:
        return checkpoint.load(last).step if last.is_file() else None
    except CharlmError:
        return None


def _epochs(ckpt: Checkpoint) -> float | None:
    """Passes over the training text so far, fractional (0.59, not 0): whole epochs plus the windows
    read of the current one, sized from the run's id cache; None when that cache is gone."""
    progress, tc, state = ckpt.progress, ckpt.train, ckpt.carried_state
    n = corpus_mod.cached_length(ckpt.run_dir)
    if n is None or progress is None or tc is None or state is None:
        return None
    n_train = corpus_mod.train_length(n, tc.val_fraction)
    windows = batches.windows_per_epoch(n_train, state["h"].shape[1], tc.seq_len)  # B from the state
    return progress.epoch + progress.window / windows if windows else None
