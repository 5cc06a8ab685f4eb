"""Starting and resuming a training run: the options given → checked configs, before any training.

The library side of `charlm train`. `start` merges the options given with the
defaults (charlm/defaults.py, through the config dataclasses; the tier is chosen
here, by measured speed); `resume` checks a checkpoint
and its corpus and applies the options that may change; `fine_tune` starts a new
run from a trained model's weights (charlm/training/init_from.py). All refuse a configuration
the machine cannot hold, and return a `Plan` for `train.run`. What the user should
hear goes through two callbacks: `note` (what was chosen and why; the CLI mutes it
under --quiet) and `warn` (always shown). Nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from charlm import checkpoint, defaults
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig, numpy_only
from charlm.data import batches, files
from charlm.data import corpus as corpus_mod
from charlm.data.corpus import Corpus
from charlm.data.files import Source
from charlm.errors import CharlmError, UsageError
from charlm.training import init_from, memory, speed

ARCH = ("cell", "layers", "hidden", "embedding_dim", "dropout", "tie_weights", "locked_dropout", "weight_drop",
        "embed_dropout")
OPTIM = ("optimizer", "lr", "clip", "schedule", "warmup_steps", "weight_decay", "ema")
TRAIN = ("seq_len", "batch_size", "max_steps", "epochs", "time_budget", "val_fraction", "eval_every",
         "val_max_chars", "seed", "workers", "sample_every", "engine", "patience")
RUNS = Path("runs")  # where a run goes when no directory is named: runs/<corpus name>


@dataclass(frozen=True)
class Plan:
    """Everything `train.run` needs, checked."""
    data: Corpus
    run_dir: Path
    mcfg: ModelConfig
    ocfg: OptimConfig
    tcfg: TrainConfig
    checkpoint: Checkpoint | None           # what a resume continues; None for a new run
    init: init_from.Start | None = None     # the weights a fine-tuning run starts from


def _split(given: dict) -> tuple[dict, dict, dict]:
    """The options given (option name → value) as model, optimizer and training keywords."""
    optim_kw = {("name" if k == "optimizer" else k): given[k] for k in OPTIM if k in given}
    return ({k: given[k] for k in ARCH if k in given}, optim_kw, {k: given[k] for k in TRAIN if k in given})


def start(source: Source, run_dir: Path, given: dict, encoding: str, threads_n: int | None,
          note: Callable[[str], None], warn: Callable[[str], None]) -> Plan:
    """A new run on `source` into `run_dir` (see new_run_dir)."""
    model_kw, optim_kw, train_kw = _split(given)
    _check_engine(train_kw.get("engine"), model_kw)
    data = corpus_mod.load(source, run_dir, encoding, warn)
    budget = train_kw.get("time_budget", 0.0)
    if budget:
        note("timing a few training steps to choose the model for this machine …")
    d_model, why = defaults.choose(budget, _speed_probe(data, given, model_kw, train_kw, threads_n))
    if why:
        note(why)
    mcfg = ModelConfig(vocab_size=len(data.vocab), **{**d_model, **model_kw})
    ocfg, tcfg = OptimConfig(**optim_kw), TrainConfig(**train_kw)
    check_memory(mcfg, ocfg, tcfg)
    return Plan(data, run_dir, mcfg, ocfg, tcfg, None)


def fine_tune(source: Source, run_dir: Path, init: Path, extend: bool, given: dict, encoding: str,
              note: Callable[[str], None], warn: Callable[[str], None]) -> Plan:
    """A new run on `source` that starts from the weights of the checkpoint (or run) `init`.
    The architecture is the checkpoint's; the optimizer, schedule, budgets and the rest take
    the same defaults as a new run's (nothing is timed: there is no model to choose)."""
    model_kw, optim_kw, train_kw = _split(given)
    ckpt = checkpoint.load(init, prefer="best.pkl")
    mcfg = ckpt.model
    _keep_architecture(mcfg, model_kw, "be given with --init-from")
    data = corpus_mod.load(source, run_dir, encoding, warn, ckpt.vocab, extend)
    ocfg, tcfg = OptimConfig(**optim_kw), TrainConfig(**train_kw)
    _check_engine(tcfg.engine, dataclasses.asdict(mcfg))
    begin = init_from.start(ckpt, data.vocab, tcfg.seed)
    if begin.record["added_chars"]:
        added = begin.record["added_chars"]
        note(f"added {len(added)} character(s) the model never saw to its vocabulary, with freshly initialised "
             f"input and output rows: {' '.join(repr(ch) for ch in added)}")
    check_memory(begin.mcfg, ocfg, tcfg)
    return Plan(data, run_dir, begin.mcfg, ocfg, tcfg, None, begin)


