"""The whole model: input (one-hot | embedding) → L recurrent layers → linear → softmax CE.

Letters: N streams (batch), T time steps, V vocabulary, E embedding width,
H hidden units, G gates per cell, L layers, M = T·N flattened positions.

Parameters are one flat dict under PyTorch's `state_dict` names:
    embedding.weight              (V, E)    absent for one-hot input
    rnn.weight_ih_l{k}            (GH, D)   D = E, or V for one-hot layer 0, else H
    rnn.weight_hh_l{k}            (GH, H)
    rnn.bias_ih_l{k}, bias_hh_l{k} (GH,)
    decoder.weight                (V, H)    absent when tied to embedding.weight
    decoder.bias                  (V,)
Gradients use the same names. State is a dict {"h": (L, N, H)} plus "c" for LSTM.

Initialisation (as PyTorch's modules, plus the usual LSTM forget-gate bias):
recurrent weights and biases U(−1/√H, 1/√H); LSTM bias_ih of the forget gate
set to `forget_bias` (1.0) and bias_hh's to 0, so the sum starts near 1 and
early gradients flow through c; decoder U(−1/√H, 1/√H); embedding N(0, 1)
(nn.Embedding), or U(−1/√H, 1/√H) when tied, since it is then also the decoder.
One-hot input weights (rnn.weight_ih_l0 with V columns) are U(−1, 1): a one-hot
vector selects one column, so this gives gate pre-activations the scale an N(0, 1)
embedding of width H gets through a U(±1/√H) layer (std ≈ 0.58). With
U(±1/√H) instead the input barely moves the gates and a 2×256 LSTM on
tinyshakespeare sits at loss 3.25 for ~80 steps (2.21 at step 200 vs 1.78;
benchmarks/RESULTS.md).

The same model written plainly, step by step in float64, is charlm/nn/reference.py: the
tests hold this file to it. Three ways through the model, each as lean as its job allows:
    forward / backward    training: every activation kept for backward
    evaluate              forward only, in short time chunks: per-position nll
    charlm/nn/stepping.py    one character at a time from a prepared run
"""

from __future__ import annotations

import numpy as np

from charlm.config import ModelConfig
from charlm.nn import dropout, recurrent
from charlm.nn.embedding import lookup, lookup_backward
from charlm.nn.loss import cross_entropy_nll, softmax_cross_entropy, softmax_cross_entropy_backward


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in a fixed order."""
    V, H, E, GH = cfg.vocab_size, cfg.hidden, cfg.embedding_dim, cfg.gates * cfg.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    if E:
        shapes["embedding.weight"] = (V, E)
    for k in range(cfg.layers):
        shapes[f"rnn.weight_ih_l{k}"] = (GH, (E or V) if k == 0 else H)
        shapes[f"rnn.weight_hh_l{k}"] = (GH, H)
        shapes[f"rnn.bias_ih_l{k}"] = (GH,)
        shapes[f"rnn.bias_hh_l{k}"] = (GH,)
    if not cfg.tie_weights:
        shapes["decoder.weight"] = (V, H)
    shapes["decoder.bias"] = (V,)
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Fresh parameters, drawn from `rng` in `param_shapes` order (see module docstring)."""
    bound = 1.0 / np.sqrt(cfg.hidden)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name == "embedding.weight" and not cfg.tie_weights:
            w = rng.standard_normal(shape)
        elif name == "rnn.weight_ih_l0" and not cfg.embedding_dim:
            w = rng.uniform(-1.0, 1.0, shape)  # one-hot input: see the module docstring
        else:
            w = rng.uniform(-bound, bound, shape)
        params[name] = w.astype(dtype)
    if cfg.cell == "lstm":
        H = cfg.hidden
        for k in range(cfg.layers):
            params[f"rnn.bias_ih_l{k}"][H:2 * H] = cfg.forget_bias
            params[f"rnn.bias_hh_l{k}"][H:2 * H] = 0.0
    return params


def init_state(cfg: ModelConfig, n: int, dtype=np.float32) -> dict[str, np.ndarray]:
    """Zero state for n streams: {"h": (L, N, H)} plus "c" for LSTM."""
    state = {"h": np.zeros((cfg.layers, n, cfg.hidden), dtype)}
    if cfg.cell == "lstm":
        state["c"] = np.zeros((cfg.layers, n, cfg.hidden), dtype)
    return state


def decoder_weight(params: dict, cfg: ModelConfig) -> np.ndarray:
    return params["embedding.weight" if cfg.tie_weights else "decoder.weight"]


