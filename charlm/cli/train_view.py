"""How `charlm train` looks while it runs: the progress bar (or log lines in a log file),
validations, samples, Ctrl-C, the summary at the end, and runs/latest.

`show` runs `charlm.training.loop.run` and renders each of its events; everything here only
renders and links, the run itself is the library's.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from charlm import defaults, rundir
from charlm.cli.common import err
from charlm.cli.sparkline import sparkline
from charlm.config import TrainConfig
from charlm.errors import CharlmError
from charlm.report import live, parts
from charlm.training import loop, plans


def show(plan: plans.Plan, quiet: bool, live: bool = False) -> None:
    """Run the plan (charlm/training/loop.py's `run`) and render its events: a progress bar (or log
    lines), validations, samples, the summary; with `live`, the live page too (`LivePage`)."""
    view = _View(plan, quiet)
    view.live = LivePage(plan, view.say) if live else None
    try:
        for ev in loop.run(plan, on_stop_requested=view.stopping):
            getattr(view, ev["event"])(ev)
    except BaseException as e:  # the page must not go on saying "training" (nor reloading) once the run is gone
        if view.live:
            at = f"at step {view.step_at:,}"
            view.live.end(view.step_at, f"Stopped {at} by an error: {e}" if isinstance(e, CharlmError) else
                          f"Aborted {at} (a second Ctrl-C)" if isinstance(e, KeyboardInterrupt) else
                          f"Stopped {at}: {type(e).__name__}", bad=True)
        raise
    finally:
        if view.bar:
            view.bar.close()


class LivePage:
    """RUN/report.html while the run goes (charlm/report/live.py), written from the loop's events
    here, so that training never imports the report. It is rewritten after a validation unless
    the last write was under LIVE_SPACING times its own cost ago (a run that validates every few
    milliseconds would otherwise spend its time drawing pages), and always when the run ends. A page
    that cannot be written (a full disk) is given up with one warning: the run goes on without it."""

    def __init__(self, plan: plans.Plan, warn=lambda text: None):
        self.plan, self.path, self.warn = plan, plan.run_dir / rundir.REPORT, warn
        self.history = list(plan.checkpoint.history) if plan.checkpoint else []
        self.run: live.Run | None = None
        self.fraction, self.elapsed, self.next_at, self.ended, self.broken = 0.0, 0.0, 0.0, False, False

    def start(self, params: int) -> None:
        p = self.plan
        self.run = live.Run(p.run_dir, p.mcfg, p.ocfg, p.tcfg, p.data.path, len(p.data.vocab), params)
        self._write(live.Status(p.checkpoint.step if p.checkpoint else 0))

    def validated(self, ev: dict) -> None:
        self.history.append({"step": ev["step"], "seconds": self.elapsed, "val_loss": ev["val_loss"]})
        if time.monotonic() >= self.next_at:
            self._write(live.Status(ev["step"], self.fraction))

    def end(self, step: int, how: str, bad: bool = False) -> None:
        if self.run is not None and not self.ended:
            self.ended = True
            self._write(live.Status(step, self.fraction, how, bad))

    def _write(self, status: live.Status) -> None:
        if self.broken:
            return
        t = time.monotonic()
        status = dataclasses.replace(status, written=time.strftime("%H:%M:%S"))
        run_dir = self.plan.run_dir
        html = live.page(self.run, status, rundir.read_metrics(run_dir), self.history, rundir.read_samples(run_dir))
        try:
            parts.write_page(self.path, html)
        except CharlmError as e:
            self.broken = True
            self.warn(f"charlm: {e}; training goes on without the live report")
        self.next_at = time.monotonic() + defaults.LIVE_SPACING * (time.monotonic() - t)


class _View:
    """What the terminal (or a log file) shows of a run: one method per event of charlm/training/loop.py,
    named as the event is."""

    def __init__(self, plan: plans.Plan, quiet: bool):
        self.plan, self.quiet = plan, quiet
        self.live: LivePage | None = None
        self.step_at = plan.checkpoint.step if plan.checkpoint else 0
        self.bar = None
        self.tty = sys.stderr.isatty() and not quiet
        self.val, self.linked, self.link_note = None, False, None
        self.last_line = -math.inf               # a log file sees the first step's line, then one per 30 s
        self.progress_at, self.shown_at = 0.0, -1.0  # the fraction of the run at the last validation line shown

    def say(self, line: str) -> None:
        tqdm.write(line, file=sys.stderr) if self.bar is not None and self.tty else err.print(line)

    def chat(self, line: str) -> None:  # progress, validations, samples: not under --quiet
        if not self.quiet:
            self.say(line)

    def stopping(self) -> None:  # the first Ctrl-C (a second one aborts)
        tqdm.write("charlm: Ctrl-C — finishing this step and saving last.pkl (Ctrl-C again to abort)",
                   file=sys.stderr)

    def note(self, ev: dict) -> None:  # a choice explained (not under --quiet), or a change to what was asked
        (self.chat if ev.get("chosen") else self.say)(f"charlm: {ev['text']}")

    def start(self, ev: dict) -> None:
        plan, tcfg, ocfg = self.plan, self.plan.tcfg, self.plan.ocfg
        verb = "resuming" if plan.checkpoint else "fine-tuning" if plan.init else "training"
        self.chat(f"charlm: {verb} {plan.mcfg.describe()} on {plan.data.path} — V={len(plan.data.vocab)}, "
                  f"{ev['params']:,} params, {ev['train_chars']:,} train / {ev['val_chars']:,} val chars, "
                  f"batch {ev['batch']} × seq {tcfg.seq_len}, {ocfg.describe()}, {_budget(tcfg)} → {plan.run_dir}")
        slice_ = "validating on all of them"
        if ev["val_slice"]:
            final = "all" if ev["val_final"] == ev["val_chars"] else f"the first {ev['val_final']:,}"
            slice_ = f"validating on the first {ev['val_slice']:,} of them during training, on {final} at the end"
        who = ev.get("engine") or _workers(ev["workers"], ev["batch"], plan.threads)
        self.chat(f"charlm: {who}; {ev['val_chars']:,} validation chars, {slice_}")
        self.bar = tqdm(total=1000, file=sys.stderr, disable=not self.tty, dynamic_ncols=True, leave=True,
                        bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}", desc="train")
        if self.live:
            self.live.start(ev["params"])
            self.chat(f"charlm: the live report is {self.live.path}: open it in a browser; it reloads itself")

    def step(self, ev: dict) -> None:
        self.progress_at = ev["fraction"]  # 0 with no budget: then every validation line is shown
        self.step_at = ev["step"]
        if self.live:
            self.live.fraction, self.live.elapsed = ev["fraction"], round(ev["elapsed"], 3)
        val = "-" if self.val is None else f"{self.val:.3f}"
        status = (f"step {ev['step']:,} ep {ev['epoch']} loss {ev['smoothed']:.3f} "
                  f"val {val} {ev['chars_per_sec'] / 1000:.1f}k chars/s")
        self.bar.n = min(int(1000 * ev["fraction"]), 1000)
        self.bar.set_postfix_str(status, refresh=False)
        self.bar.update(0)
        if not self.tty and time.monotonic() - self.last_line > 30:  # a log file still sees progress
            f = ev["fraction"]
            eta = tqdm.format_interval(ev["elapsed"] * (1 - f) / f) if f > 0 else "?"
            self.chat(f"{100 * f:.0f}% {status}, ETA {eta}")
            self.last_line = time.monotonic()

    def validating(self, ev: dict) -> None:
        what = "the final validation" if ev.get("whole") else "validation"
        if self.tty:
            self.bar.set_description_str("validate", refresh=False)
            self.bar.set_postfix_str(f"{what}: {ev['chars']:,} chars", refresh=True)
        elif ev.get("whole"):
            self.chat(f"charlm: scoring best.pkl on {what} ({ev['chars']:,} chars) …")

    def eval(self, ev: dict) -> None:
        if self.tty:
            self.bar.set_description_str("train", refresh=False)
        self._link()
        self.val = val = ev["val_loss"]
        # every improvement and the last are shown; the others at most every 5% of the run
        if val is not None and (ev["improved"] or ev["final"] or not self.progress_at
                                or self.progress_at - self.shown_at >= 0.05):
            self.shown_at = self.progress_at
            mark = " (best, saved best.pkl)" if ev["improved"] else ""
            self.chat(f"step {ev['step']:,}: val {val:.4f} nats/char, {val / math.log(2):.3f} bits/char{mark}")
        if self.live:
            self.live.validated(ev)

    def sample(self, ev: dict) -> None:
        self.chat(f"--- sample at step {ev['step']:,} ---\n{ev['text']}\n---")

    def diverged(self, ev: dict) -> None:
        run_dir, lr = self.plan.run_dir, self.plan.ocfg.lr
        kept = (f"{run_dir / rundir.LAST} holds the last good checkpoint" if (run_dir / rundir.LAST).exists()
                else "no checkpoint had been saved yet")
        if self.live:
            self.live.end(ev["step"], f"Diverged at step {ev['step']:,} (loss {ev['loss']:.3g}); {kept}", bad=True)
        raise CharlmError(f"training diverged at step {ev['step']:,} (loss {ev['loss']:.3g}); stopped, "
                          f"{kept}; try a lower --lr (now {lr:g}, e.g. --lr {lr / 3:.2g})")

    def done(self, ev: dict) -> None:
        self.bar.close()
        self._link()
        if self.live:
            how = (f"Interrupted (Ctrl-C) at step {ev['step']:,}; last.pkl is saved, and `charlm train --resume "
                   f"{rundir.quote(self.plan.run_dir)}` continues it" if ev["reason"] == loop.INTERRUPTED
                   else f"Finished at step {ev['step']:,}: {ev['reason']}")
            self.live.end(ev["step"], how)
            if not self.live.broken:
                self.chat(f"charlm: wrote the live report's final page, {self.live.path}")
        _summary(ev, self.plan.run_dir, self.plan.tcfg, self.link_note if not self.quiet else None)

    def _link(self) -> None:
        """Point runs/latest here once the run has a checkpoint (never before); what it says of it
        waits for the summary, so that it does not break into the progress lines."""
        if not self.linked:
            self.linked = True
            self.link_note = _link_latest(self.plan.run_dir)


def _workers(k: int, batch: int, n_threads: int) -> str:
    per = "thread" if n_threads == 1 else "threads"
    if k == 1:
        return f"one process, {n_threads} BLAS {per}"
    return f"{k:,} processes with {batch // k:,}–{-(-batch // k):,} lanes and {n_threads} BLAS {per} each"


def _budget(tcfg: TrainConfig) -> str:
    parts = [f"{tcfg.max_steps} steps" if tcfg.max_steps else "", f"{tcfg.epochs:g} epochs" if tcfg.epochs else "",
             f"{tcfg.time_budget:g}s" if tcfg.time_budget else ""]
    return "budget " + " or ".join(p for p in parts if p) if any(parts) else "no budget: until Ctrl-C"


def _raised(tcfg: TrainConfig) -> str:
    """The budget options doubled: what to pass to train on past a run's end."""
    parts = [f"--max-steps {2 * tcfg.max_steps}" if tcfg.max_steps else "",
             f"--epochs {2 * tcfg.epochs:g}" if tcfg.epochs else "",
             f"--time-budget {2 * tcfg.time_budget:g}" if tcfg.time_budget else ""]
    return " ".join(p for p in parts if p)


