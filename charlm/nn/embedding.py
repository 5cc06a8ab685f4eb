"""Row lookups and their backward: an embedding, or a one-hot input times a matrix.

Multiplying a one-hot vector by a matrix selects a row, so one-hot input never
materialises an (N, T, V) float array: forward is `np.take`, backward a
scatter-add of rows into the ids they came from.
"""

from __future__ import annotations

import numpy as np


def lookup(table: np.ndarray, ids: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """table (V, D), ids (M,) -> rows (M, D)."""
    return np.take(table, ids, axis=0, out=out)


def lookup_backward(drows: np.ndarray, ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """drows (M, D) -> dtable (V, D), summing rows that share an id.

    `np.add.at` and not `dtable[ids] += drows`: fancy-index += keeps only the
    last of repeated ids, silently dropping gradient.
    """
    dtable = np.zeros((vocab_size, drows.shape[1]), drows.dtype)  # (V, D)
    np.add.at(dtable, ids, drows)
    return dtable
