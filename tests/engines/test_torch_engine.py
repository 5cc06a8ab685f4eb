"""The torch engine (charlm/engines/torch_team.py): the same run as the numpy engine,
one process or several under torchrun, and checkpoints every command reads.

Everything that needs torch is skipped where it is not installed (CI has none); the
first two tests run everywhere: torch stays out of `import charlm` and the numpy
path, and `--engine torch` without it is one line saying how to install it.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from charlm import checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import batches, corpus
from charlm.nn import model, optim
from charlm.use import evaluate
from tests.helpers import ENV, assert_one_line_error, charlm
from tests.training.test_loop import make_text, run_to_end

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed (pip install 'charlm[torch]')")

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--cell", "lstm", "--layers", "2", "--hidden", "16", "--embedding-dim", "8", "--batch-size", "6",
        "--seq-len", "12", "--seed", "4", "--sample-every", "0"]


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "tiny.txt"
    p.write_text(make_text())
    return p


def _python(code: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**ENV, "PYTHONPATH": str(ROOT)}, text=True,
                          capture_output=True, timeout=timeout)


def test_numpy_path_never_imports_torch(text_file, tmp_path):
    code = f"""
import sys
from pathlib import Path
import charlm, charlm.cli, charlm.training.loop, charlm.training.plans, charlm.engines
from charlm.training import loop, plans
from charlm.data import corpus
from charlm.config import ModelConfig, OptimConfig, TrainConfig
data = corpus.load(Path({str(text_file)!r}), Path({str(tmp_path / "run")!r}))
tcfg = TrainConfig(seq_len=8, batch_size=4, max_steps=3, eval_every=3, workers=1)
plan = plans.decide(data, Path({str(tmp_path / "run")!r}), ModelConfig(len(data.vocab), hidden=8), OptimConfig(), tcfg)
list(loop.run(plan))
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_engine_torch_without_torch_is_one_line(text_file, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` now raises ImportError, as without it
            "from charlm.cli import main\n"
            f"main(['train', {str(text_file)!r}, '--out', 'r', '--engine', 'torch', '--max-steps', '2'])")
    proc = _python(code, tmp_path)
    err = assert_one_line_error(proc, 1, "pip install 'charlm[torch]'")
    assert "--engine torch needs PyTorch" in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- torch from here


def _cfgs(data, cell="lstm", embedding_dim=8, engine="numpy", optimizer="adam", tie=False, **train_kw):
    mcfg = ModelConfig(len(data.vocab), cell=cell, layers=2, hidden=embedding_dim if tie else 16,
                       embedding_dim=embedding_dim, tie_weights=tie)
    lr = {"adam": 3e-3, "rmsprop": 3e-3, "sgd": 0.5}[optimizer]
    ocfg = OptimConfig(name=optimizer, lr=lr, schedule="cosine", warmup_steps=5)
    tcfg = TrainConfig(**{"seq_len": 16, "batch_size": 6, "max_steps": 30, "eval_every": 15, "seed": 7,
                          "workers": 1, "engine": engine, **train_kw})
    return mcfg, ocfg, tcfg


def _losses(events) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([e["loss"] for e in events if e["event"] == "step"]),
            np.array([e["val_loss"] for e in events if e["event"] == "eval"]))


@needs_torch
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [0, 8])
def test_30_steps_agree_with_the_numpy_engine(text_file, tmp_path, cell, embedding_dim):
    """Same seed, same run: loss by loss, validations, and the parameters at the end."""
    data = corpus.load(text_file, tmp_path / "cache")
    runs = {}
    for engine in ("numpy", "torch"):
        mcfg, ocfg, tcfg = _cfgs(data, cell, embedding_dim, engine)
        runs[engine] = run_to_end(data, tmp_path / engine, mcfg, ocfg, tcfg)
    (a, va), (b, vb) = _losses(runs["numpy"]), _losses(runs["torch"])
    assert len(a) == len(b) == 30 and len(va) == len(vb) == 2
    np.testing.assert_allclose(b, a, rtol=1e-5)
    np.testing.assert_allclose(vb, va, rtol=1e-5)
    pa, pb = (checkpoint.load(tmp_path / e / "last.pkl") for e in ("numpy", "torch"))
    assert pb.train.engine == "torch"
    for name in pa.params:
        np.testing.assert_allclose(pb.params[name], pa.params[name], atol=1e-5, err_msg=name)
    for k in pa.carried_state:
        np.testing.assert_allclose(pb.carried_state[k], pa.carried_state[k], atol=1e-5)


@needs_torch
@pytest.mark.parametrize(("optimizer", "tie"), [("rmsprop", False), ("sgd", False), ("adam", True)])
def test_optimizers_and_tied_weights_agree(text_file, tmp_path, optimizer, tie):
    data = corpus.load(text_file, tmp_path / "cache")
    out = {}
    for engine in ("numpy", "torch"):
        mcfg, ocfg, tcfg = _cfgs(data, "gru", 8, engine, optimizer, tie, max_steps=20, eval_every=20)
        out[engine] = _losses(run_to_end(data, tmp_path / engine, mcfg, ocfg, tcfg))[0]
    np.testing.assert_allclose(out["torch"], out["numpy"], rtol=1e-5)


def float64_pair(cell: str, ocfg: OptimConfig):
    """A float64 torch team and the numpy reference it must equal, from the same start:
    (cfg, team, its optimizer state, the numpy optimizer state, the numpy parameters, the numpy
    carried state, the lanes, the window length)."""
    from charlm.engines.torch_team import TorchTeam

    V, B, T = 11, 6, 7
    cfg = ModelConfig(vocab_size=V, cell=cell, layers=2, hidden=9, embedding_dim=5)
    rng = np.random.default_rng(0)
    params = model.init_params(cfg, rng, dtype=np.float64)
    ids = rng.integers(0, V, 600).astype(np.uint8)
    team = TorchTeam(cfg, params, B, {"train": ids}, device="cpu", distributed=False)
    opt_t = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
    ref = {k: v.copy() for k, v in params.items()}
    return cfg, team, opt_t, optim.init_state(ocfg, params), ref, model.init_state(cfg, B, np.float64), \
        batches.lanes(ids, B), T


@needs_torch
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_float64_step_is_charlm_s_formulas(cell, name):
    """In float64 the engines agree to rounding: loss, gradient, clipping, the optimizer
    update and the carried state of one step, then a second step from there."""
    ocfg = OptimConfig(name=name, clip=0.5)
    cfg, team, opt_t, opt_n, ref, state, lanes, T = float64_pair(cell, ocfg)
    for k in range(2):
        x, y = batches.window(lanes, k, T)
        loss, _, state, cache = model.forward(ref, cfg, x, y, state)
        grads, _ = model.backward(ref, cfg, cache)
        t_loss, t_grads = team.train_step("train", k, T, k)
        assert t_loss == pytest.approx(loss, rel=1e-12)
        for n, g in zip(team.spec.layout.names, t_grads, strict=True):
            np.testing.assert_allclose(g.numpy(), grads[n], rtol=1e-9, atol=1e-12, err_msg=n)
        assert team.clip_grads(t_grads, ocfg.clip) == pytest.approx(optim.clip_grads(grads, ocfg.clip), rel=1e-12)
        team.update(t_grads, opt_t, ocfg, 1e-2)
        optim.update(ref, grads, opt_n, ocfg, 1e-2)
        for n, p in team.params.items():
            np.testing.assert_allclose(p, ref[n], rtol=1e-10, atol=1e-13, err_msg=n)
        _, slots, carried = team.checkpoint_arrays(opt_t)
        for s in slots:
            for n in slots[s]:
                np.testing.assert_allclose(slots[s][n], opt_n["slots"][s][n], rtol=1e-9, atol=1e-15)
        for n, v in state.items():
            np.testing.assert_allclose(carried[n], v, rtol=1e-10, atol=1e-13)


@needs_torch
@pytest.mark.parametrize("embedding_dim", [0, 5])
def test_score_is_evaluate_score_ids(embedding_dim):
    """Validation: the same lanes, warm-up and tail as evaluate.score_ids."""
    from charlm.engines.torch_team import TorchTeam

    cfg = ModelConfig(vocab_size=11, cell="gru", layers=2, hidden=9, embedding_dim=embedding_dim)
    rng = np.random.default_rng(1)
    params = model.init_params(cfg, rng, dtype=np.float64)
    ids = rng.integers(0, 11, 557).astype(np.uint8)
    whole = evaluate.score_ids(params, cfg, ids, batch=5, seq_len=16, warmup=20)
    team = TorchTeam(cfg, params, 6, {"val": ids}, device="cpu", distributed=False)
    got = team.score("val", 5, 16, warmup=20)
    assert got.chars == whole.chars == 556
    assert got.nats_per_char == pytest.approx(whole.nats_per_char, rel=1e-12)


@needs_torch
@pytest.mark.parametrize(("first", "then"), [("numpy", "torch"), ("torch", "numpy"), ("torch", "torch")])
def test_resume_continues_across_engines(text_file, tmp_path, first, then):
    """Stop after 12 steps on one engine, resume on the other: the run a numpy run
    would have been, to float32 rounding (and a torch-only resume exactly as the run)."""
    data = corpus.load(text_file, tmp_path / "cache")
    mcfg, ocfg, tcfg = _cfgs(data, "lstm", 8, "numpy", max_steps=24, eval_every=8)
    once = _losses(run_to_end(data, tmp_path / "once", mcfg, ocfg, tcfg))[0]
    tcfg_first = TrainConfig(**{**tcfg.__dict__, "engine": first})
    part1 = _losses(run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg_first, stop_at=12))[0]
    half = checkpoint.load(tmp_path / "twice" / "last.pkl")
    assert half.step == 12 and half.train.engine == first
    tcfg_then = TrainConfig(**{**tcfg.__dict__, "engine": then})
    part2 = _losses(run_to_end(data, tmp_path / "twice", mcfg, ocfg, tcfg_then, resume=half))[0]
    both = np.concatenate([part1, part2])
    assert len(both) == 24
    np.testing.assert_allclose(both, once, rtol=1e-5)
    a, b = (checkpoint.load(tmp_path / d / "last.pkl") for d in ("once", "twice"))
    assert b.step == 24 and b.train.engine == then
    for name in a.params:
        np.testing.assert_allclose(b.params[name], a.params[name], atol=1e-5, err_msg=name)
    if first == then == "torch":  # the same engine: the same numbers as one uninterrupted torch run
        whole = _losses(run_to_end(data, tmp_path / "t-once", mcfg, ocfg,
                                   TrainConfig(**{**tcfg.__dict__, "engine": "torch"})))[0]
        assert np.array_equal(both, whole)


@needs_torch
def test_dropout_runs_repeat_and_resume_exactly(text_file, tmp_path):
    """With dropout the masks are torch's, seeded by (seed, step, rank): the same run twice,
    and a resume continues it bit for bit (CPU)."""
    data = corpus.load(text_file, tmp_path / "cache")
    mcfg, ocfg, tcfg = _cfgs(data, "gru", 8, "torch", max_steps=10, eval_every=5)
    mcfg = ModelConfig(**{**mcfg.__dict__, "dropout": 0.3})
    a = _losses(run_to_end(data, tmp_path / "a", mcfg, ocfg, tcfg))[0]
    b = _losses(run_to_end(data, tmp_path / "b", mcfg, ocfg, tcfg))[0]
    c1 = _losses(run_to_end(data, tmp_path / "c", mcfg, ocfg, tcfg, stop_at=4))[0]
    c2 = _losses(run_to_end(data, tmp_path / "c", mcfg, ocfg, tcfg,
                            resume=checkpoint.load(tmp_path / "c" / "last.pkl")))[0]
    assert np.array_equal(a, b) and np.array_equal(a, np.concatenate([c1, c2]))


@needs_torch
def test_torch_checkpoint_works_with_every_command(text_file, tmp_path):
    """`charlm sample` at temperature 0 writes the same text from the torch engine's run as
    from the numpy engine's; info, eval and export read it as any checkpoint."""
    for engine in ("numpy", "torch"):
        proc = charlm(["train", text_file, "--out", engine, "--engine", engine, "--max-steps", "30",
                       "--eval-every", "15", *TINY], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert "torch engine" in proc.stderr
    texts = [charlm(["sample", "--model", e, "--temperature", "0", "--length", "300", "--prime", "the "],
                    cwd=tmp_path) for e in ("numpy", "torch")]
    assert all(t.returncode == 0 for t in texts), texts[1].stderr
    assert texts[0].stdout == texts[1].stdout and len(texts[1].stdout) >= 300
    info = json.loads(charlm(["info", "torch", "--json"], cwd=tmp_path).stdout)
    assert info["train_config"]["engine"] == "torch"
    scores = [json.loads(charlm(["eval", "perplexity", "--model", e, "--json"], cwd=tmp_path).stdout)
              for e in ("numpy", "torch")]
    assert scores[1]["nats_per_char"] == pytest.approx(scores[0]["nats_per_char"], rel=1e-5)
    assert charlm(["export", "torch", "m.npz", "--format", "torch"], cwd=tmp_path).returncode == 0


def _torchrun(args, cwd: Path, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "charlm", *map(str, args)], cwd=cwd, env={**ENV, "OMP_NUM_THREADS": "1"},
                          text=True, capture_output=True, timeout=timeout)


@needs_torch
def test_torchrun_two_processes_train_the_one_process_run(text_file, tmp_path):
    """torchrun --standalone --nproc_per_node 2 (gloo): each rank takes half the lanes; the
    parameters, carried state, losses and validations are the one-process run's; only rank 0
    writes. Then the 2-process checkpoint resumes in one process, to the run's end."""
    common = ["train", text_file, "--engine", "torch", "--device", "cpu", "--eval-every", "6", *TINY]
    two = _torchrun([*common, "--out", "two", "--max-steps", "12"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("charlm: done") == 1  # rank 0 reports; rank 1 is silent
    assert "2 processes (DDP over gloo)" in two.stderr
    one = charlm([*common, "--out", "one", "--max-steps", "12"], cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    a, b = (checkpoint.load(tmp_path / d / "last.pkl") for d in ("one", "two"))
    for name in a.params:
        np.testing.assert_allclose(b.params[name], a.params[name], atol=1e-6, err_msg=name)
    for slot in a.optimizer["slots"]:
        for name in a.params:
            np.testing.assert_allclose(b.optimizer["slots"][slot][name], a.optimizer["slots"][slot][name],
                                       rtol=1e-4, atol=1e-9)
    for k in a.carried_state:
        assert b.carried_state[k].shape == (2, 6, 16)  # every lane's state, gathered on rank 0
        np.testing.assert_allclose(b.carried_state[k], a.carried_state[k], atol=1e-6)
    la, lb = ([json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
              for d in ("one", "two"))
    assert [x["step"] for x in la] == [x["step"] for x in lb]
    np.testing.assert_allclose([x["train_loss"] for x in lb], [x["train_loss"] for x in la], rtol=1e-5)
    np.testing.assert_allclose([x["val_loss"] for x in lb if x["val_loss"]],
                               [x["val_loss"] for x in la if x["val_loss"]], rtol=1e-6)
    # a different K on resume: 2 processes → 1, to step 18, as the one-process run continued
    for d in ("one", "two"):
        proc = charlm(["train", "--resume", d, "--max-steps", "18"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    a, b = (checkpoint.load(tmp_path / d / "last.pkl") for d in ("one", "two"))
    assert a.step == b.step == 18 and b.train.engine == "torch"
    for name in a.params:
        np.testing.assert_allclose(b.params[name], a.params[name], atol=1e-6, err_msg=name)


@needs_torch
def test_torchrun_time_budget_stops_every_rank_at_one_step(text_file, tmp_path):
    """A time budget ends both ranks at the same step (rank 0's clock): no rank is left
    waiting in a collective, and the resume of that run by 2 processes has nothing to do."""
    args = ["train", text_file, "--engine", "torch", "--out", "tb", "--time-budget", "1.5", "--eval-every", "5",
            *TINY]
    proc = _torchrun(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reached --time-budget 1.5s" in proc.stderr
    ckpt = checkpoint.load(tmp_path / "tb" / "last.pkl")
    assert ckpt.step > 0 and ckpt.progress.elapsed >= 1.5


@needs_torch
def test_torchrun_ctrl_c_stops_every_rank_at_one_step_and_saves(text_file, tmp_path):
    """Ctrl-C to torchrun reaches every rank (torchrun passes SIGINT on); they agree on the
    step to stop at, rank 0 saves last.pkl there and says how to resume."""
    args = ["train", text_file, "--engine", "torch", "--out", "cc", "--max-steps", "100000", "--eval-every", "1000",
            *TINY]
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "charlm", *map(str, args)], cwd=tmp_path, env={**ENV, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "cc" / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    m = re.search(r"charlm: interrupted at step (\d+); saved .*last.pkl", err)
    assert m, err[-3000:]
    step = int(m.group(1))
    assert checkpoint.load(tmp_path / "cc" / "last.pkl").step == step >= 10
    # and 2 processes resume it: rank 0 reads the checkpoint and sends it to rank 1
    again = _torchrun(["train", "--resume", "cc", "--engine", "torch", "--max-steps", step + 4], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"after {step + 4} steps" in again.stderr
    assert checkpoint.load(tmp_path / "cc" / "last.pkl").step == step + 4


@needs_torch
def test_numpy_engine_under_torchrun_is_refused(text_file, tmp_path):
    proc = charlm(["train", text_file, "--out", "x", "--max-steps", "2"], cwd=tmp_path, env={"WORLD_SIZE": "2"})
    assert_one_line_error(proc, 2, "--engine torch")


@needs_torch
def test_unusable_device_is_one_line(text_file, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = charlm(["train", text_file, "--out", "x", "--engine", "torch", "--device", "cuda", "--max-steps", "2"],
                  cwd=tmp_path)
    assert_one_line_error(proc, 1, "--device cuda")


def test_engine_is_recorded_and_checked():
    assert TrainConfig().engine == "numpy"
    with pytest.raises(Exception, match="unknown engine"):
        TrainConfig(engine="jax")
    assert TrainConfig(engine="torch").engine == "torch"
