"""Turns the benchmark's measurements into tables and a pass/fail list against issue 11.

Every ratio is paired: the median over rounds of (a in round r) / (b in round r), both
measured in the same interleaved round (see bench.py), so it may differ slightly from
the ratio of the two medians printed beside it. ✓ / ✗ after a ratio mark a target met
or missed; "aim" targets (GRU 1.2×) are reported but not counted as misses.
"""

from __future__ import annotations

import statistics

from benchmarks import workloads as wl

# (what, workload a, workload b, goal, which cells and sizes, kind)
TARGETS = (
    ("train ≥ torch", "charlm_train", "torch_train", 1.0, lambda c, h: True, "target"),
    ("train ≥ 1.2× torch", "charlm_train", "torch_train", 1.2, lambda c, h: c == "gru", "aim"),
    ("sample ×1 ≥ 3× torch", "charlm_sample1", "torch_sample1", 3.0, lambda c, h: True, "target"),
    ("eval ≥ 3× train", "charlm_eval", "charlm_train", 3.0, lambda c, h: True, "target"),
)
LOAD_GOAL = 0.5  # with one core busy, charlm keeps at least half its quiet speed


def paired(ws: dict, a: str, b: str, scale: float = 1.0) -> float | None:
    """Median over rounds of scale·a_r / b_r; None when either was not measured."""
    if a not in ws or b not in ws:
        return None
    return statistics.median(scale * x / y for x, y in zip(ws[a]["rates"], ws[b]["rates"], strict=True))


def _ratio(c: dict, a: str, b: str) -> float | None:
    scale = c["flops_per_char"] if b == "gemm" else 1.0  # chars/s → FLOP/s against the GEMM
    return paired(c["workloads"], a, b, scale)


def targets(results: dict) -> list[dict]:
    out = []
    for what, a, b, goal, applies, kind in TARGETS:
        for c in results["cells"]:
            if not applies(c["cell"], c["hidden"]):
                continue
            value = _ratio(c, a, b)
            status = "skip" if value is None else ("pass" if value >= goal else "fail")
            out.append({"what": what, "cell": c["cell"], "hidden": c["hidden"], "value": value,
                        "goal": goal, "kind": kind, "status": status})
    for row in results.get("load", []):
        for name in ("charlm_train", "charlm_eval"):
            value = _busy_ratio(row, name)
            out.append({"what": f"{name.split('_')[1]} busy ≥ {LOAD_GOAL}× quiet", "cell": row["cell"],
                        "hidden": row["hidden"], "value": value, "goal": LOAD_GOAL, "kind": "target",
                        "status": "pass" if value >= LOAD_GOAL else "fail"})
    return out


def _busy_ratio(row: dict, name: str) -> float | None:
    """Median speed with one core busy over median quiet speed (measured minutes apart,
    so not paired round by round)."""
    if name not in row["quiet"]:
        return None
    return row["busy"][name]["median"] / row["quiet"][name]["median"]


def load_table(results: dict) -> list[str]:
    if not results.get("load"):
        return []
    lines = ["", "ONE CORE BUSY: chars/s quiet → with a Python busy loop on one core (B=50/500, T=50), "
             "and the ratio",
             f"{'cell':<5}{'H':>5}  {'workload':<44}{'quiet':>10}{'busy':>10}{'busy/quiet':>12}"]
    names = {"charlm_train": "charlm train (workers, 1 BLAS thread each)",
             "charlm_eval": "charlm eval (workers, 1 BLAS thread each)",
             "charlm1x2_train": "charlm train, 1 process × 2 threads (v1)",
             "charlm1x2_eval": "charlm eval, 1 process × 2 threads (v1)",
             "torch_train": "torch train (2 threads)", "torch_eval": "torch eval (2 threads)"}
    for row in results["load"]:
        for name, label in names.items():
            if name not in row["quiet"]:
                continue
            v = _busy_ratio(row, name)
            mark = ("✓" if v >= LOAD_GOAL else "✗") if name in ("charlm_train", "charlm_eval") else ""
            lines.append(f"{row['cell']:<5}{row['hidden']:>5}  {label:<44}{_n(row['quiet'][name]['median']):>10}"
                         f"{_n(row['busy'][name]['median']):>10}{v:>11.2f}×{mark}")
        lines.append(f"{'':10}others during the busy rounds: {load_text(row['other_load'])}")
    return lines


