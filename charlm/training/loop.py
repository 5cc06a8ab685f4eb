"""The training loop: truncated BPTT over contiguous lanes, budgets, checkpoints, exact resume.

`run` is a generator of events (plain dicts with an "event" key, one of the constants
below) that the CLI turns into a progress bar and log lines; the library never prints.
Read it top to bottom: `run` prepares the splits and the team, `_loop` repeats
`_train_step`, `_validate` and `_save` until a budget (charlm/training/budget.py) ends it.
The run's state and its clock are charlm/training/state.py's; the checkpoint layout is
charlm/checkpoint.py's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from charlm import checkpoint, defaults, threads
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import batches
from charlm.data.corpus import Corpus
from charlm.engines.parallel import FileSlice
from charlm.errors import CharlmError
from charlm.nn import optim
from charlm.nn.sample import generate
from charlm.training import early_stop
from charlm.training.budget import budget_reached, fraction_done
from charlm.training.init_from import Start
from charlm.training.state import Clock, RunState, begin

# The events `run` yields, each a dict whose "event" is one of these (the CLI matches on them).
# A NOTE with "chosen": True explains a default that was decided; without, it says what changed.
NOTE, START, STEP, VALIDATING, EVAL, SAMPLE, DONE, DIVERGED = (
    "note", "start", "step", "validating", "eval", "sample", "done", "diverged")


def _step_of(line: str) -> float:
    """The step a metrics.jsonl line logs; infinity for a line that is not a JSON object."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return float("inf")


def _metrics_file(run_dir: Path, resume_step: int | None):
    """Open metrics.jsonl for appending; on resume, drop lines past the checkpoint first
    (and a line torn by a crash mid-write, which would not parse)."""
    path = run_dir / "metrics.jsonl"
    if resume_step is not None and path.exists():
        kept = [line for line in path.read_text().splitlines() if _step_of(line) <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))
    elif resume_step is None:
        path.write_text("")
    return open(path, "a", buffering=1)


def _ids(corpus: Corpus, start: int, stop: int) -> np.ndarray | FileSlice:
    """corpus ids[start:stop] as the team's ranks should read them: straight from the id
    cache file when there is one (no copy, whatever the corpus's size), else the array."""
    ids = corpus.ids
    if isinstance(ids, np.memmap) and ids.filename and ids.offset == 0 and ids.ndim == 1:
        return FileSlice(str(ids.filename), ids.dtype.str, start, stop)
    return ids[start:stop]


def _train_step(r: RunState, windows: int, log_ln_v: float) -> dict:
    """One optimizer step on the next window: the step event, or a DIVERGED one."""
    tcfg, ocfg, progress = r.tcfg, r.ocfg, r.progress
    lr = optim.learning_rate(ocfg, fraction_done(tcfg, progress, windows), progress["step"])
    loss, grad = r.team.train_step("train", progress["window"], tcfg.seq_len, progress["step"])
    norm = r.team.clip_grads(grad, ocfg.clip) if math.isfinite(loss) else float("nan")
    if not (math.isfinite(loss) and math.isfinite(norm)) or loss > 3 * log_ln_v:
        return {"event": DIVERGED, "step": progress["step"] + 1, "loss": loss, "lr": lr}
    r.team.update(grad, r.opt, ocfg, lr)
    progress["window"] += 1
    if progress["window"] == windows:  # epoch boundary: the carried state resets
        progress["epoch"] += 1
        progress["window"] = 0
        r.team.reset_state()
    progress["step"] += 1
    progress["chars"] += tcfg.batch_size * tcfg.seq_len
    return {"event": STEP, "step": progress["step"], "epoch": progress["epoch"], "loss": loss, "lr": lr,
            "grad_norm": norm}


@contextlib.contextmanager
def _averaged(r: RunState):
    """With --ema, the team holds the average of the weights (charlm/nn/optim.py) instead of the
    weights while inside: what is validated, kept as the best and saved in best.pkl. Training
    never sees it."""
    if "ema" not in r.opt["slots"]:
        yield
        return
    live = r.team.snapshot()
    r.team.restore(r.team.average(r.opt))
    try:
        yield
    finally:
        r.team.restore(live)


def _validate(r: RunState, source: str) -> float | None:
    """nats/char of ids:source under the current parameters, or their average with --ema
    (None without a validation split)."""
    if source not in r.team.ids:
        return None
    with _averaged(r):
        return r.team.score(source, r.tcfg.batch_size, r.tcfg.seq_len).nats_per_char


