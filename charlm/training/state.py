"""A training run in progress: its state, how it begins (fresh or resumed), and its clock.

`begin` builds the state at a run's first step from its plan — fresh from the seed, or
exactly as a checkpoint left it — and starts the engine's team (charlm/engines), which
shares the work among its processes. `RunState.payload` is what a checkpoint records at
an instant (the format itself is charlm/checkpoint.py's). `Clock` counts training time in
one place: validation and samples are paused out of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm import checkpoint, engines
from charlm.checkpoint import Progress
from charlm.nn import model, optim
from charlm.training.plans import Plan


@dataclass
class RunState:
    """What a checkpoint records, plus the team doing the work. The team (charlm/engines)
    holds the parameters, carried state and optimizer moments in its own form (numpy:
    flat buffers shared with its ranks; torch: tensors on the device); the checkpoint
    gets them from it as named numpy arrays."""
    plan: Plan
    team: engines.Team
    opt: dict                                   # optimizer state in the team's form: {"step", "slots"}
    progress: dict                              # step, epoch, window, chars, elapsed
    best: float | None = None
    best_flat: object = None                    # the team's snapshot of the parameters best.pkl holds
    history: list = dataclasses.field(default_factory=list)

    def payload(self) -> dict:
        """Everything that defines the run at this instant, as a checkpoint's plain data. Every
        process of a torch run calls it (rank 0 gathers the lanes' state); only rank 0 saves it."""
        params, slots, carried = self.team.checkpoint_arrays(self.opt)
        plan = self.plan
        origin = plan.init.record if plan.init else plan.checkpoint and plan.checkpoint.init_from
        return checkpoint.payload(
            model=plan.mcfg, optim=plan.ocfg, train=plan.tcfg, vocab=plan.data.vocab, params=params,
            optimizer={"step": self.opt["step"], "slots": slots}, progress=Progress(**self.progress),
            carried_state=carried, best_val_loss=self.best, history=self.history, corpus=plan.data.record(),
            init_from=origin)


def begin(plan: Plan) -> RunState:
    """The run's state at its first step: fresh from the seed (or from a fine-tuning run's starting
    weights, with a fresh optimizer), or exactly as the checkpoint it resumes left it."""
    mcfg, ocfg, tcfg, resume = plan.mcfg, plan.ocfg, plan.tcfg, plan.checkpoint
    if resume is None:
        params = plan.init.params if plan.init else model.init_params(mcfg, np.random.default_rng(tcfg.seed))
        moments, opt_step = optim.init_state(ocfg, params)["slots"], 0
        progress = {"step": 0, "epoch": 0, "window": 0, "chars": 0, "elapsed": 0.0}
        carried, best, history = None, None, []
    else:
        params, progress = resume.params, dataclasses.asdict(resume.progress)
        moments, opt_step = resume.optimizer["slots"], resume.optimizer["step"]
        carried, best, history = resume.carried_state, resume.best_val_loss, list(resume.history)
    team = engines.make_team(tcfg.engine, mcfg, params, tcfg.batch_size, tcfg.workers, plan.ids, seed=tcfg.seed,
                             threads=plan.threads, device=plan.device)
    if carried is not None:
        team.load_state(carried)
    else:
        team.reset_state()
    opt = team.optimizer_state(opt_step, moments)
    return RunState(plan, team, opt, progress, best, team.snapshot() if best is not None else None, history)


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
