"""Numeric gradient checking (float64, central differences) shared by the tests."""

from __future__ import annotations

import numpy as np

# Fourth-order central difference with step h: truncation ~h⁴·f⁽⁵⁾ ≈ 1e-12 and
# round-off ~1e-16·|f|/h ≈ 1e-13, so even gradient entries near 1e-8 are
# resolved to a relative error far below the 1e-6 the tests demand.
H = 1e-3


def numeric_grad(f, x: np.ndarray, h: float = H) -> np.ndarray:
    """∂f/∂x by central differences, perturbing x in place one entry at a time."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        values = []
        for step in (-2, -1, 1, 2):
            flat[i] = old + step * h
            values.append(f())
        flat[i] = old
        f_m2, f_m1, f_p1, f_p2 = values
        gflat[i] = (f_m2 - 8 * f_m1 + 8 * f_p1 - f_p2) / (12 * h)
    return g


# Gradient entries smaller than this are compared on this scale: a float64
# central difference resolves about 1e-12 absolute, so it cannot certify a 1e-8
# entry to 1e-6 relative. Such entries are still held to ABS_TOL absolute.
FLOOR = 1e-6
ABS_TOL = 1e-10


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max_i |a − n| / max(|a| + |n|, FLOOR); also asserts every |a − n| < ABS_TOL."""
    diff = np.abs(analytic - numeric)
    assert diff.max(initial=0.0) < ABS_TOL, f"absolute gradient error {diff.max():.2e}"
    scale = np.maximum(np.abs(analytic) + np.abs(numeric), FLOOR)
    return float((diff / scale).max(initial=0.0))
