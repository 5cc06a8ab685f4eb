"""Textbook numpy char-LSTM: the reference point `make bench` compares charlm against.

Written the way the classic "deep learning from scratch" books teach it (DLFS2's
TimeLSTM / BetterRnnlm): a Python loop over time that makes one `LSTMStep` object per
step; each step does its own x·Wx + h·Wh with separate matrices, keeps its own cache
and runs its own backward, weight gradients included. Around it: embedding (D = H),
L stacked LSTM layers, an affine decoder and softmax cross-entropy, which are
vectorised over all T steps as in the book, then global-norm clipping and Adam.
float32 throughout (pass dtype=np.float64 for a gradient check).

It is meant as a fair, correct textbook implementation, not a strawman. Like the
book's, it keeps its hidden state on the layer objects (stateful truncated BPTT);
charlm itself does not (see STYLE.md), but this file is the reference, not the house.

Letters: N batch, T time, D input width, H hidden, V vocab, M = N·T.
Gate order f, g, i, o, as in the book.
"""

from __future__ import annotations

import math

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow warnings


class LSTMStep:
    """One layer at one time step: forward caches its inputs, backward returns
    (dx, dh_prev, dc_prev) and adds its share to the layer's weight gradients."""

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray):
        self.params = (Wx, Wh, b)
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        A = x @ Wx + h_prev @ Wh + b                             # (N, 4H)
        f = sigmoid(A[:, :H])                                    # (N, H)
        g = np.tanh(A[:, H:2 * H])                               # (N, H)
        i = sigmoid(A[:, 2 * H:3 * H])                           # (N, H)
        o = sigmoid(A[:, 3 * H:])                                # (N, H)
        c_next = f * c_prev + g * i                              # (N, H)
        tanh_c = np.tanh(c_next)                                 # (N, H)
        h_next = o * tanh_c                                      # (N, H)
        self.cache = (x, h_prev, c_prev, f, g, i, o, tanh_c)
        return h_next, c_next

    def backward(self, dh_next, dc_next, grads):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, f, g, i, o, tanh_c = self.cache
        ds = dc_next + dh_next * o * (1 - tanh_c ** 2)           # (N, H)
        dc_prev = ds * f                                         # (N, H)
        df = ds * c_prev * f * (1 - f)                           # (N, H)
        dg = ds * i * (1 - g ** 2)                               # (N, H)
        di = ds * g * i * (1 - i)                                # (N, H)
        do = dh_next * tanh_c * o * (1 - o)                      # (N, H)
        dA = np.hstack((df, dg, di, do))                         # (N, 4H)
        grads[0] += x.T @ dA                                     # (D, 4H)
        grads[1] += h_prev.T @ dA                                # (H, 4H)
        grads[2] += dA.sum(axis=0)                               # (4H,)
        dx = dA @ Wx.T                                           # (N, D)
        dh_prev = dA @ Wh.T                                      # (N, H)
        return dx, dh_prev, dc_prev


class TimeLSTM:
    """T LSTMSteps of one layer; carries h and c from one batch to the next."""

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.steps: list[LSTMStep] = []
        self.h = self.c = None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if self.h is None:
            self.h = np.zeros((N, H), Wh.dtype)                  # (N, H)
            self.c = np.zeros((N, H), Wh.dtype)                  # (N, H)
        hs = np.empty((N, T, H), Wh.dtype)                       # (N, T, H)
        self.steps = []
        for t in range(T):
            step = LSTMStep(Wx, Wh, b)
            self.h, self.c = step.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.steps.append(step)
        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, _ = dhs.shape
        for g in self.grads:
            g[...] = 0
        dxs = np.empty((N, T, Wx.shape[0]), Wx.dtype)            # (N, T, D)
        dh, dc = 0, 0
        for t in reversed(range(T)):
            dx, dh, dc = self.steps[t].backward(dhs[:, t, :] + dh, dc, self.grads)
            dxs[:, t, :] = dx
        return dxs