def _summary(ev: dict, run_dir: Path, tcfg: TrainConfig, link_note: str | None) -> None:
    run = rundir.quote(run_dir)  # as a command line reads it back
    if ev["reason"] == loop.INTERRUPTED:
        err.print(f"charlm: interrupted at step {ev['step']:,}; saved {run_dir / rundir.LAST}"
                  + (f"\n{link_note}" if link_note else "") + f"\nResume with:\n  charlm train --resume {run}")
        raise SystemExit(130)
    vals = [h["val_loss"] for h in ev.get("history", []) if h.get("val_loss") is not None]
    if len(vals) > 1:
        err.print(f"  val loss {vals[0]:.3f} {sparkline(vals)} {vals[-1]:.3f} nats/char ({len(vals)} evaluations)")
    best = ev["best"]
    score = (f"best val {best:.4f} nats/char ({best / math.log(2):.3f} bits/char, "
             f"perplexity {math.exp(best):.2f})" if best is not None else "no validation split")
    if ev.get("best_all") is not None:
        whole = ev["best_all"]
        final = ev["val_chars"]["val_all"]
        span = f"all {final:,}" if final == ev["val_split"] else f"the first {final:,}"
        score += (f" on the first {ev['val_chars']['val']:,} validation chars; on {span}: {whole:.4f} nats/char "
                  f"({whole / math.log(2):.3f} bits/char)")
    scored = "TEXT_FILE " if not tcfg.val_fraction else ""  # with no validation split, a file to score
    err.print(f"charlm: done — {ev['reason']} after {ev['step']:,} steps in {ev['elapsed']:.0f}s; {score}\n"
              f"  checkpoints: {run_dir / rundir.BEST}, {run_dir / rundir.LAST}\n"
              + (f"{link_note}\n" if link_note else "") +
              f"  next: charlm sample --model {run}   |   charlm eval perplexity {scored}--model {run}")
    if not ev["trained"] and ev["stopped_early"]:
        err.print(f"charlm: this run had already stopped early, so nothing was trained; to train on, allow more "
                  f"validations without improvement: charlm train --resume {run} --patience {2 * tcfg.patience}")
    elif not ev["trained"]:
        err.print(f"charlm: this run had already reached its budget, so nothing was trained; to train on, "
                  f"raise it: charlm train --resume {run} {_raised(tcfg)}")


def _link_latest(run_dir: Path) -> str | None:
    """Point runs/latest here (charlm/rundir.py); the note to show, if any."""
    linked = rundir.link_latest(run_dir)
    if linked is False:
        return f"charlm: no ./runs here, so no runs/latest was made; name this run with --model {rundir.quote(run_dir)}"
    return f"charlm: runs/latest now points at {run_dir}" if linked else None
