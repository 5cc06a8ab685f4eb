"""The torch engine: charlm's model as torch.nn modules, trained by charlm's own loop.

The model is `CharLM` (charlm/engines/torch_model.py), whose parameters are charlm's under
their own names, so they go in and come out unchanged: the same seed gives the same
starting weights (charlm's numpy initialisation, copied in), and a checkpoint is charlm's
own (numpy arrays) whichever engine wrote it.

What the numpy engine does, done here the same way:
- lanes and windows (charlm/data/batches.py), truncated BPTT: the state carried
  from window to window, detached; the loss is the mean nll over all B·T positions;
- the optimizer is charlm/nn/optim.py's, formula for formula (Adam with ε on the
  bias-corrected √v, RMSprop, SGD with heavy-ball momentum), not torch.optim, with
  the same global-norm clipping; the moments are kept per parameter, on the device;
- validation walks the same lanes, warm-up and tail (charlm/nn/score.py's `walk`, with this
  engine's forward pass).
With dropout 0 the two engines agree loss by loss to float32 rounding
(tests/engines/test_torch_engine.py), weight decay and the average of the weights (--ema)
included. With dropout > 0 the masks are torch's own: a run is
repeatable per engine (the generator is seeded by (seed, step, rank) each step, so a
resume on the CPU continues it exactly), but not the numpy engine's run. The numpy
engine's other dropout (locked masks, weight drop, embedding dropout) is refused here.

Across processes (torchrun, charlm/engines/torch_dist.py) the module is wrapped in
DistributedDataParallel. The B lanes are split over the K ranks as charlm/engines/parallel.py
splits them (`batches.shares`); rank r's loss is the mean over its n_r lanes, and it
backpropagates K·n_r/B times that, so DDP's average of the K gradients is Σ_r (n_r/B)·g_r:
the gradient of the mean over all B·T positions, as one process computes it. The
update then runs on every rank from the same gradient: the parameters stay equal
without being sent. Each rank carries its own lanes' state; a checkpoint gathers
them on rank 0, and a resume hands each rank its lanes again, whatever K is.

Letters: N lanes (this rank's), T time steps, V vocabulary, H hidden, L layers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from charlm.config import ModelConfig, OptimConfig, check_engine
from charlm.data import batches
from charlm.data.batches import FileSlice
from charlm.engines.flat import Layout
from charlm.engines.torch_dist import Runtime, pick_device, runtime
from charlm.engines.torch_model import CharLM
from charlm.errors import CharlmError
from charlm.nn import optim, score


def _host(t: torch.Tensor) -> np.ndarray:
    """A numpy copy of a tensor (never a view of its memory)."""
    return t.detach().to("cpu", copy=True).numpy()


def _dropout_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence((seed, step, rank)).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class Spec:
    layout: Layout


class TorchTeam:
    """The torch engine's team (the interface in charlm/engines/__init__.py).

    params: the initial parameters (numpy, charlm names); lanes: B; ids: {name: (n,)
    ids or FileSlice}. device: auto | cpu | cuda | mps (or a torch device string);
    under torchrun the device and the rank come from the launch. distributed=False
    trains alone even inside a torchrun launch (the speed probe does).
    """

    def __init__(self, cfg: ModelConfig, params: dict[str, np.ndarray], lanes: int,
                 ids: dict[str, np.ndarray | FileSlice], seed: int = 0, device: str = "auto",
                 distributed: bool = True):
        self.rt = runtime(device) if distributed else Runtime(0, 1, 0, pick_device(device), None)
        self.device, self.rank, self.workers = self.rt.device, self.rt.rank, self.rt.world
        # sums in float64 (losses, norms, scores) stay on the device, but MPS has no float64
        self.acc = torch.device("cpu") if self.device.type == "mps" else self.device
        if lanes < self.workers:
            raise CharlmError(f"--batch-size {lanes} is fewer lanes than the {self.workers} processes sharing them; "
                              f"use --batch-size ≥ {self.workers} or fewer processes")
        check_engine("torch", dataclasses.asdict(cfg))  # plans refuse it first; a script may not
        self.cfg, self.seed, self.lanes, self.leader = cfg, seed, lanes, self.rank == 0
        self.lo, self.hi = batches.shares(lanes, self.workers)[self.rank]
        self.spec = Spec(Layout.of(params))
        self.dtype = getattr(torch, np.dtype(self.spec.layout.dtype).name)
        self.ids = {name: a.open() if isinstance(a, FileSlice) else a for name, a in ids.items()}
        self.net = CharLM(cfg).to(device=self.device, dtype=self.dtype)
        named = dict(self.net.named_parameters())
        names = self.spec.layout.names
        if set(named) != set(names):
            raise CharlmError(f"the torch model's parameters {sorted(named)} are not charlm's {sorted(names)}")
        self.tensors = [named[n] for n in names]                     # in charlm's layout order
        self.matrices = [t for t in self.tensors if t.dim() >= 2]    # what weight decay shrinks (optim.decayed)
        with torch.no_grad():
            for t, n in zip(self.tensors, names, strict=True):
                t.copy_(torch.from_numpy(np.ascontiguousarray(params[n])))
        self.model = self.net
        if self.workers > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.model = DistributedDataParallel(self.net, device_ids=[self.device] if self.device.type == "cuda"
                                                 else None)
        self.state = self._zeros(self.hi - self.lo)

    # ------------------------------------------------------------------ state

    def _zeros(self, n: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        shape = (cfg.layers, n, cfg.hidden)
        state = {"h": torch.zeros(shape, dtype=self.dtype, device=self.device)}
        if cfg.cell == "lstm":
            state["c"] = torch.zeros(shape, dtype=self.dtype, device=self.device)
        return state

    @staticmethod
    def _rnn_state(state: dict):
        return (state["h"], state["c"]) if "c" in state else state["h"]

    @staticmethod
    def _from_rnn(final) -> dict:
        if isinstance(final, tuple):
            return {"h": final[0].detach(), "c": final[1].detach()}
        return {"h": final.detach()}

    def reset_state(self) -> None:
        for v in self.state.values():
            v.zero_()

    def load_state(self, carried: dict[str, np.ndarray]) -> None:
        """The carried state of all B lanes, (L, B, H) each: this rank keeps its own."""
        for k, v in carried.items():
            self.state[k].copy_(torch.from_numpy(np.ascontiguousarray(v[:, self.lo: self.hi])))

    def _gather_state(self) -> dict[str, np.ndarray]:
        """Every lane's carried state, (L, B, H), on rank 0 (a collective: every rank calls it)."""
        mine = {k: _host(v) for k, v in self.state.items()}
        if self.workers == 1:
            return mine
        parts = [None] * self.workers if self.leader else None
        dist.gather_object(mine, parts, dst=0)
        if not self.leader:
            return mine
        return {k: np.concatenate([p[k] for p in parts], axis=1) for k in mine}

    # ------------------------------------------------------------- parameters

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {n: _host(t) for n, t in zip(self.spec.layout.names, self.tensors, strict=True)}

    def snapshot(self) -> list[torch.Tensor]:
        return [t.detach().clone() for t in self.tensors]

    def restore(self, snap: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for t, s in zip(self.tensors, snap, strict=True):
                t.copy_(s)

    def average(self, opt: dict) -> list[torch.Tensor]:
        """The average of the weights (--ema), in `snapshot`'s form."""
        return opt["slots"]["ema"]

    def optimizer_state(self, step: int, moments: dict[str, dict[str, np.ndarray]]) -> dict:
        """{"step", "slots": {slot: [tensor per parameter, layout order]}}, on the device."""
        names = self.spec.layout.names
        return {"step": step, "slots": {
            slot: [torch.from_numpy(np.ascontiguousarray(m[n])).to(self.device, self.dtype, copy=True)
                   for n in names] for slot, m in moments.items()}}

    def checkpoint_arrays(self, opt: dict) -> tuple[dict, dict, dict]:
        names = self.spec.layout.names
        slots = {k: {n: _host(t) for n, t in zip(names, ts, strict=True)} for k, ts in opt["slots"].items()}
        return self.params, slots, self._gather_state()

    # ----------------------------------------------------------------- training

    def _ids(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x, dtype=np.int64)).to(self.device)

    def train_step(self, source: str, window: int, seq_len: int, step: int) -> tuple[float, list[torch.Tensor]]:
        """Forward and backward of window `window` of ids:source over this rank's lanes.
        Returns the mean loss over all B·T positions (every rank gets the same number)
        and the gradient, one tensor per parameter (DDP has averaged it over the ranks)."""
        lanes = batches.lanes(self.ids[source], self.lanes)[self.lo: self.hi]
        x, y = (self._ids(a) for a in batches.window(lanes, window, seq_len))          # (N, T) each
        if self.cfg.dropout > 0:
            torch.manual_seed(_dropout_seed(self.seed, step, self.rank))
        self.net.train()
        for t in self.tensors:
            t.grad = None
        logits, final = self.model(x, self._rnn_state(self.state))
        nll = F.cross_entropy(logits.reshape(-1, self.cfg.vocab_size), y.reshape(-1), reduction="none")
        share = (self.hi - self.lo) / self.lanes
        (nll.mean() * (share * self.workers)).backward()
        self.state = self._from_rnn(final)
        loss = nll.detach().to(self.acc, torch.float64).mean() * share  # float64, as the numpy engine averages
        if self.workers > 1:
            loss = loss.to(self.rt.comm)
            dist.all_reduce(loss)
        return float(loss), [t.grad for t in self.tensors]

    @torch.no_grad()
    def clip_grads(self, grads: list[torch.Tensor], max_norm: float) -> float:
        """optim.clip_grads on the device: scale all gradients by max_norm / (norm + 1e-6)
        when their global L2 norm exceeds max_norm (0 disables). Returns the norm before."""
        norms = torch.stack(torch._foreach_norm(grads)).to(self.acc, torch.float64)
        norm = float(torch.linalg.vector_norm(norms))
        if max_norm > 0 and norm > max_norm:
            torch._foreach_mul_(grads, max_norm / (norm + 1e-6))
        return norm

    @torch.no_grad()
    def update(self, grads: list[torch.Tensor], opt: dict, cfg: OptimConfig, lr: float) -> None:
        """charlm/nn/optim.py's `update` restated in torch: the same formulas in the same order of
        operations, on every parameter at once (torch._foreach_*). Change both together:
        test_float64_step_is_charlm_s_formulas (tests/engines/test_torch_engine.py) holds them equal."""
        if cfg.weight_decay:
            torch._foreach_mul_(self.matrices, 1.0 - lr * cfg.weight_decay)     # p −= lr·wd·p (AdamW)
        opt["step"] += 1
        t, ps, slots = opt["step"], self.tensors, opt["slots"]
        if cfg.name == "adam":
            c1, c2 = 1.0 - cfg.beta1 ** t, 1.0 - cfg.beta2 ** t
            step_size, eps = lr * math.sqrt(c2) / c1, cfg.eps * math.sqrt(c2)
            m, v = slots["m"], slots["v"]
            torch._foreach_mul_(m, cfg.beta1)
            torch._foreach_add_(m, torch._foreach_mul(grads, 1.0 - cfg.beta1))     # m = β1 m + (1 − β1) g
            tmp = torch._foreach_mul(grads, grads)
            torch._foreach_mul_(tmp, 1.0 - cfg.beta2)
            torch._foreach_mul_(v, cfg.beta2)
            torch._foreach_add_(v, tmp)                                            # v = β2 v + (1 − β2) g²
            tmp = torch._foreach_sqrt(v)
            torch._foreach_add_(tmp, eps)
            tmp = torch._foreach_div(m, tmp)
            torch._foreach_mul_(tmp, step_size)
            torch._foreach_sub_(ps, tmp)                                           # p −= lr·√c2/c1 · m/(√v + ε√c2)
        elif cfg.name == "rmsprop":
            v = slots["v"]
            tmp = torch._foreach_mul(grads, grads)
            torch._foreach_mul_(tmp, 1.0 - cfg.alpha)
            torch._foreach_mul_(v, cfg.alpha)
            torch._foreach_add_(v, tmp)                                            # v = α v + (1 − α) g²
            tmp = torch._foreach_sqrt(v)
            torch._foreach_add_(tmp, cfg.eps)
            tmp = torch._foreach_div(grads, tmp)
            torch._foreach_mul_(tmp, lr)
            torch._foreach_sub_(ps, tmp)                                           # p −= lr · g / (√v + ε)
        else:
            m = slots["m"]
            torch._foreach_mul_(m, cfg.momentum)
            torch._foreach_add_(m, grads)                                          # m = μ m + g
            torch._foreach_sub_(ps, torch._foreach_mul(m, lr))                     # p −= lr · m
        if cfg.ema:
            ema = slots["ema"]
            tmp = torch._foreach_sub(ps, ema)
            torch._foreach_mul_(tmp, optim.ema_weight(cfg, t))
            torch._foreach_add_(ema, tmp)                                          # ema += w_t (p − ema)

    # ---------------------------------------------------------------- scoring

    @torch.no_grad()
    def score(self, source: str, batch: int, seq_len: int, warmup: int = score.WARMUP,
              progress: Callable[[int], None] | None = None) -> score.Score:
        """The score of ids:source under the current parameters: charlm/nn/score.py's lane walk
        with this engine's forward pass; the lanes split over the ranks, the sums added up."""
        self.net.eval()

        def forward(x: np.ndarray, y: np.ndarray, state: dict) -> tuple[torch.Tensor, dict]:
            logits, final = self.net(self._ids(x), self._rnn_state(state))
            nll = F.cross_entropy(logits.reshape(-1, self.cfg.vocab_size), self._ids(y).reshape(-1),
                                  reduction="sum")
            return nll.to(self.acc, torch.float64), self._from_rnn(final)

        nll, count = score.walk(self.ids[source], forward, self._zeros, batch=batch, seq_len=seq_len,
                                warmup=warmup, part=(self.rank, self.workers),
                                progress=(lambda n: progress(n * self.workers)) if progress else None)
        total = torch.tensor([float(nll), count], dtype=torch.float64, device=self.acc)  # nll sum, characters
        if self.workers > 1:
            total = total.to(self.rt.comm)
            dist.all_reduce(total)
        nll, count = (float(v) for v in total)
        return score.Score(nll / count if count else float("nan"), int(count))

    # ------------------------------------------------------------------- misc

    def agree(self, x: float) -> float:
        """Rank 0's x on every rank (the clock, so that budgets end every rank at the same step)."""
        if self.workers == 1:
            return x
        t = torch.tensor([x], dtype=torch.float64, device=self.rt.comm)
        dist.broadcast(t, src=0)
        return float(t)

    def agree_any(self, flag: bool) -> bool:
        """True on every rank when any rank's flag is (Ctrl-C reaches the ranks one by one)."""
        if self.workers == 1:
            return flag
        t = torch.tensor([int(flag)], dtype=torch.int32, device=self.rt.comm)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t)

    def describe(self) -> str:
        per = f", {self.hi - self.lo} lanes here" if self.workers > 1 else ""
        n = torch.get_num_threads()
        threads = f", {n} thread{'s' if n > 1 else ''}" if self.device.type == "cpu" else ""
        return f"torch engine {torch.__version__}: {self.rt.describe()}{per}{threads}"

    def close(self) -> None:
        pass

    def __enter__(self) -> TorchTeam:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
