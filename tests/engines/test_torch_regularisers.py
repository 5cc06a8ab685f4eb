"""The torch engine and the regularisers: weight decay and the average of the weights (--ema)
agree with the numpy engine step by step; the numpy engine's dropout variants are refused
in one line; a model trained with them samples and scores the same on both engines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charlm import checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import batches, corpus
from charlm.nn import model, optim
from tests.engines.test_torch_engine import TINY, _losses, float64_pair, needs_torch
from tests.helpers import assert_one_line_error, charlm
from tests.training.test_loop import make_text, run_to_end


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text(make_text())
    return p


@needs_torch
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_and_average_agree_with_the_numpy_engine(text_file, tmp_path, optimizer):
    """Loss by loss, the validations (of the average) and both checkpoints at the end."""
    data = corpus.load(text_file, tmp_path / "cache")
    mcfg = ModelConfig(len(data.vocab), cell="gru", layers=2, hidden=16, embedding_dim=8)
    ocfg = OptimConfig(name=optimizer, lr={"adam": 3e-3, "sgd": 0.5}[optimizer], warmup_steps=5,
                       weight_decay=0.2, ema=0.9)
    runs = {}
    for engine in ("numpy", "torch"):
        tcfg = TrainConfig(seq_len=16, batch_size=6, max_steps=30, eval_every=10, seed=7, workers=1, engine=engine)
        runs[engine] = _losses(run_to_end(data, tmp_path / engine, mcfg, ocfg, tcfg))
    (a, va), (b, vb) = runs["numpy"], runs["torch"]
    assert len(a) == 30 and len(va) == 3
    np.testing.assert_allclose(b, a, rtol=1e-5)
    np.testing.assert_allclose(vb, va, rtol=1e-5)
    for name in ("last.pkl", "best.pkl"):
        pa, pb = (checkpoint.load(tmp_path / e / name) for e in ("numpy", "torch"))
        for k in pa.params:
            np.testing.assert_allclose(pb.params[k], pa.params[k], atol=1e-5, err_msg=k)
            np.testing.assert_allclose(pb.optimizer["slots"]["ema"][k], pa.optimizer["slots"]["ema"][k],
                                       atol=1e-5, err_msg=k)


@needs_torch
@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_float64_update_is_charlm_s_formulas(name):
    """In float64 the torch update with weight decay and the average is optim.update's, to rounding."""
    ocfg = OptimConfig(name=name, clip=0.5, weight_decay=0.3, ema=0.7)
    cfg, team, opt_t, opt_n, ref, state, lanes, T = float64_pair("gru", ocfg)
    for k in range(3):
        x, y = batches.window(lanes, k, T)
        _, _, state, cache = model.forward(ref, cfg, x, y, state)
        grads, _ = model.backward(ref, cfg, cache)
        _, t_grads = team.train_step("train", k, T, k)
        team.clip_grads(t_grads, ocfg.clip)
        optim.clip_grads(grads, ocfg.clip)
        team.update(t_grads, opt_t, ocfg, 1e-2)
        optim.update(ref, grads, opt_n, ocfg, 1e-2)
        _, slots, _ = team.checkpoint_arrays(opt_t)
        for n, p in team.params.items():
            np.testing.assert_allclose(p, ref[n], rtol=1e-10, atol=1e-13, err_msg=n)
            np.testing.assert_allclose(slots["ema"][n], opt_n["slots"]["ema"][n], rtol=1e-10, atol=1e-13, err_msg=n)


@needs_torch
@pytest.mark.parametrize("flag", [["--locked-dropout", "--dropout", "0.2"], ["--weight-drop", "0.2"],
                                  ["--embed-dropout", "0.1"]])
def test_dropout_variants_are_refused_in_one_line(text_file, tmp_path, flag):
    proc = charlm(["train", text_file, "--out", "run", "--engine", "torch", "--max-steps", "3", *TINY, *flag],
                  cwd=tmp_path)
    assert_one_line_error(proc, 2, f"{flag[0]} is the numpy engine's")
    assert not (tmp_path / "run").exists()


@needs_torch
def test_a_regularised_model_samples_and_scores_the_same_on_both(text_file, tmp_path):
    """Training-only: a model trained with every regulariser has the plain model's forward, so
    sampling and scoring give what the torch engine's modules give from its weights."""
    from charlm.engines.torch_team import TorchTeam

    proc = charlm(["train", text_file, "--out", "run", "--max-steps", "20", "--eval-every", "10", *TINY,
                   "--locked-dropout", "--dropout", "0.2", "--weight-drop", "0.3", "--embed-dropout", "0.1",
                   "--weight-decay", "0.1", "--ema", "0.9"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ckpt = checkpoint.load(tmp_path / "run" / "best.pkl")
    ours = json.loads(charlm(["eval", "perplexity", "--model", "run", "--json"], cwd=tmp_path).stdout)
    val = corpus.load(text_file, tmp_path / "cache").split(ckpt.train.val_fraction)[1]
    plain = ModelConfig(**{**ckpt.model.__dict__, "dropout": 0.0, "locked_dropout": False, "weight_drop": 0.0,
                           "embed_dropout": 0.0})
    team = TorchTeam(plain, ckpt.params, 8, {"val": np.asarray(val)}, device="cpu", distributed=False)
    theirs = team.score("val", 64, 256)
    assert theirs.nats_per_char == pytest.approx(ours["nats_per_char"], rel=1e-5)
    text = charlm(["sample", "--model", "run", "--temperature", "0", "--length", "50", "--prime", "the "],
                  cwd=tmp_path)
    assert text.returncode == 0 and len(text.stdout) >= 50


@needs_torch
def test_resuming_a_weight_drop_run_on_torch_is_refused_and_the_team_refuses_too(text_file, tmp_path):
    from charlm.engines.torch_team import TorchTeam
    from charlm.errors import CharlmError

    proc = charlm(["train", text_file, "--out", "run", "--max-steps", "3", *TINY, "--weight-drop", "0.2"],
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_one_line_error(charlm(["train", "--resume", "run", "--engine", "torch", "--max-steps", "5"],
                                 cwd=tmp_path), 2, "--weight-drop is the numpy engine's")
    cfg = ModelConfig(11, cell="gru", layers=1, hidden=4, embed_dropout=0.1)
    with pytest.raises(CharlmError, match="--embed-dropout is the numpy engine's"):
        TorchTeam(cfg, model.init_params(cfg, np.random.default_rng(0)), 2, {}, device="cpu", distributed=False)
