"""Every backward pass against central differences in float64 (max relative error < 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.nn import model
from charlm.nn.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from tests.gradcheck import numeric_grad, rel_error

TOL = 1e-6
V, N, T = 7, 3, 5


def check_model(cfg: ModelConfig, seed: int = 0, dropout_seed: int | None = None) -> dict[str, float]:
    """Gradient-check every parameter and the initial state; return the errors by name."""
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype=np.float64)
    for p in params.values():  # move off the special init (e.g. zero biases) to exercise everything
        p += rng.normal(0, 0.3, p.shape)
    state = model.init_state(cfg, N, np.float64)
    for s in state.values():
        s += rng.normal(0, 0.5, s.shape)
    ids = rng.integers(0, V, (N, T))
    ids[0, :3] = 2  # repeated ids exercise the scatter-add in the input backward
    targets = rng.integers(0, V, (N, T))

    def mask_rng():
        return None if dropout_seed is None else np.random.default_rng(dropout_seed)

    def loss():
        return model.forward(params, cfg, ids, targets, state, rng=mask_rng())[0]

    _, _, _, cache = model.forward(params, cfg, ids, targets, state, rng=mask_rng())
    grads, dstate = model.backward(params, cfg, cache)
    assert set(grads) == set(params)
    errors = {}
    for name, p in params.items():
        assert grads[name].shape == p.shape, name
        errors[name] = rel_error(grads[name], numeric_grad(loss, p))
    for name, s in state.items():
        errors[f"state.{name}"] = rel_error(dstate[name], numeric_grad(loss, s))
    return errors


def assert_small(errors: dict[str, float]):
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOL, f"{worst}: relative error {errors[worst]:.2e}\n{errors}"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_single_cell_one_hot(cell):
    assert_small(check_model(ModelConfig(V, cell=cell, layers=1, hidden=4)))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_layer_stack_embedding(cell):
    assert_small(check_model(ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3)))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_layer_stack_one_hot(cell):
    assert_small(check_model(ModelConfig(V, cell=cell, layers=2, hidden=3)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tied_decoder(cell):
    cfg = ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=4, tie_weights=True)
    errors = check_model(cfg)
    assert "decoder.weight" not in errors
    assert_small(errors)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dropout_with_fixed_mask(cell):
    cfg = ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3, dropout=0.4)
    assert_small(check_model(cfg, dropout_seed=123))


def test_dropout_mask_actually_drops():
    cfg = ModelConfig(V, layers=2, hidden=4, embedding_dim=3, dropout=0.4)
    params = model.init_params(cfg, np.random.default_rng(0), np.float64)
    ids = np.zeros((N, T), int)
    state = model.init_state(cfg, N, np.float64)
    train = model.forward(params, cfg, ids, ids, state, rng=np.random.default_rng(1))[0]
    evaluation = model.forward(params, cfg, ids, ids, state)[0]
    assert train != evaluation
    assert len(model.forward(params, cfg, ids, ids, state)[3]["masks"]) == 0


def test_loss_gradient():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (6, V))
    targets = rng.integers(0, V, 6)

    def loss():
        return softmax_cross_entropy(logits.copy(), targets)[0]

    _, _, probs = softmax_cross_entropy(logits.copy(), targets)
    analytic = softmax_cross_entropy_backward(probs, targets)
    assert rel_error(analytic, numeric_grad(loss, logits)) < TOL


def test_loss_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4]], np.float32)
    loss, nll, probs = softmax_cross_entropy(logits, np.array([1]))
    assert np.isfinite(loss) and abs(loss - 1e4) < 1.0
    assert np.all(np.isfinite(probs))


def test_uniform_logits_give_ln_v():
    for v in (2, 65, 300):
        loss, _, _ = softmax_cross_entropy(np.zeros((10, v), np.float32), np.arange(10) % v)
        assert abs(loss - np.log(v)) < 1e-6
    cfg = ModelConfig(V, layers=2, hidden=5)
    params = model.init_params(cfg, np.random.default_rng(0))
    params["decoder.weight"][:] = 0
    params["decoder.bias"][:] = 0
    ids = np.random.default_rng(1).integers(0, V, (N, T))
    loss = model.forward(params, cfg, ids, ids, model.init_state(cfg, N))[0]
    assert abs(loss - np.log(V)) < 1e-6
