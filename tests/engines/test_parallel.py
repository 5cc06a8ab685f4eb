"""Data parallelism (charlm/engines/parallel.py), the thread policy (charlm/threads.py) and the
flat optimizer: K worker processes must compute what one process computes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from charlm import checkpoint, threads
from charlm.config import ModelConfig, OptimConfig
from charlm.data import batches
from charlm.engines.flat import Layout
from charlm.engines.parallel import Team
from charlm.errors import CharlmError, UsageError
from charlm.nn import model, optim
from charlm.use import evaluate
from tests.helpers import CHARLM, ENV, assert_one_line_error, charlm

V, B, T = 11, 6, 7


def setup(cell: str, embedding_dim: int, dtype=np.float64, seed: int = 0):
    cfg = ModelConfig(vocab_size=V, cell=cell, layers=2, hidden=9, embedding_dim=embedding_dim)
    rng = np.random.default_rng(seed)
    params = model.init_params(cfg, rng, dtype=dtype)
    ids = rng.integers(0, V, 600).astype(np.uint8)                     # (n,)
    return cfg, params, ids


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [0, 5])
def test_two_workers_match_one_process(cell, embedding_dim):
    """Loss, summed gradient and carried state of K = 2 equal the plain forward/backward
    over all B lanes, for two windows in a row (the state carried between them)."""
    cfg, params, ids = setup(cell, embedding_dim)
    lanes = batches.lanes(ids, B)
    state = model.init_state(cfg, B, np.float64)
    with Team(cfg, params, B, 2, {"train": ids}) as team:
        team.reset_state()
        for k in range(2):
            x, y = batches.window(lanes, k, T)
            loss, _, state, cache = model.forward(params, cfg, x, y, state)
            grads, _ = model.backward(params, cfg, cache)
            t_loss, t_grad = team.train_step("train", k, T, k)
            assert t_loss == pytest.approx(loss, rel=1e-12)
            for name, g in team.spec.layout.views(t_grad).items():
                np.testing.assert_allclose(g, grads[name], rtol=1e-9, atol=1e-12, err_msg=name)
            for name, s in state.items():
                np.testing.assert_allclose(team.state[name], s, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_score_matches_one_stream(cell, workers):
    """Scoring split over K ranks gives evaluate.score_ids' number, tail included."""
    cfg, params, ids = setup(cell, 5)
    ids = ids[:557]  # 556 pairs: not a multiple of the lanes, so there is a tail
    whole = evaluate.score_ids(params, cfg, ids, batch=5, seq_len=16, warmup=20)
    with Team(cfg, params, B, workers, {"val": ids}) as team:
        split = team.score("val", 5, 16, warmup=20)
    assert split.chars == whole.chars == 556
    assert split.nats_per_char == pytest.approx(whole.nats_per_char, rel=1e-12)


def test_dropout_is_deterministic_per_worker_count():
    """The same K gives the same masks, hence the same loss, run after run."""
    cfg, params, ids = setup("gru", 5)
    cfg = ModelConfig(**{**cfg.__dict__, "dropout": 0.3})
    losses = []
    for _ in range(2):
        with Team(cfg, params, B, 2, {"train": ids}, seed=5) as team:
            team.reset_state()
            losses.append([team.train_step("train", k, T, k)[0] for k in range(2)])
    assert losses[0] == losses[1]


def test_a_failing_worker_is_one_line():
    """A worker's death reaches rank 0 as a CharlmError naming it, not a hang."""
    cfg, params, ids = setup("gru", 5)
    with Team(cfg, params, B, 2, {"train": ids}) as team:
        team.reset_state()
        team.procs[0].kill()
        team.procs[0].join()
        with pytest.raises(CharlmError, match="worker 1: exited with code -9.*--workers 1"):
            team.train_step("train", 0, T, 0)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_flat_update_equals_per_name_update(name):
    """The optimizer on one flat buffer gives bit for bit what it gives name by name."""
    rng = np.random.default_rng(1)
    params = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)}
    cfg = OptimConfig(name=name, lr=0.01)
    layout = Layout.of(params)
    flat_p = layout.pack(params)
    state = optim.init_state(cfg, params)
    flat_state = {"step": 0, "slots": {k: {"all": layout.pack(v)} for k, v in state["slots"].items()}}
    for _ in range(3):
        grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
        optim.update(params, grads, state, cfg, 0.01)
        matrices = [v for v in layout.views(flat_p).values() if v.ndim >= 2]  # what weight decay shrinks
        optim.update({"all": flat_p}, {"all": layout.pack(grads)}, flat_state, cfg, 0.01, matrices)
    for k, v in layout.views(flat_p).items():
        assert np.array_equal(v, params[k])


