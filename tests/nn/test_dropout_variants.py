"""The dropout variants of charlm/nn/dropout.py: locked (variational) masks, weight drop
(DropConnect on W_hh) and embedding dropout. Float64 gradient checks with fixed masks,
the fast paths against plain ones, and nothing of them at evaluation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.errors import UsageError
from charlm.nn import dropout, model
from tests.nn.test_gradients import V, assert_small, check_model

N, T = 3, 5


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("extra", [
    {"dropout": 0.4, "locked_dropout": True},
    {"weight_drop": 0.5},
    {"embed_dropout": 0.4},
    {"dropout": 0.3, "locked_dropout": True, "weight_drop": 0.3, "embed_dropout": 0.3},
])
def test_gradients_with_fixed_masks(cell, extra):
    cfg = ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3, **extra)
    assert_small(check_model(cfg, dropout_seed=123))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradients_one_hot_and_tied(cell):
    """One-hot input drops columns of layer 0's W_ih; a tied decoder keeps every row."""
    assert_small(check_model(ModelConfig(V, cell=cell, layers=2, hidden=3, embed_dropout=0.3, weight_drop=0.2),
                             dropout_seed=7))
    tied = ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=4, tie_weights=True,
                       embed_dropout=0.4, dropout=0.2, locked_dropout=True)
    assert_small(check_model(tied, dropout_seed=7))


def _setup(cfg: ModelConfig, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype=np.float64)
    state = model.init_state(cfg, N, np.float64)
    return params, state, rng.integers(0, cfg.vocab_size, (N, T)), rng.integers(0, cfg.vocab_size, (N, T))


def _run(params, cfg, ids, targets, state, seed):
    rng = None if seed is None else np.random.default_rng(seed)
    loss, _, final, cache = model.forward(params, cfg, ids, targets, state, rng=rng)
    grads, dstate = model.backward(params, cfg, cache)
    return loss, grads, dstate, final


def _same(a, b, rtol=1e-12):
    (la, ga, da, fa), (lb, gb, db, fb) = a, b
    assert la == pytest.approx(lb, rel=rtol)
    for name in ga:
        np.testing.assert_allclose(ga[name], gb[name], rtol=rtol, atol=1e-14, err_msg=name)
    for name in da:
        np.testing.assert_allclose(da[name], db[name], rtol=rtol, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(fa[name], fb[name], rtol=rtol, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("embedding_dim", [0, 3])
def test_weight_masks_are_the_plain_model_on_masked_weights(embedding_dim):
    """A step with weight drop and embedding dropout is the model without them run on the
    masked weights: the same loss, and the raw gradient is the masked one times the mask."""
    cfg = ModelConfig(V, cell="gru", layers=2, hidden=4, embedding_dim=embedding_dim, weight_drop=0.5,
                      embed_dropout=0.3)
    params, state, ids, targets = _setup(cfg)
    loss, grads, _, _ = _run(params, cfg, ids, targets, state, seed=11)
    masks = dropout.weight_masks(np.random.default_rng(11), cfg, np.float64)
    assert set(masks) == {"embedding.weight" if embedding_dim else "rnn.weight_ih_l0",
                          "rnn.weight_hh_l0", "rnn.weight_hh_l1"}
    plain = ModelConfig(V, cell="gru", layers=2, hidden=4, embedding_dim=embedding_dim)
    ref_loss, ref_grads, _, _ = _run(dropout.masked(params, masks), plain, ids, targets, state, seed=None)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    for name, g in ref_grads.items():
        np.testing.assert_allclose(grads[name], g * masks.get(name, 1.0), rtol=1e-12, atol=1e-15, err_msg=name)


def test_locked_mask_is_one_per_lane_for_the_window(monkeypatch):
    """The locked (1, N, H) mask broadcast over time gives exactly what the same mask
    repeated at every step (T, N, H) gives through the plain per-step path."""
    cfg = ModelConfig(V, cell="lstm", layers=2, hidden=4, embedding_dim=3, dropout=0.5, locked_dropout=True)
    mask = dropout.layer_mask(np.random.default_rng(0), cfg, T, N, np.float64)
    assert mask.shape == (1, N, 4)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    params, state, ids, targets = _setup(cfg)
    locked = _run(params, cfg, ids, targets, state, seed=3)
    real = dropout.layer_mask
    monkeypatch.setattr(dropout, "layer_mask", lambda *a: np.repeat(real(*a), T, axis=0))  # (T, N, H)
    _same(_run(params, cfg, ids, targets, state, seed=3), locked)


def test_plain_dropout_draws_as_before():
    """Per-step masks keep the generator stream of a (M, H) draw, so runs and resumes of
    checkpoints saved before locked dropout existed go on exactly."""
    cfg = ModelConfig(V, cell="gru", layers=1, hidden=4, dropout=0.3)
    a = dropout.layer_mask(np.random.default_rng(5), cfg, T, N, np.float32)
    b = dropout.make_mask(np.random.default_rng(5), (T * N, 4), 0.3, np.float32)
    np.testing.assert_array_equal(a.reshape(T * N, 4), b)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_fast_paths_match_plain_ones(monkeypatch, cell):
    """The input table and the pre-scaled recurrent weights (the fast paths) give the
    plain paths' loss and gradients with every dropout variant on."""
    cfg = ModelConfig(V, cell=cell, layers=2, hidden=4, embedding_dim=3, dropout=0.3, locked_dropout=True,
                      weight_drop=0.4, embed_dropout=0.3)
    params, state, ids, targets = _setup(cfg)
    fast = _run(params, cfg, ids, targets, state, seed=9)
    prepare = model.prepare_layers
    monkeypatch.setattr(model, "prepare_layers", lambda p, c, scaled=True: prepare(p, c, scaled=False))
    monkeypatch.setattr(model, "input_table", lambda *a: None)
    _same(_run(params, cfg, ids, targets, state, seed=9), fast, rtol=1e-11)


def test_evaluation_ignores_every_variant():
    """Training-only: without a generator (evaluation, sampling) the variants change nothing."""
    on = ModelConfig(V, cell="gru", layers=2, hidden=4, embedding_dim=3, dropout=0.3, locked_dropout=True,
                     weight_drop=0.4, embed_dropout=0.3)
    off = dataclasses.replace(on, dropout=0.0, locked_dropout=False, weight_drop=0.0, embed_dropout=0.0)
    params, state, ids, targets = _setup(on)
    assert on.stochastic and not off.stochastic
    _same(_run(params, on, ids, targets, state, seed=None), _run(params, off, ids, targets, state, seed=None))
    nll_on, _ = model.evaluate(params, on, ids, targets, state)
    nll_off, _ = model.evaluate(params, off, ids, targets, state)
    np.testing.assert_array_equal(nll_on, nll_off)


def test_masks_keep_the_expected_fraction():
    cfg = ModelConfig(65, cell="gru", layers=2, hidden=64, embedding_dim=32, weight_drop=0.25, embed_dropout=0.1)
    masks = dropout.weight_masks(np.random.default_rng(0), cfg, np.float32)
    w = masks["rnn.weight_hh_l1"]
    assert w.shape == (192, 64) and w.dtype == np.float32
    assert abs(float(w.mean()) - 1.0) < 0.02           # inverted: the expected weight is unchanged
    assert abs(float((w == 0).mean()) - 0.25) < 0.02


@pytest.mark.parametrize("field", ["weight_drop", "embed_dropout", "dropout"])
def test_rates_are_checked(field):
    with pytest.raises(UsageError, match=field.replace("_", "-")):
        ModelConfig(V, **{field: 1.0})
