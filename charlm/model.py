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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.errors import UsageError
from charlm.nn import recurrent
from charlm.nn.dropout import make_mask
from charlm.nn.embedding import lookup, lookup_backward
from charlm.nn.loss import softmax_cross_entropy, softmax_cross_entropy_backward


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int                 # V: distinct characters
    cell: str = "lstm"              # rnn | lstm | gru
    layers: int = 2                 # L: stacked recurrent layers
    hidden: int = 256               # H: units per layer
    embedding_dim: int = 0          # E: learned embedding width; 0 = one-hot input
    dropout: float = 0.0            # inverted dropout between layers and before the decoder
    tie_weights: bool = False       # decoder.weight shared with embedding.weight (E == H)
    forget_bias: float = 1.0        # LSTM: initial forget-gate bias

    def __post_init__(self):
        if self.cell not in recurrent.CELLS:
            raise UsageError(f"unknown cell {self.cell!r}; choose one of {', '.join(recurrent.CELLS)}")
        if self.vocab_size < 1 or self.layers < 1 or self.hidden < 1 or self.embedding_dim < 0:
            raise UsageError("vocab size, layers and hidden size must be positive, embedding dim ≥ 0")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.embedding_dim != self.hidden:
            raise UsageError("--tie-weights needs an embedding as wide as the hidden layer "
                             f"(embedding dim {self.embedding_dim} ≠ hidden {self.hidden})")

    @property
    def gates(self) -> int:
        return recurrent.CELLS[self.cell].gates


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


def _decoder_weight(params: dict, cfg: ModelConfig) -> np.ndarray:
    return params["embedding.weight" if cfg.tie_weights else "decoder.weight"]


def forward(params: dict, cfg: ModelConfig, ids: np.ndarray, targets: np.ndarray | None,
            state: dict, rng: np.random.Generator | None = None, want_logits: bool = False):
    """Run the model over one chunk.

    ids, targets: (N, T) integer arrays (targets may be None: no loss).
    state: initial state, as from `init_state` or a previous chunk; not modified.
    rng: a Generator turns dropout on (training); None means evaluation.
    Returns (loss in mean nats/char or None, logits (N, T, V) or None, final state, cache).
    The final state is detached: feeding it to the next chunk truncates BPTT there.
    """
    N, T = ids.shape
    M = N * T
    dtype = params["decoder.bias"].dtype
    x_ids = np.ascontiguousarray(ids.T, dtype=np.intp).reshape(M)  # (M,) time-major
    drop = rng is not None and cfg.dropout > 0.0
    layers, masks = [], []
    final = {name: np.empty_like(s) for name, s in state.items()}
    x = lookup(params["embedding.weight"], x_ids) if cfg.embedding_dim else None  # (M, E)
    for k in range(cfg.layers):
        w_ih = params[f"rnn.weight_ih_l{k}"]                                 # (GH, D)
        if x is None:  # one-hot input: x·W_ihᵀ is row x_id of W_ihᵀ
            xw = lookup(np.ascontiguousarray(w_ih.T), x_ids)                # (M, GH)
        else:
            xw = x @ w_ih.T                                                 # (M, GH) all T steps at once
        xw += params[f"rnn.bias_ih_l{k}"]
        hs, (h_t, c_t), buf = recurrent.forward(
            cfg.cell, xw.reshape(T, N, -1), state["h"][k],
            state["c"][k] if "c" in state else None,
            params[f"rnn.weight_hh_l{k}"], params[f"rnn.bias_hh_l{k}"])
        final["h"][k] = h_t
        if c_t is not None:
            final["c"][k] = c_t
        layers.append((x, buf))
        x = hs[1:].reshape(M, cfg.hidden)                                   # (M, H) layer output
        if drop:
            masks.append(make_mask(rng, x.shape, cfg.dropout, dtype))       # (M, H)
            x = x * masks[-1]
    logits = x @ _decoder_weight(params, cfg).T                              # (M, V)
    logits += params["decoder.bias"]
    out_logits = logits.reshape(T, N, -1).transpose(1, 0, 2).copy() if want_logits else None  # (N, T, V)
    cache = {"ids": x_ids, "shape": (N, T), "layers": layers, "masks": masks, "x_top": x}
    if targets is None:
        return None, out_logits, final, cache
    cache["targets"] = np.ascontiguousarray(targets.T, dtype=np.intp).reshape(M)  # (M,)
    loss, cache["nll"], cache["probs"] = softmax_cross_entropy(logits, cache["targets"])
    return loss, out_logits, final, cache


def backward(params: dict, cfg: ModelConfig, cache: dict) -> tuple[dict, dict]:
    """Gradients of the mean loss w.r.t. every parameter and the initial state.

    Returns (grads under the parameter names, dstate shaped like the state).
    """
    N, T = cache["shape"]
    M, V, H = N * T, cfg.vocab_size, cfg.hidden
    ids = cache["ids"]
    grads: dict[str, np.ndarray] = {}
    dlogits = softmax_cross_entropy_backward(cache["probs"], cache["targets"])  # (M, V)
    grads["decoder.bias"] = dlogits.sum(axis=0)                             # (V,)
    d_dec = dlogits.T @ cache["x_top"]                                      # (V, H)
    dx = dlogits @ _decoder_weight(params, cfg)                             # (M, H)
    dstate = {"h": np.empty((cfg.layers, N, H), dx.dtype)}
    if cfg.cell == "lstm":
        dstate["c"] = np.empty((cfg.layers, N, H), dx.dtype)
    for k in reversed(range(cfg.layers)):
        if cache["masks"]:
            dx *= cache["masks"][k]
        x_in, buf = cache["layers"][k]
        dxw, g, (dh0, dc0) = recurrent.backward(dx.reshape(T, N, H), buf)
        dxw = dxw.reshape(M, -1)                                            # (M, GH)
        grads[f"rnn.weight_hh_l{k}"] = g["w_hh"]
        grads[f"rnn.bias_hh_l{k}"] = g["b_hh"]
        grads[f"rnn.bias_ih_l{k}"] = dxw.sum(axis=0)                       # (GH,)
        dstate["h"][k] = dh0
        if dc0 is not None:
            dstate["c"][k] = dc0
        if x_in is None:  # one-hot layer 0: scatter rows back into W_ihᵀ
            grads[f"rnn.weight_ih_l{k}"] = np.ascontiguousarray(lookup_backward(dxw, ids, V).T)
        else:
            grads[f"rnn.weight_ih_l{k}"] = dxw.T @ x_in                     # (GH, D) one GEMM
            if k > 0 or cfg.embedding_dim:
                dx = dxw @ params[f"rnn.weight_ih_l{k}"]                    # (M, D)
    if cfg.embedding_dim:
        grads["embedding.weight"] = lookup_backward(dx, ids, V)             # (V, E)
    if cfg.tie_weights:
        grads["embedding.weight"] += d_dec
    else:
        grads["decoder.weight"] = d_dec
    return {name: grads[name] for name in params}, dstate


def step(params: dict, cfg: ModelConfig, ids: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
    """One character for each of N streams (sampling): ids (N,) -> logits (N, V), next state."""
    _, logits, state, _ = forward(params, cfg, ids[:, None], None, state, want_logits=True)
    return logits[:, 0], state
