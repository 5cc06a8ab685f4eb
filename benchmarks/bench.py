"""`make bench`: charlm's speed against PyTorch and a textbook numpy LSTM (issue 5).

    python -m benchmarks.bench [--quick] [--cells lstm,gru] [--sizes 128,512] [--json PATH]

(or `PYTHONPATH=. python benchmarks/bench.py ...`). Prints the machine, numpy's
float32 GEMM rate, then per cell × H: training chars/s (charlm's numpy engine, charlm's
torch engine on the CPU, PyTorch's stock modules, textbook numpy LSTM), GFLOP/s and % of
the GEMM rate, sampling chars/s at batch 1 and 64, eval chars/s against training, memory,
and a pass/fail list against issue 5's targets.

How it measures, so that ratios hold on a shared 2-core machine:
- all workloads of one cell × H are built first, then each is warmed up and sized:
  a repetition runs chunks of about a third of --rep-seconds until that has passed;
- the repetitions are interleaved (round r runs every workload once, the order
  rotated by r), so a slow patch of machine load hits every contender alike; each
  column is the median over rounds and each ratio the median of the per-round ratios;
- numpy's OpenBLAS threads spin for ~0.1 s after their last call, and would steal the
  cores from PyTorch's threads (and vice versa), so the harness pauses --settle
  seconds whenever it switches between numpy and torch work;
- the cores other processes kept busy are measured per round ("others"); with
  --wait-quiet S each round first waits up to S seconds for them to drop below 0.3;
- memory: MB of peak RSS above the RSS before the workload was built, over its
  setup and warm-up (see machine.start_window).
PyTorch gets the same sizes, batch, sequence, optimizer, clipping and thread count
(torch.set_num_threads(2); numpy's OpenBLAS uses its default, the 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

from benchmarks import machine, report, torch_ref
from benchmarks import workloads as wl

CELLS = ("lstm", "gru", "rnn")
SIZES = (128, 256, 512)


def calibrate(w: wl.Workload, rep_seconds: float) -> int:
    """Warm w up; return how many units make a chunk of about a third of a repetition."""
    w.run(1)  # first call: allocations, first touch of the pages, lazy imports
    n = 1
    while True:
        t0 = time.perf_counter()
        w.run(n)
        dt = time.perf_counter() - t0
        if dt >= 0.2 * rep_seconds:
            return max(1, round(n * rep_seconds / 3 / dt))
        n *= 2


def timed(w: wl.Workload, k: int, rep_seconds: float) -> float:
    """One repetition: chunks of k units until rep_seconds have passed; returns the rate.
    Ending on time rather than on a fixed count keeps a repetition long enough to
    average over scheduler noise even when the machine's load changes mid-run."""
    done, t0 = 0.0, time.perf_counter()
    while True:
        done += w.run(k)
        dt = time.perf_counter() - t0
        if dt >= rep_seconds:
            return done / dt


def measure(builders: dict[str, Callable[[], wl.Workload]], reps: int, rep_seconds: float,
            settle: float, quiet: float = 0.0) -> tuple[dict[str, dict], list[float | None]]:
    """Build, warm up and calibrate every workload, then time `reps` interleaved rounds,
    each after waiting up to `quiet` seconds for other processes to calm down.
    Returns per workload its rates, median, memory; and per round the cores that other
    processes kept busy meanwhile."""
    built, out = {}, {}
    machine.wait_quiet(quiet)
    for name, build in builders.items():
        base = machine.start_window()
        w = build()
        k = calibrate(w, rep_seconds)
        built[name] = (w, k)
        out[name] = {"unit": w.unit, "lib": w.lib, "k": k, "rates": [],
                     "mem_mb": round(machine.peak_mb() - base, 1)}
    names, last_lib, others = list(built), None, []
    for r in range(reps):
        machine.wait_quiet(quiet)
        meter = machine.OtherLoad()
        meter.start()
        for name in names[r % len(names):] + names[:r % len(names)]:
            w, k = built[name]
            if last_lib is not None and w.lib != last_lib:
                time.sleep(settle)
            last_lib = w.lib
            out[name]["rates"].append(timed(w, k, rep_seconds))
        others.append(meter.stop())
    for w, _ in built.values():
        w.close()
    for res in out.values():
        res["median"] = statistics.median(res["rates"])
    return out, others


def cell_builders(torch, cell: str, H: int, textbook: bool) -> dict[str, Callable[[], wl.Workload]]:
    b = {"gemm": wl.gemm,
         "charlm_train": partial(wl.charlm_train, cell, H),
         "charlm_eval": partial(wl.charlm_evaluate, cell, H),
         "charlm_sample1": partial(wl.charlm_sampler, cell, H, 1),
         "charlm_sample64": partial(wl.charlm_sampler, cell, H, 64)}
    if textbook and cell == "lstm":
        b["textbook_train"] = partial(wl.textbook_train, H)
    if torch is not None:
        b |= {"torch_train": partial(wl.torch_train, torch, cell, H),
              "charlm_torch_train": partial(wl.charlm_torch_train, cell, H),
              "torch_eval": partial(wl.torch_evaluate, torch, cell, H),
              "torch_sample1": partial(wl.torch_sampler, torch, cell, H, 1),
              "torch_sample64": partial(wl.torch_sampler, torch, cell, H, 64)}
    return b


LOAD_CASES = (("lstm", 256), ("gru", 256))


