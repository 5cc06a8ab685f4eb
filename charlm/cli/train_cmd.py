"""`charlm train`: options → configs → `charlm.training.loop.run`, events → progress bar and log lines."""

from __future__ import annotations

import contextlib
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from charlm import defaults, rundir, threads
from charlm.cli import common, train_view
from charlm.cli.common import err
from charlm.cli.corpus_cmd import default_corpus
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import files
from charlm.errors import UsageError
from charlm.training import launch, plans

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
        help=f"UTF-8 text file(s) or folder(s). Several are read as one text in sorted path order, with "
             f"{files.SEPARATOR_RULE}; validation is its tail",
        show_default="shakespeare, else python: `charlm corpus list`")] = None,
    glob: Annotated[str | None, typer.Option("--glob", help="In a folder, read the files (at any depth) "
                                             "matching this pattern, e.g. '*.py'; hidden ones are skipped",
                                             show_default="every file")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run directory",
                                                 show_default="runs/<corpus name>")] = None,
    cell: Annotated[Cell | None, _opt("--cell", "Recurrent cell", M.cell)] = None,
    layers: Annotated[int | None, _opt("--layers", "Stacked recurrent layers", M.layers, min=1)] = None,
    hidden: Annotated[int | None, _opt("--hidden", "Hidden units per layer", defaults.by_tier("hidden"), min=1)] = None,
    embedding_dim: Annotated[int | None, _opt("--embedding-dim", "Embedding width (0 = one-hot input)",
                                                 "--hidden", min=0)] = None,
    dropout: Annotated[float | None, _opt("--dropout", "Dropout between layers and before the decoder",
                                             defaults.by_tier("dropout"), min=0.0, max=0.95)] = None,
    locked_dropout: Annotated[bool | None, _opt("--locked-dropout/--no-locked-dropout",
                                                   "Share each --dropout mask across a window's steps "
                                                   "(variational dropout)", M.locked_dropout)] = None,
    weight_drop: Annotated[float | None, _opt("--weight-drop", "DropConnect on the hidden-to-hidden weights: "
                                                 "one mask per step (numpy engine)", M.weight_drop,
                                                 min=0.0, max=0.95)] = None,
    embed_dropout: Annotated[float | None, _opt("--embed-dropout", "Drop whole characters from the input, "
                                                   "one mask per step (numpy engine)",
                                                   M.embed_dropout, min=0.0, max=0.95)] = None,
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
    weight_decay: Annotated[float | None, _opt("--weight-decay", "Decoupled weight decay (AdamW): every weight "
                                                  "matrix shrinks by lr × this each step", ", ".join(
                                                      f"{k} {v:g}" for k, v in defaults.WEIGHT_DECAYS.items()),
                                                  min=0.0)] = None,
    ema: Annotated[float | None, _opt("--ema", "Validate, and save in best.pkl, a moving average of the weights "
                                         "with this decay (0 = the weights themselves)", O.ema,
                                         min=0.0, max=0.9999)] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", "Stop after N steps in total (0 = no limit)",
                                             T.max_steps, min=0)] = None,
    epochs: Annotated[float | None, _opt("--epochs", "Stop after K passes in total (0 = no limit)",
                                            f"with no budget option: until early stopping, "
                                            f"{defaults.NO_BUDGET_EPOCHS:g}–{defaults.NO_BUDGET_MAX_EPOCHS:g} "
                                            "by the text's size; else 0",
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
    engine: Annotated[Engine | None, _opt("--engine", "numpy (charlm's) or torch (pip install "
                                           "'charlm[torch]'; torchrun for several processes)",
                                           f"{T.engine}; a resume keeps the run's")] = None,
    device: Annotated[Device | None, _opt("--device", "Where --engine torch trains (auto: CUDA, else "
                                           "MPS, else the CPU)", "auto")] = None,
    sample_every: Annotated[int | None, _opt("--sample-every", "Print a sample every N validations, at most 10 "
                                                "a run (0 = never)", T.sample_every, min=0)] = None,
    keep_every: Annotated[int | None, _opt("--keep-every", "Also keep the weights every N steps "
                                           "(RUN/step-000400.pkl), for --step N of sample, eval, info and report; "
                                           "refused if the disk cannot hold them",
                                           "none kept", min=1)] = None,
    report: Annotated[bool, typer.Option("--report", help="Keep RUN/report.html, a light page that reloads "
                                         "itself, up to date after each validation (`charlm report RUN` writes "
                                         "the full one)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings, errors and the summary")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue a run exactly: RUN_DIR or "
                                                   "checkpoint", show_default=False)] = None,
    init_from: Annotated[Path | None, typer.Option("--init-from", help="Fine-tune: a new run on CORPUS from "
                                                      "this run's best.pkl (or a checkpoint), with its "
                                                      "architecture, a fresh optimizer and a new run's defaults",
                                                      show_default=False)] = None,
    extend_vocab: Annotated[bool, typer.Option("--extend-vocab", help="With --init-from: give characters the "
                                               "model never saw fresh rows, instead of stopping")] = False,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding of the corpus",
                                                    show_default="utf-8; a resume keeps the run's")] = None,
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
    if out is not None and resume is None and Path(out) == Path("."):
        raise UsageError("--out needs a directory name for the run (not the current directory)")
    if "device" in given and given.get("engine") != "torch" and resume is None:
        raise UsageError("--device chooses where --engine torch trains; the numpy engine trains on the CPU")
    rt = launch.runtime(given.get("engine"), device, threads_n)  # None: the numpy engine, one launch
    if rt is not None and "workers" in given:
        common.say("--workers is the numpy engine's; the torch engine's processes are torchrun's (--nproc_per_node)")
    try:
        with common.surviving_closed_output():
            _train(corpus or [], glob, out, resume, init_from, extend_vocab, given, encoding, threads_n, quiet, device,
                   rt, report)
    finally:
        launch.shutdown(rt)