def test_thread_policy_and_overrides(monkeypatch):
    monkeypatch.delenv(threads.ENV_WORKERS, raising=False)
    monkeypatch.delenv(threads.ENV_THREADS, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert threads.blas_threads() == 1
    assert threads.workers(None, 50) == 4
    assert threads.workers(None, 20) == 2          # at least MIN_LANES lanes each
    assert threads.workers(None, 4) == 1
    assert threads.workers(3, 50) == 3             # the option wins
    assert threads.workers(9, 5) == 5              # never more workers than lanes
    monkeypatch.setenv(threads.ENV_WORKERS, "2")
    monkeypatch.setenv(threads.ENV_THREADS, "2")
    assert threads.workers(None, 50) == 2 and threads.blas_threads() == 2
    assert threads.workers(3, 50) == 3 and threads.blas_threads(1) == 1
    monkeypatch.setenv(threads.ENV_WORKERS, "two")
    with pytest.raises(UsageError, match="CHARLM_WORKERS"):
        threads.workers(None, 50)


# ------------------------------------------------------- through the real executable

SMALL = ["--hidden", "16", "--layers", "2", "--seq-len", "16", "--batch-size", "16", "--eval-every", "10"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("par")
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "pi"]
    (root / "t.txt").write_text(" ".join(rng.choice(words) for _ in range(30000)) + "\n")
    p = charlm(["train", "t.txt", "--out", "run", "--max-steps", "20", "--workers", "2", *SMALL], root)
    assert p.returncode == 0, p.stderr
    assert "2 processes with 8–8 lanes and 1 BLAS thread each" in p.stderr
    return root


def test_eval_with_workers_scores_as_one_process(trained):
    scores = {}
    for k in ("1", "2"):
        p = charlm(["eval", "perplexity", "t.txt", "-m", "run", "--json", "--workers", k], trained)
        assert p.returncode == 0, p.stderr
        scores[k] = json.loads(p.stdout)
    assert scores["1"]["chars"] == scores["2"]["chars"]
    assert scores["2"]["nats_per_char"] == pytest.approx(scores["1"]["nats_per_char"], rel=1e-6)


def test_bad_worker_setting_is_one_line(trained):
    p = charlm(["train", "t.txt", "--out", "bad", "--max-steps", "2", *SMALL], trained,
               env={threads.ENV_WORKERS: "two"})
    assert_one_line_error(p, 2, "CHARLM_WORKERS must be a whole number")
    assert not (trained / "bad" / "last.pkl").exists()


def test_ctrl_c_with_workers_saves_and_resumes(trained):
    """Ctrl-C from a terminal reaches the whole process group: the workers ignore it,
    rank 0 finishes the step, saves last.pkl and exits 130; the run then resumes."""
    args = ["train", "t.txt", "--out", "cc", "--max-steps", "100000", "--workers", "2", *SMALL]
    proc = subprocess.Popen(CHARLM + args, cwd=trained, env=ENV, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (trained / "cc" / "last.pkl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    ckpt = checkpoint.load(trained / "cc" / "last.pkl")
    assert ckpt.train.workers == 2
    p = charlm(["train", "--resume", "cc", "--max-steps", str(ckpt.step + 5)], trained)
    assert p.returncode == 0, p.stderr
    assert checkpoint.load(trained / "cc" / "last.pkl").step == ckpt.step + 5
