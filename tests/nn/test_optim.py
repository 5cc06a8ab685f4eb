"""The optimizers, clipping and the learning-rate schedule against their formulas,
written out here independently in float64 and compared step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from charlm.config import OptimConfig
from charlm.nn import optim

STEPS = 5


def trajectory(cfg: OptimConfig, lr: float = 0.01, seed: int = 0):
    """charlm's parameters after each of STEPS updates, and the gradients it was given."""
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    start = {k: v.copy() for k, v in params.items()}
    state = optim.init_state(cfg, params)
    grads_seen, after = [], []
    for _ in range(STEPS):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        grads_seen.append({k: g.copy() for k, g in grads.items()})
        optim.update(params, grads, state, cfg, lr)
        after.append({k: v.copy() for k, v in params.items()})
    return start, grads_seen, after


def test_adam_matches_its_formula():
    cfg = OptimConfig(name="adam", beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.0)  # Adam alone
    start, grads, after = trajectory(cfg)
    for name in start:
        p, m, v = start[name].copy(), 0.0, 0.0
        for t, g in enumerate(grads, start=1):
            m = 0.8 * m + 0.2 * g[name]
            v = 0.95 * v + 0.05 * g[name] ** 2
            m_hat, v_hat = m / (1 - 0.8 ** t), v / (1 - 0.95 ** t)
            p = p - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-6)     # torch.optim.Adam's update
            np.testing.assert_allclose(after[t - 1][name], p, rtol=1e-12, atol=1e-14)


def test_rmsprop_matches_its_formula():
    cfg = OptimConfig(name="rmsprop", alpha=0.9, eps=1e-5)
    start, grads, after = trajectory(cfg)
    for name in start:
        p, v = start[name].copy(), 0.0
        for t, g in enumerate(grads, start=1):
            v = 0.9 * v + 0.1 * g[name] ** 2
            p = p - 0.01 * g[name] / (np.sqrt(v) + 1e-5)
            np.testing.assert_allclose(after[t - 1][name], p, rtol=1e-12, atol=1e-14)


def test_sgd_momentum_matches_its_formula():
    cfg = OptimConfig(name="sgd", momentum=0.7)
    start, grads, after = trajectory(cfg)
    for name in start:
        p, buf = start[name].copy(), 0.0
        for t, g in enumerate(grads, start=1):
            buf = 0.7 * buf + g[name]                            # torch.optim.SGD, dampening 0
            p = p - 0.01 * buf
            np.testing.assert_allclose(after[t - 1][name], p, rtol=1e-12, atol=1e-14)


def test_clipping_scales_to_the_global_norm():
    rng = np.random.default_rng(1)
    grads = {"a": rng.normal(size=(5, 5)) * 3, "b": rng.normal(size=7) * 3}
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    expected = {k: g * 2.0 / (norm + 1e-6) for k, g in grads.items()}
    assert optim.clip_grads(grads, 2.0) == pytest.approx(norm, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-12)
    small = {"a": np.full(3, 0.1)}
    assert optim.clip_grads(small, 2.0) == pytest.approx(math.sqrt(0.03))
    np.testing.assert_array_equal(small["a"], 0.1)              # under the limit: untouched
    big = {"a": np.full(3, 100.0)}
    optim.clip_grads(big, 0.0)
    np.testing.assert_array_equal(big["a"], 100.0)              # 0 disables clipping


def test_warmup_then_cosine_schedule():
    cfg = OptimConfig(lr=1.0, schedule="cosine", warmup_steps=4, min_lr_ratio=0.1)
    assert [optim.learning_rate(cfg, 0.0, s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    for p in (0.0, 0.25, 0.5, 0.9, 1.0):
        expected = 0.1 + 0.5 * 0.9 * (1 + math.cos(math.pi * p))
        assert optim.learning_rate(cfg, p, 10) == pytest.approx(expected, rel=1e-12)
    assert optim.learning_rate(cfg, 1.7, 10) == pytest.approx(0.1)   # past the end: the floor
    flat = OptimConfig(lr=0.3, schedule="constant")
    assert optim.learning_rate(flat, 0.5, 0) == optim.learning_rate(flat, 1.0, 99) == 0.3
