"""The model's math, plainly: each cell's step with its backward beside it, and the whole stack.

Read this first. It is the textbook form of what charlm computes — float64, one time
step at a time, one gate at a time, no speed tricks — and the fast path
(charlm/nn/recurrent.py and charlm/nn/model.py, with their pre-scaled gates, folded
biases, shared buffers and lookup tables) is checked against it to 1e-10
(tests/nn/test_reference.py), as this file is checked against central differences.
Dropout is left out: it is a mask multiplied in at training time (charlm/nn/dropout.py).

Letters: N streams, T time steps, D input width, H hidden units, V vocabulary, L layers.
A layer's weights are p = {"w_ih" (GH, D), "w_hh" (GH, H), "b_ih" (GH,), "b_hh" (GH,)}
with the gate blocks in PyTorch's order; a state is {"h": (N, H)} (+ "c" for the LSTM).

    RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

    LSTM  i = σ(W_ii x + b_ii + W_hi h + b_hi)        f = σ(W_if x + b_if + W_hf h + b_hf)
          g = tanh(W_ig x + b_ig + W_hg h + b_hg)     o = σ(W_io x + b_io + W_ho h + b_ho)
          c' = f c + i g                              h' = o tanh(c')

    GRU   r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r (W_hn h + b_hn)) h' = (1 − z) n + z h

    stack x_t = E[id_t] (or the one-hot vector of id_t) → L layers → logits = W_dec h_t + b_dec
          loss = mean over N·T positions of −log softmax(logits)[target]
"""

from __future__ import annotations

import numpy as np

from charlm.config import ModelConfig


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _blocks(a: np.ndarray, k: int) -> list[np.ndarray]:
    """The k gate blocks of (N, kH) pre-activations."""
    return np.split(a, k, axis=1)


# --------------------------------------------------------------------- one step of each cell


def step(cell: str, x: np.ndarray, state: dict, p: dict) -> tuple[dict, tuple]:
    """x (N, D), state at t−1 → (state at t, what the backward step needs)."""
    h = state["h"]                                                      # (N, H)
    xw = x @ p["w_ih"].T + p["b_ih"]                                    # (N, GH) input part
    hw = h @ p["w_hh"].T + p["b_hh"]                                    # (N, GH) recurrent part
    if cell == "rnn":
        h_new = np.tanh(xw + hw)                                        # (N, H)
        return {"h": h_new}, (x, h, h_new)
    if cell == "lstm":
        ai, af, ag, ao = _blocks(xw + hw, 4)
        i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)  # (N, H) each
        c_new = f * state["c"] + i * g
        h_new = o * np.tanh(c_new)
        return {"h": h_new, "c": c_new}, (x, h, state["c"], i, f, g, o, c_new)
    xr, xz, xn = _blocks(xw, 3)
    hr, hz, hn = _blocks(hw, 3)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)                           # (N, H) each
    n = np.tanh(xn + r * hn)
    h_new = (1 - z) * n + z * h
    return {"h": h_new}, (x, h, r, z, n, hn)


def step_back(cell: str, dstate: dict, cache: tuple, p: dict, grads: dict) -> tuple[np.ndarray, dict]:
    """The gradient w.r.t. the state at t (dstate) → (dx (N, D), the gradient w.r.t. the state
    at t−1); adds the weight gradients into grads (same names as p)."""
    dh = dstate["h"]                                                    # (N, H)
    if cell == "rnn":
        x, h, h_new = cache
        da_x = da_h = dh * (1 - h_new ** 2)                             # tanh' = 1 − tanh²
        dprev = {}
    elif cell == "lstm":
        x, h, c, i, f, g, o, c_new = cache
        tc = np.tanh(c_new)
        do = dh * tc
        dc = dstate["c"] + dh * o * (1 - tc ** 2)                       # through h' = o tanh(c')
        di, df, dg = dc * g, dc * c, dc * i
        da_x = da_h = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)],
                                     axis=1)                           # (N, 4H)
        dprev = {"c": dc * f}
    else:
        x, h, r, z, n, hn = cache
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dan = dn * (1 - n ** 2)                                         # n's pre-activation
        dar = dan * hn * r * (1 - r)
        daz = dz * z * (1 - z)
        da_x = np.concatenate([dar, daz, dan], axis=1)                  # (N, 3H) w.r.t. W_ih x + b_ih
        da_h = np.concatenate([dar, daz, dan * r], axis=1)              # (N, 3H) w.r.t. W_hh h + b_hh
        dprev = {"h_direct": dh * z}                                    # h' depends on h directly too
    grads["w_ih"] += da_x.T @ x
    grads["b_ih"] += da_x.sum(axis=0)
    grads["w_hh"] += da_h.T @ h
    grads["b_hh"] += da_h.sum(axis=0)
    dprev["h"] = da_h @ p["w_hh"] + dprev.pop("h_direct", 0.0)
    return da_x @ p["w_ih"], dprev


