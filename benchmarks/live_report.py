"""What watching a run costs: steps per second with and without `--report` (and `--keep-every`),
and what one training sample and one live page cost against the time between validations.

Each mode trains the same run (same corpus, model, seed, --max-steps) through the real
`charlm train`, alternating the order of the modes from one repeat to the next; the wall time
counts everything (start, validations, samples, the page, kept checkpoints), the run's own clock
(metrics.jsonl's seconds) counts training alone. The samples record is part of every run, so
its cost is timed on its own: one sample (defaults.TRAINING_SAMPLE) from the trained model, as
the loop draws it, against the `--eval-every` steps that separate two of them. One live page
(charlm/report/live.py) is timed the same way, drawn and written from the run's own records.

    python -m benchmarks.live_report --corpus corpora/shakespeare.txt            # the defaults' 2×256 GRU
    python -m benchmarks.live_report --corpus tiny.txt --steps 20 --hidden 16 --layers 1 --repeats 1  # smoke

Run it on a quiet machine: the table names the machine, and the numbers mean nothing on a busy one.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe, header_lines
from charlm import checkpoint, defaults, rundir
from charlm.nn.sample import generate
from charlm.report import live, parts


def modes(keep_every: int) -> dict[str, list[str]]:
    """What each mode adds to `charlm train`, by its name in the table."""
    keep = ["--report", "--keep-every", str(keep_every)]
    return {"plain": [], "--report": ["--report"], " ".join(keep): keep}


def train(args, run_dir: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, training seconds by the run's own clock) of one run of `charlm train`."""
    cmd = [sys.executable, "-m", "charlm", "train", str(args.corpus), "--out", str(run_dir), "--max-steps",
           str(args.steps), "--eval-every", str(args.eval_every), "--patience", "0", "--seed", "0", "--quiet",
           "--cell", args.cell, "--layers", str(args.layers), "--hidden", str(args.hidden),
           "--val-max-chars", str(args.val_chars), *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"charlm train failed: {done.stderr.strip().splitlines()[-1]}")
    rows = rundir.read_metrics(run_dir)
    return wall, rows[-1]["seconds"]


def sample_seconds(run_dir: Path, repeats: int = 5) -> float:
    """Median seconds of one training sample from the run's model, drawn as the loop draws it."""
    ckpt = checkpoint.load(run_dir / rundir.LAST)
    s = defaults.TRAINING_SAMPLE
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        "".join(c[0] for c in generate(ckpt.params, ckpt.model, ckpt.vocab, length=s["length"], prime=s["prime"],
                                       temperature=s["temperature"], rng=np.random.default_rng(s["seed"])))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def page_seconds(run_dir: Path, repeats: int = 5) -> tuple[float, int]:
    """Median seconds of drawing and writing one live page from the run's records, and its size."""
    ckpt = checkpoint.load(run_dir / rundir.LAST)
    run = live.Run(run_dir, ckpt.model, ckpt.optim, ckpt.train, ckpt.corpus.path, len(ckpt.vocab),
                   sum(p.size for p in ckpt.params.values()))
    times, html = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        html = live.page(run, live.Status(ckpt.step, 0.5), rundir.read_metrics(run_dir), ckpt.history,
                         rundir.read_samples(run_dir))
        parts.write_page(run_dir / "bench-page.html", html)
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(html.encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("corpora/shakespeare.txt"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--eval-every", type=int, default=50, help="validations (so samples, pages) this many steps apart")
    ap.add_argument("--keep-every", type=int, default=50)
    ap.add_argument("--cell", default=defaults.CELL)
    ap.add_argument("--layers", type=int, default=defaults.LAYERS)
    ap.add_argument("--hidden", type=int, default=defaults.NO_BUDGET.hidden)
    ap.add_argument("--val-chars", type=int, default=50_000, help="validation chars scored at each validation")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"no corpus at {args.corpus}: `charlm corpus get shakespeare`, or give --corpus")
    print("\n".join(header_lines(describe(None, "not used here"))))
    print(f"workload {args.cell} {args.layers}×{args.hidden} on {args.corpus}, {args.steps} steps, validation every "
          f"{args.eval_every} steps on {args.val_chars:,} chars, --keep-every {args.keep_every}, "
          f"{args.repeats} repeat(s), modes in alternating order\n")
    flags = modes(args.keep_every)
    walls: dict[str, list[float]] = {m: [] for m in flags}
    clocks: dict[str, list[float]] = {m: [] for m in flags}
    with tempfile.TemporaryDirectory(prefix="charlm-bench-") as tmp:
        for r in range(args.repeats):
            for k, mode in (list(enumerate(flags)) if r % 2 == 0 else list(reversed(list(enumerate(flags))))):
                wall, clock = train(args, Path(tmp) / f"run-{r}-{k}", flags[mode])
                walls[mode].append(wall)
                clocks[mode].append(clock)
        last = Path(tmp) / f"run-{args.repeats - 1}-{len(flags) - 1}"    # with the live page and kept checkpoints
        one_sample = sample_seconds(last)
        one_page, page_bytes = page_seconds(last)
        kept = rundir.kept(last)
        kept_bytes = max((p.stat().st_size for p in kept.values()), default=0)
    base = statistics.median(walls["plain"])
    print(f"{'mode':<28} {'wall s':>8} {'steps/s (wall)':>15} {'vs plain':>9} {'steps/s (training clock)':>25}")
    for mode in flags:
        wall, clock = statistics.median(walls[mode]), statistics.median(clocks[mode])
        print(f"{mode:<28} {wall:>8.1f} {args.steps / wall:>15.2f} "
              f"{100 * (wall - base) / base:>+8.1f}% {args.steps / clock:>25.2f}")
    step = statistics.median(clocks["plain"]) / args.steps
    between = args.eval_every * step
    print(f"\none training sample ({defaults.TRAINING_SAMPLE['length']} chars): {1000 * one_sample:.1f} ms, "
          f"{100 * one_sample / between:.2f}% of the {between:.1f} s of training between two validations "
          f"({1000 * step:.0f} ms a step)")
    print(f"one live page (drawn and written, {page_bytes / 1000:.0f} kB): {1000 * one_page:.1f} ms, "
          f"{100 * one_page / between:.2f}% of the time between two validations")
    if kept:
        print(f"a kept checkpoint weighs {kept_bytes / 2**20:.2f} MiB ({len(kept)} kept in {args.steps} steps)")


if __name__ == "__main__":
    main()
