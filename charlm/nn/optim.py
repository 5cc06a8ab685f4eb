"""Optimizers (Adam, RMSprop, SGD with momentum), global-norm clipping, LR schedules,
decoupled weight decay and a running average of the weights.

Optimizer state is plain data — {"step": int, "slots": {slot: {param name: array}}} —
so it pickles into a checkpoint and resumes exactly. Updates happen in place.

Weight decay (--weight-decay wd) is decoupled from the gradient, as in AdamW
(Loshchilov & Hutter): before each step every weight matrix (not the biases) is
multiplied by 1 − lr·wd, whatever the optimizer, and clipping never sees it.
The average (--ema d) is one more slot, "ema": after each step
    ema ← ema + w_t (p − ema),   w_t = 1 − min(d, (1 + t)/(10 + t))
an exponential moving average whose horizon grows from a few steps to 1/(1 − d)
(the warm-up of TensorFlow's ExponentialMovingAverage), so that it follows the
parameters early in a run. Training never reads it; validation and best.pkl use it
(charlm/training/loop.py), and being a slot it is checkpointed and resumed with the rest.
"""

from __future__ import annotations

import math

import numpy as np

from charlm.config import OptimConfig

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine")


_SLOTS = {"adam": ("m", "v"), "rmsprop": ("v",), "sgd": ("m",)}


def init_state(cfg: OptimConfig, params: dict[str, np.ndarray]) -> dict:
    """Zeroed moments for every parameter, under the parameter names; with cfg.ema the
    average ("ema") starts as a copy of the parameters."""
    slots = {slot: {k: np.zeros_like(p) for k, p in params.items()} for slot in _SLOTS[cfg.name]}
    if cfg.ema:
        slots["ema"] = {k: p.copy() for k, p in params.items()}
    return {"step": 0, "slots": slots}


def ema_weight(cfg: OptimConfig, step: int) -> float:
    """w_t: the share of the parameters after update `step` (1-based) in the average."""
    return 1.0 - min(cfg.ema, (1.0 + step) / (10.0 + step))


def decayed(params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The arrays weight decay shrinks: the weight matrices, not the biases."""
    return [p for p in params.values() if p.ndim >= 2]


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
           cfg: OptimConfig, lr: float, matrices: list[np.ndarray] | None = None) -> None:
    """One optimizer step, in place on params and state. Each array is updated with
    `out=` operations through one scratch buffer, no temporaries; called with flat
    buffers (charlm/engines/flat.py) the whole model is a handful of numpy calls.
    matrices: what weight decay shrinks, views into params (default `decayed(params)`;
    a flat buffer passes its matrices' views). The torch engine restates these formulas in
    torch (TorchTeam.update in charlm/engines/torch_team.py): change both together;
    tests/engines/test_torch_engine.py (test_float64_step_is_charlm_s_formulas) holds them equal."""
    if cfg.weight_decay:
        shrink = 1.0 - lr * cfg.weight_decay
        for p in decayed(params) if matrices is None else matrices:
            p *= shrink                                 # p −= lr·wd·p, outside the gradient (AdamW)
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
        if cfg.ema:
            ema = slots["ema"][name]
            np.subtract(p, ema, out=tmp)
            tmp *= ema_weight(cfg, t)
            ema += tmp                                  # ema += w_t (p − ema)