def resume(path: Path, paths: list[Path], glob: str | None, given: dict, encoding: str,
           warn: Callable[[str], None]) -> Plan:
    """Continue the run at `path` (a run directory or checkpoint) exactly; the options
    given may change budgets and the like, never the architecture. `paths` (and `glob`):
    the corpus, when it moved; by default the files the run recorded."""
    model_kw, optim_kw, train_kw = _split(given)
    ckpt = checkpoint.load(path, prefer="last.pkl", training=True)
    run_dir = ckpt.run_dir
    if ckpt.path.name == "best.pkl" and Path(path).is_dir():
        warn(f"{run_dir} has no last.pkl; resuming from best.pkl, saved at step {ckpt.step} "
             "(the steps after it are trained again)")
    mcfg = ckpt.model
    _keep_architecture(mcfg, model_kw, "change when resuming")
    ocfg, tcfg = dataclasses.replace(ckpt.optim, **optim_kw), dataclasses.replace(ckpt.train, **train_kw)
    _check_engine(tcfg.engine, dataclasses.asdict(mcfg))
    if bool(ocfg.ema) != bool(ckpt.optim.ema):
        raise UsageError(f"--ema cannot be turned {'on' if ocfg.ema else 'off'} when resuming: the run "
                         f"{'has no' if ocfg.ema else 'keeps an'} average of its weights from its start")
    old = files.from_record(ckpt.corpus.to_dict())
    if not paths:
        gone = [p for p in old.inputs if not Path(p).exists()]
        if gone:
            raise CharlmError(f"the run's corpus {gone[0]} is gone; if it moved, pass it: "
                              f"charlm train NEW_PATH --resume {path}")
    if paths and glob is None and any(Path(p).is_dir() for p in paths):
        glob = old.glob  # a folder given again is searched with the run's --glob
    source = files.expand(paths or list(old.inputs), glob if paths else old.glob)
    moved = files.changes(old, source) if not (old.single and source.single) else None
    if moved:
        raise CharlmError(f"the run's set of files changed since the checkpoint: {moved}; resuming would not "
                          "continue the same run")
    data = corpus_mod.load(source, run_dir, ckpt.corpus.encoding, warn, ckpt.vocab, extend=True)
    if data.vocab.chars != ckpt.vocab.chars or \
            data.fingerprint.get("sha256") != ckpt.corpus.fingerprint.get("sha256"):
        own = ckpt.corpus.path
        why = ("it changed since the checkpoint" if data.path == own
               else f"it is a different file from the run's corpus {own}")
        raise CharlmError(f"{data.path} is not the text this run was trained on ({why}); "
                          "resuming would not continue the same run")
    check_memory(mcfg, ocfg, tcfg)
    return Plan(data, run_dir, mcfg, ocfg, tcfg, ckpt)


def _check_engine(engine: str | None, model_kw: dict) -> None:
    """Refuse, before anything is done, a numpy-only option (config.NUMPY_ONLY) on the torch engine."""
    flags = numpy_only(model_kw)
    if engine == "torch" and flags:
        raise UsageError(f"{flags[0]} is the numpy engine's (torch.nn's modules have no such dropout); train "
                         "with --engine numpy, or without it")


