"""The training loop: truncated BPTT over contiguous lanes, budgets, checkpoints, exact resume.

`run` is a generator of events (plain dicts with an "event" key) that the CLI
turns into a progress bar and log lines; the library itself never prints.
Budgets (--max-steps, --epochs, --time-budget) are totals for the run, so a
resumed run continues toward the same end, on the same schedule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm import __version__, checkpoint, early_stop, model, optim, threads
from charlm.data import batches
from charlm.data.corpus import Corpus
from charlm.errors import CharlmError, UsageError
from charlm.init_from import Start
from charlm.model import ModelConfig
from charlm.optim import OptimConfig
from charlm.parallel import FileSlice, Team
from charlm.sample import generate

FINAL_FACTOR = 10   # the final validation scores up to this many times --val-max-chars

# The events `run` yields, each a dict whose "event" is one of these (the CLI matches on them).
NOTE, START, STEP, VALIDATING, EVAL, SAMPLE, DONE, DIVERGED = (
    "note", "start", "step", "validating", "eval", "sample", "done", "diverged")


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 100              # T: BPTT window
    batch_size: int = 50            # B: contiguous lanes
    max_steps: int = 0              # stop after this many steps (0 = no limit)
    epochs: float = 0.0             # stop after this many passes (0 = no limit)
    time_budget: float = 0.0        # stop after this many seconds of training, validation excluded (0 = none)
    val_fraction: float = 0.1       # last fraction of the text held out for validation
    eval_every: int = 200           # validate and checkpoint every this many steps
    val_max_chars: int = 200_000    # validate on this many chars during training (0 = all); 10× at the end
    log_every: int = 10             # metrics.jsonl line every this many steps
    sample_every: int = 5           # sample preview every this many evaluations, 10% of the run apart (0 = never)
    seed: int = 1337                # init, dropout masks: same seed, same run
    workers: int = 0                # processes sharing the lanes (0 = by charlm/threads.py); same K, same run
    patience: int = 0               # stop after this many validations without a new best (0 = never)

    def __post_init__(self):
        if self.seq_len < 1 or self.batch_size < 1:
            raise UsageError("--seq-len and --batch-size must be ≥ 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_steps < 0 or self.epochs < 0 or not self.time_budget >= 0:
            raise UsageError("budgets (--max-steps, --epochs, --time-budget) must be ≥ 0")
        if self.eval_every < 1 or self.log_every < 1:
            raise UsageError("--eval-every and --log-every must be ≥ 1")
        if self.workers < 0 or self.val_max_chars < 0 or self.patience < 0:
            raise UsageError("--workers, --val-max-chars and --patience must be ≥ 0")
        if self.patience and not self.val_fraction:
            raise UsageError("--patience needs a validation split to watch; drop --val-fraction 0")


def _fraction_done(tc: TrainConfig, progress: dict, windows: int) -> float:
    """How far the run is toward whichever budget ends it first (for the cosine schedule)."""
    parts = [0.0]
    if tc.max_steps:
        parts.append(progress["step"] / tc.max_steps)
    if tc.epochs:
        parts.append((progress["epoch"] + progress["window"] / windows) / tc.epochs)
    if tc.time_budget:
        parts.append(progress["elapsed"] / tc.time_budget)
    return max(parts)


def _budget_reached(tc: TrainConfig, progress: dict, windows: int) -> str | None:
    if tc.max_steps and progress["step"] >= tc.max_steps:
        return f"reached --max-steps {tc.max_steps}"
    if tc.epochs and progress["epoch"] + progress["window"] / windows >= tc.epochs - 1e-9:
        return f"reached --epochs {tc.epochs:g}"
    if tc.time_budget and progress["elapsed"] >= tc.time_budget:
        return f"reached --time-budget {tc.time_budget:g}s"
    return None


@dataclass
class RunState:
    """A training run in progress: what a checkpoint records, plus the team doing the work.
    The parameters, carried state and optimizer moments are flat buffers shared with
    the team's ranks (charlm/parallel.py); the checkpoint sees them as named views."""
    mcfg: ModelConfig
    ocfg: OptimConfig
    tcfg: TrainConfig
    corpus: Corpus
    team: Team
    opt: dict                                   # optimizer state over the flat buffer: slots {slot: {"all": (P,)}}
    progress: dict                              # step, epoch, window, chars, elapsed
    init_rng: dict                              # the generator state after initialisation
    best: float | None = None
    best_flat: np.ndarray | None = None         # (P,) the parameters best.pkl holds
    history: list = dataclasses.field(default_factory=list)
    init_from: dict | None = None               # fine-tuning: where the starting weights came from

    def payload(self) -> dict:
        """Everything that defines the run at this instant, as plain data."""
        layout = self.team.spec.layout
        return {
            "charlm_version": __version__,
            "model_config": dataclasses.asdict(self.mcfg),
            "train_config": dataclasses.asdict(self.tcfg),
            "optim_config": dataclasses.asdict(self.ocfg),
            "vocab": self.corpus.vocab.to_dict(),
            "params": self.team.params,
            "optimizer": {"step": self.opt["step"],
                          "slots": {k: layout.views(m["all"]) for k, m in self.opt["slots"].items()}},
            "progress": dict(self.progress),
            "carried_state": {k: v.copy() for k, v in self.team.state.items()},
            "rng": self.init_rng,
            "best_val_loss": self.best,
            "history": self.history,
            "corpus": self.corpus.record(),
            **({"init_from": self.init_from} if self.init_from else {}),
        }


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


