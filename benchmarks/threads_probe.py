"""The measurement behind charlm's thread policy (charlm/threads.py): BLAS threads per kind of GEMM.

    PYTHONPATH=. python benchmarks/threads_probe.py [--hidden 256] [--seconds 1.0]

A training step makes two kinds of matrix product: one per time step over the N
lanes (h W_hhᵀ, N × H by H × 3H for a GRU), thousands per step, and a few per chunk
over all T·N positions (X W_ihᵀ, the decoder, the weight gradients). This times
each kind with 1 and 2 OpenBLAS threads, quiet and while a Python busy loop keeps
one core busy, and prints GFLOP/s and the busy/quiet ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

from benchmarks import machine
from charlm import threads


def rate(a: np.ndarray, b: np.ndarray, seconds: float) -> float:
    """GFLOP/s of a @ b repeated for about `seconds`."""
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    np.matmul(a, b, out=out)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            np.matmul(a, b, out=out)
        n += 20
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seconds", type=float, default=1.0)
    a = p.parse_args()
    H, rng = a.hidden, np.random.default_rng(0)
    w = rng.standard_normal((H, 3 * H), dtype=np.float32)                  # (H, 3H)
    shapes = {"per step, N=25 rows": 25, "per step, N=50 rows": 50, "per chunk, T·N=2500 rows": 2500}
    print(f"{machine.describe(None)['cpu']}; GRU H={H}: (M×{H})·({H}×{3 * H}) GFLOP/s")
    print(f"{'product':<28}{'1 thr quiet':>12}{'2 thr quiet':>12}{'1 thr busy':>12}{'2 thr busy':>12}"
          f"{'1 busy/quiet':>14}{'2 busy/quiet':>14}")
    for name, m in shapes.items():
        x = rng.standard_normal((m, H), dtype=np.float32)                  # (M, H)
        r = {}
        for load in ("quiet", "busy"):
            ctx = machine.busy_core() if load == "busy" else contextlib.nullcontext()
            with ctx:
                for n in (1, 2):
                    with threads.limited(n):
                        r[n, load] = rate(x, w, a.seconds)
        print(f"{name:<28}{r[1, 'quiet']:>12.1f}{r[2, 'quiet']:>12.1f}{r[1, 'busy']:>12.1f}{r[2, 'busy']:>12.1f}"
              f"{r[1, 'busy'] / r[1, 'quiet']:>13.2f}×{r[2, 'busy'] / r[2, 'quiet']:>13.2f}×")


if __name__ == "__main__":
    main()