def load_builders(torch, cell: str, H: int) -> dict[str, Callable[[], wl.Workload]]:
    """The workloads timed quiet and with one core busy: charlm as it runs now, charlm as the
    first release ran (one process, OpenBLAS's 2 threads), and PyTorch with 2 threads."""
    b = {"charlm_train": partial(wl.charlm_train, cell, H),
         "charlm_eval": partial(wl.charlm_evaluate, cell, H),
         "charlm1x2_train": partial(wl.charlm_train, cell, H, workers=1, blas=2),
         "charlm1x2_eval": partial(wl.charlm_evaluate, cell, H, workers=1, blas=2)}
    if torch is not None:
        b |= {"torch_train": partial(wl.torch_train, torch, cell, H),
              "torch_eval": partial(wl.torch_evaluate, torch, cell, H)}
    return b


def under_load(torch, args) -> list[dict]:
    """Each LOAD_CASES row measured quiet, then again while another process keeps one
    core busy (a Python busy loop, as a browser tab or a compile would)."""
    rows = []
    for cell, H in LOAD_CASES:
        print(f"  load: {cell} H={H} quiet ...", end="", file=sys.stderr, flush=True)
        quiet, _ = measure(load_builders(torch, cell, H), args.reps, args.rep_seconds, args.settle, args.wait_quiet)
        print(" busy ...", end="", file=sys.stderr, flush=True)
        with machine.busy_core():
            busy, others = measure(load_builders(torch, cell, H), args.reps, args.rep_seconds, args.settle)
        print(f" done, others {report.load_text(others)}", file=sys.stderr, flush=True)
        rows.append({"cell": cell, "hidden": H, "quiet": quiet, "busy": busy, "other_load": others})
    return rows


def _list(kind: Callable, allowed=None):
    def parse(text: str):
        items = [kind(x) for x in text.split(",") if x.strip()]
        if not items or (allowed and any(x not in allowed for x in items)):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list from {allowed or kind.__name__}")
        return items
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: H=128 only, 2 short rounds (~60 s)")
    p.add_argument("--cells", type=_list(str, CELLS), default=list(CELLS), help="e.g. lstm,gru")
    p.add_argument("--sizes", type=_list(int), default=None, help="hidden sizes, e.g. 128,256,512")
    p.add_argument("--reps", type=int, default=None, help="timed rounds (default 5, quick 2)")
    p.add_argument("--rep-seconds", type=float, default=None, help="length of one repetition (0.5, quick 0.1)")
    p.add_argument("--settle", type=float, default=0.25, help="pause when switching numpy ↔ torch work")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each round wait up to S s for other processes to use < 0.3 cores")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-textbook", action="store_true", help="skip the textbook numpy LSTM")
    p.add_argument("--no-load", action="store_true", help="skip the rows measured with one core busy")
    p.add_argument("--json", metavar="PATH", help="also write all results, every repetition, as JSON")
    a = p.parse_args(argv)
    a.sizes = a.sizes or ([128] if a.quick else list(SIZES))
    a.reps = a.reps or (2 if a.quick else 5)
    a.rep_seconds = a.rep_seconds or (0.1 if a.quick else 0.5)
    if a.reps < 1 or a.rep_seconds <= 0 or any(h < 1 for h in a.sizes):
        p.error("--reps, --rep-seconds and --sizes must be positive")
    return a


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t_start, whole_run = time.perf_counter(), machine.OtherLoad()
    whole_run.start()
    torch = None if args.no_torch else torch_ref.load(threads=2)
    if torch is not None:
        torch_ref.warm_up(torch)
    info = machine.describe(torch, "--no-torch" if args.no_torch else
                            "torch is not importable (pip install torch==2.13.0 to compare)")
    print("\n".join(machine.header_lines(info)), flush=True)
    print(f"measuring: {args.reps} interleaved rounds of ~{args.rep_seconds} s per workload, median; "
          f"settle {args.settle} s", file=sys.stderr, flush=True)
    gemm = measure({"gemm": wl.gemm}, max(args.reps, 5), args.rep_seconds, args.settle, args.wait_quiet)[0]["gemm"]
    print(report.gemm_line(gemm), flush=True)
    cells = []
    for cell in args.cells:
        for H in args.sizes:
            t0 = time.perf_counter()
            print(f"  {cell} H={H} ...", end="", file=sys.stderr, flush=True)
            res, others = measure(cell_builders(torch, cell, H, not args.no_textbook), args.reps,
                                  args.rep_seconds, args.settle, args.wait_quiet)
            cells.append({"cell": cell, "hidden": H, "flops_per_char": wl.train_flops_per_char(cell, H),
                          "workloads": res, "other_load": others})
            print(f" {time.perf_counter() - t0:.0f} s, other processes' load {report.load_text(others)}",
                  file=sys.stderr, flush=True)
    other_load = whole_run.stop()  # before the rows that load the machine on purpose
    load_rows = [] if args.no_load else under_load(torch, args)
    results = {"machine": info, "settings": {k: v for k, v in vars(args).items() if k != "json"},
               "shapes": {"batch": wl.BATCH, "seq": wl.SEQ, "eval_batch": wl.EVAL_BATCH, "vocab": wl.VOCAB,
                          "layers": 2, "embedding": "= hidden", "gemm": wl.GEMM_SHAPE},
               "gemm": gemm, "cells": cells, "load": load_rows, "torch": torch is not None}
    results["targets"] = report.targets(results)
    results["runtime_s"] = round(time.perf_counter() - t_start, 1)
    results["other_load"] = other_load
    results["max_rss_mb"] = round(machine.max_rss_mb(), 1)
    results["loadavg_end"] = list(os.getloadavg())
    print(report.render(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
