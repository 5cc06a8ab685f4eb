"""Where a training step's time goes: cProfile over a few steps of one rank's share.

    PYTHONPATH=. python benchmarks/profile_step.py [CELL] [H] [LANES]   # default: lstm 512 25

2 layers, embedding = H, T = 50, V = 65, Adam + clip 5 (the `make bench` shape), one
process with one BLAS thread over LANES lanes: what each of `charlm train`'s worker
processes does when two share the bench's 50 lanes. numpy's matmuls are C calls, so
their time shows under the Python function that made them.
"""

import cProfile
import pstats
import sys
import time

import numpy as np

from charlm import threads
from charlm.config import ModelConfig, OptimConfig
from charlm.engines.numpy_team import NumpyTeam
from charlm.nn import model, optim

T = 50


def main() -> None:
    cell = sys.argv[1] if len(sys.argv) > 1 else "lstm"
    hidden = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    lanes = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    cfg = ModelConfig(65, cell, 2, hidden, hidden)
    params = model.init_params(cfg, np.random.default_rng(0))
    ocfg = OptimConfig()
    ids = np.random.default_rng(1).integers(0, 65, lanes * (4 * T + 1)).astype(np.uint8)
    with threads.limited(1), NumpyTeam(cfg, params, lanes, 1, {"train": ids}) as team:
        team.reset_state()
        ostate = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])

        def step(i):
            _, grad = team.train_step("train", i % 4, T, i)
            team.clip_grads(grad, ocfg.clip)
            team.update(grad, ostate, ocfg, ocfg.lr)

        step(0)  # warm-up
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        for i in range(1, 7):
            step(i)
        profiler.disable()
        print(f"{cell} 2×{hidden}, {lanes} lanes: {6 * lanes * T / (time.perf_counter() - t0):,.0f} chars/s "
              "under the profiler")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
