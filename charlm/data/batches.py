"""Batches for truncated BPTT: B contiguous lanes, cut into T-wide windows.

Lane b is ids[b·L : (b+1)·L] with L = ⌊len/B⌋, so each lane reads the text in
order and the final state of window k is the right initial state for window
k+1. Window k is columns [kT, (k+1)T) of the lanes (targets shifted by one).
Everything here is a view of the (memmapped) ids: nothing is copied until a
window is handed to the model. A `FileSlice` names a stretch of the ids on disk, so
that worker processes map it themselves instead of receiving a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.errors import CharlmError, UsageError


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
        raise UsageError(f"the training text has only {n:,} characters, too short for one window of "
                         f"--seq-len {seq_len} (needs {seq_len + 1:,}); use a smaller --seq-len or more text")
    return fitting


def shares(lanes: int, parts: int) -> tuple[tuple[int, int], ...]:
    """Split `lanes` into `parts` contiguous [lo, hi) ranges whose sizes differ by at
    most one; the last range is never empty (it holds lane lanes-1)."""
    cuts = [r * lanes // parts for r in range(parts + 1)]
    return tuple((cuts[r], cuts[r + 1]) for r in range(parts))


def window(lane_ids: np.ndarray, k: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Window k: inputs (B, T) and targets (B, T), the same columns shifted by one."""
    start = k * seq_len
    x = lane_ids[:, start: start + seq_len]                 # (B, T)
    y = lane_ids[:, start + 1: start + seq_len + 1]         # (B, T)
    return x, y


def eval_lanes(ids: np.ndarray, batch: int, warmup: int):
    """The layout for scoring every character of `ids` (n,) but the first.

    The n-1 (input, target) pairs are cut into B lanes of L = ⌊(n-1)/B⌋
    consecutive pairs, read side by side; B is `batch`, or fewer so that a lane
    is at least `warmup` long (a short text is read as fewer, longer lanes). Returns
      x, y  (B, L) inputs and targets, views of `ids`;
      warm  (B, W) the W = min(warmup, L) inputs just before each lane, to run
            the state over first so a lane starts as if the text were read as
            one stream (lane 0 has nothing before it: its row is a copy of
            lane 1's and must be discarded);
      tail  ((r,), (r,)) the last r = (n-1) mod B pairs, which continue lane B-1.
    """
    m = max(len(ids) - 1, 0)
    if m == 0:
        raise CharlmError("need at least two characters to score")
    B = max(1, min(batch, m // max(warmup, 1)))
    L = m // B
    x = ids[: B * L].reshape(B, L)                          # (B, L)
    y = ids[1: B * L + 1].reshape(B, L)                     # (B, L)
    W = min(warmup, L)
    starts = np.maximum(np.arange(B) * L, L)                # lane 0 borrows lane 1's start
    warm = ids[starts[:, None] - W + np.arange(W)]          # (B, W)
    tail = (ids[B * L: m], ids[B * L + 1: m + 1])           # (r,), (r,)
    return x, y, warm, tail


@dataclass(frozen=True)
class FileSlice:
    """ids[start:stop] of a raw id file (the corpus's memmapped cache), opened by each rank."""
    path: str
    dtype: str
    start: int
    stop: int

    def open(self) -> np.ndarray:
        """(stop − start,) read-only memmap of the slice."""
        itemsize = np.dtype(self.dtype).itemsize
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.start * itemsize,
                         shape=(self.stop - self.start,))

    def __len__(self) -> int:
        return self.stop - self.start
