"""Fine-tuning (--init-from RUN|CKPT, --extend-vocab) through the real executable, and the grown weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from charlm import checkpoint
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.nn import model
from charlm.training import init_from
from tests.helpers import assert_one_line_error, charlm

SMALL = ["--batch-size", "4", "--seq-len", "16", "--eval-every", "5", "--sample-every", "0", "--quiet"]
ARCH = ["--cell", "gru", "--hidden", "16", "--layers", "1", "--embedding-dim", "8"]


def _text(upper: bool = False) -> str:
    rng = np.random.default_rng(1)
    words = ["the cat", "a dog", "my bird", "sat on", "ran to", "saw", "the mat", "a tree"]
    text = "\n".join(" ".join(rng.choice(words, 5)) + "." for _ in range(60)) + "\n"
    return text.replace("cat", "Cat!") if upper else text


def _ckpt(path: Path) -> dict:
    return pickle.loads(path.read_bytes())


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A base run (40 steps) and two texts: the same language, and one with 'C' and '!' added."""
    d = tmp_path_factory.mktemp("finetune")
    (d / "base.txt").write_text(_text())
    (d / "new.txt").write_text(_text(upper=True))
    proc = charlm(["train", "base.txt", "--out", "BASE", "--max-steps", "40", *ARCH, *SMALL, "--lr", "0.02"], cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d


def test_unseen_characters_stop_the_run_and_are_listed(ws):
    err = assert_one_line_error(charlm(["train", "new.txt", "--init-from", "BASE", "--out", "FT0", *SMALL],
                                       cwd=ws), 1, "2 character(s) the model never saw")
    assert "'!', 'C'" in err and "--extend-vocab" in err
    assert not (ws / "FT0").exists()


def test_extend_vocab_adds_rows_and_records_the_origin(ws):
    proc = charlm(["train", "new.txt", "--init-from", "BASE", "--extend-vocab", "--out", "FT", "--max-steps", "10",
                   *SMALL[:-1]], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert "added 2 character(s) the model never saw to its vocabulary" in proc.stderr
    assert "fine-tuning the model of" in proc.stderr and "with a fresh optimizer" in proc.stderr
    base, ft = _ckpt(ws / "BASE" / "best.pkl"), _ckpt(ws / "FT" / "last.pkl")
    assert ft["vocab"]["chars"] == base["vocab"]["chars"] + "!C"  # old ids kept, new ones after them
    assert ft["model_config"] == {**base["model_config"], "vocab_size": base["model_config"]["vocab_size"] + 2}
    assert ft["optimizer"]["step"] == ft["progress"]["step"] == 10  # a fresh optimizer, a new run's count
    origin = ft["init_from"]
    assert origin["path"] == str((ws / "BASE" / "best.pkl").resolve()) and origin["added_chars"] == "!C"
    assert origin["step"] == base["progress"]["step"] and len(origin["sha256"]) == 64
    info = charlm(["info", "FT"], cwd=ws).stdout
    assert f"fine-tuned  from {origin['path']} (step {origin['step']}" in info and "added 2 new" in info
    # evaluation reads the run's own split in the grown vocabulary
    ev = charlm(["eval", "perplexity", "--model", "FT"], cwd=ws)
    assert ev.returncode == 0 and f"{_ckpt(ws / 'FT' / 'best.pkl')['best_val_loss']:.4f} nats/char" in ev.stdout


def test_it_starts_from_the_trained_weights(ws):
    """The first validation of a fine-tuning run on the base's own text is far better than a fresh model's."""
    for name, extra in (("FRESH", ARCH), ("WARM", ["--init-from", "BASE"])):
        assert charlm(["train", "base.txt", "--out", name, "--max-steps", "5", *extra, *SMALL], cwd=ws).returncode == 0
    fresh, warm = (_ckpt(ws / n / "last.pkl")["history"][0]["val_loss"] for n in ("FRESH", "WARM"))
    assert warm < fresh - 0.5, (warm, fresh)


def test_a_fine_tuned_run_resumes_exactly(ws):
    common = ["--init-from", "BASE", "--extend-vocab", "--schedule", "constant", *SMALL]
    assert charlm(["train", "new.txt", "--out", "ONE", "--max-steps", "12", *common], cwd=ws).returncode == 0
    assert charlm(["train", "new.txt", "--out", "TWO", "--max-steps", "6", *common], cwd=ws).returncode == 0
    proc = charlm(["train", "--resume", "TWO", "--max-steps", "12", "--quiet"], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    one, two = _ckpt(ws / "ONE" / "last.pkl"), _ckpt(ws / "TWO" / "last.pkl")
    assert two["init_from"] == one["init_from"]
    for name in one["params"]:
        np.testing.assert_array_equal(one["params"][name], two["params"][name])


@pytest.mark.parametrize("args, needle", [
    (["--hidden", "32"], "--hidden cannot be given with --init-from"),
    (["--cell", "lstm"], "--cell cannot be given with --init-from"),
    (["--resume", "BASE"], "give one of them"),
])
def test_architecture_options_and_resume_are_bad_usage(ws, args, needle):
    assert_one_line_error(charlm(["train", "base.txt", "--init-from", "BASE", *args, *SMALL], cwd=ws), 2, needle)


def test_extend_vocab_needs_init_from_and_same_values_are_fine(ws):
    assert_one_line_error(charlm(["train", "base.txt", "--extend-vocab", *SMALL], cwd=ws), 2, "--init-from")
    proc = charlm(["train", "base.txt", "--init-from", "BASE/best.pkl", "--hidden", "16", "--out", "SAME",
                   "--max-steps", "2", *SMALL], cwd=ws)
    assert proc.returncode == 0, proc.stderr


def test_new_rows_are_drawn_as_a_new_model_draws_them(ws):
    ckpt = checkpoint.load(ws / "BASE")
    cfg = ckpt.model
    grown_vocab = Vocab(ckpt.vocab.chars + "!C", ckpt.vocab.counts + [3, 4])
    start = init_from.start(ckpt, grown_vocab, seed=7)
    fresh = model.init_params(start.mcfg, np.random.default_rng(7))
    V = cfg.vocab_size
    for name in ("embedding.weight", "decoder.weight", "decoder.bias"):
        np.testing.assert_array_equal(start.params[name][:V], ckpt.params[name])
        np.testing.assert_array_equal(start.params[name][V:], fresh[name][V:])
    np.testing.assert_array_equal(start.params["rnn.weight_hh_l0"], ckpt.params["rnn.weight_hh_l0"])


def test_one_hot_input_grows_its_input_columns(tmp_path):
    cfg = ModelConfig(vocab_size=3, cell="lstm", layers=1, hidden=4, embedding_dim=0)
    params = model.init_params(cfg, np.random.default_rng(0))
    checkpoint.save(tmp_path / "c.pkl", {"model_config": cfg.__dict__, "vocab": {"chars": "abc", "counts": [1, 1, 1]},
                                         "params": params})
    start = init_from.start(checkpoint.load(tmp_path / "c.pkl"), Vocab("abcz", [1, 1, 1, 1]), seed=3)
    fresh = model.init_params(start.mcfg, np.random.default_rng(3))
    w = start.params["rnn.weight_ih_l0"]                                    # (4H, V + 1)
    np.testing.assert_array_equal(w[:, :3], params["rnn.weight_ih_l0"])
    np.testing.assert_array_equal(w[:, 3], fresh["rnn.weight_ih_l0"][:, 3])  # U(−1, 1), as one-hot input starts
    assert start.record["step"] is None and start.record["added_chars"] == "z"
