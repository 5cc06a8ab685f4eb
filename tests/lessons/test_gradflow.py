"""Gradient flow through time (charlm/lessons/gradflow.py) against float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.errors import CharlmError
from charlm.lessons import gradflow
from charlm.nn import model
from tests.gradcheck import numeric_grad, rel_error

V, K, W = 6, 4, 3


def tiny(cell: str, seed: int = 0) -> tuple[dict, ModelConfig, np.ndarray]:
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(vocab_size=V, cell=cell, layers=2, hidden=3, embedding_dim=2 if cell == "gru" else 0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.3, p.shape)
    return params, cfg, rng.integers(0, V, 24)


def numeric_lag_gradient(params, cfg, ids, t: int, k: int) -> np.ndarray:
    """∂L_t/∂h_{t−k} by central differences: the state after reading ids[t−K−W+1 .. t−k] in one
    pass, then the forward-only evaluate over the window, perturbing that state's h."""
    warm = ids[t - K - W + 1: t - k + 1][None]                             # (1, ·)
    _, state = model.evaluate(params, cfg, warm, warm, model.init_state(cfg, 1, np.float64))
    x, y = ids[t - k + 1: t + 1][None], ids[t - k + 2: t + 2][None]        # (1, k)

    def loss_at_t():
        return float(model.evaluate(params, cfg, x, y, state)[0][0, -1])

    return numeric_grad(loss_at_t, state["h"])[:, 0].reshape(-1)          # (L·H,)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_lag_gradients_match_central_differences(cell):
    params, cfg, ids = tiny(cell)
    t = gradflow.positions(len(ids), K, 4, W)
    assert len(t) == 4
    got = gradflow.lag_gradients(params, cfg, ids, t, K, W)               # (P, K, L·H)
    assert got.shape == (4, K, cfg.layers * cfg.hidden)
    for p, tp in enumerate(t):
        for k in range(1, K + 1):
            want = numeric_lag_gradient(params, cfg, ids, int(tp), k)
            assert np.abs(want).max() > 1e-8                               # a real gradient, not zeros
            assert rel_error(got[p, k - 1], want) < 1e-6, (cell, tp, k)


def test_measure_summarises_the_norms():
    params, cfg, ids = tiny("rnn", seed=1)
    flow = gradflow.measure(params, cfg, ids, max_lag=K, count=5, warmup=W)
    t = gradflow.positions(len(ids), K, 5, W)
    norms = np.linalg.norm(gradflow.lag_gradients(params, cfg, ids, t, K, W), axis=2)  # (P, K)
    assert flow.lags == [1, 2, 3, 4] and flow.positions == len(t)
    np.testing.assert_allclose(flow.mean, norms.mean(axis=0))
    np.testing.assert_allclose(flow.median, np.median(norms, axis=0))
    assert all(a <= m <= b for a, m, b in zip(flow.q25, flow.median, flow.q75, strict=True))
    assert gradflow.decay(flow) == pytest.approx(flow.mean[-1] / flow.mean[0])


def test_short_text_is_refused():
    params, cfg, ids = tiny("lstm")
    with pytest.raises(CharlmError, match="too short"):
        gradflow.measure(params, cfg, ids[:K + W], max_lag=K, warmup=W)
    with pytest.raises(CharlmError, match="at least 1"):
        gradflow.measure(params, cfg, ids, max_lag=0)
