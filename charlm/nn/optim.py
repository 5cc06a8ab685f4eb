"""Optimizers (Adam, RMSprop, SGD with momentum), global-norm clipping, LR schedules.

Optimizer state is plain data — {"step": int, "slots": {slot: {param name: array}}} —
so it pickles into a checkpoint and resumes exactly. Updates happen in place.
"""

from __future__ import annotations

import math

import numpy as np

from charlm.config import OptimConfig

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine")


_SLOTS = {"adam": ("m", "v"), "rmsprop": ("v",), "sgd": ("m",)}


def init_state(cfg: OptimConfig, params: dict[str, np.ndarray]) -> dict:
    """Zeroed moments for every parameter, under the parameter names."""
    return {"step": 0, "slots": {slot: {k: np.zeros_like(p) for k, p in params.items()}
                                 for slot in _SLOTS[cfg.name]}}


def clip_grads(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm
    (0 disables). Returns the norm before clipping (inf/nan if the grads are)."""
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


def learning_rate(cfg: OptimConfig, progress: float, step: int) -> float:
    """LR at `step` (0-based). `progress` in [0, 1] is how far the run is toward its end
    (steps or wall-clock, whichever budget binds); cosine decays over it after warm-up."""
    if cfg.schedule == "constant":
        return cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1.0 + math.cos(math.pi * p))


def update(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: dict,
           cfg: OptimConfig, lr: float) -> None:
    """One optimizer step, in place on params and state. Each array is updated with
    `out=` operations through one scratch buffer, no temporaries; called with flat
    buffers (charlm/engines/flat.py) the whole model is a handful of numpy calls.
    The torch engine restates these formulas in torch (TorchTeam.update in
    charlm/engines/torch_team.py): change both together; tests/engines/test_torch_engine.py
    (test_float64_step_is_charlm_s_formulas) holds them equal."""
    state["step"] += 1
    t = state["step"]
    slots = state["slots"]
    if cfg.name == "adam":
        c1 = 1.0 - cfg.beta1 ** t
        c2 = 1.0 - cfg.beta2 ** t
        step_size = lr * math.sqrt(c2) / c1
        eps = cfg.eps * math.sqrt(c2)  # ε applied to the bias-corrected v, as torch.optim.Adam
    for name, p in params.items():
        g = grads[name]
        tmp = np.empty_like(g)
        if cfg.name == "adam":
            m, v = slots["m"][name], slots["v"][name]
            m *= cfg.beta1
            np.multiply(g, 1.0 - cfg.beta1, out=tmp)
            m += tmp                                    # m = β1 m + (1 − β1) g
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - cfg.beta2
            v *= cfg.beta2
            v += tmp                                    # v = β2 v + (1 − β2) g²
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp                                    # p −= lr·√c2/c1 · m / (√v + ε√c2)
        elif cfg.name == "rmsprop":
            v = slots["v"][name]
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - cfg.alpha
            v *= cfg.alpha
            v += tmp                                    # v = α v + (1 − α) g²
            np.sqrt(v, out=tmp)
            tmp += cfg.eps
            np.divide(g, tmp, out=tmp)
            tmp *= lr
            p -= tmp                                    # p −= lr · g / (√v + ε)
        else:
            m = slots["m"][name]
            m *= cfg.momentum
            m += g                                      # m = μ m + g
            np.multiply(m, lr, out=tmp)
            p -= tmp                                    # p −= lr · m
