"""How much a rank's training step slows down when the other ranks work beside it.

    PYTHONPATH=. python benchmarks/team_probe.py

For each model: the time of one training step (forward, backward, clip, Adam; T = 50,
one BLAS thread per process) of one process on 25 lanes, of two worker processes on
25 lanes each, and of one process on all 50 lanes; and the part of each step spent
in the serial optimizer update on rank 0. Perfect data parallelism would make the
second column equal the first.
"""

from __future__ import annotations

import time

import numpy as np

from charlm import threads
from charlm.config import ModelConfig, OptimConfig
from charlm.engines.numpy_team import NumpyTeam
from charlm.nn import model, optim

T = 50
CASES = (("lstm", 256), ("gru", 256), ("lstm", 128))


def step_ms(cfg: ModelConfig, workers: int, lanes: int, seconds: float = 4.0) -> tuple[float, float]:
    """(ms per step, ms of it in clip + Adam) over about `seconds` of steps."""
    params = model.init_params(cfg, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, cfg.vocab_size, lanes * (4 * T + 1)).astype(np.uint8)
    with threads.limited(1), NumpyTeam(cfg, params, lanes, workers, {"train": ids}) as team:
        team.reset_state()
        ocfg = OptimConfig()
        state = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
        for i in range(2):
            team.train_step("train", i % 4, T, i)
        n, opt, t0 = 0, 0.0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, grad = team.train_step("train", n % 4, T, n)
            t = time.perf_counter()
            team.clip_grads(grad, ocfg.clip)
            team.update(grad, state, ocfg, ocfg.lr)
            opt += time.perf_counter() - t
            n += 1
        return 1e3 * (time.perf_counter() - t0) / n, 1e3 * opt / n


def main() -> None:
    print(f"{'model':<12}{'1 × 25 lanes':>16}{'2 × 25 lanes':>16}{'1 × 50 lanes':>16}   ms per step (clip + Adam)")
    for cell, H in CASES:
        cfg = ModelConfig(65, cell, 2, H, H)
        cols = [step_ms(cfg, k, lanes) for k, lanes in ((1, 25), (2, 50), (1, 50))]
        print(f"{cell} 2×{H:<5}" + "".join(f"{f'{a:.1f} ({b:.1f})':>16}" for a, b in cols))


if __name__ == "__main__":
    main()
