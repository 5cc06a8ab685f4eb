"""The per-step cost of each regulariser, against the plain training step, in one run.

    python -m benchmarks.regularisers                      # the tiers' models, 2 workers, B 50 × T 100
    python -m benchmarks.regularisers --quick              # a smoke test: a tiny model, seconds
    python -m benchmarks.regularisers --models 384 --rounds 7 --json benchmarks/results/regularisers.json

A step is what charlm/training/loop.py times: forward and backward over the worker
processes (charlm/engines/parallel.py), global-norm clipping and the optimizer update.
Each variant changes one setting of the plain step (the tier's model without dropout,
Adam without weight decay or average); the last one is the defaults' pair (charlm/defaults.py). The variants are timed
in turn within each round, each on its own team of workers, and the rounds repeated,
so a change of load hits every variant alike; the table gives each variant's median ms
per step and its ratio to the plain step's median. Run it on a quiet machine: the
numbers are only as steady as the machine is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks import machine
from charlm import threads
from charlm.config import ModelConfig, OptimConfig
from charlm.engines.numpy_team import NumpyTeam
from charlm.nn import model, optim

V = 65  # tinyshakespeare's vocabulary
PLAIN_OPTIM = {"weight_decay": 0.0, "ema": 0.0}  # the plain step: Adam alone, whatever the defaults
# (name, ModelConfig keywords, OptimConfig keywords) over the plain step
VARIANTS = (
    ("plain", {}, {}),
    ("dropout 0.2", {"dropout": 0.2}, {}),
    ("locked dropout 0.2", {"dropout": 0.2, "locked_dropout": True}, {}),
    ("weight drop 0.2", {"weight_drop": 0.2}, {}),
    ("embedding dropout 0.1", {"embed_dropout": 0.1}, {}),
    ("weight decay 0.3", {}, {"weight_decay": 0.3}),
    ("ema 0.999", {}, {"ema": 0.999}),
    ("the defaults' weight decay 0.3 and ema", {}, {"weight_decay": 0.3, "ema": 0.999}),
)


def step_ms(cfg: ModelConfig, ocfg: OptimConfig, batch: int, seq_len: int, workers: int, steps: int) -> float:
    """Median ms of `steps` timed training steps (after two untimed ones) on a fresh team."""
    params = model.init_params(cfg, np.random.default_rng(0))
    windows = 8
    ids = np.random.default_rng(1).integers(0, V, batch * (windows * seq_len + 1)).astype(np.uint8)
    with threads.limited(1), NumpyTeam(cfg, params, batch, workers, {"train": ids}) as team:
        team.reset_state()
        opt = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
        times = []
        for step in range(2 + steps):
            t0 = time.perf_counter()
            _, grad = team.train_step("train", step % windows, seq_len, step)
            team.clip_grads(grad, ocfg.clip)
            team.update(grad, opt, ocfg, ocfg.lr)
            if step >= 2:
                times.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(times)


def measure(hidden: int, variants, args) -> dict[str, list[float]]:
    """{variant: [median ms per step of each round]} for the GRU 2×hidden (E = H)."""
    out: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, model_kw, optim_kw in variants:
            cfg = ModelConfig(V, cell="gru", layers=2, hidden=hidden, **model_kw)
            ocfg = OptimConfig(**{**PLAIN_OPTIM, **optim_kw})
            out[name].append(step_ms(cfg, ocfg, args.batch, args.seq_len, args.workers, args.steps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, nargs="+", default=[256, 384], help="hidden widths (GRU 2×H, E = H)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: as `charlm train`)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--combined", default="", help="a further variant: `charlm train`-style keywords, e.g. "
                    "'dropout=0.25,locked_dropout=1,weight_drop=0.2,ema=0.999'")
    ap.add_argument("--quick", action="store_true", help="smoke test: GRU 2×32, B 8 × T 10, 1 round of 2 steps")
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = ap.parse_args()
    if args.quick:
        args.models, args.batch, args.seq_len, args.steps, args.rounds = [32], 8, 10, 2, 1
    args.workers = threads.workers(args.workers, args.batch)
    variants = list(VARIANTS)
    if args.combined:
        kw = {k: float(v) for k, v in (item.split("=") for item in args.combined.split(","))}
        optim_kw = {k: kw.pop(k) for k in ("weight_decay", "ema") if k in kw}
        if "locked_dropout" in kw:
            kw["locked_dropout"] = bool(kw["locked_dropout"])
        variants.append((f"combined: {args.combined}", kw, optim_kw))
    info = machine.describe(None, "not used")
    for line in machine.header_lines(info):
        print(line)
    print(f"GRU 2×H, E = H, V {V}, batch {args.batch} × seq {args.seq_len}, {args.workers} worker process(es), "
          f"1 BLAS thread each; median of {args.steps} steps, {args.rounds} round(s)")
    results = {}
    for hidden in args.models:
        runs = measure(hidden, variants, args)
        base = statistics.median(runs["plain"])
        print(f"\nGRU 2×{hidden}{'':<24}ms/step   × plain   rounds (ms)")
        for name, ms in runs.items():
            med = statistics.median(ms)
            print(f"  {name:<34}{med:8.1f}   {med / base:6.3f}   {' '.join(f'{x:.0f}' for x in ms)}")
        results[hidden] = runs
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
                                         "ms_per_step": results}, indent=1))


if __name__ == "__main__":
    main()
