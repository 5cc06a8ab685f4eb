"""A run's plan: every decision about a training run, made once, before any training.

`start` (a new run), `fine_tune` (a new run from a trained model's weights) and `resume`
(the run a checkpoint left) each turn the options given into a frozen `Plan`, and
all three end in `decide`, the one place that settles what the options leave open:
the batch that fits the training text, the validation cadence, the worker processes,
the BLAS threads, the validation slices, and whether it all fits in memory. The loop
(charlm/training/loop.py) reads the plan and never changes it. What was decided, and
why, travels in `Plan.notes`, which the loop hands on as its first events.

A resume's plan is the checkpoint's: the options given with --resume may change only
the budgets and how the run reports (RESUMABLE); any other option that differs from
the run is refused. The engine may change (the numbers do not, but for dropout masks),
with a note. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from charlm import checkpoint, defaults, rundir, threads
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig, check_engine
from charlm.data import batches, files
from charlm.data import corpus as corpus_mod
from charlm.data.corpus import Corpus
from charlm.data.files import Source
from charlm.errors import CharlmError, UsageError
from charlm.training import init_from, keep, memory, speed

ARCH = ("cell", "layers", "hidden", "embedding_dim", "dropout", "tie_weights", "locked_dropout", "weight_drop",
        "embed_dropout")
OPTIM = ("optimizer", "lr", "clip", "schedule", "warmup_steps", "weight_decay", "ema")
TRAIN = ("seq_len", "batch_size", "max_steps", "epochs", "time_budget", "val_fraction", "eval_every",
         "val_max_chars", "seed", "workers", "sample_every", "engine", "patience", "keep_every")
OPTIONS = ARCH + OPTIM + TRAIN              # what a run can be given (`charlm train`'s options, `charlm.fit`'s)
RESUMABLE = ("max_steps", "epochs", "time_budget", "patience", "eval_every", "sample_every", "keep_every")


@dataclass(frozen=True)
class Note:
    text: str
    chosen: bool = True         # explains a default that was decided (--quiet hides it); False: a warning


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, decided: the loop reads it and never changes it."""
    data: Corpus
    run_dir: Path
    mcfg: ModelConfig
    ocfg: OptimConfig
    tcfg: TrainConfig                       # every field decided: batch, eval_every, workers, patience, budgets
    checkpoint: Checkpoint | None = None    # what a resume continues
    init: init_from.Start | None = None     # the weights a fine-tuning run starts from
    threads: int = 1                        # BLAS threads per process (charlm/threads.py)
    device: str = "auto"                    # where the torch engine trains
    notes: tuple[Note, ...] = ()            # what was decided and why, in order

    @property
    def n_train(self) -> int:
        """Training characters: the text before the validation split."""
        return corpus_mod.train_length(len(self.data.ids), self.tcfg.val_fraction)

    @property
    def windows(self) -> int:
        """Windows (steps) in one epoch."""
        return batches.windows_per_epoch(self.n_train, self.tcfg.batch_size, self.tcfg.seq_len)

    @property
    def val_chars(self) -> int:
        return len(self.data.ids) - self.n_train

    @property
    def ids(self) -> dict:
        """What the team reads, by name: "train"; "val", the split (or its first val_max_chars)
        validated during training; "val_all", what the end scores when "val" is a slice."""
        n_train, n_val, tc = self.n_train, self.val_chars, self.tcfg
        ids = {"train": self.data.slice(0, n_train)}
        if n_val >= 2:
            ids["val"] = self.data.slice(n_train, n_train + min(n_val, tc.val_max_chars or n_val))
            if len(ids["val"]) < n_val:  # the end scores more: up to VAL_FINAL_FACTOR× the slice
                ids["val_all"] = self.data.slice(n_train, n_train + min(n_val, defaults.VAL_FINAL_FACTOR *
                                                                        tc.val_max_chars))
        return ids


def _split(given: dict) -> tuple[dict, dict, dict]:
    """The options given (option name → value) as model, optimizer and training keywords."""
    optim_kw = {("name" if k == "optimizer" else k): given[k] for k in OPTIM if k in given}
    return ({k: given[k] for k in ARCH if k in given}, optim_kw, {k: given[k] for k in TRAIN if k in given})