def _start(corpus: Corpus, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, resume: dict | None,
           threads_n: int, ids: dict, init: Start | None) -> RunState:
    """The run's state at its first step: fresh from the seed (or from `init`'s weights, with a
    fresh optimizer), or exactly as `resume` left it."""
    B = tcfg.batch_size
    origin = init.record if init else (resume or {}).get("init_from")
    if resume is None:
        rng = np.random.default_rng(tcfg.seed)
        params = init.params if init else model.init_params(mcfg, rng)
        moments, opt_step = optim.init_state(ocfg, params)["slots"], 0
        progress = {"step": 0, "epoch": 0, "window": 0, "chars": 0, "elapsed": 0.0}
        init_rng, carried, best, history = init.rng_state if init else rng.bit_generator.state, None, None, []
    else:
        params, progress = resume["params"], dict(resume["progress"])
        moments, opt_step = resume["optimizer"]["slots"], resume["optimizer"]["step"]
        init_rng, carried = resume["rng"], resume["carried_state"]
        best, history = resume["best_val_loss"], list(resume["history"])
        if carried["h"].shape[1] != B:
            raise CharlmError(f"the checkpoint carries state for batch {carried['h'].shape[1]}, "
                              f"not {B}; resume with the same --batch-size")
    team = Team(mcfg, params, B, tcfg.workers, ids, seed=tcfg.seed, threads=threads_n)
    layout = team.spec.layout
    if carried is not None:
        for k, v in carried.items():
            team.state[k][...] = v
    else:
        team.reset_state()
    opt = {"step": opt_step, "slots": {k: {"all": layout.pack(m)} for k, m in moments.items()}}
    return RunState(mcfg, ocfg, tcfg, corpus, team, opt,
                    progress, init_rng, best, team.flat.copy() if best is not None else None, history, origin)


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
    lr = optim.learning_rate(ocfg, _fraction_done(tcfg, progress, windows), progress["step"])
    loss, grad = r.team.train_step("train", progress["window"], tcfg.seq_len, progress["step"])  # grad (P,)
    norm = optim.clip_grads({"all": grad}, ocfg.clip) if math.isfinite(loss) else float("nan")
    if not (math.isfinite(loss) and math.isfinite(norm)) or loss > 3 * log_ln_v:
        return {"event": DIVERGED, "step": progress["step"] + 1, "loss": loss, "lr": lr}
    optim.update({"all": r.team.flat}, {"all": grad}, r.opt, ocfg, lr)
    progress["window"] += 1
    if progress["window"] == windows:  # epoch boundary: the carried state resets
        progress["epoch"] += 1
        progress["window"] = 0
        r.team.reset_state()
    progress["step"] += 1
    progress["chars"] += tcfg.batch_size * tcfg.seq_len
    return {"event": STEP, "step": progress["step"], "epoch": progress["epoch"], "loss": loss, "lr": lr,
            "grad_norm": norm}


def _validate(r: RunState, source: str) -> float | None:
    """nats/char of ids:source under the current parameters (None without a validation split)."""
    if source not in r.team.ids:
        return None
    return r.team.score(source, r.tcfg.batch_size, r.tcfg.seq_len).nats_per_char


def _save(r: RunState, run_dir: Path, val: float | None, smoothed: float | None, final: bool) -> dict:
    """Record a validation, write last.pkl (and best.pkl if it improved): the eval event."""
    improved = val is not None and (r.best is None or val < r.best)
    if improved:
        r.best, r.best_flat = val, r.team.flat.copy()
    r.history.append({"step": r.progress["step"], "seconds": round(r.progress["elapsed"], 3),
                      "train_loss": smoothed, "val_loss": val})
    payload = r.payload()
    checkpoint.save(run_dir / "last.pkl", payload)
    if improved or val is None:
        checkpoint.save(run_dir / "best.pkl", payload)
    return {"event": EVAL, "step": r.progress["step"], "val_loss": val, "best": r.best,
            "improved": improved, "final": final}


def _score_best_on_all(r: RunState) -> float:
    """The final validation's score (ids:val_all) of the parameters best.pkl holds."""
    live = r.team.flat.copy()
    r.team.flat[...] = r.best_flat
    try:
        return r.team.score("val_all", r.tcfg.batch_size, r.tcfg.seq_len).nats_per_char
    finally:
        r.team.flat[...] = live


