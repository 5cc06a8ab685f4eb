"""Gradient flow through time: how much the loss at a position depends on the state k steps earlier.

Letters: P positions measured, K the largest lag, L layers, H hidden units, n text length.

For a position t of a text, L_t is the nll of the character after t, read once the
model has read ids[t]; h_t is the hidden state after reading ids[t] (every layer's h,
concatenated: (L·H,)). ∂L_t/∂h_{t−k} is exactly the gradient the model's own
backward gives w.r.t. the *initial* state of a window that starts right after
ids[t−k] and ends at t, when only the last position's loss is back-propagated
(`model.backward(..., dlogits=)`). For the LSTM the cell state c_{t−k} is held
fixed: the number is the partial w.r.t. h, the state the issue's notes call hidden.

Each lag k is one forward/backward over P windows of k steps side by side, so a
measurement costs K(K+1)/2 batched steps: quadratic in K, which is why K is small.
The state at t−K comes from reading `warmup` characters before it from a zero state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from charlm.config import ModelConfig
from charlm.errors import CharlmError
from charlm.nn import model

MAX_LAG = 40        # K: the longest lag measured
POSITIONS = 32      # P: positions averaged over
WARMUP = 64         # characters read before t − K to give its state some context


@dataclass(frozen=True)
class Flow:
    """The curve: for each lag k = 1..K, statistics of ‖∂L_t/∂h_{t−k}‖ over the P positions."""
    lags: list[int]
    mean: list[float]
    q25: list[float]
    median: list[float]
    q75: list[float]
    positions: int

    def to_dict(self) -> dict:
        return asdict(self)


def positions(n: int, max_lag: int, count: int, warmup: int) -> np.ndarray:
    """`count` positions t spread evenly over the text (n,), each with `warmup` + K characters
    before it and one after; fewer when the text is short. Raises when none fits."""
    lo, hi = warmup + max_lag - 1, n - 2
    if hi < lo:
        raise CharlmError(f"the text is too short to measure gradient flow over {max_lag} steps: it needs at "
                          f"least {warmup + max_lag + 1:,} characters in the vocabulary, and has {n:,}")
    return np.unique(np.linspace(lo, hi, count).round().astype(np.intp))     # (P,)


def _windows(ids: np.ndarray, t: np.ndarray, first: int, width: int) -> np.ndarray:
    """ids[t + first + j] for j < width, one row per position: (P, width)."""
    return ids[t[:, None] + first + np.arange(width)]


def lag_gradients(params: dict, cfg: ModelConfig, ids: np.ndarray, t: np.ndarray, max_lag: int,
                  warmup: int = WARMUP) -> np.ndarray:
    """∂L_t/∂h_{t−k} for each position in t (P,) and k = 1..max_lag: (P, K, L·H).
    Needs t − max_lag − warmup + 1 ≥ 0 and t + 1 < len(ids) (see `positions`)."""
    ids = np.asarray(ids, dtype=np.intp)
    P, K = len(t), max_lag
    dtype = params["decoder.bias"].dtype
    warm = _windows(ids, t, -K - warmup + 1, warmup)                      # (P, W) up to ids[t − K]
    _, state = model.evaluate(params, cfg, warm, warm, model.init_state(cfg, P, dtype))  # targets unused
    out = np.empty((P, K, cfg.layers * cfg.hidden), dtype)                 # (P, K, L·H)
    for k in range(K, 0, -1):                                              # state is h_{t−k}
        x = _windows(ids, t, -k + 1, k)                                    # (P, k) ids[t−k+1 .. t]
        y = _windows(ids, t, -k + 2, k)                                    # (P, k) the next characters
        _, _, _, cache = model.forward(params, cfg, x, y, state)
        dlogits = np.zeros_like(cache["probs"])                            # (k·P, V) time-major
        last = dlogits[(k - 1) * P:]                                       # (P, V) the last step: L_t only
        last[...] = cache["probs"][(k - 1) * P:]
        last[np.arange(P), y[:, -1]] -= 1.0                                # d nll / d logits = p − onehot
        _, dstate = model.backward(params, cfg, cache, dlogits=dlogits)
        out[:, k - 1] = dstate["h"].transpose(1, 0, 2).reshape(P, -1)      # (P, L·H)
        _, state = model.evaluate(params, cfg, x[:, :1], y[:, :1], state)  # read ids[t−k+1]: h_{t−k+1}
    return out


def measure(params: dict, cfg: ModelConfig, ids: np.ndarray, max_lag: int = MAX_LAG, count: int = POSITIONS,
            warmup: int = WARMUP) -> Flow:
    """The gradient-flow curve of a model on a text ids (n,)."""
    if max_lag < 1:
        raise CharlmError(f"--max-lag must be at least 1, got {max_lag}")
    t = positions(len(ids), max_lag, count, warmup)
    norms = np.linalg.norm(lag_gradients(params, cfg, ids, t, max_lag, warmup).astype(np.float64), axis=2)  # (P, K)
    q25, median, q75 = np.percentile(norms, [25, 50, 75], axis=0)          # (K,) each
    return Flow(list(range(1, max_lag + 1)), norms.mean(axis=0).tolist(), q25.tolist(), median.tolist(),
                q75.tolist(), len(t))


def decay(flow: Flow) -> float:
    """How much of the gradient is left at the longest lag: mean at K / mean at 1 (0 when none at 1)."""
    return flow.mean[-1] / flow.mean[0] if flow.mean[0] > 0 else 0.0
