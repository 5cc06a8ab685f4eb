"""Sampling (temperature, top-k, top-p, prime, seeds) and `eval perplexity`, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm.cli import app
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.nn import model
from charlm.nn.sample import generate, next_ids
from charlm.use.evaluate import score_ids

runner = CliRunner()


def test_temperature_zero_is_greedy():
    logits = np.array([[0.1, 3.0, 2.9], [5.0, -1.0, 0.0]])
    ids = next_ids(logits, np.random.default_rng(0), temperature=0)
    np.testing.assert_array_equal(ids, [1, 0])


def test_top_k_and_top_p_restrict_the_support():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, axis=0)
    assert set(next_ids(logits, rng, 1.0, top_k=2)) == {0, 1}
    assert set(next_ids(logits, rng, 1.0, top_p=0.7)) == {0, 1}        # 0.5 + 0.3 reaches 0.7
    assert set(next_ids(logits, rng, 1.0, top_p=0.5)) == {0}           # the top one already has 0.5
    assert set(next_ids(logits, rng, 1.0)) == {0, 1, 2, 3}


def test_sampling_follows_the_distribution():
    probs = np.array([0.6, 0.3, 0.1])
    ids = next_ids(np.log(probs)[None].repeat(20000, axis=0), np.random.default_rng(1), 1.0)
    freq = np.bincount(ids, minlength=3) / len(ids)
    np.testing.assert_allclose(freq, probs, atol=0.015)
    hot = next_ids(np.log(probs)[None].repeat(20000, axis=0), np.random.default_rng(1), 0.5)
    assert np.mean(hot == 0) > 0.75  # lower temperature sharpens toward the mode
    rng, one = np.random.default_rng(2), np.log(probs)[None]
    single = np.array([next_ids(one, rng, 1.0)[0] for _ in range(20000)])  # the 1-D path
    np.testing.assert_allclose(np.bincount(single, minlength=3) / len(single), probs, atol=0.015)


def tiny_model():
    vocab = Vocab("\nabc", [1, 1, 1, 1])
    cfg = ModelConfig(4, cell="gru", layers=1, hidden=6)
    return cfg, model.init_params(cfg, np.random.default_rng(0)), vocab


def test_one_stream_draws_as_the_batched_path():
    """The 1-D path for a single stream picks the id the (N, V) path picks for row 0."""
    logits = np.random.default_rng(3).normal(0, 2, (2, 40)).astype(np.float32)
    for seed in range(300):
        alone = next_ids(logits[:1], np.random.default_rng(seed), 0.7)
        batched = next_ids(logits, np.random.default_rng(seed), 0.7)
        assert alone.shape == (1,) and alone[0] == batched[0], seed


def test_generate_is_seeded_and_starts_with_the_prime():
    cfg, params, vocab = tiny_model()

    def text(seed, n=1):
        streams = ["" for _ in range(n)]
        for piece in generate(params, cfg, vocab, length=30, prime="ab", num_samples=n,
                              rng=np.random.default_rng(seed)):
            streams = [s + p for s, p in zip(streams, piece, strict=True)]
        return streams

    a, b, c = text(1), text(1), text(2)
    assert a == b and a != c
    assert a[0].startswith("ab") and len(a[0]) == 32
    many = text(3, n=4)
    assert len(many) == 4 and len(set(many)) > 1 and all(s.startswith("ab") for s in many)


def test_score_ids_matches_forward_on_one_lane():
    cfg, params, vocab = tiny_model()
    ids = np.random.default_rng(0).integers(0, 4, 200)
    score = score_ids(params, cfg, ids, batch=1, seq_len=37)
    loss, _, _, _ = model.forward(params, cfg, ids[None, :-1], ids[None, 1:], model.init_state(cfg, 1))
    assert score.chars == 199
    assert score.nats_per_char == pytest.approx(loss, rel=1e-5)
    assert score.bits_per_char == pytest.approx(loss / math.log(2), rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(loss), rel=1e-5)



@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_score_ids_does_not_depend_on_the_number_of_lanes(cell):
    """Warmed-up lanes score the text as one stream does; cold lanes score it worse."""
    cfg = ModelConfig(4, cell=cell, layers=2, hidden=6)
    params = {k: v.astype(np.float64) for k, v in model.init_params(cfg, np.random.default_rng(0)).items()}
    ids = np.tile(np.random.default_rng(1).integers(0, 4, 40), 100)    # 4,000 chars with structure
    one = score_ids(params, cfg, ids, batch=1, seq_len=64)
    many = score_ids(params, cfg, ids, batch=13, seq_len=10)           # 13 lanes of 307, warm-up 256
    cold = score_ids(params, cfg, ids, batch=13, seq_len=10, warmup=0)
    assert one.chars == many.chars == cold.chars == 3999
    assert many.nats_per_char == pytest.approx(one.nats_per_char, abs=1e-8)      # float64: no round-off
    assert abs(cold.nats_per_char - one.nats_per_char) > 1e-4

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)  # runs/latest lands here, not in the checkout
    text = root / "c.txt"
    text.write_text("the cat sat on the mat.\n" * 200)
    r = runner.invoke(app, ["train", str(text), "--out", str(root / "run"), "--hidden", "12", "--layers", "1",
                            "--max-steps", "20", "--eval-every", "10", "--seq-len", "16", "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    yield root
    mp.undo()


def test_cli_sample_same_seed_same_text(run_dir):
    args = ["sample", "--model", str(run_dir / "run"), "--seed", "7", "--length", "80", "--prime", "the "]
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    assert a.exit_code == 0 and a.stdout == b.stdout and a.stdout.startswith("the ")
    greedy = runner.invoke(app, [*args[:-4], "--temperature", "0", "--length", "20"])
    assert greedy.exit_code == 0 and greedy.stdout.strip()


def test_cli_eval_json_and_oov(run_dir):
    (run_dir / "other.txt").write_text("the dog sat on the mat!\n")
    r = runner.invoke(app, ["eval", "perplexity", "--model", str(run_dir / "run"), str(run_dir / "other.txt"),
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out) == {"nats_per_char", "bits_per_char", "perplexity", "chars", "oov_chars"}
    assert out["oov_chars"] == 3  # d, g, !
    assert out["perplexity"] == pytest.approx(math.exp(out["nats_per_char"]))
    strict = runner.invoke(app, ["eval", "perplexity", "--model", str(run_dir / "run"),
                                 str(run_dir / "other.txt"), "--strict"])
    assert strict.exit_code == 1 and "outside the model's vocabulary" in strict.stderr
    own = runner.invoke(app, ["eval", "perplexity", "--model", str(run_dir / "run"), "--json"])
    assert own.exit_code == 0 and json.loads(own.stdout)["oov_chars"] == 0


def test_cli_info_json(run_dir):
    r = runner.invoke(app, ["info", str(run_dir / "run"), "--json"])
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["steps"] == 20 and info["vocab_size"] == 12 and info["model"]["hidden"] == 12
    assert info["corpus_fingerprint"]["size"] == len("the cat sat on the mat.\n") * 200
