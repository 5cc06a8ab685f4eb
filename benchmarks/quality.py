"""Model quality per CPU-minute: validation loss against wall-clock training time.

Trains with `charlm train CORPUS --time-budget S` (default settings unless flags
are passed after `--`), reads the validation curve the run logs to metrics.jsonl
(val loss at every evaluation, against training seconds: over the held-out tail's
first --val-max-chars characters, which for tinyshakespeare is the whole tail), then
scores best.pkl with `charlm eval perplexity --json`: the number the README reports. Writes everything to a JSON file.

    python -m benchmarks.quality --budget 300
    python -m benchmarks.quality --budget 300 --tag h512 -- --hidden 512 --dropout 0.2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "benchmarks" / "results"


def charlm(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "charlm", *args], text=True, capture_output=True, **kw)


def curve(run_dir: Path) -> list[dict]:
    points = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        if m.get("val_loss") is not None:
            points.append({"step": m["step"], "seconds": m["seconds"], "val_loss": m["val_loss"],
                           "train_loss": m["train_loss"]})
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    ap.add_argument("--budget", type=float, default=300, help="training seconds")
    ap.add_argument("--tag", default="defaults", help="name for this configuration")
    ap.add_argument("--out", type=Path, default=None, help="JSON path [default: benchmarks/results/…]")
    ap.add_argument("flags", nargs="*", help="extra `charlm train` flags (after --)")
    args = ap.parse_args()
    if not args.corpus.is_file():
        sys.exit(f"corpus not found: {args.corpus}")
    run_dir = Path(tempfile.mkdtemp(prefix="charlm-quality-")) / "run"
    t0 = time.perf_counter()
    train = charlm("train", str(args.corpus), "--out", str(run_dir), "--time-budget", str(args.budget),
                   *args.flags)
    wall = time.perf_counter() - t0
    if train.returncode:
        sys.exit(f"charlm train failed ({train.returncode}):\n{train.stderr[-2000:]}")
    score = charlm("eval", "perplexity", "--model", str(run_dir / "best.pkl"), "--json")
    if score.returncode:
        sys.exit(f"charlm eval failed:\n{score.stderr}")
    final = json.loads(score.stdout)
    info = json.loads(charlm("info", str(run_dir / "best.pkl"), "--json").stdout)
    result = {
        "corpus": str(args.corpus), "budget": args.budget, "tag": args.tag, "flags": args.flags,
        "date": time.strftime("%Y-%m-%d %H:%M"), "wall_seconds": round(wall, 1),
        "model": info["model"], "parameters": info["parameters"], "steps": info["steps"],
        "train_config": info["train_config"], "optim_config": info["optim_config"],
        "final": final, "curve": curve(run_dir),
        "log": [line for line in train.stderr.splitlines() if line.startswith("charlm:")],
    }
    out = args.out or RESULTS / f"quality-{args.corpus.stem}-{int(args.budget)}s-{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    best = min((p["val_loss"] for p in result["curve"]), default=float("nan"))
    print(f"{args.tag}: budget {args.budget:g}s, {info['steps']} steps, {info['parameters']:,} params — "
          f"eval perplexity: {final['nats_per_char']:.4f} nats/char ({final['bits_per_char']:.3f} bits/char, "
          f"ppl {final['perplexity']:.3f}); best logged val {best:.4f} — {out}")


if __name__ == "__main__":
    main()
