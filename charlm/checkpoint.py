"""Checkpoints: the one owner of their format. Pickled plain data, written atomically,
loaded by a restricted unpickler, validated, and read back as a typed `Checkpoint`.

On disk a checkpoint is a dict of builtins and numpy arrays only — no pickled classes —
holding "format" ("charlm-checkpoint"), "version", and the stored fields of `Checkpoint`
below: that dataclass is the one list of what a checkpoint holds, each field naming its
key in the file, its stored type, and whether a resume needs it. `payload(...)` builds
the dict (the one writer), `load(...)` checks it and returns a `Checkpoint` (the one
reader): nothing else in charlm reads a checkpoint's keys.

Version 2 dropped "rng", the generator state after initialisation, which nothing read:
dropout masks come from (seed, step, rank). Version-1 files still load and resume.

A checkpoint kept along the way (`weights_only`) leaves out the optimizer's moments and the
carried state: it has everything but what only a resume needs.

Saving writes a temporary file beside the target, fsyncs it and renames it into place,
so a crash or `kill -9` at any instant leaves the previous file intact. Loading admits
only the four globals numpy needs to rebuild an array (`_reconstruct`, `_frombuffer`,
`ndarray` and `dtype`, under numpy's old and new module names): a crafted pickle that
names anything else (os.system, builtins.eval, …) is refused before anything runs.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from charlm import __version__, rundir
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data.files import CorpusRecord
from charlm.data.vocab import Vocab
from charlm.errors import CharlmError
from charlm.fileio import atomic_write
from charlm.nn import model

FORMAT = "charlm-checkpoint"
VERSION = 2
PROTOCOL = 4  # arrays pickle through _reconstruct/ndarray/dtype only

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


def _stored(key: str, kind: type, *, need: str = "resume", write: Callable = lambda v: v,
            read: Callable = lambda v: v, empty: Callable[[], object] = lambda: None):
    """A field that the file stores under `key`, as a `kind`. need: "always" (every checkpoint has it),
    "resume" (a resume needs it) or "optional" (written only when set). write/read convert between
    the typed value and the stored one; empty() is the value when the file has none."""
    return field(default_factory=empty, metadata={"key": key, "kind": kind, "need": need, "write": write, "read": read})


def _config(cls, defaults: dict | None = None) -> Callable[[dict], object]:
    return lambda d: build_config(cls, {**(defaults or {}), **d})


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A loaded, validated checkpoint: the one list of what a checkpoint holds. The model fields
    are always there; the training fields are None in a file written without them."""
    path: Path                      # the file it was read from (not stored)
    version: int = VERSION          # format version (stored as "version")
    saved_by: str | None = _stored("charlm_version", str, need="optional")   # the charlm that wrote it
    model: ModelConfig = _stored("model_config", dict, need="always", write=dataclasses.asdict,
                                 read=_config(ModelConfig))
    vocab: Vocab = _stored("vocab", dict, need="always", write=Vocab.to_dict, read=Vocab.from_dict)
    params: dict = _stored("params", dict, need="always")               # {name: array}, as model.param_shapes
    optim: OptimConfig | None = _stored("optim_config", dict, write=dataclasses.asdict, read=_config(OptimConfig))
    # a run saved before --patience existed had none: it resumes without one
    train: TrainConfig | None = _stored("train_config", dict, write=dataclasses.asdict,
                                        read=_config(TrainConfig, {"patience": 0}))
    optimizer: dict | None = _stored("optimizer", dict)                 # {"step": int, "slots": {slot: {name: array}}}
    progress: Progress | None = _stored("progress", dict, write=dataclasses.asdict,
                                        read=lambda d: Progress(**{k: d[k] for k in Progress.__dataclass_fields__}))
    carried_state: dict | None = _stored("carried_state", dict)         # {"h": (L, B, H)} (+ "c" for LSTM)
    best_val_loss: float | None = _stored("best_val_loss", object,
                                          read=lambda v: float(v) if isinstance(v, (int, float)) else None)
    history: list = _stored("history", list, read=list, empty=list)     # [{step, seconds, train_loss, val_loss}]
    corpus: CorpusRecord | None = _stored("corpus", dict, write=CorpusRecord.to_dict, read=CorpusRecord.from_dict)
    init_from: dict | None = _stored("init_from", dict, need="optional")  # fine-tuned: where its weights came from

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


