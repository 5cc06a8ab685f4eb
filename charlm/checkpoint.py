"""Checkpoints: the one owner of their layout. Pickled plain data, written atomically,
loaded by a restricted unpickler, validated, and read back as a typed `Checkpoint`.

On disk a checkpoint is a dict of builtins and numpy arrays only — no pickled classes:

    format "charlm-checkpoint", version, charlm_version,
    model_config, train_config, optim_config      (dataclasses as dicts)
    vocab {"chars", "counts"}, params {name: array}, optimizer {"step", "slots"}
    progress {"step", "epoch", "window", "chars", "elapsed"}, carried_state {"h", "c"},
    rng (numpy bit-generator state), best_val_loss, history [...],
    corpus {"path", "encoding", "fingerprint"} (several files: also "files", "inputs", "glob"),
    init_from {"path", "sha256", "step", "corpus", "added_chars", "init_from"} (fine-tuned runs only)

`payload(...)` builds that dict (the one writer), `load(...)` checks it and returns
a `Checkpoint` (the one reader): nothing else in charlm reads a checkpoint's keys.

Saving writes a temporary file beside the target, fsyncs it and renames it into
place, so a crash or `kill -9` at any instant leaves the previous file intact.
Loading refuses every global except the three numpy needs to rebuild an array:
a crafted pickle that names anything else (os.system, builtins.eval, …) is
rejected before anything runs.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm import __version__
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data.vocab import Vocab
from charlm.errors import CharlmError
from charlm.fileio import atomic_write
from charlm.nn import model

FORMAT = "charlm-checkpoint"
VERSION = 1
PROTOCOL = 4  # arrays pickle through _reconstruct/ndarray/dtype only
REQUIRED = ("model_config", "vocab", "params")

_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


@dataclass(frozen=True)
class Progress:
    """How far a run had got when it was saved."""
    step: int
    epoch: int
    window: int                     # windows done in the current epoch
    chars: int                      # training characters seen
    elapsed: float                  # seconds of training (validation excluded)


@dataclass(frozen=True)
class CorpusRecord:
    """Which text a run trained on: where it was, how it was decoded, its fingerprint; for a
    corpus of several files, which files, from which inputs (charlm/data/files.py)."""
    path: str
    encoding: str
    fingerprint: dict               # {"sha256", "bytes", …} (charlm/data/corpus.py)
    files: tuple | None = None      # the files read, in order (several files only)
    inputs: tuple | None = None     # the paths given (files and folders)
    glob: str | None = None         # the pattern folders were searched with

    def to_dict(self) -> dict:
        """As stored (Corpus.record()): the several-file fields only when there are several."""
        d = {"path": self.path, "encoding": self.encoding, "fingerprint": self.fingerprint}
        if self.files is not None:
            d |= {"files": list(self.files), "inputs": list(self.inputs or ()), "glob": self.glob}
        return d


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint. The model fields are always there; the training
    fields are None in a file written without them (a resume needs them all)."""
    path: Path                      # the file it was read from
    version: int                    # format version
    saved_by: str | None            # the charlm version that wrote it
    model: ModelConfig
    vocab: Vocab
    params: dict                    # {name: array}, the shapes model.param_shapes gives
    optim: OptimConfig | None = None
    train: TrainConfig | None = None
    optimizer: dict | None = None   # {"step": int, "slots": {slot: {name: array}}}
    progress: Progress | None = None
    carried_state: dict | None = None   # {"h": (L, B, H)} (+ "c" for LSTM)
    rng: dict | None = None         # the generator state after initialisation
    best_val_loss: float | None = None
    history: list = dataclasses.field(default_factory=list)   # [{step, seconds, train_loss, val_loss}]
    corpus: CorpusRecord | None = None
    init_from: dict | None = None   # a fine-tuned run: the checkpoint its weights came from

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def step(self) -> int | None:
        return self.progress.step if self.progress else None

    @property
    def encoding(self) -> str:
        """How the run's corpus was decoded: the default for text scored under this model."""
        return self.corpus.encoding if self.corpus else "utf-8"


def payload(mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig, vocab: Vocab, params: dict,
            optimizer: dict, progress: dict, carried_state: dict, rng: dict, best_val_loss: float | None,
            history: list, corpus: dict, init_from: dict | None = None) -> dict:
    """The one writer of the layout: everything that defines a run at an instant, as plain data.
    corpus: Corpus.record(); init_from: a fine-tuned run's origin (charlm/training/init_from.py)."""
    return {
        "charlm_version": __version__,
        "model_config": dataclasses.asdict(mcfg),
        "train_config": dataclasses.asdict(tcfg),
        "optim_config": dataclasses.asdict(ocfg),
        "vocab": vocab.to_dict(),
        "params": params,
        "optimizer": optimizer,
        "progress": dict(progress),
        "carried_state": carried_state,
        "rng": rng,
        "best_val_loss": best_val_loss,
        "history": history,
        "corpus": corpus,
        **({"init_from": init_from} if init_from else {}),
    }