def start(source: Source, run_dir: Path, given: dict, *, encoding: str = "utf-8", threads_n: int | None = None,
          device: str = "auto", status: Callable[[str], None] = lambda text: None) -> Plan:
    """A new run on `source` into `run_dir` (see rundir.new_run_dir). With a time budget the model
    is the tier this machine can train enough steps of (charlm/defaults.py), timed here;
    `status` hears what takes a while."""
    model_kw, optim_kw, train_kw = _split(given)
    check_engine(train_kw.get("engine"), model_kw)
    notes = _skipped(source)
    data = corpus_mod.load(source, run_dir, encoding, lambda text: notes.append(Note(text, False)))
    ocfg, tcfg = OptimConfig(**optim_kw), TrainConfig(**train_kw)
    probe = None
    if tcfg.time_budget:
        status("timing a few training steps to choose the model for this machine …")
        probe = _speed_probe(data, model_kw, _fit(tcfg, data)[0], threads_n, device)  # as decide will fit it
    tier, why = defaults.choose(tcfg.time_budget, probe)
    if why:
        notes.append(Note(why))
    mcfg = ModelConfig(vocab_size=len(data.vocab), **{**tier, **model_kw})
    return decide(data, run_dir, mcfg, ocfg, tcfg, threads_n=threads_n, device=device, notes=notes)


def fine_tune(source: Source, run_dir: Path, init: Path, extend: bool, given: dict, *, encoding: str = "utf-8",
              threads_n: int | None = None, device: str = "auto") -> Plan:
    """A new run on `source` that starts from the weights of the checkpoint (or run) `init`.
    The architecture is the checkpoint's; the optimizer, schedule, budgets and the rest take
    the same defaults as a new run's (nothing is timed: there is no model to choose)."""
    model_kw, optim_kw, train_kw = _split(given)
    ckpt = checkpoint.load(init, prefer=rundir.BEST)
    for key, value in model_kw.items():
        if getattr(ckpt.model, key) != value:
            raise UsageError(f"--{_flag(key)} cannot be given with --init-from: the architecture comes from "
                             f"{ckpt.path} ({_flag(key)} {_shown(getattr(ckpt.model, key))}); for another "
                             f"architecture, start a new run without --init-from")
    notes = _skipped(source)
    data = corpus_mod.load(source, run_dir, encoding, lambda text: notes.append(Note(text, False)), ckpt.vocab,
                           extend)
    ocfg, tcfg = OptimConfig(**optim_kw), TrainConfig(**train_kw)
    check_engine(tcfg.engine, dataclasses.asdict(ckpt.model))
    begin = init_from.start(ckpt, data.vocab, tcfg.seed)
    if added := begin.record["added_chars"]:
        notes.append(Note(f"added {len(added):,} character(s) the model never saw to its vocabulary, with freshly "
                          f"initialised input and output rows: {' '.join(repr(ch) for ch in added)}"))
    return decide(data, run_dir, begin.mcfg, ocfg, tcfg, init=begin, threads_n=threads_n, device=device, notes=notes)


def resume(path: Path, paths: list[Path], glob: str | None, given: dict, *, encoding: str | None = None,
           out: Path | None = None, threads_n: int | None = None, device: str = "auto") -> Plan:
    """Continue the run at `path` (a run directory or checkpoint) exactly as it was saved. The
    options given may change only the budgets and how the run reports (RESUMABLE), and the
    engine; any other that differs from the run is refused. `paths` (and `glob`): the corpus,
    when it moved; by default the files the run recorded."""
    if rundir.kept_step(path) is not None and Path(path).is_file():
        raise CharlmError(f"{path} is a checkpoint kept along the way, which holds the weights only and cannot be "
                          f"resumed; continue the run with --resume {rundir.quote(Path(path).parent)}, or start a new "
                          f"run from these weights with --init-from {rundir.quote(path)}")
    ckpt = checkpoint.load(path, prefer=rundir.LAST, training=True)
    run_dir = ckpt.run_dir
    if out is not None and Path(out).resolve() != run_dir.resolve():
        raise UsageError(f"--out {out} is not the directory of the run being resumed ({run_dir}); a resumed run "
                         f"goes on in its own — to branch it, fine-tune from it: --init-from "
                         f"{rundir.quote(run_dir)} --out {rundir.quote(out)}")
    notes: list[Note] = []
    if ckpt.path.name == rundir.BEST and Path(path).is_dir():
        notes.append(Note(f"{run_dir} has no {rundir.LAST}; resuming from {rundir.BEST}, saved at step "
                          f"{ckpt.step:,} (the steps after it are trained again)", False))
    if encoding is not None and encoding != ckpt.corpus.encoding:
        _refuse("encoding", encoding, ckpt.corpus.encoding, run_dir)
    ocfg, tcfg, changed = _resumed_configs(ckpt, given)
    check_engine(tcfg.engine, dataclasses.asdict(ckpt.model))
    notes += changed
    old = ckpt.corpus.source
    if not paths:
        gone = [p for p in old.inputs if not Path(p).exists()]
        if gone:
            raise CharlmError(f"the run's corpus {gone[0]} is gone; if it moved, pass it: "
                              f"charlm train NEW_PATH --resume {rundir.quote(path)}")
    if paths and glob is None and any(Path(p).is_dir() for p in paths):
        glob = old.glob  # a folder given again is searched with the run's --glob
    source = files.expand(paths or list(old.inputs), glob if paths else old.glob, ckpt.corpus.encoding)
    notes += _skipped(source)
    moved = files.changes(old, source) if not (old.single and source.single) else None
    if moved:
        raise CharlmError(f"the run's set of files changed since the checkpoint: {moved}; resuming would not "
                          "continue the same run")
    data = corpus_mod.reopen(ckpt.corpus, run_dir, ckpt.vocab, "resuming would not continue the same run", source,
                             lambda text: notes.append(Note(text, False)))
    state_batch = ckpt.carried_state["h"].shape[1]
    if state_batch != tcfg.batch_size:
        raise CharlmError(f"{ckpt.path} carries state for batch {state_batch}, not its configuration's "
                          f"{tcfg.batch_size} (damaged checkpoint?)")
    return decide(data, run_dir, ckpt.model, ocfg, tcfg, checkpoint=ckpt, threads_n=threads_n, device=device,
                  notes=notes)


