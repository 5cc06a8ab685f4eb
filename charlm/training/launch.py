"""How `charlm train` runs as one process or as one of torchrun's: who plans, who reports.

With the numpy engine there is one launch (its worker processes are its own, charlm/
parallel.py); under torchrun it is refused. With --engine torch, `runtime` joins
torchrun's process group (charlm/engines/torch_dist.py); rank 0 plans the run and
`share` sends the plan to the others, which train silently through `follow` while
rank 0 reports. torch is imported only on the torch path.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from charlm import engines
from charlm.errors import CharlmError, UsageError
from charlm.training import loop as train_mod


def runtime(engine: str | None, device: str, threads_n: int | None):
    """This process's place in the run (torch_dist.Runtime) for --engine torch, after checking
    that torch is there; None for the numpy engine, which runs only as one launch."""
    launched = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    if engine != "torch":
        if launched != "1":
            raise UsageError(f"this is one of {launched} processes started by torchrun: train with --engine torch "
                             "(the numpy engine starts its own worker processes; run it without torchrun)")
        return None
    engines.require_torch()
    from charlm.engines import torch_dist
    return torch_dist.runtime(device, threads_n)


def leads(rt) -> bool:
    """Whether this process plans, reports and writes (always, but for torchrun's ranks 1…K−1)."""
    return rt is None or rt.rank == 0


def share(rt, make_plan: Callable | None):
    """make_plan() here; under torchrun rank 0 runs it and the other ranks receive its plan
    (they pass None)."""
    if rt is None or rt.world == 1:
        return make_plan()
    from charlm.engines import torch_dist
    return torch_dist.share_plan(make_plan, rt)


def follow(plan, threads_n: int | None, device: str) -> None:
    """A torch run's ranks but 0: the same loop, silent (rank 0 reports and writes). A Ctrl-C
    here asks for the stop that every rank agrees on at the end of the step."""
    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for ev in train_mod.run(plan.data, plan.run_dir, plan.mcfg, plan.ocfg, plan.tcfg, plan.checkpoint,
                                should_stop=lambda: stop["requested"], threads_n=threads_n, device=device,
                                init=plan.init):
            if ev["event"] == train_mod.DIVERGED:
                raise SystemExit(1)
            if ev["event"] == train_mod.DONE and ev["reason"] == "interrupted":
                raise SystemExit(130)
    except CharlmError as e:  # rank 0 meets the same problem and reports it
        raise SystemExit(e.exit_code) from None
    finally:
        signal.signal(signal.SIGINT, previous)


def shutdown(rt) -> None:
    """Leave torchrun's process group, if this process joined one."""
    if rt is not None:
        from charlm.engines import torch_dist
        torch_dist.shutdown()
