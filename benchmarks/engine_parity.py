"""How closely the torch engine follows the numpy engine, and K processes one (issue 14).

    python -m benchmarks.engine_parity [--steps 30] [--no-ddp]

1. numpy vs torch engine, one process on the CPU: `--steps` training steps from the same
   seed for every cell × (one-hot, embedding input), dropout 0, Adam with the cosine
   schedule, through charlm.training.loop.run: the largest relative difference of a step's loss,
   of a validation, and the largest absolute difference of a parameter at the end.
2. torchrun --standalone --nproc_per_node 2 (DDP over gloo) vs one process, both
   `charlm train --engine torch --device cpu`: the largest differences of the logged
   losses and of the final parameters.
Needs torch. Prints a table; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from charlm import checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.training import loop, plans


def text(n_lines: int = 700, seed: int = 0) -> str:
    """A tiny language (as tests/test_train.py's): enough to learn from in 30 steps."""
    rng = np.random.default_rng(seed)
    s, v, o = ["the cat", "a dog", "my bird"], ["sat on", "ran to", "saw"], ["the mat", "a tree"]
    return "\n".join(f"{rng.choice(s)} {rng.choice(v)} {rng.choice(o)}." for _ in range(n_lines)) + "\n"


def engines(tmp: Path, steps: int) -> list[str]:
    p = tmp / "t.txt"
    p.write_text(text())
    data = corpus.load(p, tmp / "cache")
    lines = [f"numpy vs torch engine, {steps} steps, seed 7, lanes 6 × 16, 2 layers × 24, Adam 3e-3 cosine, "
             "dropout 0 (CPU, one process)",
             f"{'cell':<5} {'input':<10} {'max rel Δ loss':>15} {'max rel Δ val':>14} {'max |Δ param|':>14} "
             f"{'last loss':>10}"]
    for cell in ("rnn", "lstm", "gru"):
        for E in (0, 8):
            out = {}
            for engine in ("numpy", "torch"):
                mcfg = ModelConfig(len(data.vocab), cell=cell, layers=2, hidden=24, embedding_dim=E)
                tcfg = TrainConfig(seq_len=16, batch_size=6, max_steps=steps, eval_every=max(1, steps // 2), seed=7,
                                   engine=engine, workers=1, sample_every=0)
                ocfg = OptimConfig(lr=3e-3, schedule="cosine", warmup_steps=5)
                run_dir = tmp / f"{cell}-{E}-{engine}"
                ev = list(loop.run(plans.decide(data, run_dir, mcfg, ocfg, tcfg)))
                out[engine] = (np.array([e["loss"] for e in ev if e["event"] == "step"]),
                               np.array([e["val_loss"] for e in ev if e["event"] == "eval"]),
                               checkpoint.load(run_dir / "last.pkl").params)
            (a, va, pa), (b, vb, pb) = out["numpy"], out["torch"]
            dp = max(float(np.abs(pa[k] - pb[k]).max()) for k in pa)
            lines.append(f"{cell:<5} {'embedding' if E else 'one-hot':<10} {np.max(np.abs(a - b) / a):>15.1e} "
                         f"{np.max(np.abs(va - vb) / va):>14.1e} {dp:>14.1e} {a[-1]:>10.4f}")
    return lines


def ddp(tmp: Path, steps: int) -> list[str]:
    p = tmp / "d.txt"
    p.write_text(text())
    common = ["train", str(p), "--engine", "torch", "--device", "cpu", "--cell", "lstm", "--layers", "2",
              "--hidden", "32", "--embedding-dim", "16", "--batch-size", "8", "--seq-len", "20", "--seed", "3",
              "--max-steps", str(steps), "--eval-every", str(max(1, steps // 3)),
              "--sample-every", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {"1": [sys.executable, "-m", "charlm", *common, "--out", str(tmp / "k1")],
            "2": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                  "-m", "charlm", *common, "--out", str(tmp / "k2")]}
    for k, cmd in runs.items():
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"K={k} failed:\n{proc.stderr[-3000:]}")
    logs = {k: [json.loads(x) for x in (tmp / f"k{k}" / "metrics.jsonl").read_text().splitlines()] for k in runs}
    ck = {k: checkpoint.load(tmp / f"k{k}" / "last.pkl") for k in runs}
    dl = max(abs(x["train_loss"] - y["train_loss"]) / x["train_loss"] for x, y in zip(logs["1"], logs["2"],
                                                                                      strict=True))
    dv = max(abs(x["val_loss"] - y["val_loss"]) / x["val_loss"] for x, y in zip(logs["1"], logs["2"], strict=True)
             if x["val_loss"])
    dp = max(float(np.abs(ck["1"].params[n] - ck["2"].params[n]).max()) for n in ck["1"].params)
    ds = max(float(np.abs(ck["1"].carried_state[n] - ck["2"].carried_state[n]).max())
             for n in ck["1"].carried_state)
    return [f"torch engine: torchrun --standalone --nproc_per_node 2 (DDP over gloo, 4 lanes each) vs one "
            f"process (8 lanes), {steps} steps, lstm 2×32, seed 3",
            f"max rel Δ loss {dl:.1e} (as metrics.jsonl logs it, 5 decimals), max rel Δ val {dv:.1e}",
            f"max |Δ param| {dp:.1e}, max |Δ carried state| {ds:.1e}; last loss {logs['1'][-1]['train_loss']}"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.engine_parity", description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--no-ddp", action="store_true", help="skip the torchrun comparison")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("needs torch: pip install 'charlm[torch]'") from None
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as d:
        print("\n".join(engines(Path(d), args.steps)))
        if not args.no_ddp:
            print()
            print("\n".join(ddp(Path(d), args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