def _keep_architecture(mcfg: ModelConfig, model_kw: dict, cannot: str) -> None:
    """Refuse an architecture option that differs from the checkpoint's (the same value is fine)."""
    changed = [k for k, v in model_kw.items() if getattr(mcfg, k) != v]
    if changed:
        raise UsageError(f"--{changed[0].replace('_', '-')} cannot {cannot}: the architecture comes from the "
                         "checkpoint")


def _speed_probe(data: Corpus, given: dict, model_kw: dict, train_kw: dict, threads_n: int | None):
    """steps_per_second(tier's model keywords) for defaults.choose: the candidate with the
    options given applied, timed on this corpus with the run's batch, window and workers."""
    tcfg = TrainConfig(**train_kw)
    train_ids = data.split(tcfg.val_fraction)[0]
    batch = batches.fit_batch(len(train_ids), tcfg.batch_size, tcfg.seq_len)
    measured: dict = {}

    def steps_per_second(tier_kw: dict) -> float:
        kw = {**tier_kw, **model_kw}
        key = tuple(sorted(kw.items()))
        if key not in measured:
            cfg = ModelConfig(vocab_size=len(data.vocab), **kw)
            check_memory(cfg, OptimConfig(), dataclasses.replace(tcfg, batch_size=batch))
            if tcfg.engine == "torch":  # the engine that will train is the one to time
                measured[key] = speed.torch_steps_per_second(cfg, train_ids, batch, tcfg.seq_len,
                                                             given.get("device", "auto"))
            else:
                measured[key] = speed.steps_per_second(cfg, train_ids, batch, tcfg.seq_len, given.get("workers"),
                                                       threads_n)
        return measured[key]
    return steps_per_second


def fresh_run_dir(runs: Path, source: Source) -> Path:
    """runs/<corpus name>, or runs/<name>-2, -3 … if that already holds a run."""
    base = runs / source.name
    candidate, k = base, 1
    while holds_run(candidate):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "last.pkl").exists() or (run_dir / "best.pkl").exists()


@contextlib.contextmanager
def new_run_dir(out: Path | None, source: Source) -> Iterator[Path]:
    """The directory a new run writes to: `out`, or runs/<corpus name>(-2, -3 …). Refused when
    it already holds a run, checked writable, and removed again when the run ends (error,
    Ctrl-C) before any checkpoint is in it, so a failed start leaves no debris."""
    run_dir = Path(out) if out is not None else fresh_run_dir(RUNS, source)
    if holds_run(run_dir):
        raise UsageError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or pick another --out")
    created = not run_dir.exists()
    check_writable(run_dir)
    try:
        yield run_dir
    except BaseException:
        if created and not holds_run(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CharlmError(f"cannot write to the run directory {run_dir}: {e.strerror or e}") from None


def describe(mcfg: ModelConfig) -> str:
    """e.g. "gru 2×256, embedding 256 input, dropout 0.2"."""
    inp = f"embedding {mcfg.embedding_dim}" if mcfg.embedding_dim else "one-hot"
    extras = [f"{'locked ' if mcfg.locked_dropout else ''}dropout {mcfg.dropout:g}" if mcfg.dropout else "",
              f"weight drop {mcfg.weight_drop:g}" if mcfg.weight_drop else "",
              f"embedding dropout {mcfg.embed_dropout:g}" if mcfg.embed_dropout else "",
              "tied" if mcfg.tie_weights else ""]
    return f"{mcfg.cell} {mcfg.layers}×{mcfg.hidden}, {inp} input" + "".join(f", {e}" for e in extras if e)


def check_memory(mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig) -> None:
    """Refuse, before anything is allocated, a configuration the machine cannot hold."""
    need = memory.training_bytes(mcfg, tcfg.batch_size, tcfg.seq_len, ocfg.name, bool(ocfg.ema))
    have = memory.available_bytes()
    if have is not None and need > have:
        raise CharlmError(f"{describe(mcfg)} with batch {tcfg.batch_size} × seq {tcfg.seq_len} needs about "
                          f"{memory.human(need)} of memory to train (weights, {ocfg.name} moments, activations) "
                          f"and this machine has {memory.human(have)} available; use a smaller --hidden, "
                          "--layers, --batch-size or --seq-len")
