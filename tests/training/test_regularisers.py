"""The regularisers in a training run: exact resume with all of them on, the average of the
weights (--ema) validated and saved in best.pkl, weight decay as AdamW, and checkpoints
saved before they existed resuming with them off."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from charlm import checkpoint, defaults
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.nn import model, optim
from charlm.nn.score import score_ids
from tests.helpers import assert_one_line_error, charlm, stored
from tests.training.test_loop import make_text, run_to_end

ALL = {"dropout": 0.2, "locked_dropout": True, "weight_drop": 0.3, "embed_dropout": 0.1}
TINY = ["--cell", "gru", "--layers", "2", "--hidden", "16", "--embedding-dim", "8", "--batch-size", "4",
        "--seq-len", "10", "--sample-every", "0"]


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text(make_text())
    return corpus.load(p, tmp_path / "cache")


def _configs(data, workers=1, **optim_kw):
    mcfg = ModelConfig(len(data.vocab), cell="gru", layers=2, hidden=16, embedding_dim=8, **ALL)
    ocfg = OptimConfig(warmup_steps=3, weight_decay=0.1, ema=0.9, **optim_kw)
    tcfg = TrainConfig(seq_len=10, batch_size=4, max_steps=30, eval_every=7, seed=5, workers=workers)
    return mcfg, ocfg, tcfg


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_with_every_regulariser_is_bit_identical(data, tmp_path, workers):
    mcfg, ocfg, tcfg = _configs(data, workers)
    once = run_to_end(data, tmp_path / "once", mcfg, ocfg, tcfg)
    run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg, stop_at=12)
    half = checkpoint.load(tmp_path / "twice" / "last.pkl", training=True)
    assert half.step == 12 and half.model.weight_drop == 0.3 and half.optim.ema == 0.9
    twice = run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg, resume=half)
    losses = [e["loss"] for e in once if e["event"] == "step"]
    assert losses[12:] == [e["loss"] for e in twice if e["event"] == "step"]
    for name in ("last.pkl", "best.pkl"):
        a, b = (checkpoint.load(tmp_path / d / name) for d in ("once", "twice"))
        assert a.step == b.step and a.best_val_loss == b.best_val_loss
        for k in a.params:
            assert np.array_equal(a.params[k], b.params[k]), (name, k)
        for slot in a.optimizer["slots"]:
            for k in a.params:
                assert np.array_equal(a.optimizer["slots"][slot][k], b.optimizer["slots"][slot][k]), (name, slot, k)


def test_best_pkl_holds_the_average_that_was_validated(data, tmp_path):
    mcfg, ocfg, tcfg = _configs(data)
    events = run_to_end(data, tmp_path / "run", mcfg, ocfg, tcfg)
    last = checkpoint.load(tmp_path / "run" / "last.pkl")
    best = checkpoint.load(tmp_path / "run" / "best.pkl")
    assert set(last.optimizer["slots"]) == {"m", "v", "ema"}
    # the live weights go on training; the average is what was scored and saved as the best
    assert not np.array_equal(last.params["rnn.weight_hh_l0"], last.optimizer["slots"]["ema"]["rnn.weight_hh_l0"])
    val = data.split(tcfg.val_fraction)[1]
    score = score_ids(best.params, best.model, np.asarray(val), batch=defaults.EVAL_BATCH,
                      seq_len=defaults.EVAL_SEQ_LEN)
    assert score.nats_per_char == pytest.approx(best.best_val_loss, rel=1e-6)
    evals = [e for e in events if e["event"] == "eval"]
    if evals[-1]["improved"]:  # the best is the last validation: best.pkl's weights are last.pkl's average
        for k in best.params:
            assert np.array_equal(best.params[k], last.optimizer["slots"]["ema"][k]), k


def test_average_follows_its_formula():
    """ema += w_t (p − ema), w_t = 1 − min(d, (1 + t)/(10 + t)), after the step; weight decay
    before it shrinks the matrices only, by lr·wd (torch.optim.AdamW's order)."""
    cfg = OptimConfig(name="sgd", momentum=0.0, weight_decay=0.5, ema=0.8)
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    state = optim.init_state(cfg, params)
    ema = {k: v.copy() for k, v in params.items()}
    for t in range(1, 6):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        expect = {"w": params["w"] * (1 - 0.1 * 0.5) - 0.1 * grads["w"], "b": params["b"] - 0.1 * grads["b"]}
        optim.update(params, grads, state, cfg, 0.1)
        w = 1 - min(0.8, (1 + t) / (10 + t))
        for k in params:
            np.testing.assert_allclose(params[k], expect[k], rtol=1e-12)
            ema[k] = ema[k] + w * (params[k] - ema[k])
            np.testing.assert_allclose(state["slots"]["ema"][k], ema[k], rtol=1e-12)


def test_adam_with_weight_decay_is_torch_adamw():
    torch = pytest.importorskip("torch")
    cfg = OptimConfig(name="adam", weight_decay=0.3, eps=1e-6)
    rng = np.random.default_rng(2)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    ref = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    groups = [{"params": [ref["w"]], "weight_decay": 0.3}, {"params": [ref["b"]], "weight_decay": 0.0}]
    adamw = torch.optim.AdamW(groups, lr=0.01, eps=1e-6)
    state = optim.init_state(cfg, params)
    for _ in range(5):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        optim.update(params, grads, state, cfg, 0.01)
        for k, t in ref.items():
            t.grad = torch.from_numpy(grads[k].copy())
        adamw.step()
        for k in params:
            np.testing.assert_allclose(params[k], ref[k].detach().numpy(), rtol=1e-10, atol=1e-13)


def test_flat_buffer_decays_only_its_matrices(data):
    """The numpy engine runs the optimizer on one flat buffer: weight decay reaches the
    matrices' views of it and not the biases, as on named arrays."""
    from charlm.engines.numpy_team import NumpyTeam
    cfg = ModelConfig(len(data.vocab), cell="gru", layers=1, hidden=8, embedding_dim=4)
    ocfg = OptimConfig(name="sgd", weight_decay=0.5, ema=0.5)
    params = model.init_params(cfg, np.random.default_rng(0))
    named = {k: v.copy() for k, v in params.items()}
    ids = np.asarray(data.split(0.1)[0][:1000])
    with NumpyTeam(cfg, params, 2, 1, {"train": ids}) as team:
        opt = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
        named_opt = optim.init_state(ocfg, named)
        grad = np.random.default_rng(1).normal(size=team.flat.shape).astype(team.flat.dtype)
        grads = team.spec.layout.views(grad.copy())
        team.update(grad, opt, ocfg, 0.1)
        optim.update(named, grads, named_opt, ocfg, 0.1)
        for k, v in team.params.items():
            np.testing.assert_allclose(v, named[k], rtol=1e-6, err_msg=k)
            np.testing.assert_allclose(team.spec.layout.views(team.average(opt))[k], named_opt["slots"]["ema"][k],
                                       rtol=1e-6, err_msg=k)


def test_checkpoint_saved_before_the_regularisers_reads_them_as_off(data, tmp_path):
    """A run saved before these fields existed resumes as it ran (every one off), bit for bit,
    whatever today's defaults: a config built from its stored dict alone would take those."""
    mcfg, ocfg, tcfg = _configs(data)
    mcfg = dataclasses.replace(mcfg, locked_dropout=False, weight_drop=0.0, embed_dropout=0.0)
    ocfg, tcfg = dataclasses.replace(ocfg, weight_decay=0.0, ema=0.0), dataclasses.replace(tcfg, max_steps=8)
    run_to_end(data, tmp_path / "once", mcfg, ocfg, tcfg)
    run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg, stop_at=4)
    d = stored(tmp_path / "twice" / "last.pkl")
    for key in ("locked_dropout", "weight_drop", "embed_dropout"):
        del d["model_config"][key]
    for key in ("weight_decay", "ema"):
        del d["optim_config"][key]
    (tmp_path / "twice" / "last.pkl").write_bytes(pickle.dumps(d, protocol=checkpoint.PROTOCOL))
    old = checkpoint.load(tmp_path / "twice" / "last.pkl", training=True)
    m, o = old.model, old.optim
    assert (m.locked_dropout, m.weight_drop, m.embed_dropout, o.weight_decay, o.ema) == (False, 0.0, 0.0, 0.0, 0.0)
    run_to_end(data, tmp_path / "twice", old.model, old.optim, old.train, resume=old)
    a, b = (checkpoint.load(tmp_path / r / "last.pkl") for r in ("once", "twice"))
    assert a.step == b.step == 8
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k


