"""charlm/training/memory.py: the estimate of what a training step allocates, against a real step."""

from __future__ import annotations

import numpy as np

from charlm.config import ModelConfig, OptimConfig
from charlm.nn import model, optim
from charlm.training import memory


def test_memory_estimate_covers_a_real_training_step():
    """The estimate is not below what one step really allocates, nor far above it."""
    import tracemalloc

    for cell, name in (("gru", "adam"), ("lstm", "rmsprop"), ("rnn", "sgd")):
        cfg = ModelConfig(vocab_size=60, cell=cell, layers=2, hidden=64, embedding_dim=32, dropout=0.1)
        ocfg = OptimConfig(name=name)
        rng = np.random.default_rng(0)
        tracemalloc.start()
        params = model.init_params(cfg, rng)
        ostate = optim.init_state(ocfg, params)
        x, y = rng.integers(0, 60, (16, 40)), rng.integers(0, 60, (16, 40))
        _, _, _, cache = model.forward(params, cfg, x, y, model.init_state(cfg, 16), rng=rng)
        grads, _ = model.backward(params, cfg, cache)
        optim.update(params, grads, ostate, ocfg, 1e-3)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(ostate["slots"]) == memory.SLOTS[name] + bool(ocfg.ema)  # the average is one more
        estimate = memory.training_bytes(cfg, 16, 40, name, bool(ocfg.ema))
        assert 0.9 * peak <= estimate <= 2.5 * peak, (cell, estimate, peak)
