"""How `charlm train` runs as one process or as one of torchrun's: who plans, who reports.

With the numpy engine there is one launch (its worker processes are its own,
charlm/engines/parallel.py); under torchrun it is refused. With --engine torch, `runtime`
joins torchrun's process group (charlm/engines/torch_dist.py); rank 0 alone plans the
run (charlm/training/plans.py: defaults, the speed probe, checkpoint checks) and `share`
sends the plan to the others, so every rank trains the same configuration from the
same checkpoint even when the others cannot read it (another machine); each rank then
opens the corpus at the same path itself. The other ranks train silently through
`follow` while rank 0 reports. torch is imported only on the torch path.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable

from charlm import engines
from charlm.data import corpus as corpus_mod
from charlm.errors import CharlmError, UsageError
from charlm.training import loop
from charlm.training.plans import Plan


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


def share(rt, make_plan: Callable[[], Plan] | None) -> Plan:
    """make_plan() here; under torchrun rank 0 runs it and every other rank (which passes None)
    receives its result: the configs, the run directory, the checkpoint to resume, the starting
    weights and which text. A failure on rank 0 is reported there; the others exit quietly."""
    if rt is None or rt.world == 1:
        return make_plan()
    from charlm.engines.torch_dist import barrier, broadcast
    if rt.rank == 0:
        try:
            plan = make_plan()
        except BaseException:
            broadcast(None, rt)
            raise
        data = plan.data
        broadcast({"plan": dataclasses.replace(plan, data=None), "record": data.record(), "vocab": data.vocab,
                   "host": socket.gethostname()}, rt)
        _corpus_turns(rt, lambda: None, barrier)
        return plan
    got = broadcast(None, rt)
    if got is None:
        raise SystemExit(1)  # rank 0 failed and said why
    plan: Plan = got["plan"]
    # the id cache goes in the run directory: on rank 0's machine it is already built; elsewhere
    # each machine builds its own (one rank per machine, then the others reuse it)
    host = socket.gethostname()
    cache = plan.run_dir if host == got["host"] else plan.run_dir / f"node-{host}"
    box = {}
    why = f"rank {rt.rank} is not on the text rank 0 trains on: every machine needs the same corpus at the same path"
    _corpus_turns(rt, lambda: box.update(data=corpus_mod.reopen(got["record"], cache, got["vocab"], why)), barrier)
    return dataclasses.replace(plan, data=box["data"])


def _corpus_turns(rt, load: Callable[[], None], barrier: Callable) -> None:
    """Every rank but 0 loads the corpus: first local rank 0 of each machine (which may build
    the id cache), then, after a barrier, the rest (which reuse it)."""
    for turn in (0, 1):
        if rt.rank != 0 and (rt.local_rank == 0) == (turn == 0):
            load()
        barrier(rt)


def follow(plan: Plan) -> None:
    """A torch run's ranks but 0: the same run, silent (rank 0 reports and writes). A Ctrl-C
    here asks for the stop that every rank agrees on at the end of the step."""
    try:
        for ev in loop.run(plan):
            if ev["event"] == loop.DIVERGED:
                raise SystemExit(1)
            if ev["event"] == loop.DONE and ev["reason"] == loop.INTERRUPTED:
                raise SystemExit(130)
    except CharlmError as e:  # rank 0 meets the same problem and reports it
        raise SystemExit(e.exit_code) from None


def shutdown(rt) -> None:
    """Leave torchrun's process group, if this process joined one."""
    if rt is not None:
        from charlm.engines import torch_dist
        torch_dist.shutdown()