STORED = {f.metadata["key"]: f for f in dataclasses.fields(Checkpoint) if "key" in f.metadata}
REQUIRED = tuple(k for k, f in STORED.items() if f.metadata["need"] == "always")
TRAINING = tuple(k for k, f in STORED.items() if f.metadata["need"] == "resume")   # what a resume needs


def payload(**values) -> dict:
    """The one writer of the layout: `Checkpoint`'s fields (all of them but path, version and
    saved_by; an optional one may be None) → the stored dict."""
    names = {f.name for f in STORED.values()} - {"saved_by"}
    if set(values) != names:
        raise TypeError(f"a checkpoint needs exactly {sorted(names)}; got {sorted(values)}")
    out = {"charlm_version": __version__}
    for key, f in STORED.items():
        value = values.get(f.name)
        if f.name != "saved_by" and not (value is None and f.metadata["need"] == "optional"):
            out[key] = value if value is None else f.metadata["write"](value)
    return out


WEIGHTS_ONLY_DROPS = ("optimizer", "carried_state")  # what a kept checkpoint leaves out: resume's heavy part


def weights_only(payload: dict) -> dict:
    """A payload without the optimizer's moments and the carried state: a checkpoint kept along the
    way (charlm/training/keep.py), which sample, eval, info, report and --init-from read, and which
    `load(training=True)` refuses to resume."""
    return {k: v for k, v in payload.items() if k not in WEIGHTS_ONLY_DROPS}


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


def resolve(path: str | Path, prefer: str = rundir.BEST) -> Path:
    """A checkpoint file, or a run directory (its `prefer`, else the other one)."""
    path = Path(path)
    if path.is_dir():
        for name in (prefer, rundir.LAST, rundir.BEST):
            if (path / name).is_file():
                return path / name
        raise CharlmError(f"no checkpoint in {path} (expected {rundir.BEST} or {rundir.LAST})")
    if not path.exists():
        raise CharlmError(f"checkpoint not found: {path}")
    return path


def load(path: str | Path, prefer: str = rundir.BEST, training: bool = False) -> Checkpoint:
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
    """The validated dict as a Checkpoint (fields it does not have are None)."""
    values = {}
    for key, f in STORED.items():
        if key in data:
            try:
                values[f.name] = f.metadata["read"](data[key])
            except (TypeError, KeyError, ValueError, CharlmError) as e:
                raise CharlmError(f"{path} has an invalid {key}: {e}") from None
    return Checkpoint(path=path, version=data["version"], **values)


# Fields added since format 1, as a checkpoint saved before them reads them: off, so that such a
# run resumes, and its model loads, exactly as it ran, whatever today's default.
BEFORE = {ModelConfig: {"locked_dropout": False, "weight_drop": 0.0, "embed_dropout": 0.0},
          OptimConfig: {"weight_decay": 0.0, "ema": 0.0}}


def build_config(cls, d: dict | None):
    """A frozen config dataclass from its stored dict (unknown keys ignored, so
    older checkpoints keep loading after a field is added; missing BEFORE fields are off)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in {**BEFORE.get(cls, {}), **(d or {})}.items() if k in names})




def validate(ckpt: dict, where: str) -> None:
    """The one structural check every load path runs (sample, eval, info, export, report,
    resume): each field present has the type, keys and array shapes the model needs."""
    def bad(what: str) -> CharlmError:
        return CharlmError(f"{where}: {what} (damaged checkpoint?)")

    for key, f in STORED.items():
        kind = f.metadata["kind"]
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
        raise CharlmError(f"{where}: vocabulary of {len(vocab):,} characters but a model for {cfg.vocab_size:,}")
    return cfg, vocab


def load_model(path: str | Path, prefer: str = rundir.BEST) -> tuple[Checkpoint, ModelConfig, dict, Vocab]:
    """(checkpoint, model config, verified params, vocab) from a checkpoint or run directory."""
    ckpt = load(path, prefer)
    return ckpt, ckpt.model, ckpt.params, ckpt.vocab
