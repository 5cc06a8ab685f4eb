"""Batches for truncated BPTT: B contiguous lanes, cut into T-wide windows.

Lane b is ids[b·L : (b+1)·L] with L = ⌊len/B⌋, so each lane reads the text in
order and the final state of window k is the right initial state for window
k+1. Window k is columns [kT, (k+1)T) of the lanes (targets shifted by one).
Everything here is a view of the (memmapped) ids: nothing is copied until a
window is handed to the model.
"""

from __future__ import annotations

import numpy as np

from charlm.errors import CharlmError


def lanes(ids: np.ndarray, batch: int) -> np.ndarray:
    """(n,) ids -> (B, L) view, L = n // B (the last n mod B ids are unused)."""
    L = len(ids) // batch
    return ids[: batch * L].reshape(batch, L)


def windows_per_epoch(n: int, batch: int, seq_len: int) -> int:
    """Full windows in one pass: each needs T inputs plus one shifted target."""
    return max((n // batch - 1) // seq_len, 0)


def fit_batch(n: int, batch: int, seq_len: int) -> int:
    """The largest batch ≤ `batch` that gives at least one full window, or an error."""
    if windows_per_epoch(n, batch, seq_len) >= 1:
        return batch
    fitting = n // (seq_len + 1)
    if fitting < 1:
        raise CharlmError(f"the training text has only {n} characters, too short for one window of "
                          f"--seq-len {seq_len} (needs {seq_len + 1}); use a smaller --seq-len or more text")
    return fitting


def window(lane_ids: np.ndarray, k: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Window k: inputs (B, T) and targets (B, T), the same columns shifted by one."""
    start = k * seq_len
    x = lane_ids[:, start: start + seq_len]                 # (B, T)
    y = lane_ids[:, start + 1: start + seq_len + 1]         # (B, T)
    return x, y


def eval_windows(ids: np.ndarray, batch: int, seq_len: int):
    """Every window over `ids` for evaluation, the last one possibly shorter,
    so the whole split is scored (bar the < B ids that do not fill a lane)."""
    batch = max(1, min(batch, (len(ids) - 1) // 2 or 1))
    lane_ids = lanes(ids, batch)
    L = lane_ids.shape[1]
    for start in range(0, L - 1, seq_len):
        stop = min(start + seq_len, L - 1)
        yield lane_ids[:, start:stop], lane_ids[:, start + 1: stop + 1]