def _save(r: RunState, run_dir: Path, val: float | None, smoothed: float | None, final: bool) -> dict:
    """Record a validation, write last.pkl (and best.pkl if it improved): the eval event."""
    improved = val is not None and (r.best is None or val < r.best)
    if improved:
        with _averaged(r):
            r.best, r.best_flat = val, r.team.snapshot()
    r.history.append({"step": r.progress["step"], "seconds": round(r.progress["elapsed"], 3),
                      "train_loss": smoothed, "val_loss": val})
    best = [run_dir / "best.pkl"] if improved or val is None else []
    averaged = "ema" in r.opt["slots"]  # last.pkl resumes the weights; best.pkl holds what was validated
    _write(r, run_dir / "last.pkl", *([] if averaged else best))
    if averaged and best:
        with _averaged(r):
            _write(r, *best)
    return {"event": EVAL, "step": r.progress["step"], "val_loss": val, "best": r.best,
            "improved": improved, "final": final}


def _write(r: RunState, *paths: Path) -> None:
    """Save the run's checkpoint to `paths`: on the leader only, but every process builds
    the payload (a torch run gathers the lanes' carried state there)."""
    payload = r.payload()
    if r.team.leader:
        for path in paths:
            checkpoint.save(path, payload)


def _score_best_on_all(r: RunState) -> float:
    """The final validation's score (ids:val_all) of the parameters best.pkl holds."""
    live = r.team.snapshot()
    r.team.restore(r.best_flat)
    try:
        return r.team.score("val_all", r.tcfg.batch_size, r.tcfg.seq_len).nats_per_char
    finally:
        r.team.restore(live)