def _train(corpus: list[Path], glob: str | None, out: Path | None, resume: Path | None, init_from: Path | None,
           extend_vocab: bool, given: dict, encoding: str | None, threads_n: int | None, quiet: bool, device: str,
           rt, report: bool = False) -> None:
    """Plan the run (on rank 0 of a torchrun launch, which tells the others) and train it."""
    def go(plan: plans.Plan) -> None:
        if launch.leads(rt):
            train_view.show(plan, quiet, live=report)
        else:
            launch.follow(plan)

    if resume is not None:
        go(launch.share(rt, lambda: plans.resume(resume, corpus, glob, given, encoding=encoding, out=out,
                                                 threads_n=threads_n, device=device)))
    elif not launch.leads(rt):
        go(launch.share(rt, None))
    else:
        with contextlib.ExitStack() as stack:  # a failed start or run leaves no empty run directory behind
            def start() -> plans.Plan:  # inside share: under torchrun, a refusal here reaches every rank
                source = files.expand(corpus or [default_corpus(lambda msg: err.print(msg))], glob,
                                      encoding or "utf-8")
                run_dir = stack.enter_context(rundir.new_run_dir(out, source.name))
                if init_from is not None:
                    plan = plans.fine_tune(source, run_dir, init_from, extend_vocab, given,
                                           encoding=encoding or "utf-8", threads_n=threads_n, device=device)
                else:
                    with err.status("charlm: planning the run") as status:
                        plan = plans.start(source, run_dir, given, encoding=encoding or "utf-8", threads_n=threads_n,
                                           device=device, status=lambda text: status.update(f"charlm: {text}"))
                if not quiet:
                    common.say(_settings(plan, given))
                return plan
            go(launch.share(rt, start))


def _settings(plan: plans.Plan, given: dict) -> str:
    """The configuration that will run, and which of it the user chose."""
    span = f"a {plan.tcfg.time_budget:g}s budget" if plan.tcfg.time_budget else "no time budget"
    mine = [f"--{k.replace('_', '-')}" for k in (*plans.ARCH, "optimizer", "lr", "schedule") if k in given]
    yours = f", with your {', '.join(mine)}" if mine else ""
    origin = f"defaults for {span}{yours}"
    if plan.init:
        step = plan.init.record["step"]
        origin = (f"fine-tuning the model of {plan.init.record['path']}" + (f" (step {step})" if step else "")
                  + f" with a fresh optimizer and the defaults of a new run{yours}")
    return (f"{origin}: {plan.mcfg.describe()}, {plan.ocfg.describe()}; "
            "`charlm train --help` gives the rule, and options you give win")
