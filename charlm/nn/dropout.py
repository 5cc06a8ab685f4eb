"""Inverted dropout: training-time masks from a passed-in numpy Generator."""

from __future__ import annotations

import numpy as np


def make_mask(rng: np.random.Generator, shape: tuple, p: float, dtype) -> np.ndarray:
    """Keep each unit with probability 1 − p and scale kept ones by 1/(1 − p),
    so the expected activation is unchanged and evaluation needs no rescaling.
    Forward and backward are both `x * mask`."""
    keep = 1.0 - p
    scale = np.asarray(1.0 / keep, dtype=dtype)
    return (rng.random(shape, dtype=np.float32) < keep).astype(dtype) * scale
