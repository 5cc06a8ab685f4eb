"""Dropout for a recurrent stack: training-time masks from a passed-in numpy Generator.

Letters: T time steps, N streams (lanes), H hidden units, V vocabulary, E embedding
width, G gates; activations are time-major, M = T·N rows.

Three kinds, all inverted (kept units scaled by 1/(1 − p), so evaluation needs no
rescaling, and all of them are off at evaluation and sampling):

    layer outputs    each layer's output, and so the decoder's input, times a mask:
                     a fresh one at every step (T, N, H), or with `locked_dropout`
                     one per lane for the whole window (1, N, H), shared by its T
                     steps (variational dropout; AWD-LSTM's "locked" dropout)
    weight drop      DropConnect on every layer's hidden-to-hidden W_hh (G·H, H): one
                     mask per training step for all lanes and steps (AWD-LSTM)
    embed dropout    whole characters dropped from the input: rows of the embedding
                     (V, E), or columns of layer 0's W_ih for a one-hot input, one
                     mask per training step (AWD-LSTM's embedding dropout)

The weight masks act on parameters: the forward runs with `masked(params, masks)`,
and the gradient of the loss with respect to a raw parameter is the gradient with
respect to the masked one, times the mask. Masks are drawn in a fixed order (weights
first, then each layer's output), so the same generator gives the same run.
"""

from __future__ import annotations

import numpy as np

from charlm.config import ModelConfig


def make_mask(rng: np.random.Generator, shape: tuple, p: float, dtype) -> np.ndarray:
    """Keep each unit with probability 1 − p and scale kept ones by 1/(1 − p),
    so the expected activation is unchanged and evaluation needs no rescaling.
    Forward and backward are both `x * mask`."""
    keep = 1.0 - p
    scale = np.asarray(1.0 / keep, dtype=dtype)
    return (rng.random(shape, dtype=np.float32) < keep).astype(dtype) * scale


def layer_mask(rng: np.random.Generator, cfg: ModelConfig, T: int, N: int, dtype) -> np.ndarray:
    """A mask for one layer's output over a window: (T, N, H), or (1, N, H) when locked."""
    return make_mask(rng, (1 if cfg.locked_dropout else T, N, cfg.hidden), cfg.dropout, dtype)


def apply(x: np.ndarray, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x (M, H), M = T·N time-major, times a layer mask (T, N, H) or (1, N, H) → (M, H)."""
    _, N, H = mask.shape
    view = None if out is None else out.reshape(-1, N, H)                   # (T, N, H)
    return np.multiply(x.reshape(-1, N, H), mask, out=view).reshape(x.shape)  # (M, H)


def weight_masks(rng: np.random.Generator, cfg: ModelConfig, dtype) -> dict[str, np.ndarray]:
    """{parameter name: mask broadcastable to it} for one training step: the input
    characters dropped (embedding rows (V, 1), or one-hot input columns (1, V)), then
    each layer's W_hh (G·H, H). Empty when neither is on."""
    masks = {}
    if cfg.embed_dropout > 0:
        V = cfg.vocab_size
        keep = make_mask(rng, (V,), cfg.embed_dropout, dtype)               # (V,)
        if cfg.embedding_dim:
            masks["embedding.weight"] = keep[:, None]                       # (V, 1) rows
        else:
            masks["rnn.weight_ih_l0"] = keep[None, :]                       # (1, V) columns
    if cfg.weight_drop > 0:
        shape = (cfg.gates * cfg.hidden, cfg.hidden)
        for k in range(cfg.layers):
            masks[f"rnn.weight_hh_l{k}"] = make_mask(rng, shape, cfg.weight_drop, dtype)  # (GH, H)
    return masks


def masked(params: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The parameters a training forward uses: `params` itself without masks, else a dict
    with the masked ones replaced by copies (params is not modified)."""
    if not masks:
        return params
    return params | {name: params[name] * m for name, m in masks.items()}
