"""How fast this machine trains a given model: a few timed steps, before a run starts.

The time-budget defaults (charlm/defaults.py) pick the model that can take enough
steps in the budget, so they need the real rate here, under today's load, with the
run's own batch, window and worker processes (or, for --engine torch, device).
The probe trains a throwaway copy: nothing it does reaches the run.
"""

from __future__ import annotations

import time

import numpy as np

from charlm import threads
from charlm.config import ModelConfig, OptimConfig
from charlm.engines.numpy_team import NumpyTeam
from charlm.nn import model, optim

WARMUP_STEPS = 1     # first touches of memory, lazy set-up
TIMED_STEPS = 3


def steps_per_second(cfg: ModelConfig, train_ids: np.ndarray, batch: int, seq_len: int,
                     workers: int | None = None, threads_n: int | None = None) -> float:
    """Training steps per second of `cfg` on windows of `train_ids` (batch × seq_len),
    with the worker processes and BLAS threads a run would use; forward, backward,
    clipping and an Adam update, as `charlm.training.loop` takes a step."""
    params = model.init_params(cfg, np.random.default_rng(0))
    n = threads.blas_threads(threads_n)
    ids, windows = _probe_ids(train_ids, batch, seq_len)
    with threads.limited(n), NumpyTeam(cfg, params, batch, threads.workers(workers, batch), {"train": ids},
                                       threads=n) as team:
        team.reset_state()
        return _rate(team, params, windows, seq_len)


def torch_steps_per_second(cfg: ModelConfig, train_ids: np.ndarray, batch: int, seq_len: int,
                           device: str = "auto") -> float:
    """`steps_per_second` for the torch engine (--engine torch): on `device`, in this process
    alone (under torchrun, rank 0 probes for the run). torch is imported only here."""
    import torch

    from charlm.engines.torch_team import TorchTeam

    params = model.init_params(cfg, np.random.default_rng(0))
    ids, windows = _probe_ids(train_ids, batch, seq_len)
    team = TorchTeam(cfg, params, batch, {"train": ids}, device=device, distributed=False)
    finish = (lambda: torch.cuda.synchronize(team.device)) if team.device.type == "cuda" else (lambda: None)
    return _rate(team, params, windows, seq_len, finish)


def _probe_ids(train_ids: np.ndarray, batch: int, seq_len: int) -> tuple[np.ndarray, int]:
    """The first windows of the training ids, as many as the probe takes steps (fewer on a short text)."""
    windows = max(1, min(WARMUP_STEPS + TIMED_STEPS, len(train_ids) // batch // seq_len - 1))
    return train_ids[: batch * (windows * seq_len + 1)], windows


def _rate(team, params: dict, windows: int, seq_len: int, finish=lambda: None) -> float:
    """Steps per second of a team (either engine, charlm/engines): WARMUP_STEPS untimed, then
    TIMED_STEPS of step, clip and Adam update; `finish` waits for the device."""
    ocfg = OptimConfig()
    opt = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
    t0 = 0.0
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        if step == WARMUP_STEPS:
            t0 = time.perf_counter()
        _, grad = team.train_step("train", step % windows, seq_len, step)
        team.clip_grads(grad, ocfg.clip)
        team.update(grad, opt, ocfg, ocfg.lr)
    finish()
    return TIMED_STEPS / (time.perf_counter() - t0)