def prepare_layers(params: dict, cfg: ModelConfig, scaled: bool = True) -> list[dict]:
    """Every layer's weights in the form the recurrent loop uses (`recurrent.prepare`)."""
    return [recurrent.prepare(cfg.cell, *(params[f"rnn.{w}_l{k}"] for w in
                                          ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
                              scaled=scaled)
            for k in range(cfg.layers)]


def input_table(params: dict, cfg: ModelConfig, lw0: dict, positions: int) -> np.ndarray | None:
    """Layer 0's input projection of every vocabulary entry, (V, GH), or None.

    Layer 0's input is a row of a (V, ·) table (one-hot: of the identity), so
    projecting the V rows once and gathering is exact and cheaper than projecting
    all positions whenever V ≤ positions; backward then scatters dxw into V rows
    first, and both weight gradients become (V, ·) GEMMs instead of (M, ·) ones.
    """
    if not cfg.embedding_dim:
        return lw0["w_ih"].T + lw0["b"]                                 # (V, GH)
    if cfg.vocab_size > positions:
        return None
    table = params["embedding.weight"] @ lw0["w_ih"].T                  # (V, GH)
    table += lw0["b"]
    return table


def _stack_forward(params: dict, cfg: ModelConfig, lws: list[dict], table: np.ndarray | None,
                   x_ids: np.ndarray, T: int, N: int, state: dict,
                   rng: np.random.Generator | None) -> tuple[np.ndarray, list, list, dict]:
    """Input → recurrent layers over T steps of N streams (x_ids (M,) time-major).
    Returns the top layer's output (M, H), per-layer (input, buffers), dropout masks
    of the layer outputs ((T, N, H) or locked (1, N, H), only if rng) and the final state."""
    M = T * N
    dtype = params["decoder.bias"].dtype
    final = {name: np.empty_like(s) for name, s in state.items()}
    layers, masks = [], []
    x = None
    for k, lw in enumerate(lws):
        if k == 0 and table is not None:
            xw = lookup(table, x_ids)                                       # (M, GH)
        else:
            if k == 0:
                x = lookup(params["embedding.weight"], x_ids)               # (M, E)
            xw = x @ lw["w_ih"].T                                           # (M, GH) all T steps at once
            xw += lw["b"]
        hs, (h_t, c_t), buf = recurrent.forward(
            xw.reshape(T, N, -1), state["h"][k], state["c"][k] if "c" in state else None, lw)
        final["h"][k] = h_t
        if c_t is not None:
            final["c"][k] = c_t
        layers.append((x, buf))
        x = hs[1:].reshape(M, cfg.hidden)                                   # (M, H) layer output
        if rng is not None:
            masks.append(dropout.layer_mask(rng, cfg, T, N, dtype))         # (T, N, H) or (1, N, H)
            x = dropout.apply(x, masks[-1])                                 # (M, H)
    return x, layers, masks, final


def forward(params: dict, cfg: ModelConfig, ids: np.ndarray, targets: np.ndarray | None,
            state: dict, rng: np.random.Generator | None = None, want_logits: bool = False):
    """Run the model over one chunk.

    ids, targets: (N, T) integer arrays (targets may be None: no loss).
    state: initial state, as from `init_state` or a previous chunk; not modified.
    rng: a Generator turns dropout on (training: charlm/nn/dropout.py); None means evaluation.
    Returns (loss in mean nats/char or None, logits (N, T, V) or None, final state, cache).
    The final state is detached: feeding it to the next chunk truncates BPTT there.
    """
    N, T = ids.shape
    M = N * T
    x_ids = np.ascontiguousarray(ids.T, dtype=np.intp).reshape(M)  # (M,) time-major
    drop = rng is not None and cfg.stochastic
    weight_masks = dropout.weight_masks(rng, cfg, params["decoder.bias"].dtype) if drop else {}
    used = dropout.masked(params, weight_masks)  # the input and recurrent weights this step runs with
    lws = prepare_layers(used, cfg, scaled=M >= 2 * cfg.hidden)  # copies pay off over ~2H positions
    table = input_table(used, cfg, lws[0], M)
    x, layers, masks, final = _stack_forward(used, cfg, lws, table, x_ids, T, N, state,
                                             rng if drop and cfg.dropout > 0 else None)
    logits = x @ decoder_weight(params, cfg).T                              # (M, V)
    logits += params["decoder.bias"]
    out_logits = logits.reshape(T, N, -1).transpose(1, 0, 2).copy() if want_logits else None  # (N, T, V)
    cache = {"ids": x_ids, "shape": (N, T), "layers": layers, "masks": masks, "x_top": x,
             "table": table is not None, "weight_masks": weight_masks,
             "embedding": used.get("embedding.weight")}
    if targets is None:
        return None, out_logits, final, cache
    cache["targets"] = np.ascontiguousarray(targets.T, dtype=np.intp).reshape(M)  # (M,)
    loss, cache["nll"], cache["probs"] = softmax_cross_entropy(logits, cache["targets"])
    return loss, out_logits, final, cache


def backward(params: dict, cfg: ModelConfig, cache: dict,
             dlogits: np.ndarray | None = None) -> tuple[dict, dict]:
    """Gradients of the mean loss w.r.t. every parameter and the initial state.

    dlogits: optional (M, V) time-major gradient w.r.t. the logits, used instead
    of the mean loss's (charlm/lessons/gradflow.py passes the loss at one position only).
    Returns (grads under the parameter names, dstate shaped like the state).
    """
    N, T = cache["shape"]
    M, V, H = N * T, cfg.vocab_size, cfg.hidden
    ids = cache["ids"]
    grads: dict[str, np.ndarray] = {}
    if dlogits is None:
        dlogits = softmax_cross_entropy_backward(cache["probs"], cache["targets"])  # (M, V)
    grads["decoder.bias"] = dlogits.sum(axis=0)                             # (V,)
    d_dec = dlogits.T @ cache["x_top"]                                      # (V, H)
    dx = dlogits @ decoder_weight(params, cfg)                             # (M, H)
    dstate = {"h": np.empty((cfg.layers, N, H), dx.dtype)}
    if cfg.cell == "lstm":
        dstate["c"] = np.empty((cfg.layers, N, H), dx.dtype)
    for k in reversed(range(cfg.layers)):
        if cache["masks"]:
            dropout.apply(dx, cache["masks"][k], out=dx)
        x_in, buf = cache["layers"][k]
        dxw, g, (dh0, dc0) = recurrent.backward(dx.reshape(T, N, H), buf)
        dxw = dxw.reshape(M, -1)                                            # (M, GH)
        w_ih = params[f"rnn.weight_ih_l{k}"]                                # (GH, D)
        grads[f"rnn.weight_hh_l{k}"] = g["w_hh"]
        grads[f"rnn.bias_hh_l{k}"] = g["b_hh"]
        dstate["h"][k] = dh0
        if dc0 is not None:
            dstate["c"][k] = dc0
        if k == 0 and cache["table"]:  # gradient w.r.t. the (V, GH) table, then two small GEMMs
            dtable = lookup_backward(dxw, ids, V)                          # (V, GH)
            grads["rnn.bias_ih_l0"] = dtable.sum(axis=0)                    # (GH,)
            if cfg.embedding_dim:
                grads["rnn.weight_ih_l0"] = dtable.T @ cache["embedding"]   # (GH, E)
                dx = dtable @ w_ih                                          # (V, E) = d embedding
            else:
                grads["rnn.weight_ih_l0"] = np.ascontiguousarray(dtable.T)  # (GH, V)
            continue
        # LSTM / RNN: dxw is also the gradient w.r.t. h W_hhᵀ + b_hh, already summed (GRU: r gates b_hn)
        grads[f"rnn.bias_ih_l{k}"] = dxw.sum(axis=0) if recurrent.CELLS[cfg.cell].direct else g["b_hh"].copy()
        grads[f"rnn.weight_ih_l{k}"] = dxw.T @ x_in                         # (GH, D) one GEMM
        dx = dxw @ w_ih                                                     # (M, D)
        if k == 0:
            dx = lookup_backward(dx, ids, V)                                # (V, E) = d embedding
    if cfg.embedding_dim:
        grads["embedding.weight"] = dx
    for name, mask in cache["weight_masks"].items():  # DropConnect: only the kept weights were used
        grads[name] *= mask
    if cfg.tie_weights:
        grads["embedding.weight"] += d_dec
    else:
        grads["decoder.weight"] = d_dec
    return {name: grads[name] for name in params}, dstate


def evaluate(params: dict, cfg: ModelConfig, ids: np.ndarray, targets: np.ndarray, state: dict,
             chunk_positions: int = 1024) -> tuple[np.ndarray, dict]:
    """Forward only, for evaluation: per-position nll and the final state.

    ids, targets: (N, T). Runs `chunk_positions // N` steps at a time (at least one),
    carrying the state, so memory stays bounded at any batch size; keeps no
    backward caches and forms no probabilities. Same numbers as `forward`.
    Returns (nll in nats, (N, T), parameter dtype; final state).
    """
    N, T = ids.shape
    lws = prepare_layers(params, cfg)
    steps = max(1, min(T, chunk_positions // N))
    table = input_table(params, cfg, lws[0], steps * N)
    x_ids = np.ascontiguousarray(ids.T, dtype=np.intp)                     # (T, N)
    y_ids = np.ascontiguousarray(targets.T, dtype=np.intp)                 # (T, N)
    w_dec_t = decoder_weight(params, cfg).T                                # (H, V)
    nll = np.empty((T, N), params["decoder.bias"].dtype)                    # (T, N)
    for t0 in range(0, T, steps):
        t1 = min(T, t0 + steps)
        x, _, _, state = _stack_forward(params, cfg, lws, table, x_ids[t0:t1].reshape(-1),
                                        t1 - t0, N, state, None)
        logits = x @ w_dec_t                                                # ((t1-t0)N, V)
        logits += params["decoder.bias"]
        nll[t0:t1] = cross_entropy_nll(logits, y_ids[t0:t1].reshape(-1)).reshape(t1 - t0, N)
    return np.ascontiguousarray(nll.T), state
