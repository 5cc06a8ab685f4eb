"""How fast this machine trains a given model: a few timed steps, before a run starts.

The time-budget defaults (charlm/defaults.py) pick the model that can take enough
steps in the budget, so they need the real rate here, under today's load, with the
run's own batch, window and worker processes (or, for --engine torch, device).
The probe trains a throwaway copy: nothing it does reaches the run.
"""

from __future__ import annotations

import time

import numpy as np

from charlm import engines, threads
from charlm.config import ModelConfig, OptimConfig
from charlm.nn import model, optim

WARMUP_STEPS = 1     # first touches of memory, lazy set-up
TIMED_STEPS = 3


def steps_per_second(cfg: ModelConfig, train_ids: np.ndarray, batch: int, seq_len: int, *, engine: str = "numpy",
                     workers: int = 1, threads_n: int = 1, device: str = "auto") -> float:
    """Training steps per second of `cfg` on windows of `train_ids` (batch × seq_len), on the
    engine, worker processes, BLAS threads (or torch device, in this process alone: under
    torchrun rank 0 probes for the run) that the run will use; forward, backward, clipping and
    an Adam update, as the training loop takes a step."""
    params = model.init_params(cfg, np.random.default_rng(0))
    ids, windows = _probe_ids(train_ids, batch, seq_len)
    with threads.limited(threads_n), engines.make_team(engine, cfg, params, batch, workers, {"train": ids},
                                                       threads=threads_n, device=device,
                                                       distributed=False) as team:
        team.reset_state()
        return _rate(team, params, windows, seq_len)


def _probe_ids(train_ids: np.ndarray, batch: int, seq_len: int) -> tuple[np.ndarray, int]:
    """The first windows of the training ids, as many as the probe takes steps (fewer on a short text)."""
    windows = max(1, min(WARMUP_STEPS + TIMED_STEPS, len(train_ids) // batch // seq_len - 1))
    return train_ids[: batch * (windows * seq_len + 1)], windows


def _rate(team: engines.Team, params: dict, windows: int, seq_len: int) -> float:
    """Steps per second of a team (either engine): WARMUP_STEPS untimed, then TIMED_STEPS of
    step, clip and Adam update, ending with a read of the parameters (which waits for a GPU)."""
    ocfg = OptimConfig()
    opt = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
    t0 = 0.0
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        if step == WARMUP_STEPS:
            t0 = time.perf_counter()
        _, grad = team.train_step("train", step % windows, seq_len, step)
        team.clip_grads(grad, ocfg.clip)
        team.update(grad, opt, ocfg, ocfg.lr)
    team.params  # noqa: B018  (copies them to the host: the device has finished)
    return TIMED_STEPS / (time.perf_counter() - t0)