def _resumed_configs(ckpt: Checkpoint, given: dict) -> tuple[OptimConfig, TrainConfig, list[Note]]:
    """The checkpoint's optimizer and training configs with the options given applied: those in
    RESUMABLE and the engine, each with a note when it changes something; any other option
    must equal the run's own value."""
    was = {**dataclasses.asdict(ckpt.model), **dataclasses.asdict(ckpt.train),
           **{("optimizer" if k == "name" else k): v for k, v in dataclasses.asdict(ckpt.optim).items()}}
    changes, notes = {}, []
    for key in OPTIONS:
        if key not in given or given[key] == was[key]:
            continue
        if key in RESUMABLE or key == "engine":
            changes[key] = given[key]
            what = ("the numbers are the same, but for dropout masks, which each engine draws its own way"
                    if key == "engine" else "as you asked")
            notes.append(Note(f"resuming with --{_flag(key)} {_shown(given[key])}, where the run had "
                              f"{_shown(was[key])} ({what})", False))
        else:
            _refuse(key, given[key], was[key], ckpt.run_dir, architecture=key in ARCH)
    return ckpt.optim, dataclasses.replace(ckpt.train, **changes), notes


def _refuse(key: str, value, was, run_dir: Path, architecture: bool = False) -> None:
    flag = f"--{_flag(key)} {_shown(value)}"
    new_run = (f"train a new run with {flag}" if architecture else
               f"start a new run from this one's weights: charlm train CORPUS --init-from {rundir.quote(run_dir)} "
               f"{flag}")
    raise UsageError(f"{flag} differs from this run's {_shown(was)}: a resume continues the run exactly as it "
                     f"was saved (only {', '.join('--' + _flag(k) for k in RESUMABLE)} and --engine may change); "
                     f"to use {flag}, {new_run}")


def _flag(key: str) -> str:
    return key.replace("_", "-")


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _skipped(source: Source) -> list[Note]:
    """What reading a folder left out (charlm's own runs, files that are not text), as a note."""
    return [Note(source.skipped, False)] if source.skipped else []