# --------------------------------------------------------------------- the whole stack


def _layer(params: dict, k: int) -> dict:
    return {w: params[f"rnn.{name}_l{k}"] for w, name in
            (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))}


def _decoder(params: dict, cfg: ModelConfig) -> np.ndarray:
    return params["embedding.weight" if cfg.tie_weights else "decoder.weight"]     # (V, H)


def forward(params: dict, cfg: ModelConfig, ids: np.ndarray, targets: np.ndarray, state: dict) -> tuple:
    """ids, targets (N, T); state {"h": (L, N, H)} (+ "c"). Returns (mean loss, logits (N, T, V),
    final state, cache for `backward`)."""
    N, T = ids.shape
    V = cfg.vocab_size
    if cfg.embedding_dim:
        xs = [params["embedding.weight"][ids[:, t]] for t in range(T)]  # T × (N, E)
    else:
        xs = [np.eye(V)[ids[:, t]] for t in range(T)]                   # T × (N, V) one-hot
    inputs, caches, final = xs, [], {}
    for k in range(cfg.layers):
        p = _layer(params, k)
        s = {name: v[k] for name, v in state.items()}
        outs, layer_caches = [], []
        for x in inputs:
            s, cache = step(cfg.cell, x, s, p)
            outs.append(s["h"])
            layer_caches.append(cache)
        caches.append(layer_caches)
        for name, v in s.items():
            final.setdefault(name, []).append(v)
        inputs = outs                                                   # this layer's h_t feed the next
    logits = np.stack([h @ _decoder(params, cfg).T + params["decoder.bias"] for h in inputs], axis=1)  # (N, T, V)
    z = logits - logits.max(axis=2, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=2, keepdims=True)            # (N, T, V) softmax
    picked = np.take_along_axis(probs, targets[:, :, None], axis=2)[:, :, 0]  # (N, T)
    loss = float(-np.log(picked).mean())
    final = {name: np.stack(v) for name, v in final.items()}           # (L, N, H)
    return loss, logits, final, {"ids": ids, "targets": targets, "xs": xs, "tops": inputs, "caches": caches,
                                 "probs": probs}


def backward(params: dict, cfg: ModelConfig, cache: dict) -> tuple[dict, dict]:
    """Gradients of `forward`'s mean loss w.r.t. every parameter and the initial state."""
    ids, targets, probs = cache["ids"], cache["targets"], cache["probs"]
    N, T, V = probs.shape
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    dlogits = probs.copy()                                              # (N, T, V)
    dlogits[np.arange(N)[:, None], np.arange(T)[None, :], targets] -= 1.0
    dlogits /= N * T                                                    # softmax − onehot, over the mean
    w_dec = _decoder(params, cfg)
    d_dec = np.zeros_like(w_dec)
    douts = []
    for t, h in enumerate(cache["tops"]):
        d_dec += dlogits[:, t].T @ h
        grads["decoder.bias"] += dlogits[:, t].sum(axis=0)
        douts.append(dlogits[:, t] @ w_dec)                             # (N, H)
    grads["embedding.weight" if cfg.tie_weights else "decoder.weight"] += d_dec
    dstate = {}
    for k in reversed(range(cfg.layers)):
        p, g = _layer(params, k), {w: np.zeros_like(a) for w, a in _layer(params, k).items()}
        d = {"h": np.zeros((N, cfg.hidden))} | ({"c": np.zeros((N, cfg.hidden))} if cfg.cell == "lstm" else {})
        dins = [None] * T
        for t in reversed(range(T)):
            d["h"] = d["h"] + douts[t]                                  # from above (or the decoder) and from t+1
            dins[t], d = step_back(cfg.cell, d, cache["caches"][k][t], p, g)
        for w, name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
            grads[f"rnn.{name}_l{k}"] += g[w]
        for name, v in d.items():
            dstate.setdefault(name, {})[k] = v
        douts = dins
    if cfg.embedding_dim:
        for t in range(T):
            np.add.at(grads["embedding.weight"], ids[:, t], douts[t])   # rows that share an id add up
    dstate = {name: np.stack([v[k] for k in range(cfg.layers)]) for name, v in dstate.items()}
    return grads, dstate
