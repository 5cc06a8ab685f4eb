"""Where a run's validation loss peaks, and what `--patience K` would have done to it.

Reads the metrics.jsonl of finished step-budgeted runs (any --patience 0 run of
`charlm train`) and replays early stopping over each: a run that stops early follows
the same trajectory up to its stop, so the replay is exact. Also prints the longest
stretch of validations without a new best that a run later recovered from: a
patience no larger than that would have stopped before the run's best.

    python benchmarks/patience.py runs/*/metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from charlm.training import budget


def report(path: Path, patiences: list[int]) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    history = [{"step": r["step"], "val_loss": r["val_loss"]} for r in rows if r.get("val_loss") is not None]
    vals = [h["val_loss"] for h in history]
    end, i_best = rows[-1]["step"], vals.index(min(vals))
    lines = [f"{path}: {len(vals)} validations over {end} steps; best {vals[i_best]:.4f} at step "
             f"{history[i_best]['step']} ({100 * history[i_best]['step'] / end:.0f}% of the run), "
             f"last {vals[-1]:.4f}"]
    for k in patiences:
        stop = next((i for i in range(len(history)) if budget.early_stop(k, history[:i + 1])), None)
        if stop is None:
            lines.append(f"  --patience {k}: never stops")
            continue
        lost = min(vals[:stop + 1]) - vals[i_best]
        lines.append(f"  --patience {k}: stops at step {history[stop]['step']} "
                     f"({100 * history[stop]['step'] / end:.0f}%), best by then "
                     f"{min(vals[:stop + 1]):.4f}" + (f" (+{lost:.4f})" if lost else " (the run's best)"))
    # the longest wait for a new best that did come: a patience up to this would have cost loss
    waits = [budget.since_best(history[:i])[0] for i in range(1, len(history)) if vals[i] < min(vals[:i])]
    lines.append(f"  longest stretch without a new best before a later one: {max(waits, default=0)} validation(s)")
    shown = history[::max(1, len(history) // 12)]
    lines.append("  curve: " + ", ".join(f"{h['val_loss']:.3f}@{h['step']}" for h in shown))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", type=Path)
    ap.add_argument("--patience", type=int, nargs="+", default=[3, 5, 10])
    args = ap.parse_args()
    for path in args.metrics:
        print("\n".join(report(path, args.patience)))


if __name__ == "__main__":
    main()
