"""Would a feature-major time loop be faster? A measurement for the next speed step.

    PYTHONPATH=. python benchmarks/layout_probe.py [H]      # default 384, GRU, N = 50, T = 100

charlm's loop keeps each step's gates as (N, GH): one row per stream, so a gate
is a column block, and every elementwise call on a column block goes through
numpy's strided path. This runs charlm's GRU forward loop (`recurrent.run`) and a
feature-major version of the same loop side by side: state (H, N), gates (GH, N),
so each gate is a contiguous row block and the recurrent product is W·hᵀ. The
outputs must agree exactly. It also times the pieces that decide whether the
change pays: one (50, H) multiply on a contiguous block and on a column block, and
the transposes that a feature-major layer would need at its edges.
Forward loop only; backward would need the same rewrite.
"""

import sys
import timeit

import numpy as np

from charlm.nn import recurrent


def feature_major_run(w_s: np.ndarray, b_hn: np.ndarray, gates: np.ndarray, h: np.ndarray) -> None:
    """GRU forward over T steps in (feature, stream) layout; gates (T, 3H, N) pre-scaled, h (T+1, H, N)."""
    T, GH, N = gates.shape
    H = GH // 3
    hh = np.empty((GH, N), gates.dtype)                 # (3H, N) W_hh h
    tmp = np.empty((H, N), gates.dtype)                 # (H, N)
    for t in range(T):
        np.matmul(w_s, h[t], out=hh)
        a = gates[t]                                    # (3H, N)
        hn = hh[2 * H:]                                 # (H, N) W_hn h + b_hn
        hn += b_hn
        rz = a[: 2 * H]
        rz += hh[: 2 * H]
        np.tanh(rz, out=rz)                             # σ(x) = ½ + ½ tanh(x/2), x pre-halved
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:H], a[H: 2 * H], a[2 * H:]
        np.multiply(r, hn, out=tmp)
        n += tmp
        np.tanh(n, out=n)
        np.subtract(h[t], n, out=h[t + 1])
        h[t + 1] *= z
        h[t + 1] += n                                   # h' = n + z (h - n)


def main() -> None:
    H = int(sys.argv[1]) if len(sys.argv) > 1 else 384
    N, T = 50, 100
    rng = np.random.default_rng(0)
    w_ih = (rng.standard_normal((3 * H, H)) * 0.05).astype(np.float32)
    w_hh = (rng.standard_normal((3 * H, H)) * 0.05).astype(np.float32)
    b_hh = (rng.standard_normal(3 * H) * 0.1).astype(np.float32)
    lw = recurrent.prepare("gru", w_ih, w_hh, np.zeros(3 * H, np.float32), b_hh)
    xw = rng.standard_normal((T, N, 3 * H)).astype(np.float32)          # (T, N, 3H) pre-scaled
    w_s = np.ascontiguousarray(lw["w_hh_t"].T)                          # (3H, H)
    b_hn = lw["b_hn"][:, None]                                          # (H, 1)
    xw_fm = np.ascontiguousarray(xw.transpose(0, 2, 1))                 # (T, 3H, N)

    def charlm_loop():
        b = recurrent.buffers(lw, T, N, np.float32, xw.copy())
        b["h"][0] = 0
        recurrent.run(b, T)
        return b["h"]

    def fm_loop():
        h = np.zeros((T + 1, H, N), np.float32)
        feature_major_run(w_s, b_hn, xw_fm.copy(), h)
        return h

    diff = np.abs(fm_loop()[1:].transpose(0, 2, 1) - charlm_loop()[1:]).max()
    print(f"GRU H={H}, N={N}, T={T}: outputs differ by at most {diff:.1e}")
    a, f = [], []
    for _ in range(5):  # interleaved, best of 5
        a.append(timeit.timeit(charlm_loop, number=1))
        f.append(timeit.timeit(fm_loop, number=1))
    print(f"forward loop per step: charlm {min(a) / T * 1e6:.0f} µs, feature-major {min(f) / T * 1e6:.0f} µs "
          f"({min(f) / min(a):.2f}×)")

    def best(fn, n=2000):
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

    g = rng.standard_normal((N, 3 * H)).astype(np.float32)
    o = np.empty_like(g)
    c, e, d = (rng.standard_normal((N, H)).astype(np.float32) for _ in range(3))
    print(f"one (50, {H}) multiply: contiguous {best(lambda: np.multiply(c, e, out=d)):.1f} µs, "
          f"column block {best(lambda: np.multiply(g[:, :H], g[:, H: 2 * H], out=o[:, :H])):.1f} µs")
    out = np.empty((T, 3 * H, N), np.float32)
    ms = min(timeit.repeat(lambda: np.copyto(out, xw.transpose(0, 2, 1)), number=10, repeat=3)) / 10 * 1e3
    print(f"transpose (T, N, 3H) -> (T, 3H, N), as a layer edge would need: {ms:.1f} ms")


if __name__ == "__main__":
    main()
