"""The numpy engine: charlm/engines/parallel.py's `Team` with the engine interface (charlm/engines/__init__.py).

The parameters, carried state and optimizer moments are flat buffers in shared
memory; the optimizer runs on the flat buffers as a handful of numpy calls (weight
decay on the weight matrices' views of them).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from charlm.config import OptimConfig
from charlm.engines.parallel import Team
from charlm.nn import optim


class NumpyTeam(Team):
    leader = True   # one process writes everything; its workers only compute

    def describe(self) -> str | None:
        return None  # the CLI words the worker processes itself

    def load_state(self, carried: dict[str, np.ndarray]) -> None:
        for k, v in carried.items():
            self.state[k][...] = v

    def optimizer_state(self, step: int, moments: dict[str, dict[str, np.ndarray]]) -> dict:
        """{"step", "slots": {slot: {"all": (P,)}}}: the moments packed like the parameters."""
        return {"step": step, "slots": {k: {"all": self.spec.layout.pack(m)} for k, m in moments.items()}}

    def clip_grads(self, grad: np.ndarray, max_norm: float) -> float:
        return optim.clip_grads({"all": grad}, max_norm)

    @cached_property
    def matrices(self) -> list[np.ndarray]:
        """What weight decay shrinks (optim.decayed): the weight matrices' views of the flat buffer."""
        return optim.decayed(self.params)

    def update(self, grad: np.ndarray, opt: dict, ocfg: OptimConfig, lr: float) -> None:
        optim.update({"all": self.flat}, {"all": grad}, opt, ocfg, lr, self.matrices)

    def average(self, opt: dict) -> np.ndarray:
        return opt["slots"]["ema"]["all"]                                   # (P,)

    def snapshot(self) -> np.ndarray:
        return self.flat.copy()                                             # (P,)

    def restore(self, snap: np.ndarray) -> None:
        self.flat[...] = snap

    def checkpoint_arrays(self, opt: dict) -> tuple[dict, dict, dict]:
        layout = self.spec.layout
        return (self.params, {k: layout.views(m["all"]) for k, m in opt["slots"].items()},
                {k: v.copy() for k, v in self.state.items()})

    def agree(self, x: float) -> float:
        return x

    def agree_any(self, flag: bool) -> bool:
        return flag