def _fit(tcfg: TrainConfig, data: Corpus) -> tuple[TrainConfig, list[Note]]:
    """The batch that fits the training text, the validation cadence and the worker processes,
    where the config leaves them open; with notes on what was decided."""
    n_train = corpus_mod.train_length(len(data.ids), tcfg.val_fraction)
    batch = batches.fit_batch(n_train, tcfg.batch_size, tcfg.seq_len)
    notes = []
    if batch != tcfg.batch_size:
        notes.append(Note(f"the training text ({n_train:,} chars) is too short for --batch-size {tcfg.batch_size} "
                          f"at --seq-len {tcfg.seq_len}; using --batch-size {batch}", False))
    every = tcfg.eval_every
    if every is None:
        every = eval_every(n_train, batch, tcfg.seq_len) if tcfg.val_fraction > 0 else defaults.EVAL_EVERY
        if every != defaults.EVAL_EVERY:
            notes.append(Note(f"validating every {every} steps, not every {defaults.EVAL_EVERY}: an epoch is that "
                              "short"))
    workers = tcfg.workers
    if tcfg.engine == "numpy":  # the torch engine's processes are torchrun's
        workers = threads.workers(workers or None, batch)
        if tcfg.workers and workers < tcfg.workers:
            notes.append(Note(f"--workers {tcfg.workers} is more than the {batch:,} lanes of a batch; using "
                              f"{workers:,}, one lane each", False))
        cores = threads.usable_cores()
        if workers > cores:
            notes.append(Note(f"{workers} worker processes on {cores} usable core{'s' * (cores > 1)}: they take turns, "
                              f"so each step waits for the slowest; --workers {cores} (or fewer) is faster", False))
    steps, epochs, seconds = tcfg.max_steps, tcfg.epochs, tcfg.time_budget
    if not tcfg.budget_given:
        windows = batches.windows_per_epoch(n_train, batch, tcfg.seq_len)
        steps, epochs, seconds = defaults.budgets(None, None, None, windows)
        stop = (f"until validation stops improving (--patience {tcfg.patience}), " if tcfg.patience
                else "")
        notes.append(Note(f"no budget given: training {stop}at most {epochs:g} epochs ({epochs * windows:,.0f} "
                          "steps), the schedule decaying over them; --time-budget, --max-steps or --epochs set one"))
    return dataclasses.replace(tcfg, batch_size=batch, eval_every=every, workers=workers, max_steps=steps,
                               epochs=epochs, time_budget=seconds), notes


def eval_every(n_train: int, batch: int, seq_len: int, every: int = defaults.EVAL_EVERY) -> int:
    """Steps between validations: `every`, or one epoch if that is shorter, but not under
    MIN_EVAL_EVERY steps (or `every`, if less) however short an epoch is."""
    return min(every, max(batches.windows_per_epoch(n_train, batch, seq_len), defaults.MIN_EVAL_EVERY))


def decide(data: Corpus, run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, *,
           checkpoint: Checkpoint | None = None, init: init_from.Start | None = None, threads_n: int | None = None,
           device: str = "auto", notes: list[Note] | tuple = ()) -> Plan:
    """The plan: `tcfg` with the batch, cadence and workers settled (a resumed config keeps its
    own), the BLAS threads, and the checks that the validation split and memory allow the run."""
    tcfg, fit_notes = _fit(tcfg, data)
    notes = [*notes, *fit_notes]
    plan = Plan(data, run_dir, mcfg, ocfg, tcfg, checkpoint, init, threads.blas_threads(threads_n), device,
                tuple(notes))
    if plan.val_chars < 2 and tcfg.val_fraction > 0:
        raise UsageError(f"the validation split has {plan.val_chars:,} character(s); use a larger --val-fraction or "
                         "more text (or --val-fraction 0 for no validation)")
    check_memory(mcfg, ocfg, tcfg)
    kept = keep.check(run_dir, mcfg, ocfg, tcfg, plan.windows, checkpoint.step if checkpoint else 0)
    return dataclasses.replace(plan, notes=(*plan.notes, Note(kept))) if kept else plan


def _speed_probe(data: Corpus, model_kw: dict, tcfg: TrainConfig, threads_n: int | None, device: str):
    """steps_per_second(tier's model keywords) for defaults.choose: the candidate with the options
    given applied, timed on this corpus with the run's batch, window, workers and engine."""
    train_ids = data.split(tcfg.val_fraction)[0]
    measured: dict = {}

    def steps_per_second(tier_kw: dict) -> float:
        kw = {**tier_kw, **model_kw}
        key = tuple(sorted(kw.items()))
        if key not in measured:
            cfg = ModelConfig(vocab_size=len(data.vocab), **kw)
            check_memory(cfg, OptimConfig(), tcfg)
            measured[key] = speed.steps_per_second(cfg, train_ids, tcfg.batch_size, tcfg.seq_len, engine=tcfg.engine,
                                                   workers=tcfg.workers, threads_n=threads.blas_threads(threads_n),
                                                   device=device)
        return measured[key]
    return steps_per_second


def check_memory(mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig) -> None:
    """Refuse, before anything is allocated, a configuration the machine cannot hold."""
    need = memory.training_bytes(mcfg, tcfg.batch_size, tcfg.seq_len, ocfg.name, bool(ocfg.ema))
    have = memory.available_bytes()
    if have is not None and need > have:
        raise CharlmError(f"{mcfg.describe()} with batch {tcfg.batch_size} × seq {tcfg.seq_len} needs about "
                          f"{memory.human(need)} of memory to train (weights, {ocfg.name} moments, activations) "
                          f"and this machine has {memory.human(have)} available; use a smaller --hidden, "
                          "--layers, --batch-size or --seq-len")