def run(corpus: Corpus, run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig,
        resume: dict | None = None, should_stop: Callable[[], bool] = lambda: False,
        threads_n: int | None = None, init: Start | None = None) -> Iterator[dict]:
    """Train, yielding events. `resume` is a loaded checkpoint to continue exactly; `init`
    the trained weights a fine-tuning run starts from.
    threads_n: BLAS threads per process (charlm/threads.py decides when None)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = corpus.split(tcfg.val_fraction)
    B = batches.fit_batch(len(train_ids), tcfg.batch_size, tcfg.seq_len)
    if B != tcfg.batch_size:
        yield {"event": NOTE, "text": f"the training text ({len(train_ids)} chars) is too short for "
               f"--batch-size {tcfg.batch_size} at --seq-len {tcfg.seq_len}; using --batch-size {B}"}
        tcfg = dataclasses.replace(tcfg, batch_size=B)
    if len(val_ids) < 2 and tcfg.val_fraction > 0:
        raise CharlmError(f"the validation split has {len(val_ids)} characters; use a larger "
                          "--val-fraction or more text (or --val-fraction 0 for no validation)")
    n_train, n_val = len(train_ids), len(val_ids)
    ids = {"train": _ids(corpus, 0, n_train)}
    if n_val >= 2:
        ids["val"] = _ids(corpus, n_train, n_train + min(n_val, tcfg.val_max_chars or n_val))
        if len(ids["val"]) < n_val:  # the end scores more: the whole split, up to FINAL_FACTOR× the slice
            ids["val_all"] = _ids(corpus, n_train, n_train + min(n_val, FINAL_FACTOR * tcfg.val_max_chars))
    tcfg = dataclasses.replace(tcfg, workers=threads.workers(tcfg.workers or None, B))
    windows = batches.windows_per_epoch(len(train_ids), B, tcfg.seq_len)
    log_ln_v = math.log(len(corpus.vocab))
    threads_n = threads.blas_threads(threads_n)
    with threads.limited(threads_n):
        r = _start(corpus, mcfg, ocfg, tcfg, resume, threads_n, ids, init)
        with r.team:
            yield from _loop(r, run_dir, windows, log_ln_v, resume is not None, should_stop, n_val)


def _loop(r: RunState, run_dir: Path, windows: int, log_ln_v: float, resumed: bool,
          should_stop: Callable[[], bool], val_split: int) -> Iterator[dict]:
    tcfg, progress = r.tcfg, r.progress
    metrics = _metrics_file(run_dir, progress["step"] if resumed else None)
    n_params = r.team.spec.layout.size
    n_val = {k: len(v) for k, v in r.team.ids.items() if k != "train"}
    yield {"event": START, "params": n_params, "batch": tcfg.batch_size, "windows_per_epoch": windows,
           "train_chars": len(r.team.ids["train"]), "val_chars": val_split,
           "val_slice": n_val["val"] if "val_all" in n_val else None, "val_final": n_val.get("val_all"),
           "workers": r.team.workers,
           "progress": dict(progress)}
    smoothed, evals, reason, sampled_at = None, 0, None, -1.0
    clock = _Clock(progress)
    while True:
        progress["elapsed"] = clock.elapsed()
        reason = _budget_reached(tcfg, progress, windows) or early_stop.reason(tcfg.patience, r.history)
        if reason:  # only when resuming a run that had already ended
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
               "fraction": _fraction_done(tcfg, progress, windows)}
        reason = _budget_reached(tcfg, progress, windows)
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
                with clock.paused():
                    text = "".join(c[0] for c in generate(r.team.params, r.mcfg, r.corpus.vocab, length=200,
                                                           temperature=0.8, rng=np.random.default_rng(0)))
                yield {"event": SAMPLE, "step": progress["step"], "text": text}
        if reason:
            break
        if should_stop():
            reason = "interrupted"
            break
    if reason == "interrupted":  # save now; a full validation pass can wait for the resume
        checkpoint.save(run_dir / "last.pkl", r.payload())
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


class _Clock:
    """Training time, counted in one place: wall time since the run began, less the
    pauses (validation, samples), plus what a resumed run had already used."""

    def __init__(self, progress: dict):
        self.t0 = time.perf_counter() - progress["elapsed"]
        self.t_rate, self.chars_rate = time.perf_counter(), progress["chars"]

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @contextlib.contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            self.t0 += dt
            self.t_rate += dt

    def rate(self, chars: int, restart: bool) -> float:
        """Training chars/s since the last restart of the rate window."""
        now = time.perf_counter()
        rate = (chars - self.chars_rate) / max(now - self.t_rate, 1e-9)
        if restart:
            self.t_rate, self.chars_rate = now, chars
        return rate


def configs_from_checkpoint(ckpt: dict) -> tuple[OptimConfig, TrainConfig]:
    """The optimizer and training configs stored in a checkpoint (unknown keys ignored)."""
    try:
        return (checkpoint.build_config(OptimConfig, ckpt.get("optim_config")),
                checkpoint.build_config(TrainConfig, ckpt.get("train_config")))
    except (TypeError, CharlmError) as e:
        raise CharlmError(f"{ckpt.get('path', 'checkpoint')} has an invalid configuration: {e}") from None
