"""A training run in progress: its state, how it begins (fresh or resumed), and its clock.

`begin` builds the state at a run's first step — fresh from the seed, or exactly as
a checkpoint left it — and starts the team of processes that shares the work
(charlm/engines/parallel.py). `RunState.payload` is what a checkpoint records at an instant
(the layout itself is charlm/checkpoint.py's). `Clock` counts training time in one
place: validation and samples are paused out of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm import checkpoint, engines
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data.corpus import Corpus
from charlm.errors import CharlmError
from charlm.nn import model, optim
from charlm.training.init_from import Start


@dataclass
class RunState:
    """What a checkpoint records, plus the team doing the work. The team (charlm/engines)
    holds the parameters, carried state and optimizer moments in its own form (numpy:
    flat buffers shared with its ranks; torch: tensors on the device); the checkpoint
    gets them from it as named numpy arrays."""
    mcfg: ModelConfig
    ocfg: OptimConfig
    tcfg: TrainConfig
    corpus: Corpus
    team: object                                # the engine's team (interface: charlm/engines/__init__.py)
    opt: dict                                   # optimizer state in the team's form: {"step", "slots"}
    progress: dict                              # step, epoch, window, chars, elapsed
    init_rng: dict                              # the generator state after initialisation
    best: float | None = None
    best_flat: object = None                    # the team's snapshot of the parameters best.pkl holds
    history: list = dataclasses.field(default_factory=list)
    init_from: dict | None = None               # fine-tuning: where the starting weights came from

    def payload(self) -> dict:
        """Everything that defines the run at this instant, as a checkpoint's plain data. Every
        process of a torch run calls it (rank 0 gathers the lanes' state); only rank 0 saves it."""
        params, slots, carried = self.team.checkpoint_arrays(self.opt)
        c = self.corpus
        return checkpoint.payload(
            self.mcfg, self.ocfg, self.tcfg, c.vocab, params, optimizer={"step": self.opt["step"], "slots": slots},
            progress=self.progress, carried_state=carried,
            rng=self.init_rng, best_val_loss=self.best, history=self.history, corpus=c.record(),
            init_from=self.init_from)


def begin(corpus: Corpus, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, resume: Checkpoint | None,
          threads_n: int, ids: dict, device: str = "auto", init: Start | None = None) -> RunState:
    """The run's state at its first step: fresh from the seed (or from `init`'s weights, with a
    fresh optimizer), or exactly as `resume` left it.
    ids: the id arrays (or file slices) the team's ranks read, by name; device: the torch engine's."""
    B = tcfg.batch_size
    origin = init.record if init else resume and resume.init_from
    if resume is None:
        rng = np.random.default_rng(tcfg.seed)
        params = init.params if init else model.init_params(mcfg, rng)
        moments, opt_step = optim.init_state(ocfg, params)["slots"], 0
        progress = {"step": 0, "epoch": 0, "window": 0, "chars": 0, "elapsed": 0.0}
        init_rng, carried, best, history = init.rng_state if init else rng.bit_generator.state, None, None, []
    else:
        params, progress = resume.params, dataclasses.asdict(resume.progress)
        moments, opt_step = resume.optimizer["slots"], resume.optimizer["step"]
        init_rng, carried = resume.rng, resume.carried_state
        best, history = resume.best_val_loss, list(resume.history)
        if carried["h"].shape[1] != B:
            raise CharlmError(f"the checkpoint carries state for batch {carried['h'].shape[1]}, "
                              f"not {B}; resume with the same --batch-size")
    team = engines.make_team(tcfg.engine, mcfg, params, B, tcfg.workers, ids, seed=tcfg.seed, threads=threads_n,
                             device=device)
    if carried is not None:
        team.load_state(carried)
    else:
        team.reset_state()
    opt = team.optimizer_state(opt_step, moments)
    return RunState(mcfg, ocfg, tcfg, corpus, team, opt,
                    progress, init_rng, best, team.snapshot() if best is not None else None, history, origin)


class Clock:
    """Training time, counted in one place: wall time since the run began, less the
    pauses (validation, samples), plus what a resumed run had already used. `agree`
    makes every process of a torch run read rank 0's clock, so budgets and the
    cosine schedule end them all at the same step."""

    def __init__(self, progress: dict, agree: Callable[[float], float] = lambda x: x):
        self.t0 = time.perf_counter() - progress["elapsed"]
        self.t_rate, self.chars_rate = time.perf_counter(), progress["chars"]
        self.agree = agree

    def elapsed(self) -> float:
        return self.agree(time.perf_counter() - self.t0)

    @contextlib.contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            self.t0 += dt
            self.t_rate += dt

    def rate(self, chars: int, restart: bool) -> float:
        """Training chars/s since the last restart of the rate window."""
        now = time.perf_counter()
        rate = (chars - self.chars_rate) / max(now - self.t_rate, 1e-9)
        if restart:
            self.t_rate, self.chars_rate = now, chars
        return rate
