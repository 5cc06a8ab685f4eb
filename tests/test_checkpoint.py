"""Checkpoint safety: atomic writes, the restricted unpickler, clear errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from charlm import checkpoint, fileio
from charlm.config import ModelConfig
from charlm.errors import CharlmError
from charlm.nn import model
from tests.helpers import charlm, stored

CFG = {"vocab_size": 3, "cell": "rnn", "layers": 1, "hidden": 2, "embedding_dim": 0}


def payload(value=1.0):
    """A structurally valid checkpoint of a tiny RNN whose every weight is `value`."""
    shapes = model.param_shapes(ModelConfig(**CFG))
    return {"model_config": CFG, "vocab": {"chars": "abc", "counts": [1, 1, 1]},
            "params": {k: np.full(s, value, np.float32) for k, s in shapes.items()},
            "init_from": {"path": "/x/best.pkl", "step": 2**100}}


def test_roundtrip_keeps_arrays_and_plain_data(tmp_path):
    path = tmp_path / "c.pkl"
    checkpoint.save(path, payload(3.0))
    data = checkpoint.load(path)
    assert stored(path)["format"] == checkpoint.FORMAT and data.version == checkpoint.VERSION
    np.testing.assert_array_equal(data.params["decoder.weight"], np.full((3, 2), 3.0, np.float32))
    assert data.params["decoder.weight"].dtype == np.float32 and data.init_from["step"] == 2**100
    assert data.model == ModelConfig(**CFG) and data.vocab.chars == "abc" and data.progress is None


def test_crash_mid_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pkl"
    checkpoint.save(path, payload(1.0))
    before = path.read_bytes()

    def dying_dump(obj, f, protocol):
        f.write(b"\x80\x04partial garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.pickle, "dump", dying_dump)
    with pytest.raises(CharlmError, match="No space left on device.*previous checkpoint there is intact"):
        checkpoint.save(path, payload(2.0))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pkl"]  # no temp file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpoint.load(path).params["decoder.weight"], 1.0)


def test_kill_between_write_and_rename_leaves_previous(tmp_path, monkeypatch):
    path = tmp_path / "best.pkl"
    checkpoint.save(path, payload(1.0))

    def killed(src, dst):
        raise SystemExit("kill -9")  # the process dies right before the rename

    monkeypatch.setattr(fileio.os, "replace", killed)
    with pytest.raises(SystemExit):
        checkpoint.save(path, payload(2.0))
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpoint.load(path).params["decoder.weight"], 1.0)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "version": 1, "x": Exploit(marker)}))
    with pytest.raises(CharlmError, match=r"refused.*(posix|os)\.system.*nothing was executed"):
        checkpoint.load(path)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path):
    class Eval:
        def __reduce__(self):
            return (eval, ("1+1",))
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([Eval()]))
    with pytest.raises(CharlmError, match="builtins.eval"):
        checkpoint.load(path)


@pytest.mark.parametrize("content,message", [
    (b"", "truncated"),
    (b"\x00\x01 random bytes that are not a pickle", "not a readable charlm checkpoint"),
    (pickle.dumps({"weights": [1, 2, 3]}), "not a charlm checkpoint"),
    (pickle.dumps([1, 2]), "not a charlm checkpoint"),
    (pickle.dumps({"format": "charlm-checkpoint", "version": 99}), "version 99, newer"),
    (pickle.dumps({"format": "charlm-checkpoint", "version": 1}), "incomplete"),
])
def test_bad_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "x.pkl"
    path.write_bytes(content)
    with pytest.raises(CharlmError, match=message):
        checkpoint.load(path)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "c.pkl"
    checkpoint.save(path, payload())
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(CharlmError, match="not a readable charlm checkpoint"):
            checkpoint.load(path)


def test_run_directory_resolution(tmp_path):
    with pytest.raises(CharlmError, match="no checkpoint in"):
        checkpoint.load(tmp_path)
    checkpoint.save(tmp_path / "last.pkl", payload(1.0))
    assert checkpoint.load(tmp_path).path.name.endswith("last.pkl")
    checkpoint.save(tmp_path / "best.pkl", payload(2.0))
    assert checkpoint.load(tmp_path).path.name.endswith("best.pkl")
    assert checkpoint.load(tmp_path, prefer="last.pkl").path.name.endswith("last.pkl")
    with pytest.raises(CharlmError, match="not found"):
        checkpoint.load(tmp_path / "missing.pkl")


def test_a_run_saved_before_patience_existed_resumes_without_it(tmp_path):
    """Format-1 files of the previous release have no patience or engine in their train_config:
    they load as they ran (no early stopping, the numpy engine), not with today's defaults."""
    text = tmp_path / "t.txt"
    text.write_text("abc def ghi\n" * 200)
    proc = charlm(["train", text, "--out", tmp_path / "run", "--max-steps", "2", "--hidden", "8", "--layers", "1",
                   "--seq-len", "8", "--batch-size", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = stored(tmp_path / "run" / "last.pkl")
    assert data["train_config"]["patience"] == 5
    for key in ("patience", "engine"):
        del data["train_config"][key]
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(data, protocol=checkpoint.PROTOCOL))
    old = checkpoint.load(tmp_path / "old.pkl", training=True)
    assert old.train.patience == 0 and old.train.engine == "numpy"
