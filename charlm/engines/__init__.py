"""Training engines: who computes a step. The loop in charlm/training/loop.py is the same for all.

    numpy   charlm's own engine, the default and the reference: `NumpyTeam`
            (charlm/engines/numpy_team.py) over the worker processes of charlm/engines/parallel.py.
    torch   the same model built from torch.nn.LSTM / GRU / RNN, nn.Embedding and
            nn.Linear, on a CPU, a CUDA GPU or Apple's MPS, and across processes and
            machines with torchrun (DDP): charlm/engines/torch_team.py.

Both are a "team" with the interface below; the loop never looks inside one, so
budgets, validation, checkpoints, events and resume are written once. Everything
that crosses the interface as data (checkpoint arrays) is numpy in charlm's layout
(parameter names = PyTorch's state_dict names, optimizer slots under the same
names), so a run started on one engine resumes on the other.

    spec.layout                         the parameters' names and shapes (charlm/engines/flat.py)
    workers                             processes sharing the lanes
    ids                                 {name: (n,) ids} the team reads ("train", "val", …)
    leader                              this process writes checkpoints and logs
    params                              {name: array}: the current parameters, numpy
    reset_state() / load_state(carried) zero the carried state / set it from (L, B, H) arrays
    optimizer_state(step, moments)      the optimizer state in the engine's form
    train_step(source, window, T, step) → (mean loss over all B·T positions, its gradient)
    clip_grads(grad, max_norm)          global-norm clipping in place → the norm before it
    update(grad, opt, ocfg, lr)         one step of charlm's optimizer (charlm/nn/optim.py)
    score(source, batch, T)             evaluate.Score of ids:source, as evaluate.score_ids
    snapshot() / restore(snap)          a copy of the parameters / put one back
    average(opt)                        the average of the weights (--ema slot), in snapshot's form
    checkpoint_arrays(opt)              (params, optimizer slots, carried state) as numpy;
                                        every process calls it (the state is gathered)
    agree(x) / agree_any(flag)          rank 0's number / whether any rank raised the
                                        flag: so that every process stops at the same step
    close(), and use as a context manager

torch is imported only here, on demand: `import charlm` and the numpy engine never load it.
"""

from __future__ import annotations

from charlm.errors import CharlmError

ENGINES = ("numpy", "torch")
INSTALL = "pip install 'charlm[torch]'"


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


def make_team(engine: str, cfg, params: dict, lanes: int, workers: int, ids: dict, *, seed: int = 0,
              threads: int = 1, device: str = "auto"):
    """The team that trains `params` on `lanes` lanes of `ids` with `engine`."""
    if engine == "torch":
        require_torch(asked=False)
        from charlm.engines.torch_team import TorchTeam
        return TorchTeam(cfg, params, lanes, ids, seed=seed, device=device)
    from charlm.engines.numpy_team import NumpyTeam
    return NumpyTeam(cfg, params, lanes, workers, ids, seed=seed, threads=threads)
