"""Training engines: who computes a step. The loop in charlm/training/loop.py is the same for all.

    numpy   charlm's own engine, the default and the reference: `NumpyTeam`
            (charlm/engines/numpy_team.py) over the worker processes of charlm/engines/parallel.py.
    torch   the same model built from torch.nn.LSTM / GRU / RNN, nn.Embedding and
            nn.Linear, on a CPU, a CUDA GPU or Apple's MPS, and across processes and
            machines with torchrun (DDP): charlm/engines/torch_team.py.

Both are a `Team`, the interface below; the loop never looks inside one, so budgets,
validation, checkpoints, events and resume are written once. Everything that crosses
the interface as data (checkpoint arrays) is numpy in charlm's layout (parameter names =
PyTorch's state_dict names, optimizer slots under the same names), so a run started on
one engine resumes on the other.

torch is imported only on demand: `import charlm` and the numpy engine never load it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from charlm.config import ModelConfig, OptimConfig
from charlm.engines.flat import Layout
from charlm.errors import CharlmError
from charlm.nn.score import Score

INSTALL = "pip install 'charlm[torch]'"


class Spec(Protocol):
    layout: Layout                      # the parameters' names and shapes (charlm/engines/flat.py)


class Team(Protocol):
    """What the training loop asks of an engine: every method it calls, and nothing else."""

    spec: Spec
    workers: int                        # processes sharing the lanes
    ids: dict                           # {name: (n,) ids} the team reads: "train", "val", "val_all"
    leader: bool                        # this process writes checkpoints and logs

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The current parameters, as numpy arrays under charlm's names."""

    def reset_state(self) -> None:
        """Zero the carried state of every lane (an epoch begins)."""

    def load_state(self, carried: dict[str, np.ndarray]) -> None:
        """Set the carried state from (L, B, H) arrays (a resume)."""

    def optimizer_state(self, step: int, moments: dict[str, dict[str, np.ndarray]]) -> dict:
        """The optimizer state {"step", "slots"} in the engine's form, from named numpy moments."""

    def train_step(self, source: str, window: int, seq_len: int, step: int) -> tuple[float, object]:
        """Forward and backward of window `window` of ids:source: (mean loss over all B·T positions,
        its gradient in the engine's form); the carried state moves to the window's end."""

    def clip_grads(self, grad: object, max_norm: float) -> float:
        """Global-norm clipping in place (0 disables); the norm before it."""

    def update(self, grad: object, opt: dict, ocfg: OptimConfig, lr: float) -> None:
        """One step of charlm's optimizer (charlm/nn/optim.py) at learning rate lr."""

    def score(self, source: str, batch: int, seq_len: int) -> Score:
        """The score of ids:source under the current parameters (charlm/nn/score.py's lane walk)."""

    def snapshot(self) -> object:
        """A copy of the parameters, in the engine's form."""

    def restore(self, snap: object) -> None:
        """Put a snapshot's parameters back."""

    def average(self, opt: dict) -> object:
        """The average of the weights (--ema's optimizer slot), in `snapshot`'s form."""

    def checkpoint_arrays(self, opt: dict) -> tuple[dict, dict, dict]:
        """(params, optimizer slots, carried state) as named numpy arrays; every process calls it
        (a torch run gathers the lanes' state on rank 0)."""

    def agree(self, x: float) -> float:
        """Rank 0's x on every process, so that budgets end them all at the same step."""

    def agree_any(self, flag: bool) -> bool:
        """Whether any process raised the flag (a Ctrl-C reaches the ranks one by one)."""

    def describe(self) -> str | None:
        """How the work is shared, for the run's first lines (None: the caller words it)."""

    def close(self) -> None:
        """Stop the team's processes; also on leaving a `with` block."""

    def __enter__(self) -> Team: ...

    def __exit__(self, *exc) -> None: ...


def require_torch(asked: bool = True) -> None:
    """Import torch, or fail with the one line that says how to install it. asked: the user
    gave --engine torch (else the run being resumed says so)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        if not asked:
            raise CharlmError(f"this run trains on the torch engine, and PyTorch is not installed here; install it "
                              f"with: {INSTALL}, or continue the run on the numpy engine: --engine numpy") from None
        raise CharlmError(f"--engine torch needs PyTorch, which is not installed here; install it with: "
                          f"{INSTALL}") from None


def make_team(engine: str, cfg: ModelConfig, params: dict, lanes: int, workers: int, ids: dict, *, seed: int = 0,
              threads: int = 1, device: str = "auto", distributed: bool = True) -> Team:
    """The team that trains `params` on `lanes` lanes of `ids` with `engine`. distributed=False
    keeps a torch team to this process even under torchrun (the speed probe)."""
    if engine == "torch":
        require_torch(asked=False)
        from charlm.engines.torch_team import TorchTeam
        return TorchTeam(cfg, params, lanes, ids, seed=seed, device=device, distributed=distributed)
    from charlm.engines.numpy_team import NumpyTeam
    return NumpyTeam(cfg, params, lanes, workers, ids, seed=seed, threads=threads)