def run(corpus: Corpus, run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig,
        resume: Checkpoint | None = None, should_stop: Callable[[], bool] = lambda: False,
        threads_n: int | None = None, device: str = "auto", init: Start | None = None) -> Iterator[dict]:
    """Train, yielding events. `resume` is a loaded checkpoint to continue exactly; `init`
    the trained weights a fine-tuning run starts from.
    threads_n: BLAS threads per process (charlm/threads.py decides when None).
    device: where the torch engine trains (auto | cpu | cuda | mps; see charlm/engines)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = corpus.split(tcfg.val_fraction)
    B = batches.fit_batch(len(train_ids), tcfg.batch_size, tcfg.seq_len)
    if B != tcfg.batch_size:
        yield {"event": NOTE, "text": f"the training text ({len(train_ids)} chars) is too short for "
               f"--batch-size {tcfg.batch_size} at --seq-len {tcfg.seq_len}; using --batch-size {B}"}
        tcfg = dataclasses.replace(tcfg, batch_size=B)
    if tcfg.eval_every is None:  # not given: the default, or one epoch when that is shorter
        tcfg = tcfg.with_eval_every(len(train_ids))
        if tcfg.eval_every != defaults.EVAL_EVERY:
            yield {"event": NOTE, "chosen": True, "text": f"validating every {tcfg.eval_every} steps, not "
                   f"every {defaults.EVAL_EVERY}: an epoch is that short"}
    if len(val_ids) < 2 and tcfg.val_fraction > 0:
        raise CharlmError(f"the validation split has {len(val_ids)} characters; use a larger "
                          "--val-fraction or more text (or --val-fraction 0 for no validation)")
    n_train, n_val = len(train_ids), len(val_ids)
    ids = {"train": _ids(corpus, 0, n_train)}
    if n_val >= 2:
        ids["val"] = _ids(corpus, n_train, n_train + min(n_val, tcfg.val_max_chars or n_val))
        if len(ids["val"]) < n_val:  # the end scores more: the whole split, up to VAL_FINAL_FACTOR× the slice
            final = min(n_val, defaults.VAL_FINAL_FACTOR * tcfg.val_max_chars)
            ids["val_all"] = _ids(corpus, n_train, n_train + final)
    if tcfg.engine == "numpy":  # the torch engine's processes are torchrun's
        tcfg = dataclasses.replace(tcfg, workers=threads.workers(tcfg.workers or None, B))
    windows = batches.windows_per_epoch(len(train_ids), B, tcfg.seq_len)
    log_ln_v = math.log(len(corpus.vocab))
    threads_n = threads.blas_threads(threads_n)
    with threads.limited(threads_n):
        r = begin(corpus, mcfg, ocfg, tcfg, resume, threads_n, ids, device, init)
        with r.team:
            yield from _loop(r, run_dir, windows, log_ln_v, resume is not None, should_stop, n_val)


def _loop(r: RunState, run_dir: Path, windows: int, log_ln_v: float, resumed: bool,
          should_stop: Callable[[], bool], val_split: int) -> Iterator[dict]:
    tcfg, progress = r.tcfg, r.progress
    metrics = _metrics_file(run_dir, progress["step"] if resumed else None) if r.team.leader else open(os.devnull, "w")
    n_params = r.team.spec.layout.size
    n_val = {k: len(v) for k, v in r.team.ids.items() if k != "train"}
    yield {"event": START, "params": n_params, "batch": tcfg.batch_size, "windows_per_epoch": windows,
           "train_chars": len(r.team.ids["train"]), "val_chars": val_split,
           "val_slice": n_val["val"] if "val_all" in n_val else None, "val_final": n_val.get("val_all"),
           "workers": r.team.workers, "engine": r.team.describe(),
           "progress": dict(progress)}
    smoothed, evals, reason, sampled_at = None, 0, None, -1.0
    clock = Clock(progress, r.team.agree)
    while True:
        # only when resuming a run that had already ended: the clock is read after each step (below),
        # so the time between steps cannot end a run whose last checkpoint then says it had time left
        reason = budget_reached(tcfg, progress, windows) or early_stop.reason(tcfg.patience, r.history)
        if reason:
            break
        ev = _train_step(r, windows, log_ln_v)
        if ev["event"] == DIVERGED:
            metrics.close()
            yield ev
            return
        progress["elapsed"] = clock.elapsed()
        smoothed = ev["loss"] if smoothed is None else 0.95 * smoothed + 0.05 * ev["loss"]
        rate = clock.rate(progress["chars"], progress["step"] % tcfg.log_every == 0)
        ev |= {"smoothed": smoothed, "chars_per_sec": rate, "elapsed": progress["elapsed"],
               "fraction": fraction_done(tcfg, progress, windows)}
        reason = budget_reached(tcfg, progress, windows)
        val_event = None
        if progress["step"] % tcfg.eval_every == 0 or reason:  # the last step is always validated
            yield {"event": VALIDATING, "step": progress["step"], "chars": n_val.get("val", 0)}
            with clock.paused():  # budgets count training time, not validation
                val_event = _save(r, run_dir, _validate(r, "val"), smoothed, final=bool(reason))
            evals += 1
            if not reason and (reason := early_stop.reason(tcfg.patience, r.history)):
                val_event["final"] = True
        if progress["step"] % tcfg.log_every == 0 or val_event:
            metrics.write(json.dumps({
                "step": progress["step"], "seconds": round(progress["elapsed"], 3), "epoch": progress["epoch"],
                "train_loss": round(ev["loss"], 5), "val_loss": val_event and val_event["val_loss"],
                "lr": ev["lr"], "grad_norm": round(ev["grad_norm"], 5), "chars_per_sec": round(rate, 1)}) + "\n")
        yield ev
        if val_event:
            yield val_event
            if tcfg.sample_every and evals % tcfg.sample_every == 0 and _spaced(ev["fraction"], sampled_at, 0.1):
                sampled_at = ev["fraction"]
                with clock.paused(), _averaged(r):
                    text = "".join(c[0] for c in generate(r.team.params, r.mcfg, r.corpus.vocab, length=200,
                                                           temperature=0.8, rng=np.random.default_rng(0)))
                yield {"event": SAMPLE, "step": progress["step"], "text": text}
        if reason:
            break
        if r.team.agree_any(should_stop()):
            reason = "interrupted"
            break
    if reason == "interrupted":  # save now; a full validation pass can wait for the resume
        _write(r, run_dir / "last.pkl")
    elif not r.history or r.history[-1]["step"] != progress["step"]:  # resumed after the end
        yield {"event": VALIDATING, "step": progress["step"], "chars": n_val.get("val", 0)}
        yield _save(r, run_dir, _validate(r, "val"), smoothed, final=True)
    best_all = None
    if reason != "interrupted" and "val_all" in n_val and r.best_flat is not None:
        yield {"event": VALIDATING, "step": progress["step"], "chars": n_val["val_all"], "whole": True}
        best_all = _score_best_on_all(r)
    metrics.close()
    yield {"event": DONE, "reason": reason, "step": progress["step"], "best": r.best, "best_all": best_all,
           "elapsed": progress["elapsed"], "history": r.history, "val_chars": n_val, "val_split": val_split}


def _spaced(fraction: float, last: float, gap: float) -> bool:
    """At least `gap` of the run since `last` (both fractions done), or no budget to measure by."""
    return fraction == 0 or fraction - last >= gap
