"""Recurrent layers (vanilla RNN, LSTM, GRU) sharing one time loop.

Letters: T time steps, N streams (batch), H hidden units, G gates per cell
(RNN 1, GRU 3, LSTM 4). Buffers are time-major, so `buf[t]` is contiguous.

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

How it is computed: the caller projects the inputs of all T steps in one GEMM
(`xw = X W_ihᵀ + b_ih`, shape (T, N, GH)). `forward` folds the parts of b_hh
that sit outside a product into `xw` once, then runs the Python time loop, which
holds only the recurrent multiply `h W_hhᵀ` and the gate arithmetic. `backward`
runs the loop in reverse and leaves `dxw`, the gradient w.r.t. the input
projections, from which the caller gets dW_ih, db_ih and dX with one GEMM each;
dW_hh and db_hh are likewise one GEMM / one sum after the loop.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

Buffers = dict  # str -> ndarray: one layer's activations for one chunk


def sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = σ(x) = ½(1 + tanh(x/2)): no overflow for large |x|, no warnings."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# --------------------------------------------------------------------- RNN


def _rnn_step(t: int, hh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, H)
    a += hh
    np.tanh(a, out=b["h"][t + 1])                       # (N, H)


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
    sigmoid(a[:, : 2 * H], out=a[:, : 2 * H])           # i, f
    np.tanh(a[:, 2 * H: 3 * H], out=a[:, 2 * H: 3 * H])  # g
    sigmoid(a[:, 3 * H:], out=a[:, 3 * H:])             # o
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
    # dc += dh * o * (1 - tc²)
    np.multiply(tc, tc, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    tmp *= o
    tmp *= dh
    dc += tmp
    # do = dh * tc * o (1 - o)
    np.subtract(1.0, o, out=do)
    do *= o
    do *= tc
    do *= dh
    # di = dc * g * i (1 - i)
    np.subtract(1.0, i, out=di)
    di *= i
    di *= g
    di *= dc
    # df = dc * c * f (1 - f)
    np.subtract(1.0, f, out=df)
    df *= f
    df *= c
    df *= dc
    # dg = dc * i * (1 - g²)
    np.multiply(g, g, out=dg)
    np.subtract(1.0, dg, out=dg)
    dg *= i
    dg *= dc
    dc *= f                                             # carried to step t-1


# --------------------------------------------------------------------- GRU


def _gru_step(t: int, hh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 3H) -> activated r z n
    H = a.shape[1] // 3
    hn = b["hn"][t]                                     # (N, H) W_hn h + b_hn
    np.add(hh[:, 2 * H:], b["b_hn"], out=hn)
    rz = a[:, : 2 * H]
    rz += hh[:, : 2 * H]
    sigmoid(rz, out=rz)
    r, z, n = a[:, :H], a[:, H: 2 * H], a[:, 2 * H:]
    tmp = b["tmp"]                                      # (N, H)
    np.multiply(r, hn, out=tmp)
    n += tmp
    np.tanh(n, out=n)
    h, h_new = b["h"][t], b["h"][t + 1]                 # (N, H) each
    np.subtract(h, n, out=h_new)
    h_new *= z
    h_new += n                                          # h' = n + z (h - n)


def _gru_step_back(t: int, dh: np.ndarray, b: Buffers) -> None:
    a = b["gates"][t]                                   # (N, 3H) activated gates
    H = a.shape[1] // 3
    r, z, n = a[:, :H], a[:, H: 2 * H], a[:, 2 * H:]
    h, hn, tmp = b["h"][t], b["hn"][t], b["tmp"]
    da, dah = b["dxw"][t], b["dhh"][t]                  # (N, 3H) each
    dr, dz, dn = da[:, :H], da[:, H: 2 * H], da[:, 2 * H:]
    # dn (pre-activation) = dh * (1 - z) * (1 - n²)
    np.multiply(n, n, out=dn)
    np.subtract(1.0, dn, out=dn)
    np.subtract(1.0, z, out=tmp)
    dn *= tmp
    dn *= dh
    np.multiply(dn, r, out=dah[:, 2 * H:])              # d(W_hn h + b_hn)
    # dz (pre-activation) = dh * (h - n) * z (1 - z)
    np.subtract(1.0, z, out=dz)
    dz *= z
    np.subtract(h, n, out=tmp)
    dz *= tmp
    dz *= dh
    # dr (pre-activation) = dn * hn * r (1 - r)
    np.subtract(1.0, r, out=dr)
    dr *= r
    dr *= hn
    dr *= dn
    dah[:, : 2 * H] = da[:, : 2 * H]
    dh *= z                                             # direct path h -> h'


class Cell(NamedTuple):
    gates: int          # G: gate blocks of H rows in W_ih / W_hh
    fold: int           # gate blocks of b_hh that can be added to xw up front
    has_c: bool         # LSTM carries a cell state
    direct: bool        # h feeds h' directly (GRU), besides through W_hh
    step: Callable[[int, np.ndarray, Buffers], None]
    step_back: Callable[[int, np.ndarray, Buffers], None]


CELLS = {
    "rnn": Cell(1, 1, False, False, _rnn_step, _rnn_step_back),
    "lstm": Cell(4, 4, True, False, _lstm_step, _lstm_step_back),
    "gru": Cell(3, 2, False, True, _gru_step, _gru_step_back),
}


def forward(cell_name: str, xw: np.ndarray, h0: np.ndarray, c0: np.ndarray | None,
            w_hh: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, tuple, Buffers]:
    """Run one layer over a chunk.

    xw: (T, N, GH) input projections X W_ihᵀ + b_ih; taken over as a buffer.
    h0, c0: (N, H) initial state (c0 only for LSTM).
    Returns h (T+1, N, H) with h[0] = h0 (outputs are h[1:]), the final state
    (h, c) and the buffers that `backward` needs.
    """
    cell = CELLS[cell_name]
    T, N, GH = xw.shape
    H = GH // cell.gates
    k = cell.fold * H
    xw[..., :k] += b_hh[:k]                             # (T, N, GH) biases outside products
    b: Buffers = {"gates": xw, "w_hh": w_hh, "b_hn": b_hh[k:], "cell": cell_name}
    b["h"] = np.empty((T + 1, N, H), xw.dtype)          # (T+1, N, H)
    b["h"][0] = h0
    b["tmp"] = np.empty((N, H), xw.dtype)               # (N, H) scratch
    if cell.has_c:
        b["c"] = np.empty((T + 1, N, H), xw.dtype)      # (T+1, N, H)
        b["c"][0] = c0
        b["tc"] = np.empty((T, N, H), xw.dtype)         # (T, N, H) tanh(c)
    if cell.direct:
        b["hn"] = np.empty((T, N, H), xw.dtype)         # (T, N, H) W_hn h + b_hn
    hh = np.empty((N, GH), xw.dtype)                    # (N, GH) h W_hhᵀ
    w_hh_t = w_hh.T                                     # (H, GH) view; BLAS transposes
    for t in range(T):
        np.matmul(b["h"][t], w_hh_t, out=hh)
        cell.step(t, hh, b)
    final = (b["h"][T].copy(), b["c"][T].copy() if cell.has_c else None)
    return b["h"], final, b


def backward(dh_out: np.ndarray, b: Buffers) -> tuple[np.ndarray, dict, tuple]:
    """Reverse of `forward`, truncated at the chunk start.

    dh_out: (T, N, H) gradient w.r.t. the layer outputs h[1:].
    Returns dxw (T, N, GH) — gradient w.r.t. the input projections, so also
    w.r.t. b_ih — the grads {"w_hh", "b_hh"}, and (dh0, dc0).
    """
    cell = CELLS[b["cell"]]
    xw, w_hh, h = b["gates"], b["w_hh"], b["h"]
    T, N, GH = xw.shape
    H = GH // cell.gates
    b["dxw"] = np.empty_like(xw)                        # (T, N, GH)
    b["dhh"] = np.empty_like(xw) if cell.direct else b["dxw"]  # (T, N, GH) w.r.t. h W_hhᵀ + b_hh
    b["dc"] = np.zeros((N, H), xw.dtype)                # (N, H) carried dL/dc
    dh = np.zeros((N, H), xw.dtype)                     # (N, H) carried dL/dh
    tmp = np.empty((N, H), xw.dtype)                    # (N, H)
    for t in reversed(range(T)):
        dh += dh_out[t]
        cell.step_back(t, dh, b)
        if cell.direct:
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
