"""Checkpoints: pickled plain data, written atomically, loaded by a restricted unpickler.

A checkpoint is a dict of builtins and numpy arrays only — no pickled classes:

    format "charlm-checkpoint", version, charlm_version,
    model_config, train_config, optim_config      (dataclasses as dicts)
    vocab {"chars", "counts"}, params {name: array}, optimizer {"step", "slots"}
    progress {"step", "epoch", "window", "chars", "elapsed"}, carried_state {"h", "c"},
    rng (numpy bit-generator state), best_val_loss, history [...],
    corpus {"path", "encoding", "fingerprint"}

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
from pathlib import Path

import numpy as np

from charlm import model
from charlm.errors import CharlmError
from charlm.fileio import atomic_write
from charlm.model import ModelConfig
from charlm.vocab import Vocab

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


def load(path: str | Path, prefer: str = "best.pkl") -> dict:
    """Load and validate a checkpoint; every failure is a one-line CharlmError."""
    path = resolve(path, prefer)
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
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CharlmError(f"{path} is an incomplete charlm checkpoint (missing {', '.join(missing)})")
    data["path"] = str(path)
    return data


def build_config(cls, d: dict | None):
    """A frozen config dataclass from its stored dict (unknown keys ignored, so
    older checkpoints keep loading after a field is added)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (d or {}).items() if k in names})


def load_model(path: str | Path, prefer: str = "best.pkl") -> tuple[dict, ModelConfig, dict, Vocab]:
    """(checkpoint, model config, verified params, vocab) from a checkpoint or run directory."""
    ckpt = load(path, prefer)
    where = ckpt["path"]
    vocab_d = ckpt["vocab"]
    for key, kind in (("model_config", dict), ("vocab", dict), ("params", dict), ("progress", dict),
                      ("optimizer", dict), ("corpus", dict), ("history", list)):
        if key in ckpt and not isinstance(ckpt[key], kind):
            raise CharlmError(f"{where}: field {key!r} should be a {kind.__name__} (damaged checkpoint?)")
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
    params = ckpt["params"]
    expected = model.param_shapes(cfg)
    if not isinstance(params, dict) or set(params) != set(expected):
        raise CharlmError(f"{where} has parameters that do not match its configuration (damaged checkpoint?)")
    for name, shape in expected.items():
        p = params[name]
        if not isinstance(p, np.ndarray) or p.shape != shape or p.dtype.kind != "f":
            raise CharlmError(f"{where}: parameter {name} should be a float array of shape {shape} "
                              "(damaged checkpoint?)")
        if not np.isfinite(p).all():
            raise CharlmError(f"{where}: parameter {name} holds NaN or infinite values (damaged checkpoint?)")
    return ckpt, cfg, params, vocab
