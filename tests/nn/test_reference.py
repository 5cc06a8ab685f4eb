"""The plain math (charlm/nn/reference.py): proven by central differences, and the fast path
(charlm/nn/model.py over charlm/nn/recurrent.py) checked against it — forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.nn import model, reference
from tests.gradcheck import numeric_grad, rel_error

CONFIGS = [dict(cell=c, layers=L, embedding_dim=E, tie_weights=tie)
           for c in ("rnn", "lstm", "gru") for L, E, tie in ((1, 0, False), (2, 5, False), (3, 0, False), (2, 6, True))]


def setup(cfg: ModelConfig, N: int = 3, T: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():  # off the special init (zero biases, forget bias) to exercise every term
        p += rng.normal(0, 0.3, p.shape)
    state = model.init_state(cfg, N, np.float64)
    for s in state.values():
        s += rng.normal(0, 0.5, s.shape)
    ids = rng.integers(0, cfg.vocab_size, (N, T))
    ids[0, :3] = 1  # repeated ids: their embedding rows must add up
    return params, state, ids, rng.integers(0, cfg.vocab_size, (N, T))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_reference_backward_is_the_derivative(cell):
    cfg = ModelConfig(5, cell=cell, layers=2, hidden=3, embedding_dim=2)
    params, state, ids, targets = setup(cfg, N=2, T=4)
    grads, dstate = reference.backward(params, cfg, reference.forward(params, cfg, ids, targets, state)[3])

    def loss():
        return reference.forward(params, cfg, ids, targets, state)[0]

    for name, p in params.items():
        assert rel_error(grads[name], numeric_grad(loss, p)) < 1e-7, name
    for name, s in state.items():
        assert rel_error(dstate[name], numeric_grad(loss, s)) < 1e-7, name


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "{cell}-L{layers}-E{embedding_dim}-{tie_weights}".format(**kw))
def test_fast_path_equals_the_reference(kw):
    cfg = ModelConfig(11, hidden=6, **kw)
    params, state, ids, targets = setup(cfg)
    loss, logits, final, cache = model.forward(params, cfg, ids, targets, state, want_logits=True)
    grads, dstate = model.backward(params, cfg, cache)
    r_loss, r_logits, r_final, r_cache = reference.forward(params, cfg, ids, targets, state)
    r_grads, r_dstate = reference.backward(params, cfg, r_cache)
    assert abs(loss - r_loss) < 1e-12
    np.testing.assert_allclose(logits, r_logits, rtol=1e-10, atol=1e-12)
    for name in final:
        np.testing.assert_allclose(final[name], r_final[name], rtol=1e-10, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], r_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)
    for name in dstate:
        np.testing.assert_allclose(dstate[name], r_dstate[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_backward_leaves_its_cache_as_it_found_it(cell):
    """model.backward twice on one cache gives the same gradients: nothing in the cache is overwritten."""
    cfg = ModelConfig(7, cell=cell, layers=2, hidden=4, embedding_dim=3, dropout=0.3)
    params, state, ids, targets = setup(cfg)
    _, _, _, cache = model.forward(params, cfg, ids, targets, state, rng=np.random.default_rng(1))
    first, dfirst = model.backward(params, cfg, cache)
    first = {k: v.copy() for k, v in first.items()}
    second, dsecond = model.backward(params, cfg, cache)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    for name in dfirst:
        np.testing.assert_array_equal(dfirst[name], dsecond[name], err_msg=name)
