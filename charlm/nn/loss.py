"""Fused, numerically stable softmax cross-entropy over a flat batch of positions.

Letters: M positions (T·N, time-major), V vocabulary.
"""

from __future__ import annotations

import numpy as np


def _nll_and_exp(logits: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-position nll (M,) and the row sums (M,) of exp(logits − max), which is
    left in `logits` (M, V): the max is subtracted first, so exp cannot overflow."""
    M = logits.shape[0]
    logits -= logits.max(axis=1, keepdims=True)         # (M, V) max is 0
    picked = logits[np.arange(M), targets]              # (M,)
    np.exp(logits, out=logits)                          # (M, V) unnormalised
    total = logits.sum(axis=1)                          # (M,)
    return np.log(total) - picked, total                # (M,) log Σ e^z − z_target


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray
                          ) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean negative log-likelihood in nats per position.

    logits: (M, V), overwritten with the softmax probabilities (it is the cache).
    targets: (M,) integer ids.
    Returns (mean loss, per-position nll (M,), probs (M, V)).
    """
    nll, total = _nll_and_exp(logits, targets)
    logits /= total[:, None]                            # (M, V) probabilities
    return float(nll.mean(dtype=np.float64)), nll, logits


def softmax_cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d(mean nll)/d logits = (softmax − onehot) / M: a new (M, V) array; `probs` is left as it was,
    so a cache can be back-propagated more than once."""
    M = probs.shape[0]
    dlogits = probs * (1.0 / M)                         # (M, V)
    dlogits[np.arange(M), targets] -= 1.0 / M
    return dlogits


def cross_entropy_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-position nll (M,) only, for evaluation: no probabilities are formed.
    logits (M, V) is overwritten."""
    return _nll_and_exp(logits, targets)[0]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax of logits (M, V) in float64, row by row: z − max − log Σ exp(z − max)."""
    z = logits.astype(np.float64)                       # (M, V) a copy: the caller's logits stay
    z -= z.max(axis=1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z
