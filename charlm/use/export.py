"""Export to PyTorch: parameters under `state_dict` names and shapes, in an .npz.

The layout is a `torch.nn.ModuleDict` of `embedding` (nn.Embedding), `rnn`
(nn.LSTM / nn.GRU / nn.RNN, batch_first=True) and `decoder` (nn.Linear).
charlm already stores its parameters under these names, so the export is a copy
plus two fix-ups:
- a one-hot model gets an identity `embedding.weight` (V, V): embedding(ids) is
  then exactly the one-hot vector, and rnn.weight_ih_l0 stays charlm's input
  weight (one-hot × W_ihᵀ is the row lookup charlm does);
- a tied model gets `decoder.weight` as a copy of `embedding.weight`.
Beside the parameters: `charlm.vocab` (the characters, id order) and
`charlm.config` (JSON: cell, layers, hidden, embedding_dim, vocab_size).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.errors import CharlmError, UsageError
from charlm.fileio import atomic_write


def torch_state_dict(cfg: ModelConfig, params: dict, vocab: Vocab) -> dict[str, np.ndarray]:
    arrays = {name: np.ascontiguousarray(p, dtype=np.float32) for name, p in params.items()}
    if not cfg.embedding_dim:
        arrays = {"embedding.weight": np.eye(cfg.vocab_size, dtype=np.float32), **arrays}
    if cfg.tie_weights:
        arrays["decoder.weight"] = arrays["embedding.weight"].copy()
    config = dataclasses.asdict(cfg)
    config["input_size"] = cfg.embedding_dim or cfg.vocab_size
    arrays["charlm.vocab"] = np.array(list(vocab.chars))
    arrays["charlm.config"] = np.array(json.dumps(config))
    return arrays


def save_npz(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a regular file atomically (temp file + rename), so a failure leaves no
    half-written file; anything else that exists (/dev/stdout, a pipe) is written
    in place, never replaced."""
    out = Path(out)
    if out.exists() and not out.is_file():
        if out.is_dir():
            raise UsageError(f"cannot write {out}: it is a directory; give a file name such as {out / 'model.npz'}")
        try:
            with open(out, "wb") as f:
                np.savez(f, **arrays)
        except OSError as e:
            raise CharlmError(f"cannot write {out}: {e.strerror or e}") from None
        return
    try:
        atomic_write(out, lambda f: np.savez(f, **arrays))
    except OSError as e:
        raise CharlmError(f"cannot write {out}: {e.strerror or e}") from None
