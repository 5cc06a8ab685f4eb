"""Fine-tuning's starting point (`charlm train NEW.txt --init-from RUN|CKPT`): a trained
model's weights, grown for characters it never saw, and the record of where they came from.

New characters come after the model's own (ids stay as they were), and their rows —
embedding.weight and decoder.weight rows, decoder.bias entries, and rnn.weight_ih_l0
columns for a one-hot input — are drawn exactly as `model.init_params` draws a new
model's: a fresh model of the grown size is initialised from the run's seed and the
trained weights are copied over it, so only the new rows keep their fresh values.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.nn import model


@dataclass(frozen=True)
class Start:
    mcfg: ModelConfig                   # the checkpoint's architecture, V grown to the new vocabulary
    params: dict[str, np.ndarray]       # the trained weights, with fresh rows for new characters
    record: dict                        # the checkpoint's "init_from": where the weights came from


def start(ckpt: Checkpoint, vocab: Vocab, seed: int) -> Start:
    """The weights a fine-tuning run on a text with vocabulary `vocab` (the checkpoint's
    characters, then any it lacks) begins from."""
    own = ckpt.vocab.chars
    if not vocab.chars.startswith(own):
        raise ValueError("the new vocabulary must begin with the checkpoint's, in its order")
    added = vocab.chars[len(own):]
    rng = np.random.default_rng(seed)
    grown = dataclasses.replace(ckpt.model, vocab_size=len(vocab))
    params = {name: np.array(p, dtype=np.float32) for name, p in ckpt.params.items()}
    if added:
        fresh = model.init_params(grown, rng)
        for name, p in params.items():
            fresh[name][tuple(slice(0, n) for n in p.shape)] = p  # (V_old, …) block of (V_new, …)
        params = fresh
    path = ckpt.path.resolve()
    record = {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "step": ckpt.step,
              "corpus": ckpt.corpus and ckpt.corpus.path, "added_chars": added, "init_from": ckpt.init_from}
    return Start(grown, params, record)
