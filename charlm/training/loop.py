"""The training loop: truncated BPTT over contiguous lanes, budgets, checkpoints, exact resume.

`run(plan)` is the one way a run is trained — by `charlm train`, under torchrun and by
`charlm.fit` — and a generator of events (plain dicts with an "event" key, one of the
constants below) that the caller renders; the library never prints. It reads the plan
(charlm/training/plans.py) and never changes it. Read it top to bottom: `run` hands on
the plan's notes, starts the team and owns Ctrl-C; `_loop` repeats `_train_step` and
`_validation` until a budget or early stopping (charlm/training/budget.py) ends the run.
Each validation is scored, recorded and saved, and writes the model's sample into
samples.jsonl; with --keep-every the weights are kept every N steps (`_keep`,
charlm/training/keep.py). The run's state and clock are charlm/training/state.py's,
the checkpoint format charlm/checkpoint.py's, the run directory's layout charlm/rundir.py's.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator

from charlm import checkpoint, defaults, rundir, threads
from charlm.errors import CharlmError
from charlm.nn import optim
from charlm.nn.sample import generate, stream_rngs
from charlm.training import keep
from charlm.training.budget import budget_reached, early_stop, fraction_done
from charlm.training.plans import Plan
from charlm.training.state import Clock, RunState, begin

# The events `run` yields, each a dict whose "event" is one of these (the CLI matches on them).
# A NOTE with "chosen": True explains a default that was decided; without, it says what changed.
NOTE, START, STEP, VALIDATING, EVAL, SAMPLE, DONE, DIVERGED = (
    "note", "start", "step", "validating", "eval", "sample", "done", "diverged")
INTERRUPTED = "interrupted"     # DONE's reason after a Ctrl-C


@contextlib.contextmanager
def ctrl_c(on_first: Callable[[], None] = lambda: None) -> Iterator[Callable[[], bool]]:
    """The one Ctrl-C handler of a run: the first Ctrl-C asks the run to stop after its step (and
    save last.pkl; `on_first` hears of it), a second one aborts (KeyboardInterrupt). Yields
    `asked()`. Outside the main thread Python delivers no signals: nothing is installed."""
    asked = {"stop": False}

    def handler(signum, frame):
        if asked["stop"]:
            raise KeyboardInterrupt
        asked["stop"] = True
        on_first()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, handler) if main else None
    try:
        yield lambda: asked["stop"]
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def run(plan: Plan, on_stop_requested: Callable[[], None] = lambda: None) -> Iterator[dict]:
    """Train `plan`, yielding events: its notes first, then START, STEP …, DONE (or DIVERGED).
    A Ctrl-C stops the run after the step in progress and saves last.pkl (see `ctrl_c`)."""
    for note in plan.notes:
        yield {"event": NOTE, "text": note.text, "chosen": note.chosen}
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    with threads.limited(plan.threads), ctrl_c(on_stop_requested) as stop_asked:
        r = begin(plan)
        with r.team:
            yield from _loop(r, stop_asked)


def _train_step(r: RunState, log_ln_v: float) -> dict:
    """One optimizer step on the next window: the step event, or a DIVERGED one."""
    tcfg, ocfg, progress, windows = r.plan.tcfg, r.plan.ocfg, r.progress, r.plan.windows
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
    """nats/char of ids:source under the parameters the team holds (None without a validation
    split), laid out as `charlm eval perplexity` lays it out, so that the scores are the same."""
    if source not in r.team.ids:
        return None
    return r.team.score(source, defaults.EVAL_BATCH, defaults.EVAL_SEQ_LEN).nats_per_char


def _record(r: RunState, val: float | None, smoothed: float | None, final: bool) -> dict:
    """Record a validation of the parameters the team holds, keeping them as the best if they
    improved: the eval event."""
    improved = val is not None and (r.best is None or val < r.best)
    if improved:
        r.best, r.best_flat = val, r.team.snapshot()
    r.history.append({"step": r.progress["step"], "seconds": round(r.progress["elapsed"], 3),
                      "train_loss": smoothed, "val_loss": val})
    return {"event": EVAL, "step": r.progress["step"], "val_loss": val, "best": r.best,
            "improved": improved, "final": final}


def _write(r: RunState, *paths) -> None:
    """Save the run's checkpoint to `paths`: on the leader only, but every process builds
    the payload (a torch run gathers the lanes' carried state there)."""
    payload = r.payload()
    if r.team.leader:
        for path in paths:
            checkpoint.save(path, payload)


def _score_best_on_all(r: RunState) -> float:
    """The final validation's score (ids:val_all) of the parameters best.pkl holds."""
    live = r.team.snapshot()
    r.team.restore(r.best_flat)  # with --ema, best_flat is already the average that was validated
    try:
        return _validate(r, "val_all")
    finally:
        r.team.restore(live)


def _sample(r: RunState) -> str:
    """A short text from the current parameters, as a run writes it while it trains: always from the same
    prime, seed and temperature (defaults.TRAINING_SAMPLE), so that only the model changes; drawn as
    `charlm sample --seed SEED` draws its first sample, so that anyone can draw it again."""
    s = defaults.TRAINING_SAMPLE
    return "".join(c[0] for c in generate(r.team.params, r.plan.mcfg, r.plan.data.vocab, length=s["length"],
                                          prime=s["prime"], temperature=s["temperature"],
                                          rng=stream_rngs(s["seed"])))


def _validation(r: RunState, clock: Clock, smoothed: float | None, final: bool, samples) -> tuple[dict, str]:
    """Validate and record, write last.pkl (and best.pkl if it improved) and the step's sample into
    samples.jsonl, on the paused clock: the eval event and the sample's text. With --ema one swap
    (`_averaged`) covers what the average does: it is validated, kept as the best, saved in best.pkl
    and writes the sample; last.pkl, which a resume continues, holds the weights themselves."""
    run_dir, averaged = r.plan.run_dir, "ema" in r.opt["slots"]
    with clock.paused():  # budgets count training time, not validation
        with _averaged(r):
            val_event = _record(r, _validate(r, "val"), smoothed, final)
            best = [run_dir / rundir.BEST] if val_event["improved"] or val_event["val_loss"] is None else []
            if averaged and best:
                _write(r, *best)
            text = _sample(r)
        _write(r, run_dir / rundir.LAST, *([] if averaged else best))
    samples.write(rundir.sample_row(step=r.progress["step"], seconds=round(r.progress["elapsed"], 3),
                                    val_loss=val_event["val_loss"], text=text, **defaults.TRAINING_SAMPLE))
    return val_event, text


def _keep(r: RunState, clock: Clock) -> str:
    """Keep the weights at this step (step-N.pkl, charlm/training/keep.py), on the paused clock; why
    it could not ("" when it did): a run is never stopped for a checkpoint along the way."""
    run_dir = r.plan.run_dir
    with clock.paused(), _averaged(r):  # with --ema, the model validation sees
        payload = r.payload()  # every process of a torch run builds it (rank 0 gathers); rank 0 writes
        if not r.team.leader:
            return ""
        if not keep.room(run_dir, r.plan.mcfg, r.plan.ocfg):
            return f"the disk of {run_dir} is nearly full"
        try:
            checkpoint.save(run_dir / rundir.kept_name(r.progress["step"]), checkpoint.weights_only(payload))
        except CharlmError as e:
            return str(e)
    return ""


def _loop(r: RunState, stop_asked: Callable[[], bool]) -> Iterator[dict]:
    plan, tcfg, progress = r.plan, r.plan.tcfg, r.progress
    resumed_at = progress["step"] if plan.checkpoint else None
    metrics = rundir.open_metrics(plan.run_dir, resumed_at) if r.team.leader else open(os.devnull, "w")
    samples = rundir.open_samples(plan.run_dir, resumed_at) if r.team.leader else open(os.devnull, "w")
    keeping = tcfg.keep_every
    n_val = {k: len(v) for k, v in r.team.ids.items() if k != "train"}
    log_ln_v = math.log(len(plan.data.vocab))
    yield {"event": START, "params": r.team.spec.layout.size, "batch": tcfg.batch_size,
           "windows_per_epoch": plan.windows, "train_chars": plan.n_train, "val_chars": plan.val_chars,
           "val_slice": n_val["val"] if "val_all" in n_val else None, "val_final": n_val.get("val_all"),
           "workers": r.team.workers, "engine": r.team.describe(), "progress": dict(progress)}
    smoothed, evals, reason, sampled_at = None, 0, None, -1.0
    clock = Clock(progress, r.team.agree)
    while True:
        # only when resuming a run that had already ended: the clock is read after each step (below),
        # so the time between steps cannot end a run whose last checkpoint then says it had time left
        reason = budget_reached(tcfg, progress, plan.windows) or early_stop(tcfg.patience, r.history)
        if reason:
            break
        ev = _train_step(r, log_ln_v)
        if ev["event"] == DIVERGED:
            metrics.close()
            samples.close()
            yield ev
            return
        progress["elapsed"] = clock.elapsed()
        smoothed = ev["loss"] if smoothed is None else 0.95 * smoothed + 0.05 * ev["loss"]
        rate = clock.rate(progress["chars"], progress["step"] % tcfg.log_every == 0)
        ev |= {"smoothed": smoothed, "chars_per_sec": rate, "elapsed": progress["elapsed"],
               "fraction": fraction_done(tcfg, progress, plan.windows)}
        reason = budget_reached(tcfg, progress, plan.windows)
        val_event = None
        if progress["step"] % tcfg.eval_every == 0 or reason:  # the last step is always validated
            yield {"event": VALIDATING, "step": progress["step"], "chars": n_val.get("val", 0)}
            val_event, text = _validation(r, clock, smoothed, bool(reason), samples)
            evals += 1
            if not reason and (reason := early_stop(tcfg.patience, r.history)):
                val_event["final"] = True
        if progress["step"] % tcfg.log_every == 0 or val_event:
            metrics.write(rundir.metrics_row(
                step=progress["step"], seconds=round(progress["elapsed"], 3), epoch=progress["epoch"],
                train_loss=round(ev["loss"], 5), val_loss=val_event and val_event["val_loss"], lr=ev["lr"],
                grad_norm=round(ev["grad_norm"], 5), chars_per_sec=round(rate, 1)))
        if keeping and progress["step"] % keeping == 0 and r.team.agree_any(bool(why := _keep(r, clock))):
            keeping = 0  # every process of a torch run stops together: building a payload is collective
            yield {"event": NOTE, "chosen": False, "text": f"stopped keeping checkpoints along the way at step "
                   f"{progress['step']}: {why}; best.pkl and last.pkl are still written"}
        yield ev
        if val_event:
            yield val_event
            if tcfg.sample_every and evals % tcfg.sample_every == 0 and _spaced(ev["fraction"], sampled_at, 0.1):
                sampled_at = ev["fraction"]
                yield {"event": SAMPLE, "step": progress["step"], "text": text}
        if reason:
            break
        if r.team.agree_any(stop_asked()):
            reason = INTERRUPTED
            break
    if reason == INTERRUPTED:  # save now; a full validation pass can wait for the resume
        _write(r, plan.run_dir / rundir.LAST)
    elif not r.history or r.history[-1]["step"] != progress["step"]:  # resumed after the end
        yield {"event": VALIDATING, "step": progress["step"], "chars": n_val.get("val", 0)}
        yield _validation(r, clock, smoothed, True, samples)[0]
    best_all = None
    if reason != INTERRUPTED and "val_all" in n_val and r.best_flat is not None:
        yield {"event": VALIDATING, "step": progress["step"], "chars": n_val["val_all"], "whole": True}
        best_all = _score_best_on_all(r)
    metrics.close()
    samples.close()
    yield {"event": DONE, "reason": reason, "step": progress["step"], "best": r.best, "best_all": best_all,
           "elapsed": progress["elapsed"], "history": r.history, "val_chars": n_val, "val_split": plan.val_chars,
           "trained": resumed_at is None or progress["step"] > resumed_at,
           "stopped_early": reason == early_stop(tcfg.patience, r.history)}


def _spaced(fraction: float, last: float, gap: float) -> bool:
    """At least `gap` of the run since `last` (both fractions done), or no budget to measure by."""
    return fraction == 0 or fraction - last >= gap