class _Refused(Exception):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def save(path: str | Path, payload: dict) -> None:
    """Write `payload` (plus format marker and version) atomically to `path`."""
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, **payload}
    try:
        atomic_write(path, lambda f: pickle.dump(data, f, protocol=PROTOCOL))
    except OSError as e:
        previous = " (the previous checkpoint there is intact)" if path.exists() else ""
        raise CharlmError(f"could not save checkpoint {path}: {e.strerror or e}{previous}") from None


def resolve(path: str | Path, prefer: str = "best.pkl") -> Path:
    """A checkpoint file, or a run directory (its `prefer`, else the other one)."""
    path = Path(path)
    if path.is_dir():
        for name in (prefer, "last.pkl", "best.pkl"):
            if (path / name).is_file():
                return path / name
        raise CharlmError(f"no checkpoint in {path} (expected best.pkl or last.pkl)")
    if not path.exists():
        raise CharlmError(f"checkpoint not found: {path}")
    return path


def load(path: str | Path, prefer: str = "best.pkl", training: bool = False) -> Checkpoint:
    """Load and validate a checkpoint; every failure is a one-line CharlmError.
    training=True also requires everything a resume needs (optimizer, progress, …)."""
    path = resolve(path, prefer)
    data = _unpickle(path)
    missing = [k for k in REQUIRED + (TRAINING if training else ()) if k not in data]
    if missing:
        what = "cannot be resumed" if training and not set(missing) & set(REQUIRED) else "is incomplete"
        raise CharlmError(f"{path} {what}: the checkpoint has no {', '.join(missing)}")
    validate(data, str(path))
    return _typed(data, path)


def _unpickle(path: Path) -> dict:
    """The stored dict, with its format marker and version checked."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CharlmError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    try:
        data = _RestrictedUnpickler(io.BytesIO(raw)).load()
    except _Refused as e:
        raise CharlmError(f"refused to load {path}: it asks to run {e}, and charlm checkpoints hold only "
                          "numpy arrays and plain data (nothing was executed)") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError, ImportError) as e:
        kind = "truncated" if isinstance(e, EOFError) or "truncated" in str(e) else "corrupted or not a pickle"
        raise CharlmError(f"{path} is not a readable charlm checkpoint ({kind})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CharlmError(f"{path} is a pickle but not a charlm checkpoint (no charlm format marker)")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise CharlmError(f"{path} has an invalid checkpoint format version {version!r} (damaged checkpoint?)")
    if version > VERSION:
        raise CharlmError(f"{path} has checkpoint format version {version}, newer than this charlm "
                          f"reads ({VERSION}); upgrade charlm to load it")
    return data


def _typed(data: dict, path: Path) -> Checkpoint:
    """The validated dict as a Checkpoint."""
    cfg, vocab = _model_and_vocab(data, str(path))
    try:
        optim_cfg = build_config(OptimConfig, data["optim_config"]) if "optim_config" in data else None
        # a run saved before --patience existed had none: it resumes without one
        train_cfg = build_config(TrainConfig, {"patience": 0, **data["train_config"]}) if "train_config" in data \
            else None
        corpus = data.get("corpus")
        corpus = corpus and CorpusRecord(
            str(corpus["path"]), corpus.get("encoding") or "utf-8", dict(corpus.get("fingerprint") or {}),
            *((tuple(corpus["files"]), tuple(corpus["inputs"]), corpus.get("glob")) if "files" in corpus else ()))
    except (TypeError, KeyError, ValueError, CharlmError) as e:
        raise CharlmError(f"{path} has an invalid configuration: {e}") from None
    progress = data.get("progress")
    best = data.get("best_val_loss")
    return Checkpoint(
        path=path, version=data["version"], saved_by=data.get("charlm_version"), model=cfg, vocab=vocab,
        params=data["params"], optim=optim_cfg, train=train_cfg, optimizer=data.get("optimizer"),
        progress=Progress(**{k: progress[k] for k in ("step", "epoch", "window", "chars", "elapsed")})
        if progress else None,
        carried_state=data.get("carried_state"), rng=data.get("rng"),
        best_val_loss=float(best) if isinstance(best, (int, float)) else None,
        history=list(data.get("history") or []), corpus=corpus, init_from=data.get("init_from"))


# Fields added since format 1, as a checkpoint saved before them reads them: off, so that such a
# run resumes, and its model loads, exactly as it ran, whatever today's default.
BEFORE = {ModelConfig: {"locked_dropout": False, "weight_drop": 0.0, "embed_dropout": 0.0},
          OptimConfig: {"weight_decay": 0.0, "ema": 0.0}}


def build_config(cls, d: dict | None):
    """A frozen config dataclass from its stored dict (unknown keys ignored, so
    older checkpoints keep loading after a field is added; missing BEFORE fields are off)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in {**BEFORE.get(cls, {}), **(d or {})}.items() if k in names})


