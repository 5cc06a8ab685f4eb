"""charlm's model as torch.nn modules, for the torch engine (charlm/engines/torch_team.py).

nn.Embedding (or a one-hot input), nn.LSTM / nn.GRU / nn.RNN, nn.Dropout and nn.Linear:
its `named_parameters()` are charlm's parameter names (PyTorch's state_dict names: charlm
chose them so), and its equations are charlm/nn/reference.py's (PyTorch's gate order and
two bias vectors), so parameters go in and come out under their names, unchanged.

Letters: N lanes, T time steps, V vocabulary, E embedding width, H hidden, L layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from charlm.config import ModelConfig

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharLM(nn.Module):
    """input (embedding | one-hot) → L recurrent layers → dropout → linear, as charlm/nn/model.py."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        V, H, E, L = cfg.vocab_size, cfg.hidden, cfg.embedding_dim, cfg.layers
        self.cfg = cfg
        if E:
            self.embedding = nn.Embedding(V, E)
        self.onehot = None  # one-hot input: rows of the identity (V, V), made on first use; no parameter
        # charlm's dropout: after every layer's output, the top one included (before the decoder)
        self.rnn = _CELLS[cfg.cell](E or V, H, L, batch_first=True, dropout=cfg.dropout if L > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.decoder = nn.Linear(H, V)
        if cfg.tie_weights:
            self.decoder.weight = self.embedding.weight  # one parameter, named embedding.weight

    def forward(self, x: torch.Tensor, state):
        """x (N, T) ids, state h (L, N, H) or (h, c) → logits (N, T, V), final state."""
        if self.cfg.embedding_dim:
            inp = self.embedding(x)                                                        # (N, T, E)
        else:
            w = self.decoder.bias
            if self.onehot is None or self.onehot.device != w.device or self.onehot.dtype != w.dtype:
                self.onehot = torch.eye(self.cfg.vocab_size, dtype=w.dtype, device=w.device)
            inp = F.embedding(x, self.onehot)                                              # (N, T, V)
        out, state = self.rnn(inp, state)                                                 # (N, T, H)
        return self.decoder(self.drop(out)), state
