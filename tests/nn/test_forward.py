"""The fast forward against a naive per-step implementation, and state carrying."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.config import ModelConfig
from charlm.nn import model, stepping


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def naive_layer(cell, xs, h, c, w_ih, w_hh, b_ih, b_hh):
    """Straight from the PyTorch equations: one sample, one step, one gate at a time."""
    H = h.shape[0]
    outs = []
    for x in xs:
        if cell == "rnn":
            h = np.tanh(w_ih @ x + b_ih + w_hh @ h + b_hh)
        elif cell == "lstm":
            pre = [w_ih[k * H:(k + 1) * H] @ x + b_ih[k * H:(k + 1) * H]
                   + w_hh[k * H:(k + 1) * H] @ h + b_hh[k * H:(k + 1) * H] for k in range(4)]
            i, f, g, o = sig(pre[0]), sig(pre[1]), np.tanh(pre[2]), sig(pre[3])
            c = f * c + i * g
            h = o * np.tanh(c)
        else:
            r_, z_, n_ = (slice(k * H, (k + 1) * H) for k in range(3))
            r = sig(w_ih[r_] @ x + b_ih[r_] + w_hh[r_] @ h + b_hh[r_])
            z = sig(w_ih[z_] @ x + b_ih[z_] + w_hh[z_] @ h + b_hh[z_])
            n = np.tanh(w_ih[n_] @ x + b_ih[n_] + r * (w_hh[n_] @ h + b_hh[n_]))
            h = (1 - z) * n + z * h
        outs.append(h)
    return outs, h, c


def naive_logits(params, cfg, ids, state):
    """(N, T, V) logits by explicit loops over samples, layers and steps."""
    N, T = ids.shape
    V = cfg.vocab_size
    out = np.zeros((N, T, V))
    for s in range(N):
        if cfg.embedding_dim:
            xs = [params["embedding.weight"][i] for i in ids[s]]
        else:
            xs = [np.eye(V)[i] for i in ids[s]]  # the textbook one-hot vector
        for k in range(cfg.layers):
            c0 = state["c"][k, s] if "c" in state else None
            xs, _, _ = naive_layer(cfg.cell, xs, state["h"][k, s], c0,
                                   *(params[f"rnn.{w}_l{k}"] for w in
                                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        dec = params["embedding.weight" if cfg.tie_weights else "decoder.weight"]
        for t, h in enumerate(xs):
            out[s, t] = dec @ h + params["decoder.bias"]
    return out


def random_setup(cfg, N, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype)
    state = model.init_state(cfg, N, dtype)
    for s in state.values():
        s += rng.normal(0, 0.5, s.shape).astype(dtype)
    return params, state, rng


CONFIGS = [dict(cell=c, layers=L, embedding_dim=E)
           for c in ("rnn", "lstm", "gru") for L, E in ((1, 0), (2, 6), (3, 0))]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "{cell}-L{layers}-E{embedding_dim}".format(**kw))
def test_fast_forward_matches_naive(kw):
    cfg = ModelConfig(11, hidden=6, **kw)
    params, state, rng = random_setup(cfg, N=3)
    ids = rng.integers(0, 11, (3, 7))
    _, logits, _, _ = model.forward(params, cfg, ids, None, state, want_logits=True)
    np.testing.assert_allclose(logits, naive_logits(params, cfg, ids, state), rtol=1e-10, atol=1e-12)


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
