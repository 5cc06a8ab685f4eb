"""The fast paths agree with the plain ones: input table vs dense projection,
grouped scatter-add vs np.add.at, `evaluate` and the sampler vs `forward`."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.nn import model, stepping
from charlm.nn.embedding import lookup_backward
from tests.nn.test_forward import assert_steps_match_forward, random_setup
from tests.nn.test_gradients import assert_small, check_model


def test_lookup_backward_matches_add_at():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, 200)
    ids[:5] = 4
    drows = rng.standard_normal((200, 6))
    expected = np.zeros((12, 6))
    np.add.at(expected, ids, drows)
    np.testing.assert_allclose(lookup_backward(drows, ids, 12), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_when_vocab_exceeds_positions(cell):
    """V > N·T takes the dense embedding projection instead of the (V, GH) table."""
    cfg = ModelConfig(40, cell=cell, layers=2, hidden=4, embedding_dim=3)
    assert_small(check_model(cfg))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_table_and_dense_paths_agree(cell):
    cfg = ModelConfig(20, cell=cell, layers=2, hidden=6, embedding_dim=5)
    rng = np.random.default_rng(1)
    params = model.init_params(cfg, rng, np.float64)
    state = model.init_state(cfg, 2, np.float64)
    short = rng.integers(0, 20, (2, 4))            # M = 8 < V: dense
    long_ = np.concatenate([short, rng.integers(0, 20, (2, 8))], axis=1)  # M = 24 ≥ V: table
    _, logits_short, _, _ = model.forward(params, cfg, short, None, state, want_logits=True)
    _, logits_long, _, _ = model.forward(params, cfg, long_, None, state, want_logits=True)
    np.testing.assert_allclose(logits_long[:, :4], logits_short, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [0, 5])
def test_evaluate_matches_forward(cell, embedding_dim):
    cfg = ModelConfig(13, cell=cell, layers=2, hidden=7, embedding_dim=embedding_dim)
    params, state, rng = random_setup(cfg, N=3, seed=2)
    ids, targets = rng.integers(0, 13, (3, 11)), rng.integers(0, 13, (3, 11))
    loss, _, final, cache = model.forward(params, cfg, ids, targets, state)
    for chunk in (1, 7, 1000):  # one step, several uneven chunks, everything at once
        nll, final_eval = model.evaluate(params, cfg, ids, targets, state, chunk_positions=chunk)
        assert nll.shape == (3, 11)
        np.testing.assert_allclose(nll, cache["nll"].reshape(11, 3).T, rtol=1e-12, atol=1e-12)
        assert abs(nll.mean() - loss) < 1e-12
        for name in final:
            np.testing.assert_allclose(final_eval[name], final[name], rtol=1e-12, atol=1e-12)


def test_evaluate_and_sampler_keep_float32():
    cfg = ModelConfig(9, cell="lstm", layers=2, hidden=8, embedding_dim=4)
    params = model.init_params(cfg, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 9, (4, 6))
    nll, final = model.evaluate(params, cfg, ids, ids, model.init_state(cfg, 4))
    assert nll.dtype == np.float32 and all(s.dtype == np.float32 for s in final.values())
    run = stepping.prepare(params, cfg, model.init_state(cfg, 4))
    assert stepping.advance(run, ids[:, 0]).dtype == np.float32
    assert all(s.dtype == np.float32 for s in stepping.read_state(run).values())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [0, 3])
def test_sampler_matches_forward(cell, embedding_dim):
    cfg = ModelConfig(6, cell=cell, layers=3, hidden=5, embedding_dim=embedding_dim)
    params, state, rng = random_setup(cfg, N=2, seed=3)
    before = {k: v.copy() for k, v in state.items()}
    ids = rng.integers(0, 6, (2, 5))
    _, logits, final, _ = model.forward(params, cfg, ids, None, state, want_logits=True)
    run = stepping.prepare(params, cfg, state)
    for t in range(5):  # odd and even steps take the two weight orders
        np.testing.assert_allclose(stepping.advance(run, ids[:, t]), logits[:, t], rtol=1e-12, atol=1e-12)
        if t == 2:
            mid = stepping.read_state(run)
    for name in final:
        np.testing.assert_allclose(stepping.read_state(run)[name], final[name], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(state[name], before[name])
    _, _, final_mid, _ = model.forward(params, cfg, ids[:, :3], None, state)
    for name in final:
        np.testing.assert_allclose(mid[name], final_mid[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [0, 3])
def test_unprepared_step_matches_forward(cell, embedding_dim):
    """`step` without a plan copies no weights and scales pre-activations per step."""
    cfg = ModelConfig(6, cell=cell, layers=2, hidden=5, embedding_dim=embedding_dim)
    rng = np.random.default_rng(4)
    params = model.init_params(cfg, rng, np.float64)
    state = model.init_state(cfg, 3, np.float64)
    assert_steps_match_forward(params, cfg, rng.integers(0, 6, (3, 4)), state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_unscaled_path(cell):
    """Fewer positions (15) than 2H: forward keeps the weights unscaled."""
    assert_small(check_model(ModelConfig(7, cell=cell, layers=2, hidden=8)))
