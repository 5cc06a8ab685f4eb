"""Where a training step's time goes: cProfile over a few charlm training steps.

    PYTHONPATH=. python benchmarks/profile_step.py [CELL] [H]     # default: lstm 512

2 layers, embedding = H, B = 50, T = 50, V = 65, Adam + clip 5 (the `make bench` shape).
numpy's matmuls are C calls, so their time shows under the Python function that made them.
"""

import cProfile
import pstats
import sys
import time

import numpy as np

from charlm import model, optim


def main() -> None:
    cell = sys.argv[1] if len(sys.argv) > 1 else "lstm"
    hidden = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    cfg = model.ModelConfig(65, cell, 2, hidden, hidden)
    params = model.init_params(cfg, np.random.default_rng(0))
    ocfg = optim.OptimConfig()
    ostate = optim.init_state(ocfg, params)
    ids = np.random.default_rng(1).integers(0, 65, (50, 51))
    carry = {"state": model.init_state(cfg, 50)}

    def step():
        _, _, carry["state"], cache = model.forward(params, cfg, ids[:, :-1], ids[:, 1:], carry["state"])
        grads, _ = model.backward(params, cfg, cache)
        optim.clip_grads(grads, ocfg.clip)
        optim.update(params, grads, ostate, ocfg, ocfg.lr)

    step()  # warm-up
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(6):
        step()
    profiler.disable()
    print(f"{cell} 2×{hidden}: {6 * 2500 / (time.perf_counter() - t0):,.0f} chars/s under the profiler")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
