"""PyTorch reference for the benchmark: the same char-LM built from stock modules.

nn.Embedding(V, E) → nn.LSTM | nn.GRU | nn.RNN(E, H, L, batch_first=True) →
nn.Linear(H, V), trained with torch.optim.Adam (defaults) and clip_grad_norm_(5) on
the same (N, T) batches, the hidden state carried, detached, from step to step as
charlm's truncated BPTT does. Sampling and evaluation run under inference_mode.

PyTorch is a comparison, never a dependency: nothing here imports torch at import
time; `load()` returns None when it is not installed.

Letters: N streams (batch), T time steps, E embedding width, H hidden, V vocab.
"""

from __future__ import annotations

import numpy as np


def load(threads: int = 2):
    """The torch module set to `threads` intra-op threads, or None if torch is absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def warm_up(torch) -> None:
    """Run every code path once on a tiny model, so that PyTorch's one-time start-up
    (thread pool, MKL, autograd) is charged to no workload's time or memory."""
    lm = TorchLM(torch, "lstm", vocab_size=8, hidden=8, layers=1)
    ids = lm.tensor(np.zeros((2, 3)))                             # (N, T)
    lm.train_step(ids, ids)
    lm.evaluate(ids, ids)
    lm.sample(ids[:, :1], None, 2)


class TorchLM:
    """Embedding → recurrent stack → linear, with its Adam optimizer and carried state."""

    def __init__(self, torch, cell: str, vocab_size: int, hidden: int, layers: int = 2,
                 embedding_dim: int | None = None, seed: int = 0, lr: float = 2e-3, clip: float = 5.0):
        nn = torch.nn
        torch.manual_seed(seed)
        E = embedding_dim or hidden
        self.torch, self.vocab_size, self.clip = torch, vocab_size, clip
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.emb = nn.Embedding(vocab_size, E)
        self.rnn = rnn_cls(E, hidden, layers, batch_first=True)
        self.dec = nn.Linear(hidden, vocab_size)
        self.params = [*self.emb.parameters(), *self.rnn.parameters(), *self.dec.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=lr)
        self.state = None               # carried between train steps (truncated BPTT)
        self.gen = torch.Generator().manual_seed(seed)

    def tensor(self, ids: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))

    def _logits(self, ids, state):
        out, state = self.rnn(self.emb(ids), state)               # (N, T, H)
        return self.dec(out), state                               # (N, T, V)

    def train_step(self, ids, targets) -> float:
        """One Adam step on (N, T) int64 tensors; returns the mean loss (nats/char)."""
        F = self.torch.nn.functional
        self.opt.zero_grad(set_to_none=True)
        logits, state = self._logits(ids, self.state)
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return loss.item()

    def evaluate(self, ids, targets) -> float:
        """Mean loss of one large (N, T) batch from a zero state, forward only."""
        F = self.torch.nn.functional
        with self.torch.inference_mode():
            logits, _ = self._logits(ids, None)
            return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1)).item()

    def sample(self, ids, state, n_chars: int):
        """Draw n_chars for each of N streams, starting from ids (N, 1) and state;
        returns the last ids and state, so a caller can continue where it stopped."""
        torch = self.torch
        with torch.inference_mode():
            for _ in range(n_chars):
                logits, state = self._logits(ids, state)          # (N, 1, V)
                probs = torch.softmax(logits[:, -1], dim=-1)      # (N, V)
                ids = torch.multinomial(probs, 1, generator=self.gen)  # (N, 1)
        return ids, state