def test_a_damaged_average_is_one_line(data, tmp_path):
    mcfg, ocfg, tcfg = _configs(data)
    run_to_end(data, tmp_path / "run", mcfg, ocfg, dataclasses.replace(tcfg, max_steps=3))
    d = stored(tmp_path / "run" / "last.pkl")
    del d["optimizer"]["slots"]["ema"]
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(d, protocol=checkpoint.PROTOCOL))
    with pytest.raises(Exception, match="no average"):
        checkpoint.load(tmp_path / "bad.pkl", training=True)


def test_cli_flags_resume_and_refusals(tmp_path):
    (tmp_path / "t.txt").write_text(make_text())
    flags = [*TINY, "--locked-dropout", "--dropout", "0.2", "--weight-drop", "0.2", "--embed-dropout", "0.1",
             "--weight-decay", "0.1", "--ema", "0.9"]
    proc = charlm(["train", "t.txt", "--out", "run", "--max-steps", "6", *flags], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "locked dropout 0.2, weight drop 0.2, embedding dropout 0.1" in proc.stderr
    ckpt = checkpoint.load(tmp_path / "run" / "last.pkl")
    assert (ckpt.model.weight_drop, ckpt.optim.weight_decay, ckpt.optim.ema) == (0.2, 0.1, 0.9)
    for option, value, was in (("--ema", "0", "0.9"), ("--ema", "0.95", "0.9"), ("--weight-decay", "0.2", "0.1"),
                               ("--weight-drop", "0.5", "0.2")):  # a resume is the run it continues
        assert_one_line_error(charlm(["train", "--resume", "run", "--max-steps", "8", option, value], cwd=tmp_path),
                              2, f"{option} {value} differs from this run's {was}")
    proc = charlm(["train", "--resume", "run", "--max-steps", "8", "--ema", "0.9", "--weight-decay", "0.1"],
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ckpt = checkpoint.load(tmp_path / "run" / "last.pkl")
    assert (ckpt.step, ckpt.optim.ema, ckpt.optim.weight_decay) == (8, 0.9, 0.1)
    help_text = charlm(["train", "--help"], cwd=tmp_path).stdout
    for flag in ("--locked-dropout", "--weight-drop", "--embed-dropout", "--weight-decay", "--ema"):
        assert flag in help_text