TRAINING = ("optimizer", "progress", "carried_state", "rng", "best_val_loss", "history", "corpus",
            "train_config", "optim_config")
_KINDS = {"model_config": dict, "vocab": dict, "params": dict, "train_config": dict, "optim_config": dict,
          "optimizer": dict, "progress": dict, "carried_state": dict, "rng": dict, "history": list,
          "corpus": dict, "init_from": dict}


def validate(ckpt: dict, where: str) -> None:
    """The one structural check every load path runs (sample, eval, info, export, report,
    resume): each field present has the type, keys and array shapes the model needs."""
    def bad(what: str) -> CharlmError:
        return CharlmError(f"{where}: {what} (damaged checkpoint?)")

    for key, kind in _KINDS.items():
        if key in ckpt and not isinstance(ckpt[key], kind):
            raise bad(f"field {key!r} should be a {kind.__name__}, not {type(ckpt[key]).__name__}")
    cfg, _ = _model_and_vocab(ckpt, where)
    expected = model.param_shapes(cfg)
    params = ckpt["params"]
    _check_arrays(params, expected, "parameter", bad)
    for name in expected:
        if not np.isfinite(params[name]).all():
            raise bad(f"parameter {name} holds NaN or infinite values")
    if "optimizer" in ckpt:
        opt = ckpt["optimizer"]
        if not (_count(opt.get("step")) and isinstance(opt.get("slots"), dict)):
            raise bad("the optimizer state should be {'step': int ≥ 0, 'slots': {slot: {name: array}}}")
        for slot, arrays in opt["slots"].items():
            _check_arrays(arrays, expected, f"optimizer slot {slot!r}:", bad)
        if (ckpt.get("optim_config") or {}).get("ema") and "ema" not in opt["slots"]:
            raise bad("the run averages its weights (ema) but the optimizer state has no average")
    if "progress" in ckpt:
        prog = ckpt["progress"]
        if not (all(_count(prog.get(k)) for k in ("step", "epoch", "window", "chars"))
                and isinstance(prog.get("elapsed"), (int, float))):
            raise bad("progress should hold whole numbers step, epoch, window, chars and seconds elapsed")
    if "carried_state" in ckpt:
        state = ckpt["carried_state"]
        h = state.get("h")
        names = {"h", "c"} if cfg.cell == "lstm" else {"h"}
        if not (isinstance(h, np.ndarray) and h.ndim == 3):
            raise bad("the carried state should hold h, an array (layers, batch, hidden)")
        shape = (cfg.layers, h.shape[1], cfg.hidden)
        _check_arrays(state, {n: shape for n in names}, "carried state", bad)
    best = ckpt.get("best_val_loss")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise bad(f"best_val_loss should be a number or None, not {type(best).__name__}")
    for key in ("train_config", "optim_config"):
        if key in ckpt and not all(isinstance(k, str) for k in ckpt[key]):
            raise bad(f"{key} should map option names to values")


def _count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_arrays(arrays: dict, expected: dict, what: str, bad) -> None:
    if set(arrays) != set(expected):
        gone, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        raise bad(f"{what} names do not match the model: " +
                  "; ".join(x for x in (f"missing {', '.join(gone)}" if gone else "",
                                         f"unexpected {', '.join(map(str, extra))}" if extra else "") if x))
    for name, shape in expected.items():
        a = arrays[name]
        if not isinstance(a, np.ndarray) or a.shape != tuple(shape) or a.dtype.kind != "f":
            got = f"shape {a.shape} {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise bad(f"{what} {name} should be a float array of shape {tuple(shape)}, not {got}")


def _model_and_vocab(ckpt: dict, where: str) -> tuple[ModelConfig, Vocab]:
    vocab_d = ckpt["vocab"]
    if not (isinstance(vocab_d.get("chars"), str) and isinstance(vocab_d.get("counts"), list)
            and len(vocab_d["chars"]) == len(vocab_d["counts"]) == len(set(vocab_d["chars"]))):
        raise CharlmError(f"{where}: the vocabulary is malformed (damaged checkpoint?)")
    try:
        cfg = build_config(ModelConfig, ckpt["model_config"])
        vocab = Vocab.from_dict(vocab_d)
    except (TypeError, KeyError, ValueError, CharlmError) as e:
        raise CharlmError(f"{where} has an invalid model configuration: {e}") from None
    if len(vocab) != cfg.vocab_size:
        raise CharlmError(f"{where}: vocabulary of {len(vocab)} characters but a model for {cfg.vocab_size}")
    return cfg, vocab


def load_model(path: str | Path, prefer: str = "best.pkl") -> tuple[Checkpoint, ModelConfig, dict, Vocab]:
    """(checkpoint, model config, verified params, vocab) from a checkpoint or run directory."""
    ckpt = load(path, prefer)
    return ckpt, ckpt.model, ckpt.params, ckpt.vocab
