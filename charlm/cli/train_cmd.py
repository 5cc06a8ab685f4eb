"""`charlm train`: options → configs → `charlm.train.run`, events → progress bar and log lines."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from charlm import batches, checkpoint, defaults, memory, speed, threads
from charlm import corpus as corpus_mod
from charlm import train as train_mod
from charlm.cli import common
from charlm.cli.common import LATEST, RUNS, err
from charlm.cli.corpus_cmd import default_corpus
from charlm.cli.sparkline import sparkline
from charlm.errors import CharlmError, UsageError
from charlm.model import ModelConfig
from charlm.optim import OptimConfig
from charlm.train import TrainConfig

M, O, T = ModelConfig(vocab_size=1), OptimConfig(), TrainConfig()


def _by_budget(field: str) -> str:
    """A tier setting as --help shows it: its values by measured speed (the rule is in the epilog)."""
    values = " or ".join(f"{getattr(t, field):g}" for t in defaults.TIERS)
    return f"{values} by the speed measured here (rule below); {getattr(defaults.NO_BUDGET, field):g} with no budget"


class Cell(str, Enum):
    lstm = "lstm"
    gru = "gru"
    rnn = "rnn"


class Optimizer(str, Enum):
    adam = "adam"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Schedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


def _opt(flag: str, help: str, default, **kw):
    """An option whose value stays None unless given (so --resume can tell), showing its real default."""
    return typer.Option(flag, help=help, show_default=str(default), **kw)


ARCH = ("cell", "layers", "hidden", "embedding_dim", "dropout", "tie_weights")


def train(
    corpus: Annotated[Path | None, typer.Argument(
        help="UTF-8 text file to learn from",
        show_default="the shakespeare corpus, else the python corpus (see `charlm corpus list`)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory",
                                                 show_default="runs/<corpus name>")] = None,
    cell: Annotated[Cell | None, _opt("--cell", "Recurrent cell", M.cell)] = None,
    layers: Annotated[int | None, _opt("--layers", "Stacked recurrent layers", M.layers, min=1)] = None,
    hidden: Annotated[int | None, _opt("--hidden", "Hidden units per layer", _by_budget("hidden"), min=1)] = None,
    embedding_dim: Annotated[int | None, _opt("--embedding-dim", "Embedding width (0 = one-hot input)",
                                                 "--hidden", min=0)] = None,
    dropout: Annotated[float | None, _opt("--dropout", "Dropout between layers and before the decoder",
                                             _by_budget("dropout"), min=0.0, max=0.95)] = None,
    tie_weights: Annotated[bool | None, _opt("--tie-weights/--no-tie-weights",
                                                "Share the decoder with the embedding (needs E == H)",
                                                M.tie_weights)] = None,
    seq_len: Annotated[int | None, _opt("--seq-len", "BPTT window length T", T.seq_len, min=1)] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", "Parallel lanes B", T.batch_size, min=1)] = None,
    optimizer: Annotated[Optimizer | None, _opt("--optimizer", "Optimizer", O.name)] = None,
    lr: Annotated[float | None, _opt("--lr", "Peak learning rate", _by_budget("lr"))] = None,
    clip: Annotated[float | None, _opt("--clip", "Global gradient-norm clip (0 disables)", O.clip)] = None,
    schedule: Annotated[Schedule | None, _opt("--schedule", "LR schedule: constant, or warm-up then "
                                                 "cosine to the end of the run", "cosine")] = None,
    warmup_steps: Annotated[int | None, _opt("--warmup-steps", "Warm-up steps (cosine)", 100,
                                                min=0)] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", "Stop after N steps in total (0 = no limit)",
                                             T.max_steps, min=0)] = None,
    epochs: Annotated[float | None, _opt("--epochs", "Stop after K passes in total (0 = no limit)",
                                            T.epochs, min=0.0)] = None,
    time_budget: Annotated[float | None, _opt("--time-budget", "Stop after S seconds of training in total "
                                                 "(0 = no limit)", T.time_budget, min=0.0)] = None,
    val_fraction: Annotated[float | None, _opt("--val-fraction", "Held-out tail for validation",
                                                  T.val_fraction, min=0.0, max=0.9)] = None,
    eval_every: Annotated[int | None, _opt("--eval-every", "Validate and checkpoint every K steps",
                                              T.eval_every, min=1)] = None,
    val_max_chars: Annotated[int | None, _opt("--val-max-chars", "Validate on the first N validation "
                                                 "chars during training (0 = all); all are scored at the end",
                                                 T.val_max_chars, min=0)] = None,
    seed: Annotated[int | None, _opt("--seed", "Random seed (same seed, same run)", T.seed, min=0)] = None,
    workers: Annotated[int | None, _opt("--workers", f"Processes sharing the batch's lanes (env {threads.ENV_WORKERS})",
                                           "one per usable core, ≥ 8 lanes each", min=1)] = None,
    threads_n: Annotated[int | None, _opt("--threads", f"BLAS threads per process (env {threads.ENV_THREADS})",
                                             1, min=1)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue a run exactly: RUN_DIR or "
                                                   "checkpoint", show_default=False)] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of the corpus")] = "utf-8",
):
    """Train a model on a text file; checkpoints go to the run directory (best.pkl, last.pkl)."""
    given = {k: v.value if isinstance(v, Enum) else v for k, v in locals().items() if v is not None}
    model_kw = {k: given[k] for k in ARCH if k in given}
    optim_kw = {k: given[k] for k in ("lr", "clip", "schedule", "warmup_steps") if k in given}
    if "optimizer" in given:
        optim_kw["name"] = given["optimizer"]
    train_kw = {k: given[k] for k in ("seq_len", "batch_size", "max_steps", "epochs", "time_budget",
                                      "val_fraction", "eval_every", "val_max_chars", "seed", "workers") if k in given}
    if resume is not None:
        ckpt = checkpoint.load(resume, prefer="last.pkl", training=True)
        run_dir = Path(ckpt["path"]).parent
        if Path(ckpt["path"]).name == "best.pkl" and resume.is_dir():
            common.say(f"{run_dir} has no last.pkl; resuming from best.pkl, saved at step "
                f"{ckpt.get('progress', {}).get('step', '?')} (the steps after it are trained again)")
        mcfg = checkpoint.build_config(ModelConfig, ckpt["model_config"])
        changed = [k for k, v in model_kw.items() if getattr(mcfg, k) != v]
        if changed:
            raise UsageError(f"--{changed[0].replace('_', '-')} cannot change when resuming: the architecture "
                             "comes from the checkpoint")
        ocfg, tcfg = train_mod.configs_from_checkpoint(ckpt)
        ocfg, tcfg = dataclasses.replace(ocfg, **optim_kw), dataclasses.replace(tcfg, **train_kw)
        text_path = corpus or Path(ckpt["corpus"]["path"])
        if not text_path.exists():
            raise CharlmError(f"the run's corpus {text_path} is gone; if it moved, pass it: "
                              f"charlm train NEW_PATH --resume {resume}")
        data = corpus_mod.load(text_path, run_dir, ckpt["corpus"].get("encoding", encoding), common.say)
        if data.vocab.to_dict()["chars"] != ckpt["vocab"]["chars"] or \
                data.fingerprint.get("sha256") != ckpt["corpus"]["fingerprint"].get("sha256"):
            own = ckpt["corpus"]["path"]
            why = ("it changed since the checkpoint" if data.path == own
                   else f"it is a different file from the run's corpus {own}")
            raise CharlmError(f"{text_path} is not the text this run was trained on ({why}); "
                              "resuming would not continue the same run")
        _check_memory(mcfg, ocfg, tcfg)
    else:
        ckpt = None
        text_path = corpus or default_corpus(lambda msg: err.print(msg))
        run_dir = out or _fresh_run_dir(text_path)
        if out is not None and any((out / n).exists() for n in ("last.pkl", "best.pkl")):
            raise UsageError(f"{out} already holds a run; continue it with --resume {out}, or pick another --out")
        created = not run_dir.exists()
        _check_writable(run_dir)
        try:
            data = corpus_mod.load(text_path, run_dir, encoding, common.say)
            budget = train_kw.get("time_budget", 0.0)
            if budget:
                common.say("timing a few training steps to choose the model for this machine …")
            d_model, d_optim, d_train, why = defaults.choose(
                budget, _speed_probe(data, given, model_kw, {**defaults.TRAIN, **train_kw}, threads_n))
            if why:
                common.say(why)
            model_kw = {**d_model, **model_kw}
            if "embedding_dim" not in given:  # the embedding follows the hidden width unless given
                model_kw["embedding_dim"] = model_kw["hidden"]
            ocfg = OptimConfig(**{**d_optim, **optim_kw})
            tcfg = TrainConfig(**{**d_train, **train_kw})
            if not (tcfg.max_steps or tcfg.epochs or tcfg.time_budget):
                tcfg = dataclasses.replace(tcfg, epochs=10)
            notes = []
            if "eval_every" not in given and tcfg.val_fraction > 0:
                n_train = len(data.split(tcfg.val_fraction)[0])
                k = defaults.eval_every(tcfg.eval_every, n_train, tcfg.batch_size, tcfg.seq_len)
                if k != tcfg.eval_every:
                    notes.append(f"validating every {k} steps, not every {tcfg.eval_every}: an epoch is that short")
                    tcfg = dataclasses.replace(tcfg, eval_every=k)
            mcfg = ModelConfig(vocab_size=len(data.vocab), **model_kw)
            _check_memory(mcfg, ocfg, tcfg)
            for line in [_settings(mcfg, ocfg, tcfg, given), *notes]:
                common.say(line)
            _train_loop(data, run_dir, mcfg, ocfg, tcfg, None, threads_n)
        except BaseException:
            if created and not any((run_dir / n).exists() for n in ("last.pkl", "best.pkl")):
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping: leave no debris
            raise
        return
    _train_loop(data, run_dir, mcfg, ocfg, tcfg, ckpt, threads_n)


def _speed_probe(data, given: dict, model_kw: dict, train_kw: dict, threads_n: int | None):
    """steps_per_second(tier's model keywords) for defaults.choose: the candidate with the
    options given applied, timed on this corpus with the run's batch, window and workers."""
    train_ids = data.split(train_kw.get("val_fraction", T.val_fraction))[0]
    batch = batches.fit_batch(len(train_ids), train_kw["batch_size"], train_kw["seq_len"])
    measured: dict = {}

    def steps_per_second(tier_kw: dict) -> float:
        kw = {**tier_kw, **model_kw}
        if "embedding_dim" not in given:
            kw["embedding_dim"] = kw["hidden"]
        key = tuple(sorted(kw.items()))
        if key not in measured:
            measured[key] = speed.steps_per_second(ModelConfig(vocab_size=len(data.vocab), **kw), train_ids, batch,
                                                   train_kw["seq_len"], given.get("workers"), threads_n)
        return measured[key]
    return steps_per_second


def _fresh_run_dir(text_path: Path) -> Path:
    base = RUNS / (text_path.stem or "run")
    candidate, k = base, 1
    while (candidate / "last.pkl").exists() or (candidate / "best.pkl").exists():
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CharlmError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from None


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


def _describe(mcfg: ModelConfig) -> str:
    inp = f"embedding {mcfg.embedding_dim}" if mcfg.embedding_dim else "one-hot"
    extra = (f", dropout {mcfg.dropout:g}" if mcfg.dropout else "") + (", tied" if mcfg.tie_weights else "")
    return f"{mcfg.cell} {mcfg.layers}×{mcfg.hidden}, {inp} input{extra}"


def _check_memory(mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig) -> None:
    """Refuse, before anything is allocated, a configuration the machine cannot hold."""
    need, have = memory.training_bytes(mcfg, tcfg.batch_size, tcfg.seq_len, ocfg.name), memory.available_bytes()
    if have is not None and need > have:
        raise CharlmError(f"{_describe(mcfg)} with batch {tcfg.batch_size} × seq {tcfg.seq_len} needs about "
                          f"{memory.human(need)} of memory to train (weights, {ocfg.name} moments, activations) "
                          f"and this machine has {memory.human(have)} available; use a smaller --hidden, "
                          "--layers, --batch-size or --seq-len")


def _settings(mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, given: dict) -> str:
    """The configuration that will run, and which of it the user chose."""
    span = f"a {tcfg.time_budget:g}s budget" if tcfg.time_budget else "no time budget"
    mine = [f"--{k.replace('_', '-')}" for k in (*ARCH, "optimizer", "lr", "schedule") if k in given]
    origin = f"defaults for {span}" + (f", with your {', '.join(mine)}" if mine else "")
    return (f"{origin}: {_describe(mcfg)}, {ocfg.name} lr {ocfg.lr:g} ({ocfg.schedule}); "
            "`charlm train --help` gives the rule, and options you give win")


def _train_loop(data, run_dir: Path, mcfg, ocfg, tcfg, ckpt, threads_n: int | None) -> None:
    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        tqdm.write("charlm: Ctrl-C — finishing this step and saving last.pkl (Ctrl-C again to abort)",
                   file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    tty = sys.stderr.isatty()
    val, linked, last_line = None, False, -math.inf  # a log file sees the first step's line, then one per 30 s

    def say(line: str) -> None:
        tqdm.write(line, file=sys.stderr) if bar is not None and tty else err.print(line)

    try:
        for ev in train_mod.run(data, run_dir, mcfg, ocfg, tcfg, ckpt, should_stop=lambda: stop["requested"],
                                threads_n=threads_n):
            kind = ev["event"]
            if kind == "note":
                say(f"charlm: {ev['text']}")
            elif kind == "start":
                verb = "resuming" if ckpt else "training"
                say(f"charlm: {verb} {_describe(mcfg)} on {data.path} — V={len(data.vocab)}, "
                    f"{ev['params']:,} params, {ev['train_chars']:,} train / {ev['val_chars']:,} val chars, "
                    f"batch {ev['batch']} × seq {tcfg.seq_len}, {ocfg.name} lr {ocfg.lr:g} "
                    f"({ocfg.schedule}), {_budget(tcfg)} → {run_dir}")
                slice_ = (f"validating on the first {ev['val_slice']:,} of them during training, on all at the end"
                          if ev["val_slice"] else "validating on all of them")
                say(f"charlm: {_workers(ev['workers'], ev['batch'], threads.blas_threads(threads_n))}; "
                    f"{ev['val_chars']:,} validation chars, {slice_}")
                bar = tqdm(total=1000, file=sys.stderr, disable=not tty, dynamic_ncols=True, leave=True,
                           bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}", desc="train")
            elif kind == "step":
                status = (f"step {ev['step']} ep {ev['epoch']} loss {ev['smoothed']:.3f} "
                          f"val {'-' if val is None else f'{val:.3f}'} {ev['chars_per_sec'] / 1000:.1f}k chars/s")
                bar.n = min(int(1000 * ev["fraction"]), 1000)
                bar.set_postfix_str(status, refresh=False)
                bar.update(0)
                if not tty and time.monotonic() - last_line > 30:  # a log file still sees progress
                    f = ev["fraction"]
                    eta = tqdm.format_interval(ev["elapsed"] * (1 - f) / f) if f > 0 else "?"
                    say(f"{100 * f:.0f}% {status}, ETA {eta}")
                    last_line = time.monotonic()
            elif kind == "validating":
                what = "the whole validation split" if ev.get("whole") else "validation"
                if tty:
                    bar.set_description_str("validate", refresh=False)
                    bar.set_postfix_str(f"{what}: {ev['chars']:,} chars", refresh=True)
                elif ev.get("whole"):
                    say(f"charlm: scoring best.pkl on {what} ({ev['chars']:,} chars) …")
            elif kind == "eval":
                if tty:
                    bar.set_description_str("train", refresh=False)
                if not linked:  # runs/latest only ever points at a run with a checkpoint
                    linked = True
                    if note := _link_latest(run_dir):
                        say(note)
                val = ev["val_loss"]
                if val is not None:
                    mark = " (best, saved best.pkl)" if ev["improved"] else ""
                    say(f"step {ev['step']}: val {val:.4f} nats/char, {val / math.log(2):.3f} bits/char{mark}")
            elif kind == "sample":
                say(f"--- sample at step {ev['step']} ---\n{ev['text']}\n---")
            elif kind == train_mod.DIVERGED:
                kept = (f"{run_dir}/last.pkl holds the last good checkpoint" if (run_dir / "last.pkl").exists()
                        else "no checkpoint had been saved yet")
                raise CharlmError(f"training diverged at step {ev['step']} (loss {ev['loss']:.3g}); stopped, "
                                  f"{kept}; try a lower --lr (now {ocfg.lr:g}, e.g. --lr {ocfg.lr / 3:.2g})")
            elif kind == "done":
                bar.close()
                if not linked and (note := _link_latest(run_dir)):
                    say(note)
                _summary(ev, run_dir, tcfg, ckpt["progress"]["step"] if ckpt else None)
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
    return "budget " + " or ".join(p for p in parts if p)


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
        score += (f" on the first {ev['val_chars']['val']:,} validation chars; on all "
                  f"{ev['val_chars']['val_all']:,}: {whole:.4f} nats/char ({whole / math.log(2):.3f} bits/char)")
    scored = "TEXT_FILE " if not tcfg.val_fraction else ""  # with no validation split, a file to score
    err.print(f"charlm: done — {ev['reason']} after {ev['step']} steps in {ev['elapsed']:.0f}s; {score}\n"
              f"  checkpoints: {run_dir}/best.pkl, {run_dir}/last.pkl\n"
              f"  next: charlm sample --model {run_dir}   |   charlm eval perplexity {scored}--model {run_dir}")
    if ev["step"] == resumed_at:
        err.print(f"charlm: this run had already reached its budget, so nothing was trained; to train on, "
                  f"raise it: charlm train --resume {run_dir} {_raised(tcfg)}")
