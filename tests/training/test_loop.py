"""The training pipeline: learning, exact resume, budgets, divergence, Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from charlm import checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.errors import CharlmError
from charlm.training import loop, plans
from tests.helpers import run_events


def make_text(n_words: int = 4000, seed: int = 0) -> str:
    """A tiny language: a few words in a loose grammar, with line breaks."""
    rng = np.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "my bird"], ["sat on", "ran to", "saw"], ["the mat", "a tree"]
    lines = []
    for _ in range(n_words // 6):
        lines.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.")
    return "\n".join(lines) + "\n"


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text(make_text())
    return p


def run_to_end(data, run_dir, mcfg, ocfg, tcfg, resume=None, stop_at=None):
    """All events of a run; with stop_at, a Ctrl-C after that many steps."""
    return run_events(plans.decide(data, run_dir, mcfg, ocfg, tcfg, checkpoint=resume), stop_at)


def small(data, **kw):
    mcfg = ModelConfig(len(data.vocab), **{"cell": "lstm", "layers": 2, "hidden": 16, "embedding_dim": 8,
                                           "dropout": 0.1, **kw})
    return mcfg


def test_tiny_model_learns_far_below_ln_v(text_file, tmp_path):
    data = corpus.load(text_file, tmp_path / "run")
    mcfg = ModelConfig(len(data.vocab), cell="gru", layers=1, hidden=32)
    tcfg = TrainConfig(seq_len=20, batch_size=8, max_steps=250, eval_every=250, seed=0)
    events = run_to_end(data, tmp_path / "run", mcfg, OptimConfig(lr=1e-2), tcfg)
    done = events[-1]
    assert done["event"] == "done"
    assert done["best"] < 0.5 * math.log(len(data.vocab)), done["best"]


@pytest.mark.parametrize(("schedule", "workers"), [("constant", 1), ("cosine", 1), ("cosine", 2)])
def test_resume_is_bit_identical(text_file, tmp_path, schedule, workers):
    data = corpus.load(text_file, tmp_path / "cache")
    mcfg = small(data)
    ocfg = OptimConfig(schedule=schedule, warmup_steps=3)
    tcfg = TrainConfig(seq_len=10, batch_size=4, max_steps=40, eval_every=7, seed=5, workers=workers)
    run_to_end(data, tmp_path / "once", mcfg, ocfg, tcfg)
    # crosses an epoch boundary? 40 steps of 4×10 over ~90 KB: no; a second test covers epochs
    run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg, stop_at=20)
    with open(tmp_path / "twice" / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "seconds": 1.2, "train_lo')  # a crash tore the last line mid-write
    half = checkpoint.load(tmp_path / "twice" / "last.pkl")
    assert half.step == 20
    run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg, resume=half)
    a = checkpoint.load(tmp_path / "once" / "last.pkl")
    b = checkpoint.load(tmp_path / "twice" / "last.pkl")
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
    for slot in a.optimizer["slots"]:
        for name in a.params:
            assert np.array_equal(a.optimizer["slots"][slot][name], b.optimizer["slots"][slot][name])
    assert a.step == b.step == 40
    assert a.train.workers == workers  # a resume keeps the worker count, hence the run
    steps = [json.loads(line)["step"] for line in (tmp_path / "twice" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated lines after the resume


def test_resume_across_epochs_and_state_resets(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(make_text(600))
    data = corpus.load(p, tmp_path / "cache")
    mcfg = small(data, cell="rnn")
    tcfg = TrainConfig(seq_len=10, batch_size=4, epochs=3, eval_every=5, seed=1)
    run_to_end(data, tmp_path / "once", mcfg, OptimConfig(), tcfg)
    run_to_end(data, tmp_path / "twice", mcfg, OptimConfig(), tcfg, stop_at=13)
    run_to_end(data, tmp_path / "twice", mcfg, OptimConfig(), tcfg,
               resume=checkpoint.load(tmp_path / "twice" / "last.pkl"))
    a, b = (checkpoint.load(tmp_path / d / "last.pkl") for d in ("once", "twice"))
    assert a.progress.epoch == 3
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_same_seed_same_run(text_file, tmp_path):
    data = corpus.load(text_file, tmp_path / "cache")
    tcfg = TrainConfig(seq_len=10, batch_size=4, max_steps=10, eval_every=10, seed=3)
    for d in ("a", "b"):
        run_to_end(data, tmp_path / d, small(data), OptimConfig(), tcfg)
    a, b = (checkpoint.load(tmp_path / d / "last.pkl").params for d in ("a", "b"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_short_corpus_shrinks_the_batch_out_loud(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 10)
    data = corpus.load(p, tmp_path / "run")
    tcfg = TrainConfig(seq_len=10, batch_size=50, max_steps=2, eval_every=2, val_fraction=0.2)
    events = run_to_end(data, tmp_path / "run", small(data), OptimConfig(), tcfg)
    notes = [e["text"] for e in events if e["event"] == "note"]
    assert notes and "using --batch-size 7" in notes[0]
    p.write_text("abc")
    data = corpus.load(p, tmp_path / "run2")
    with pytest.raises(CharlmError, match="too short"):
        run_to_end(data, tmp_path / "run2", small(data), OptimConfig(), tcfg)


def test_divergence_stops_and_keeps_last_good(text_file, tmp_path):
    data = corpus.load(text_file, tmp_path / "run")
    mcfg = ModelConfig(len(data.vocab), cell="rnn", layers=1, hidden=16)
    tcfg = TrainConfig(seq_len=10, batch_size=4, max_steps=5, eval_every=5)
    run_to_end(data, tmp_path / "run", mcfg, OptimConfig(), tcfg)
    good = (tmp_path / "run" / "last.pkl").read_bytes()
    resume = checkpoint.load(tmp_path / "run" / "last.pkl")
    wild = OptimConfig(name="adam", lr=1e3, clip=0, weight_decay=0.0, ema=0.0)  # the moments made below
    zeros = {k: np.zeros_like(v) for k, v in resume.params.items()}
    resume = dataclasses.replace(resume, optimizer={"step": 0, "slots": {"m": zeros, "v": dict(zeros)}})
    events = run_to_end(data, tmp_path / "run", mcfg, wild, TrainConfig(seq_len=10, batch_size=4,
                                                                       max_steps=200, eval_every=50), resume)
    assert events[-1]["event"] == loop.DIVERGED
    assert (tmp_path / "run" / "last.pkl").read_bytes() == good


def test_budgets(text_file, tmp_path):
    data = corpus.load(text_file, tmp_path / "run")
    tcfg = TrainConfig(seq_len=10, batch_size=4, time_budget=0.5, eval_every=10**6)
    t0 = time.perf_counter()
    cosine = OptimConfig(schedule="cosine", warmup_steps=0)
    done = run_to_end(data, tmp_path / "run", small(data), cosine, tcfg)[-1]
    assert "time-budget" in done["reason"] and time.perf_counter() - t0 < 30
    lrs = [e["lr"] for e in run_to_end(data, tmp_path / "r2", small(data), cosine,
                                       TrainConfig(seq_len=10, batch_size=4, max_steps=20))
           if e["event"] == "step"]
    assert lrs[0] == pytest.approx(cosine.lr, rel=0.01) and lrs[-1] < 0.15 * cosine.lr


def charlm(*args, cwd, **kw):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "charlm", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kw)


TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "10", "--batch-size", "4", "--eval-every", "10"]


def test_cli_resume_matches_one_run(text_file, tmp_path):
    r = charlm("train", str(text_file), "--out", "once", "--max-steps", "30", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = charlm("train", str(text_file), "--out", "twice", "--max-steps", "15", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = charlm("train", "--resume", "twice", "--max-steps", "30", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    a, b = (checkpoint.load(tmp_path / d / "last.pkl").params for d in ("once", "twice"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    r = charlm("train", str(text_file), "--out", "once", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and "already holds a run" in r.stderr
    r = charlm("train", "--resume", "twice", "--hidden", "32", cwd=tmp_path)
    assert r.returncode == 2 and "--hidden 32 differs from this run's 16" in r.stderr


def test_ctrl_c_saves_and_exits_130(text_file, tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "charlm", "train", str(text_file), "--out", "run",
                             "--max-steps", "100000", *TINY], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "charlm train --resume run" in err and "Traceback" not in err
    saved = checkpoint.load(tmp_path / "run" / "last.pkl")
    assert saved.step >= 20
    r = charlm("train", "--resume", "run", "--max-steps", str(saved.step + 5), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert checkpoint.load(tmp_path / "run" / "last.pkl").step == saved.step + 5