def gemm_line(g: dict) -> str:
    lo, hi = min(g["rates"]) / 1e9, max(g["rates"]) / 1e9
    M, K, N = wl.GEMM_SHAPE
    return (f"GEMM     numpy float32 ({M}×{K})·({K}×{N}): {g['median'] / 1e9:.1f} GFLOP/s "
            f"(median of {len(g['rates'])}, range {lo:.0f}–{hi:.0f})")


def load_text(others: list[float | None]) -> str:
    """Cores busy with other processes over the rounds, e.g. "0.1–1.2 cores (median 0.4)"."""
    xs = [x for x in others if x is not None]
    if not xs:
        return "unknown"
    return f"{min(xs):.1f}–{max(xs):.1f} cores (median {statistics.median(xs):.1f})"


def _busy(c: dict) -> str:
    xs = [x for x in c.get("other_load", []) if x is not None]
    return f"{statistics.median(xs):.1f}" if xs else "?"


def _n(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def _med(ws: dict, name: str) -> float | None:
    return ws[name]["median"] if name in ws else None


def _mem(ws: dict, *names: str) -> str:
    return " / ".join(_n(ws[n]["mem_mb"], ".0f") if n in ws else "-" for n in names)


def render(results: dict) -> str:
    marks = {(t["what"], t["cell"], t["hidden"]): t for t in results["targets"]}

    def r(c, a, b, what=None, pct=False):
        value = _ratio(c, a, b)
        text = "-" if value is None else (f"{100 * value:.0f}%" if pct else f"{value:.2f}×")
        t = marks.get((what, c["cell"], c["hidden"]))
        if t is not None and t["status"] != "skip":
            text += "✓" if t["status"] == "pass" else "✗"
        return text

    sh, lines = results["shapes"], []
    reps = results["settings"]["reps"]
    lines += ["", f"TRAINING chars/s: 2 layers, embedding = H, N={sh['batch']}, T={sh['seq']}, "
              f"V={sh['vocab']}, Adam + global-norm clip 5; median of {reps} interleaved rounds",
              f"{'cell':<5}{'H':>5}{'charlm':>10}{'torch':>10}{'×torch':>9}{'engine':>10}{'×numpy':>8}"
              f"{'textbook':>10}{'×text':>8}"
              f"{'GFLOP/s':>9}{'%GEMM':>8}{'torch%GEMM':>11}{'others':>7}   MB charlm/torch/text"]
    for c in results["cells"]:
        ws, fpc = c["workloads"], c["flops_per_char"]
        lines.append(
            f"{c['cell']:<5}{c['hidden']:>5}{_n(_med(ws, 'charlm_train')):>10}{_n(_med(ws, 'torch_train')):>10}"
            f"{r(c, 'charlm_train', 'torch_train', 'train ≥ torch'):>9}"
            f"{_n(_med(ws, 'charlm_torch_train')):>10}{r(c, 'charlm_torch_train', 'charlm_train'):>8}"
            f"{_n(_med(ws, 'textbook_train')):>10}"
            f"{r(c, 'charlm_train', 'textbook_train'):>8}"
            f"{_med(ws, 'charlm_train') * fpc / 1e9:>9.1f}"
            f"{r(c, 'charlm_train', 'gemm', pct=True):>8}"
            f"{r(c, 'torch_train', 'gemm', pct=True):>11}{_busy(c):>7}   "
            f"{_mem(ws, 'charlm_train', 'torch_train', 'textbook_train')}")
    lines += ["", "SAMPLING chars/s: one step per character, softmax + one draw per stream (numpy Generator / "
              "torch.multinomial)",
              f"{'cell':<5}{'H':>5}{'charlm ×1':>11}{'torch ×1':>10}{'×torch':>9}{'charlm ×64':>12}"
              f"{'torch ×64':>11}{'×torch':>9}"]
    for c in results["cells"]:
        ws = c["workloads"]
        lines.append(
            f"{c['cell']:<5}{c['hidden']:>5}{_n(_med(ws, 'charlm_sample1')):>11}{_n(_med(ws, 'torch_sample1')):>10}"
            f"{r(c, 'charlm_sample1', 'torch_sample1', 'sample ×1 ≥ 3× torch'):>9}"
            f"{_n(_med(ws, 'charlm_sample64')):>12}{_n(_med(ws, 'torch_sample64')):>11}"
            f"{r(c, 'charlm_sample64', 'torch_sample64'):>9}")
    lines += ["", f"EVALUATION chars/s: forward + loss only, N={sh['eval_batch']}, T={sh['seq']}, from a zero state",
              f"{'cell':<5}{'H':>5}{'charlm eval':>13}{'charlm train':>14}{'eval/train':>12}{'torch eval':>12}"
              f"{'×torch':>9}   MB charlm/torch"]
    for c in results["cells"]:
        ws = c["workloads"]
        lines.append(
            f"{c['cell']:<5}{c['hidden']:>5}{_n(_med(ws, 'charlm_eval')):>13}{_n(_med(ws, 'charlm_train')):>14}"
            f"{r(c, 'charlm_eval', 'charlm_train', 'eval ≥ 3× train'):>12}{_n(_med(ws, 'torch_eval')):>12}"
            f"{r(c, 'charlm_eval', 'torch_eval'):>9}   {_mem(ws, 'charlm_eval', 'torch_eval')}")
    gemms = [c["workloads"]["gemm"]["median"] / 1e9 for c in results["cells"]]
    if gemms:
        lines += ["", f"%GEMM is against the GEMM timed in the same rounds as each row "
                  f"({min(gemms):.0f}–{max(gemms):.0f} GFLOP/s across rows); FLOPs = matrix products of "
                  f"forward + backward, 6·[G·H·(E+H) + G·H·2H + H·V] per char (workloads.py)."]
    lines.append("charlm = charlm's numpy engine (its worker processes); engine = charlm's torch engine "
                 "(`--engine torch --device cpu`: the same model, lanes, clipping and Adam on torch.nn modules, "
                 "2 threads), ×numpy = its speed over the numpy engine's; torch = PyTorch's stock modules and "
                 "torch.optim.Adam (benchmarks/torch_ref.py).")
    lines.append("others = cores kept busy by other processes during that row's rounds (median); "
                 "on 2 cores anything above ~0.2 makes the ratios noisy.")
    lines += load_table(results)
    lines += ["", *summary(results)]
    load = " ".join(f"{x:.2f}" for x in results["loadavg_end"])
    other = results.get("other_load")
    lines.append(f"ran {results['runtime_s']:.0f} s; peak RSS of the whole run {results['max_rss_mb']:.0f} MB; "
                 f"load average at end {load}; other processes used "
                 f"{'?' if other is None else f'{other:.2f}'} cores on average "
                 "during the run (before the busy-core rows)")
    if other is not None and other > 0.2:
        lines.append("WARNING: the machine was shared during this run; rerun on a quiet machine "
                     "before trusting the ratios.")
    return "\n".join(lines)


def summary(results: dict) -> list[str]:
    ts = results["targets"]
    count = {(k, s): sum(t["kind"] == k and t["status"] == s for t in ts)
             for k in ("target", "aim") for s in ("pass", "fail", "skip")}
    lines = [f"TARGETS (issue 11): {count['target', 'pass']} met, {count['target', 'fail']} missed, "
             f"{count['target', 'skip']} skipped; aims: {count['aim', 'pass']} met, {count['aim', 'fail']} missed"]
    if not results["torch"]:
        lines.append(f"  PyTorch comparison skipped: {results['machine']['torch_skipped']}")
    for t in ts:
        if t["status"] == "fail":
            shown = f"{100 * t['value']:.0f}%" if t["goal"] < 1 else f"{t['value']:.2f}×"
            lines.append(f"  {'missed' if t['kind'] == 'target' else 'aim   '}  {t['cell']} H={t['hidden']}: "
                         f"{t['what']} — got {shown}")
    return lines
