"""The fast forward: state carrying, one step at a time, dtypes, initialisation (its math against
charlm/nn/reference.py: tests/nn/test_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.nn import model, stepping


def random_setup(cfg, N, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype)
    state = model.init_state(cfg, N, dtype)
    for s in state.values():
        s += rng.normal(0, 0.5, s.shape).astype(dtype)
    return params, state, rng


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_windows_carried_equal_one_window(cell):
    cfg = ModelConfig(9, cell=cell, layers=2, hidden=8, embedding_dim=5)
    params, state, rng = random_setup(cfg, N=4, dtype=np.float64)
    ids = rng.integers(0, 9, (4, 12))
    targets = rng.integers(0, 9, (4, 12))
    loss_2t, logits_2t, final_2t, _ = model.forward(params, cfg, ids, targets, state, want_logits=True)
    loss_a, logits_a, mid, _ = model.forward(params, cfg, ids[:, :6], targets[:, :6], state, want_logits=True)
    loss_b, logits_b, final, _ = model.forward(params, cfg, ids[:, 6:], targets[:, 6:], mid, want_logits=True)
    np.testing.assert_allclose(np.concatenate([logits_a, logits_b], axis=1), logits_2t, rtol=1e-12, atol=1e-12)
    assert abs((loss_a + loss_b) / 2 - loss_2t) < 1e-12
    for name in final_2t:
        np.testing.assert_allclose(final[name], final_2t[name], rtol=1e-12, atol=1e-12)


def test_forward_leaves_state_untouched():
    cfg = ModelConfig(5, hidden=4)
    params, state, rng = random_setup(cfg, N=2)
    before = {k: v.copy() for k, v in state.items()}
    model.forward(params, cfg, rng.integers(0, 5, (2, 3)), None, state)
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])


def assert_steps_match_forward(params, cfg, ids, state, rtol, atol):
    """`stepping.step` one column of ids (N, T) at a time gives forward's logits and final state."""
    _, logits, final, _ = model.forward(params, cfg, ids, None, state, want_logits=True)
    for t in range(ids.shape[1]):
        step_logits, state = stepping.step(params, cfg, ids[:, t], state)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=rtol, atol=atol)
    for name in final:
        np.testing.assert_allclose(state[name], final[name], rtol=rtol, atol=atol)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_matches_forward(cell):
    cfg = ModelConfig(6, cell=cell, layers=2, hidden=5, embedding_dim=3)
    params, state, rng = random_setup(cfg, N=2, dtype=np.float32)
    assert_steps_match_forward(params, cfg, rng.integers(0, 6, (2, 4)), state, rtol=1e-5, atol=1e-6)


def test_float32_stays_float32():
    cfg = ModelConfig(6, cell="gru", layers=2, hidden=5, embedding_dim=3, dropout=0.2)
    params, state, rng = random_setup(cfg, N=2, dtype=np.float32)
    ids = rng.integers(0, 6, (2, 4))
    _, logits, final, cache = model.forward(params, cfg, ids, ids, state, rng=rng, want_logits=True)
    grads, dstate = model.backward(params, cfg, cache)
    assert logits.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(s.dtype == np.float32 for s in list(final.values()) + list(dstate.values()))


def test_init_is_documented_scheme():
    cfg = ModelConfig(10, cell="lstm", layers=2, hidden=64)
    params = model.init_params(cfg, np.random.default_rng(0))
    bound = 1 / np.sqrt(64)
    assert np.abs(params["rnn.weight_hh_l1"]).max() <= bound
    np.testing.assert_array_equal(params["rnn.bias_ih_l0"][64:128], 1.0)
    np.testing.assert_array_equal(params["rnn.bias_hh_l0"][64:128], 0.0)
    again = model.init_params(cfg, np.random.default_rng(0))
    assert all(np.array_equal(params[k], again[k]) for k in params)
