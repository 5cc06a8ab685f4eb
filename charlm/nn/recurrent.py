"""Recurrent layers (vanilla RNN, LSTM, GRU) sharing one time loop.

Letters: T time steps, N streams (batch), D input width, H hidden units, G gates
per cell (RNN 1, GRU 3, LSTM 4). Buffers are time-major, so `buf[t]` is contiguous.

The equations are exactly PyTorch's (torch.nn.RNN / LSTM / GRU), with the same
gate order and two bias vectors, so weights export to a `state_dict` unchanged:

    RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

    LSTM  [i f g o] = W_ih x + b_ih + W_hh h + b_hh       (4H rows, in this order)
          i, f, o = sigmoid(.)    g = tanh(.)
          c' = f * c + i * g
          h' = o * tanh(c')

    GRU   [r z n] rows of W_ih, W_hh, b_ih, b_hh           (3H rows, in this order)
          r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
          z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
          n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
          h' = (1 - z) * n + z * h

How it is computed: `prepare` turns a layer's parameters into the form the loop
uses. Every gate is activated as  act(x) = s·tanh(s·x) + (1 − s)  with s = ½ for
sigmoid gates (σ(x) = ½ + ½ tanh(x/2)) and s = 1 for tanh gates, so the rows of
W_ih, W_hh and the biases are pre-scaled by s (exact: a power of two) and one
`tanh` over the whole (N, GH) gate block activates every gate. `prepare` also
folds the parts of b_hh that sit outside a product into the input bias and keeps
W_hh transposed and contiguous, the layout the per-step GEMM runs fastest on.
For a step or two those copies cost more than they save: `prepare(scaled=False)`
keeps views of the parameters and the loop scales each step's block instead.

The caller projects the inputs of all T steps in one GEMM (`xw = X Wᵀ + b` with
the prepared W and b, shape (T, N, GH)); the Python time loop then holds only the
recurrent multiply `h W_hhᵀ` and the gate arithmetic, done in a few whole-block
operations into preallocated buffers. `backward` runs the loop in reverse and
leaves `dxw`, the gradient w.r.t. the unscaled input pre-activations
(X W_ihᵀ + b_ih), from which the caller gets dW_ih, db_ih and dX; dW_hh and
db_hh are one GEMM / one sum after the loop. The scaling never reaches backward:
it only needs the activated gates.

Every equation here, without the tricks, is charlm/nn/reference.py: read it first; the tests
hold this file to it (tests/nn/test_reference.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from charlm.config import GATES

Buffers = dict  # str -> ndarray: one layer's activations for one chunk


def activate(a: np.ndarray, act: np.ndarray, scaled: bool) -> None:
    """Gate pre-activations (N, K) -> activated gates, in place: s·tanh(s·x) + (1 − s),
    i.e. σ(x) = ½(1 + tanh(x/2)) where s = ½ (no overflow for large |x|) and tanh(x)
    where s = 1. act: (3, K) rows s, s, 1 − s; scaled: the weights were pre-scaled,
    so a = s·x already."""
    if not scaled:
        a *= act[0]
    np.tanh(a, out=a)
    a *= act[1]
    a += act[2]


# --------------------------------------------------------------------- RNN


def _rnn_step(t: int, hh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, H) x W_ihᵀ + b_ih + b_hh
    a += hh
    np.tanh(a, out=b["h"][t + 1])                       # (N, H) h' = tanh(W_ih x + b_ih + W_hh h + b_hh)


def _rnn_step_back(t: int, dh: np.ndarray, b: Buffers) -> None:
    h = b["h"][t + 1]                                   # (N, H)
    da = b["dxw"][t]                                    # (N, H)
    np.multiply(h, h, out=da)
    np.subtract(1.0, da, out=da)
    da *= dh                                            # dh * (1 - h²)


# -------------------------------------------------------------------- LSTM


def _lstm_step(t: int, hh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 4H) -> activated i f g o
    H = a.shape[1] // 4
    a += hh
    activate(a, b["act"], b["scaled"])                  # i, f, o = σ(·), g = tanh(·): one tanh for all four
    i, f, g, o = a[:, :H], a[:, H: 2 * H], a[:, 2 * H: 3 * H], a[:, 3 * H:]
    c, c_new, tc = b["c"][t], b["c"][t + 1], b["tc"][t]  # (N, H) each
    tmp = b["tmp"]                                      # (N, H)
    np.multiply(f, c, out=c_new)
    np.multiply(i, g, out=tmp)
    c_new += tmp                                        # c' = f c + i g
    np.tanh(c_new, out=tc)
    np.multiply(o, tc, out=b["h"][t + 1])               # h' = o tanh(c')


def _lstm_step_back(t: int, dh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 4H) activated gates
    H = a.shape[1] // 4
    i, f, g, o = a[:, :H], a[:, H: 2 * H], a[:, 2 * H: 3 * H], a[:, 3 * H:]
    tc, c, dc, tmp = b["tc"][t], b["c"][t], b["dc"], b["tmp"]
    da = b["dxw"][t]                                    # (N, 4H)
    di, df, dg, do = da[:, :H], da[:, H: 2 * H], da[:, 2 * H: 3 * H], da[:, 3 * H:]
    np.multiply(dh, tc, out=do)                         # dL/do
    # dc += dh * o * (1 - tc²) = o * (dh - tc * (dh tc))
    np.multiply(tc, do, out=tmp)
    np.subtract(dh, tmp, out=tmp)
    tmp *= o
    dc += tmp
    np.multiply(dc, g, out=di)                          # dL/di
    np.multiply(dc, c, out=df)                          # dL/df
    np.multiply(dc, i, out=dg)                          # dL/dg
    dc *= f                                             # carried to step t-1
    _gate_derivative(da, a, b["lo"], b["dtmp"])


def _gate_derivative(da: np.ndarray, a: np.ndarray, lo: np.ndarray, d: np.ndarray) -> None:
    """da *= act'(pre-activation) for a block of activated gates a (N, K), in place:
    σ' = σ(1 − σ) and tanh' = (1 + g)(1 − g), i.e. (a − lo)(1 − a) with lo (K,)
    0 for sigmoid and −1 for tanh columns. d: (N, K) scratch."""
    np.subtract(a, lo, out=d)
    da *= d
    np.subtract(1.0, a, out=d)
    da *= d


# --------------------------------------------------------------------- GRU


def _gru_step(t: int, hh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 3H) -> activated r z n
    H = a.shape[1] // 3
    hn = b["hn"][t]                                     # (N, H) W_hn h + b_hn
    np.add(hh[:, 2 * H:], b["b_hn"], out=hn)
    rz = a[:, : 2 * H]
    rz += hh[:, : 2 * H]
    activate(rz, b["act"][:, : 2 * H], b["scaled"])     # r, z = σ(W_i· x + b_i· + W_h· h + b_h·)
    r, z, n = a[:, :H], a[:, H: 2 * H], a[:, 2 * H:]
    tmp = b["tmp"]                                      # (N, H)
    np.multiply(r, hn, out=tmp)
    n += tmp
    np.tanh(n, out=n)                                   # n = tanh(W_in x + b_in + r (W_hn h + b_hn))
    h, h_new = b["h"][t], b["h"][t + 1]                 # (N, H) each
    np.subtract(h, n, out=h_new)
    h_new *= z
    h_new += n                                          # h' = n + z (h - n)


def _gru_step_back(t: int, dh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 3H) activated gates
    H = a.shape[1] // 3
    r, n = a[:, :H], a[:, 2 * H:]
    h, hn, tmp = b["h"][t], b["hn"][t], b["tmp"]
    da, dah = b["dxw"][t], b["dhh"][t]                  # (N, 3H) each
    dr, dz, dn = da[:, :H], da[:, H: 2 * H], da[:, 2 * H:]
    np.subtract(h, n, out=dz)
    dz *= dh                                            # dL/dz = dh (h - n)
    np.multiply(dh, a[:, H: 2 * H], out=tmp)            # dh z: the direct path h -> h'
    np.subtract(dh, tmp, out=dn)                        # dL/dn = dh (1 - z)
    dh[...] = tmp
    lo, d = b["lo"], b["dtmp"]
    _gate_derivative(da[:, H:], a[:, H:], lo[H:], d[:, H:])  # z, n pre-activations
    np.multiply(dn, r, out=dah[:, 2 * H:])              # d(W_hn h + b_hn)
    np.multiply(dn, hn, out=dr)                         # dL/dr
    _gate_derivative(dr, r, lo[:H], d[:, :H])
    dah[:, : 2 * H] = da[:, : 2 * H]


class Cell(NamedTuple):
    fold: int           # gate blocks of b_hh that can be added to xw up front
    has_c: bool         # LSTM carries a cell state
    direct: bool        # h feeds h' directly (GRU), besides through W_hh
    scale: tuple        # s per gate block: ½ for sigmoid gates, 1 for tanh
    step: Callable[[int, np.ndarray, Buffers], None]
    step_back: Callable[[int, np.ndarray, Buffers], None]


CELLS = {
    "rnn": Cell(1, False, False, (1.0,), _rnn_step, _rnn_step_back),
    "lstm": Cell(4, True, False, (0.5, 0.5, 1.0, 0.5), _lstm_step, _lstm_step_back),
    "gru": Cell(2, False, True, (0.5, 0.5, 1.0), _gru_step, _gru_step_back),
}


def prepare(cell_name: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
            b_hh: np.ndarray, scaled: bool = True) -> dict:
    """One layer's parameters in the form the loops use (see the module docstring).

    Returns {"w_ih" (GH, D) and "b" (GH,): the input projection, with the foldable
    b_hh added; "w_hh_t" (H, GH) W_hhᵀ; "b_hn" (GH − kH,) the rest of b_hh; "act"
    (3, GH) the rows (s, s, 1 − s); "w_hh" (GH, H) the unscaled W_hh for backward;
    "cell"; "scaled"}. scaled=True pre-scales the weights (copies; W_hhᵀ made
    contiguous), worth it over many steps; scaled=False copies no matrix (views)
    and the loop scales each step's pre-activations instead: for a step or two.
    """
    cell = CELLS[cell_name]
    GH, H = w_hh.shape
    s = np.repeat(np.asarray(cell.scale, w_hh.dtype), H)    # (GH,)
    k = cell.fold * H
    b = b_ih.copy()                                         # (GH,)
    b[:k] += b_hh[:k]
    lw = {"b_hn": b_hh[k:], "act": np.stack([s, s, 1 - s]),  # (GH - k,), (3, GH)
          "w_hh": w_hh, "cell": cell_name, "scaled": scaled}
    if not scaled:
        return lw | {"w_ih": w_ih, "b": b, "w_hh_t": w_hh.T}
    b *= s
    w_hh_t = np.empty((H, GH), w_hh.dtype)                  # (H, GH)
    np.multiply(w_hh.T, s, out=w_hh_t)
    return lw | {"w_ih": w_ih * s[:, None],                 # (GH, D)
                 "b": b, "w_hh_t": w_hh_t, "b_hn": b_hh[k:] * s[k:]}


def buffers(lw: dict, T: int, N: int, dtype, xw: np.ndarray | None = None) -> Buffers:
    """Buffers for `run` over T steps of N streams; xw (T, N, GH) becomes "gates"."""
    cell = CELLS[lw["cell"]]
    H, GH = lw["w_hh_t"].shape
    b: Buffers = {name: lw[name] for name in ("act", "b_hn", "w_hh_t", "w_hh", "cell", "scaled")}
    b["gates"] = np.empty((T, N, GH), dtype) if xw is None else xw  # (T, N, GH)
    b["h"] = np.empty((T + 1, N, H), dtype)             # (T+1, N, H); h[0] is the initial state
    b["tmp"] = np.empty((N, H), dtype)                  # (N, H) scratch
    b["hh"] = np.empty((N, GH), dtype)                  # (N, GH) h W_hhᵀ
    if cell.has_c:
        b["c"] = np.empty((T + 1, N, H), dtype)         # (T+1, N, H)
        b["tc"] = np.empty((T, N, H), dtype)            # (T, N, H) tanh(c)
    if cell.direct:
        b["hn"] = np.empty((T, N, H), dtype)            # (T, N, H) W_hn h + b_hn
    return b


def run(b: Buffers, T: int) -> None:
    """The time loop: b["gates"][:T] holds xw and b["h"][0] (b["c"][0]) the state;
    fills h[1:T+1] (c, tc, hn) and leaves the activated gates in b["gates"]."""
    step = CELLS[b["cell"]].step
    h, hh, w_hh_t = b["h"], b["hh"], b["w_hh_t"]
    for t in range(T):
        np.matmul(h[t], w_hh_t, out=hh)                 # (N, GH)
        step(t, hh, b)


def forward(xw: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
            lw: dict) -> tuple[np.ndarray, tuple, Buffers]:
    """Run one layer over a chunk.

    xw: (T, N, GH) input projections X lw["w_ih"]ᵀ + lw["b"]; taken over as a buffer.
    h0, c0: (N, H) initial state (c0 only for LSTM). lw: from `prepare`.
    Returns h (T+1, N, H) with h[0] = h0 (outputs are h[1:]), the final state
    (h, c) and the buffers that `backward` needs.
    """
    T, N, _ = xw.shape
    b = buffers(lw, T, N, xw.dtype, xw)
    b["h"][0] = h0
    if c0 is not None:
        b["c"][0] = c0
    run(b, T)
    final = (b["h"][T].copy(), b["c"][T].copy() if c0 is not None else None)
    return b["h"], final, b


def backward(dh_out: np.ndarray, b: Buffers) -> tuple[np.ndarray, dict, tuple]:
    """Reverse of `forward`, truncated at the chunk start.

    dh_out: (T, N, H) gradient w.r.t. the layer outputs h[1:].
    Returns dxw (T, N, GH) — gradient w.r.t. the unscaled input pre-activations,
    so also w.r.t. b_ih — the grads {"w_hh", "b_hh"}, and (dh0, dc0).
    """
    cell = CELLS[b["cell"]]
    xw, w_hh, h = b["gates"], b["w_hh"], b["h"]
    T, N, GH = xw.shape
    H = GH // GATES[b["cell"]]
    b = dict(b)  # the forward's buffers are read, never written: the scratch below is this call's own
    b["dxw"] = np.empty_like(xw)                        # (T, N, GH)
    b["dhh"] = np.empty_like(xw) if cell.direct else b["dxw"]  # (T, N, GH) w.r.t. h W_hhᵀ + b_hh
    b["dc"] = np.zeros((N, H), xw.dtype)                # (N, H) carried dL/dc
    b["dtmp"] = np.empty((N, GH), xw.dtype)             # (N, GH) scratch
    b["lo"] = np.where(b["act"][0] == 1.0, -1.0, 0.0).astype(xw.dtype)  # (GH,) tanh' = (1+g)(1-g)
    dh = np.zeros((N, H), xw.dtype)                     # (N, H) carried dL/dh
    tmp = np.empty((N, H), xw.dtype)                    # (N, H)
    for t in reversed(range(T)):
        dh += dh_out[t]
        cell.step_back(t, dh, b)
        if cell.direct:  # step_back left dh·∂h'/∂h (direct path) in dh
            np.matmul(b["dhh"][t], w_hh, out=tmp)
            dh += tmp
        else:
            np.matmul(b["dhh"][t], w_hh, out=dh)
    dhh = b["dhh"].reshape(T * N, GH)                   # (TN, GH)
    grads = {
        "w_hh": dhh.T @ h[:-1].reshape(T * N, H),       # (GH, H) one GEMM
        "b_hh": dhh.sum(axis=0),                        # (GH,)
    }
    return b["dxw"], grads, (dh, b["dc"] if cell.has_c else None)