class Adam:
    """Adam (Kingma & Ba) with the bias correction folded into the step size, as in the book."""

    def __init__(self, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.iter = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def update(self, params: dict, grads: dict) -> None:
        if not self.m:
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for k in params:
            self.m[k] += (1 - self.beta1) * (grads[k] - self.m[k])
            self.v[k] += (1 - self.beta2) * (grads[k] ** 2 - self.v[k])
            params[k] -= lr_t * self.m[k] / (np.sqrt(self.v[k]) + self.eps)


def clip_grads(grads: dict, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm."""
    total = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads.values()))
    rate = max_norm / (total + 1e-6)
    if rate < 1:
        for g in grads.values():
            g *= rate
    return total


class TextbookLSTM:
    """Embedding (D = H) → `layers` TimeLSTMs → affine → softmax CE, trained with Adam."""

    def __init__(self, vocab_size: int, hidden: int, layers: int = 2, seed: int = 0,
                 lr: float = 2e-3, clip: float = 5.0, dtype=np.float32):
        rng = np.random.default_rng(seed)
        V, H = vocab_size, hidden

        def init(shape, scale):
            return (rng.standard_normal(shape) * scale).astype(dtype)

        self.params = {"embed.W": init((V, H), 0.01)}
        for k in range(layers):  # Xavier init, as the book does
            self.params[f"lstm{k}.Wx"] = init((H, 4 * H), 1 / math.sqrt(H))
            self.params[f"lstm{k}.Wh"] = init((H, 4 * H), 1 / math.sqrt(H))
            self.params[f"lstm{k}.b"] = np.zeros(4 * H, dtype)
        self.params["affine.W"] = init((H, V), 1 / math.sqrt(H))
        self.params["affine.b"] = np.zeros(V, dtype)
        self.lstms = [TimeLSTM(*(self.params[f"lstm{k}.{n}"] for n in ("Wx", "Wh", "b")))
                      for k in range(layers)]
        self.optimizer = Adam(lr)
        self.clip = clip
        self.cache = None

    def forward(self, ids: np.ndarray, targets: np.ndarray) -> float:
        """Mean cross-entropy (nats/char) of `targets` (N, T) given `ids` (N, T)."""
        N, T = ids.shape
        xs = self.params["embed.W"][ids]                          # (N, T, H)
        for lstm in self.lstms:
            xs = lstm.forward(xs)                                 # (N, T, H)
        hs = xs.reshape(N * T, -1)                                # (M, H)
        scores = hs @ self.params["affine.W"] + self.params["affine.b"]  # (M, V)
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)                                    # (M, V)
        z = probs.sum(axis=1)                                     # (M,)
        probs /= z[:, None]
        t = targets.reshape(N * T)                                # (M,)
        loss = (np.log(z) - scores[np.arange(N * T), t]).mean()   # −log softmax, no log(0)
        self.cache = (ids, hs, probs, t)
        return float(loss)

    def backward(self) -> dict[str, np.ndarray]:
        ids, hs, probs, t = self.cache
        N, T = ids.shape
        dscores = probs.copy()                                    # (M, V)
        dscores[np.arange(N * T), t] -= 1
        dscores /= N * T
        grads = {"affine.W": hs.T @ dscores,                      # (H, V)
                 "affine.b": dscores.sum(axis=0)}                 # (V,)
        dxs = (dscores @ self.params["affine.W"].T).reshape(N, T, -1)  # (N, T, H)
        for k in reversed(range(len(self.lstms))):
            dxs = self.lstms[k].backward(dxs)                     # (N, T, H)
            for name, g in zip(("Wx", "Wh", "b"), self.lstms[k].grads, strict=True):
                grads[f"lstm{k}.{name}"] = g
        dW = np.zeros_like(self.params["embed.W"])                # (V, H)
        np.add.at(dW, ids.reshape(-1), dxs.reshape(N * T, -1))   # repeated ids add up
        grads["embed.W"] = dW
        return grads

    def train_step(self, ids: np.ndarray, targets: np.ndarray) -> float:
        """Forward, backward, clip, Adam: one step on one (N, T) batch. Returns the loss."""
        loss = self.forward(ids, targets)
        grads = self.backward()
        clip_grads(grads, self.clip)
        self.optimizer.update(self.params, grads)
        return loss
