"""Where the torch engine runs: the device, and the processes of a torchrun launch.

One process (plain `charlm train … --engine torch`): rank 0 of 1, nothing to set up.
Under torchrun (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR … in the environment) every
process joins the process group: NCCL when it trains on a CUDA GPU (cuda:LOCAL_RANK),
gloo on a CPU. torchrun's rendezvous makes the same code span several machines.

Rank 0 alone plans a run and sends the plan to the others with `broadcast`
(charlm/training/launch.py says who does what).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from charlm.errors import CharlmError, UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Runtime:
    rank: int                   # this process among all (0 writes checkpoints and logs)
    world: int                  # K: processes sharing the lanes
    local_rank: int             # this process among those on its machine
    device: torch.device        # where it trains
    backend: str | None         # "nccl" | "gloo" | None (one process)

    @property
    def comm(self) -> torch.device:
        """Where collective operations keep their tensors (NCCL: the GPU; gloo: the CPU)."""
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def describe(self) -> str:
        if self.world == 1:
            return f"one process on {self.device}"
        return f"{self.world} processes (DDP over {self.backend}), this one on {self.device}"


_GROUP: Runtime | None = None


def launched() -> int:
    """K when this process was started by torchrun (or any launcher that sets WORLD_SIZE), else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(requested: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The device for --device `requested` (auto | cpu | cuda | mps, or a torch device string)."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else ("mps" if world == 1 and _mps_available() else "cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise CharlmError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False: "
                              "no GPU, no driver, or a CPU-only build of torch); --device cpu trains on the CPU")
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise CharlmError(f"process {local_rank} on this machine has no GPU of its own ({n} visible); "
                              f"start at most {n} per machine (torchrun --nproc_per_node {n})")
        return torch.device("cuda", local_rank)
    if requested == "mps":
        if not _mps_available():
            raise CharlmError("--device mps: torch sees no Apple GPU here (torch.backends.mps.is_available() "
                              "is False); --device cpu trains on the CPU")
        if world > 1:
            raise UsageError("--device mps trains in one process; torchrun's DDP runs on CUDA (NCCL) or CPU (gloo)")
        return torch.device("mps")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise UsageError(f"unknown --device {requested!r}; choose one of {', '.join(DEVICES)}") from None


def runtime(device: str = "auto", threads: int | None = None) -> Runtime:
    """This process's place in the run, joining torchrun's process group the first time.
    threads: torch's intra-op CPU threads (None: torch's default; torchrun sets 1 per process)."""
    global _GROUP
    if threads:
        torch.set_num_threads(threads)
    if _GROUP is not None:
        return _GROUP
    if not dist.is_initialized() and launched() == 1:
        return Runtime(0, 1, 0, pick_device(device), None)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():  # a script that set up its own group
        world, rank = dist.get_world_size(), dist.get_rank()
        dev = pick_device(device, local_rank, world)
        backend = dist.get_backend()
    else:
        world, rank = launched(), int(os.environ.get("RANK", "0"))
        dev = pick_device(device, local_rank, world)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    _GROUP = Runtime(rank, world, local_rank, dev, backend)
    return _GROUP


def shutdown() -> None:
    """Leave the process group (at the end of `charlm train`)."""
    global _GROUP
    if _GROUP is not None and dist.is_initialized():
        try:  # every rank arrives before any tears the group down (gloo aborts a rank left mid-exchange)
            barrier(_GROUP)
        except RuntimeError:
            pass  # another rank is gone already: nothing left to wait for
        dist.destroy_process_group()
    _GROUP = None


def broadcast(obj, rt: Runtime):
    """rank 0's `obj` on every rank (pickled)."""
    box = [obj if rt.rank == 0 else None]
    dist.broadcast_object_list(box, src=0, device=rt.comm)
    return box[0]


def barrier(rt: Runtime) -> None:
    if rt.backend == "nccl":
        dist.barrier(device_ids=[rt.device.index])
    else:
        dist.barrier()
