"""`charlm train`: options → configs → `charlm.train.run`, events → progress bar and log lines."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from charlm import defaults, early_stop, runs, threads
from charlm import train as train_mod
from charlm.cli import common
from charlm.cli.common import LATEST, RUNS, err
from charlm.cli.corpus_cmd import default_corpus
from charlm.cli.sparkline import sparkline
from charlm.data import files
from charlm.engines import launch
from charlm.errors import CharlmError, UsageError
from charlm.model import ModelConfig
from charlm.optim import OptimConfig
from charlm.train import TrainConfig

M, O, T = ModelConfig(vocab_size=1), OptimConfig(), TrainConfig()


class Cell(str, Enum):
    gru = "gru"
    lstm = "lstm"
    rnn = "rnn"


class Optimizer(str, Enum):
    adam = "adam"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Schedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


class Engine(str, Enum):
    numpy = "numpy"
    torch = "torch"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _opt(flag: str, help: str, default, **kw):
    """An option whose value stays None unless given (so --resume can tell), showing its real default."""
    return typer.Option(flag, help=help, show_default=str(default), **kw)




def train(
    corpus: Annotated[list[Path] | None, typer.Argument(
        help="UTF-8 text file(s) or folder(s) to learn from. Several files are read in sorted path order as "
             f"one text, with {files.SEPARATOR_RULE}; validation is the tail of that text (--val-fraction), as "
             "for one file",
        show_default="the shakespeare corpus, else the python corpus (see `charlm corpus list`)")] = None,
    glob: Annotated[str | None, typer.Option("--glob", help="In a folder, read the files (at any depth) whose "
                                             "names match this pattern, e.g. '*.py'; hidden files and folders "
                                             "are skipped", show_default="every file")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory",
                                                 show_default="runs/<corpus name>")] = None,
    cell: Annotated[Cell | None, _opt("--cell", "Recurrent cell", M.cell)] = None,
    layers: Annotated[int | None, _opt("--layers", "Stacked recurrent layers", M.layers, min=1)] = None,
    hidden: Annotated[int | None, _opt("--hidden", "Hidden units per layer", defaults.by_tier("hidden"), min=1)] = None,
    embedding_dim: Annotated[int | None, _opt("--embedding-dim", "Embedding width (0 = one-hot input)",
                                                 "--hidden", min=0)] = None,
    dropout: Annotated[float | None, _opt("--dropout", "Dropout between layers and before the decoder",
                                             defaults.by_tier("dropout"), min=0.0, max=0.95)] = None,
    tie_weights: Annotated[bool | None, _opt("--tie-weights/--no-tie-weights",
                                                "Share the decoder with the embedding (needs E == H)",
                                                M.tie_weights)] = None,
    seq_len: Annotated[int | None, _opt("--seq-len", "BPTT window length T", T.seq_len, min=1)] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", "Parallel lanes B", T.batch_size, min=1)] = None,
    optimizer: Annotated[Optimizer | None, _opt("--optimizer", "Optimizer", O.name)] = None,
    lr: Annotated[float | None, _opt("--lr", "Peak learning rate", ", ".join(
        f"{k} {v:g}" for k, v in defaults.LEARNING_RATES.items()))] = None,
    clip: Annotated[float | None, _opt("--clip", "Global gradient-norm clip (0 disables)", O.clip)] = None,
    schedule: Annotated[Schedule | None, _opt("--schedule", "LR schedule: constant, or warm-up then "
                                                 "cosine to the end of the run", O.schedule)] = None,
    warmup_steps: Annotated[int | None, _opt("--warmup-steps", "Warm-up steps (cosine)", O.warmup_steps,
                                                min=0)] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", "Stop after N steps in total (0 = no limit)",
                                             T.max_steps, min=0)] = None,
    epochs: Annotated[float | None, _opt("--epochs", "Stop after K passes in total (0 = no limit)",
                                            f"{defaults.NO_BUDGET_EPOCHS:g} if no budget option is given, else 0",
                                            min=0.0)] = None,
    time_budget: Annotated[float | None, _opt("--time-budget", "Stop after S seconds of training in total "
                                                 "(0 = no limit)", T.time_budget, min=0.0)] = None,
    val_fraction: Annotated[float | None, _opt("--val-fraction", "Held-out tail for validation",
                                                  T.val_fraction, min=0.0, max=0.9)] = None,
    eval_every: Annotated[int | None, _opt("--eval-every", "Validate and checkpoint every K steps",
                                              f"{defaults.EVAL_EVERY}, or one epoch if that is shorter "
                                              f"(≥ {defaults.MIN_EVAL_EVERY})", min=1)] = None,
    val_max_chars: Annotated[int | None, _opt("--val-max-chars", "Validate on the first N validation "
                                                 "chars during training (0 = all); all are scored at the end",
                                                 T.val_max_chars, min=0)] = None,
    patience: Annotated[int | None, _opt("--patience", "Stop after K validations in a row without a new best "
                                            "val loss (0 = never); resumes count on",
                                            f"{defaults.PATIENCE}, or 0 with --val-fraction 0", min=0)] = None,
    seed: Annotated[int | None, _opt("--seed", "Random seed (same seed, same run)", T.seed, min=0)] = None,
    workers: Annotated[int | None, _opt("--workers", f"Processes sharing the batch's lanes (env {threads.ENV_WORKERS})",
                                           "one per usable core, ≥ 8 lanes each", min=1)] = None,
    threads_n: Annotated[int | None, _opt("--threads", f"BLAS threads per process (env {threads.ENV_THREADS})",
                                             1, min=1)] = None,
    engine: Annotated[Engine | None, _opt("--engine", "Who computes the steps: charlm's numpy, or PyTorch "
                                           "(pip install 'charlm\\[torch]'; torchrun for several processes)",
                                           f"{T.engine}; a resume keeps the run's")] = None,
    device: Annotated[Device | None, _opt("--device", "Where --engine torch trains (auto: a CUDA GPU, "
                                           "else Apple's MPS, else the CPU)", "auto")] = None,
    sample_every: Annotated[int | None, _opt("--sample-every", "Print a sample every N validations, at most 10 "
                                                "a run (0 = never)", T.sample_every, min=0)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings, errors and the final "
                                        "summary (metrics.jsonl still logs every step)")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue a run exactly: RUN_DIR or "
                                                   "checkpoint", show_default=False)] = None,
    init_from: Annotated[Path | None, typer.Option("--init-from", help="Fine-tune: a new run on CORPUS that "
                                                      "starts from this run's (best.pkl) or checkpoint's weights, "
                                                      "with its architecture and a fresh optimizer; the other "
                                                      "settings take the defaults of a run given no options",
                                                      show_default=False)] = None,
    extend_vocab: Annotated[bool, typer.Option("--extend-vocab", help="With --init-from: give characters the "
                                               "model never saw fresh rows, instead of stopping")] = False,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of the corpus")] = "utf-8",
):
    """Train a model on text files (or fine-tune one); checkpoints go to the run directory (best.pkl, last.pkl)."""
    given = {k: v.value if isinstance(v, Enum) else v for k, v in locals().items() if v is not None}
    device = given.get("device", "auto")
    if init_from is not None and resume is not None:
        raise UsageError("--init-from starts a new run and --resume continues one; give one of them")
    if extend_vocab and init_from is None:
        raise UsageError("--extend-vocab only applies to fine-tuning, with --init-from")
    if not corpus and glob is not None and resume is None:
        raise UsageError("--glob picks files inside a folder, and no folder was given")
    rt = launch.runtime(given.get("engine"), device, threads_n)  # None: the numpy engine, one launch
    if rt is not None and "workers" in given:
        common.say("--workers is the numpy engine's; the torch engine's processes are torchrun's (--nproc_per_node)")
    try:
        _train(corpus or [], glob, out, resume, init_from, extend_vocab, given, encoding, threads_n, quiet, device, rt)
    finally:
        launch.shutdown(rt)


def _train(corpus: list[Path], glob: str | None, out: Path | None, resume: Path | None, init_from: Path | None,
           extend_vocab: bool, given: dict, encoding: str, threads_n: int | None, quiet: bool, device: str,
           rt) -> None:
    """Plan the run (on rank 0 of a torchrun launch, which tells the others) and train it."""
    inform = (lambda line: None) if quiet else common.say  # what was chosen and why; warnings always show

    def go(plan: runs.Plan) -> None:
        if launch.leads(rt):
            _train_loop(plan, threads_n, quiet, device)
        else:
            launch.follow(plan, threads_n, device)

    if resume is not None:
        go(launch.share(rt, lambda: runs.resume(resume, corpus, glob, given, encoding, common.say)))
    elif not launch.leads(rt):
        go(launch.share(rt, None))
    else:
        with contextlib.ExitStack() as stack:  # a failed start or run leaves no empty run directory behind
            def start() -> runs.Plan:  # inside share: under torchrun, a refusal here reaches every rank
                source = files.expand(corpus or [default_corpus(lambda msg: err.print(msg))], glob)
                run_dir = stack.enter_context(runs.new_run_dir(out, source))
                if init_from is not None:
                    plan = runs.fine_tune(source, run_dir, init_from, extend_vocab, given, encoding, inform,
                                          common.say)
                else:
                    plan = runs.start(source, run_dir, given, encoding, threads_n, inform, common.say)
                inform(_settings(plan, given))
                return plan
            go(launch.share(rt, start))


def _link_latest(run_dir: Path) -> str | None:
    """runs/latest -> the run directory, replaced atomically (best effort); returns a note to show.
    A run whose --out is outside ./runs updates runs/latest only where ./runs already exists."""
    outside = RUNS.resolve() not in run_dir.resolve().parents
    if outside and not RUNS.is_dir():
        return f"charlm: no ./runs here, so no runs/latest was made; name this run with --model {run_dir}"
    try:
        RUNS.mkdir(exist_ok=True)
        tmp = RUNS / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(run_dir.resolve(), RUNS.resolve()))
        os.replace(tmp, LATEST)
    except OSError:
        return None
    return f"charlm: runs/latest now points at {run_dir}" if outside else None


def _settings(plan: runs.Plan, given: dict) -> str:
    """The configuration that will run, and which of it the user chose."""
    span = f"a {plan.tcfg.time_budget:g}s budget" if plan.tcfg.time_budget else "no time budget"
    mine = [f"--{k.replace('_', '-')}" for k in (*runs.ARCH, "optimizer", "lr", "schedule") if k in given]
    yours = f", with your {', '.join(mine)}" if mine else ""
    origin = f"defaults for {span}{yours}"
    if plan.init:
        step = plan.init.record["step"]
        origin = (f"fine-tuning the model of {plan.init.record['path']}" + (f" (step {step})" if step else "")
                  + f" with a fresh optimizer and the defaults of a new run{yours}")
    return (f"{origin}: {runs.describe(plan.mcfg)}, {plan.ocfg.name} lr {plan.ocfg.lr:g} ({plan.ocfg.schedule}); "
            "`charlm train --help` gives the rule, and options you give win")


def _train_loop(plan: runs.Plan, threads_n: int | None, quiet: bool, device: str = "auto") -> None:
    """Run `train.run` and render its events: a progress bar (or log lines), validations, samples."""
    data, run_dir, mcfg, ocfg, tcfg, ckpt = (plan.data, plan.run_dir, plan.mcfg, plan.ocfg, plan.tcfg,
                                             plan.checkpoint)
    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        tqdm.write("charlm: Ctrl-C — finishing this step and saving last.pkl (Ctrl-C again to abort)",
                   file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    tty = sys.stderr.isatty() and not quiet
    val, linked, last_line = None, False, -math.inf  # a log file sees the first step's line, then one per 30 s
    progress_at, shown_at = 0.0, -1.0  # the fraction of the run at the last validation line shown

    def say(line: str) -> None:
        tqdm.write(line, file=sys.stderr) if bar is not None and tty else err.print(line)

    def chat(line: str) -> None:  # progress, validations, samples: not under --quiet
        if not quiet:
            say(line)

    try:
        for ev in train_mod.run(data, run_dir, mcfg, ocfg, tcfg, ckpt, should_stop=lambda: stop["requested"],
                                threads_n=threads_n, device=device, init=plan.init):
            kind = ev["event"]
            if kind == train_mod.NOTE:  # a choice explained (not under --quiet), or a change to what was asked
                (chat if ev.get("chosen") else say)(f"charlm: {ev['text']}")
            elif kind == train_mod.START:
                verb = "resuming" if ckpt else "fine-tuning" if plan.init else "training"
                chat(f"charlm: {verb} {runs.describe(mcfg)} on {data.path} — V={len(data.vocab)}, "
                    f"{ev['params']:,} params, {ev['train_chars']:,} train / {ev['val_chars']:,} val chars, "
                    f"batch {ev['batch']} × seq {tcfg.seq_len}, {ocfg.name} lr {ocfg.lr:g} "
                    f"({ocfg.schedule}), {_budget(tcfg)} → {run_dir}")
                slice_ = "validating on all of them"
                if ev["val_slice"]:
                    final = "all" if ev["val_final"] == ev["val_chars"] else f"the first {ev['val_final']:,}"
                    slice_ = (f"validating on the first {ev['val_slice']:,} of them during training, "
                              f"on {final} at the end")
                who = ev.get("engine") or _workers(ev["workers"], ev["batch"], threads.blas_threads(threads_n))
                chat(f"charlm: {who}; "
                    f"{ev['val_chars']:,} validation chars, {slice_}")
                bar = tqdm(total=1000, file=sys.stderr, disable=not tty, dynamic_ncols=True, leave=True,
                           bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}", desc="train")
            elif kind == train_mod.STEP:
                progress_at = ev["fraction"]  # 0 with no budget: then every validation line is shown
                status = (f"step {ev['step']} ep {ev['epoch']} loss {ev['smoothed']:.3f} "
                          f"val {'-' if val is None else f'{val:.3f}'} {ev['chars_per_sec'] / 1000:.1f}k chars/s")
                bar.n = min(int(1000 * ev["fraction"]), 1000)
                bar.set_postfix_str(status, refresh=False)
                bar.update(0)
                if not tty and time.monotonic() - last_line > 30:  # a log file still sees progress
                    f = ev["fraction"]
                    eta = tqdm.format_interval(ev["elapsed"] * (1 - f) / f) if f > 0 else "?"
                    chat(f"{100 * f:.0f}% {status}, ETA {eta}")
                    last_line = time.monotonic()
            elif kind == train_mod.VALIDATING:
                what = "the final validation" if ev.get("whole") else "validation"
                if tty:
                    bar.set_description_str("validate", refresh=False)
                    bar.set_postfix_str(f"{what}: {ev['chars']:,} chars", refresh=True)
                elif ev.get("whole"):
                    chat(f"charlm: scoring best.pkl on {what} ({ev['chars']:,} chars) …")
            elif kind == train_mod.EVAL:
                if tty:
                    bar.set_description_str("train", refresh=False)
                if not linked:  # runs/latest only ever points at a run with a checkpoint
                    linked = True
                    if note := _link_latest(run_dir):
                        chat(note)
                val = ev["val_loss"]
                # every improvement and the last are shown; the others at most every 5% of the run
                if val is not None and (ev["improved"] or ev["final"] or not progress_at
                                        or progress_at - shown_at >= 0.05):
                    shown_at = progress_at
                    mark = " (best, saved best.pkl)" if ev["improved"] else ""
                    chat(f"step {ev['step']}: val {val:.4f} nats/char, {val / math.log(2):.3f} bits/char{mark}")
            elif kind == train_mod.SAMPLE:
                chat(f"--- sample at step {ev['step']} ---\n{ev['text']}\n---")
            elif kind == train_mod.DIVERGED:
                kept = (f"{run_dir}/last.pkl holds the last good checkpoint" if (run_dir / "last.pkl").exists()
                        else "no checkpoint had been saved yet")
                raise CharlmError(f"training diverged at step {ev['step']} (loss {ev['loss']:.3g}); stopped, "
                                  f"{kept}; try a lower --lr (now {ocfg.lr:g}, e.g. --lr {ocfg.lr / 3:.2g})")
            elif kind == train_mod.DONE:
                bar.close()
                if not linked and (note := _link_latest(run_dir)):
                    chat(note)
                _summary(ev, run_dir, tcfg, ckpt.step if ckpt else None)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar:
            bar.close()


def _workers(k: int, batch: int, n_threads: int) -> str:
    per = "thread" if n_threads == 1 else "threads"
    if k == 1:
        return f"one process, {n_threads} BLAS {per}"
    return f"{k} processes with {batch // k}–{-(-batch // k)} lanes and {n_threads} BLAS {per} each"


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


def _summary(ev: dict, run_dir: Path, tcfg: TrainConfig, resumed_at: int | None) -> None:
    if ev["reason"] == "interrupted":
        err.print(f"charlm: interrupted at step {ev['step']}; saved {run_dir}/last.pkl. Resume with:\n"
                  f"  charlm train --resume {run_dir}")
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
    err.print(f"charlm: done — {ev['reason']} after {ev['step']} steps in {ev['elapsed']:.0f}s; {score}\n"
              f"  checkpoints: {run_dir}/best.pkl, {run_dir}/last.pkl\n"
              f"  next: charlm sample --model {run_dir}   |   charlm eval perplexity {scored}--model {run_dir}")
    if ev["step"] == resumed_at and ev["reason"] == early_stop.reason(tcfg.patience, ev.get("history", [])):
        err.print(f"charlm: this run had already stopped early, so nothing was trained; to train on, allow more "
                  f"validations without improvement: charlm train --resume {run_dir} --patience {2 * tcfg.patience}")
    elif ev["step"] == resumed_at:
        err.print(f"charlm: this run had already reached its budget, so nothing was trained; to train on, "
                  f"raise it: charlm train --resume {run_dir} {_raised(tcfg)}")
