"""The timed workloads: charlm, PyTorch and the textbook LSTM, training, eval, sampling.

A `Workload` is set up when its builder is called and then timed by `run(k)`, which
does k units of work (k training steps, k eval batches, k·SAMPLE_UNIT characters, k
matrix products) and returns how much it did (characters, or FLOPs for the GEMM).
Each charlm entry point sits in one small function (`charlm_train_step`,
`charlm_eval`, `charlm_sample`) so that pointing the harness at a faster one is a
one-line change.

Letters: N streams (batch), T time steps, V vocab, E embedding width, H hidden,
G gates per cell (RNN 1, GRU 3, LSTM 4), L layers.

FLOPs counted for one training step (matrix products only, 2 FLOPs per multiply-add;
elementwise gate math, softmax, embedding lookups and Adam are left out, so the
GFLOP/s figure slightly understates the work done). Per character:
    forward   2·G·H·(E + H) for layer 0, 2·G·H·(H + H) for each layer above,
              2·H·V for the decoder;
    backward  twice the forward: every product W·x has one for dx and one for dW
              (dh for the recurrent product).
So train = 6·[G·H·(E + H) + (L − 1)·G·H·2H + H·V] FLOPs/char; eval = a third of that.
2×512 LSTM, V = 65: 25.4 MFLOP/char.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.textbook_lstm import TextbookLSTM
from benchmarks.torch_ref import TorchLM
from charlm import threads
from charlm.config import ModelConfig, OptimConfig
from charlm.engines.numpy_team import NumpyTeam
from charlm.nn import model, optim, stepping
from charlm.nn.sample import next_ids

VOCAB = 65              # V: tiny-shakespeare's alphabet
BATCH, SEQ = 50, 50     # N, T of a training step (issue 5)
EVAL_BATCH = 500        # N of an eval batch ("large batch")
SAMPLE_UNIT = 10        # characters per sampling work unit
GEMM_SHAPE = (2500, 512, 2048)  # (M, K, N): (2500×512)·(512×2048), issue 5's reference product
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass
class Workload:
    name: str                       # row label, e.g. "charlm train"
    lib: str                        # "numpy" | "torch": whose thread pool runs it
    unit: str                       # what run() returns: "chars" | "flop"
    run: Callable[[int], float]     # run(k): do k units of work, return the amount done
    close: Callable[[], None] = field(default=lambda: None)  # stops its worker processes, if any


def train_flops_per_char(cell: str, hidden: int, layers: int = 2, embedding: int | None = None,
                         vocab: int = VOCAB) -> float:
    """Matrix-product FLOPs of one character's forward + backward (module docstring)."""
    G, H, E = GATES[cell], hidden, embedding or hidden
    fwd = G * H * (E + H) + (layers - 1) * G * H * 2 * H + H * vocab  # multiply-adds
    return 6.0 * fwd


def _batches(rng: np.random.Generator, n: int, count: int = 4):
    """`count` random (ids, targets) pairs of shape (n, SEQ), cycled by the workloads."""
    data = rng.integers(0, VOCAB, (count, n, SEQ + 1))         # (count, N, T+1)
    return [(d[:, :-1], d[:, 1:]) for d in data]


# ---------------------------------------------------------- charlm entry points

def charlm_train_step(team: NumpyTeam, ocfg, ostate: dict, window: int, step: int) -> float:
    """One Adam step with global-norm clipping, as `charlm train` takes it: the team's
    ranks share the lanes, then clip and update the flat parameters; returns the loss."""
    loss, grad = team.train_step("train", window, SEQ, step)             # grad (P,)
    team.clip_grads(grad, ocfg.clip)
    team.update(grad, ostate, ocfg, ocfg.lr)
    return loss


def charlm_eval(team: NumpyTeam) -> float:
    """Score the team's "text" ids as EVAL_BATCH lanes of SEQ characters from a zero
    state, forward only, over its ranks (what `eval perplexity` runs)."""
    return team.score("text", EVAL_BATCH, SEQ, warmup=0).nats_per_char


def charlm_sample(run: dict, ids, n_chars, rng):
    """n_chars characters for each stream of a prepared sampler run, through the same
    `advance` and draw that `charlm sample` uses (which prepares once per command); returns the last ids."""
    for _ in range(n_chars):
        logits = stepping.advance(run, ids)                         # (N, V)
        ids = next_ids(logits, rng, temperature=1.0)             # (N,)
    return ids


def _charlm_setup(cell: str, hidden: int, layers: int):
    cfg = ModelConfig(vocab_size=VOCAB, cell=cell, layers=layers, hidden=hidden, embedding_dim=hidden)
    return cfg, model.init_params(cfg, np.random.default_rng(0))


# ---------------------------------------------------------------- builders

def gemm() -> Workload:
    M, K, N = GEMM_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K), dtype=np.float32)           # (M, K)
    b = rng.standard_normal((K, N), dtype=np.float32)           # (K, N)
    c = np.empty((M, N), np.float32)                            # (M, N)

    def run(k):
        for _ in range(k):
            np.matmul(a, b, out=c)
        return 2.0 * M * K * N * k
    return Workload("numpy GEMM", "numpy", "flop", run)


def charlm_train(cell: str, hidden: int, layers: int = 2, workers: int | None = None,
                 blas: int = 1) -> Workload:
    """charlm's training step with `workers` processes (None: charlm's policy) of `blas`
    BLAS threads each; workers=1, blas=2 is the single process of the first release."""
    cfg, params = _charlm_setup(cell, hidden, layers)
    ocfg = OptimConfig(lr=2e-3, clip=5.0, schedule="constant")
    ids = np.random.default_rng(1).integers(0, VOCAB, BATCH * (4 * SEQ + 1)).astype(np.uint8)  # 4 windows
    team = NumpyTeam(cfg, params, BATCH, threads.workers(workers, BATCH), {"train": ids}, threads=blas)
    team.reset_state()
    ostate = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
    carry = {"i": 0}

    def run(k):
        with threads.limited(blas):
            for _ in range(k):
                charlm_train_step(team, ocfg, ostate, carry["i"] % 4, carry["i"])
                carry["i"] += 1
        return k * BATCH * SEQ
    return Workload("charlm train", "numpy", "chars", run, team.close)


def charlm_torch_train(cell: str, hidden: int, layers: int = 2) -> Workload:
    """charlm's training step on its torch engine (charlm/engines/torch_team.py), on the CPU in
    this process with torch's threads (2 here): the same lanes, clipping and Adam as
    `charlm_train`, as `charlm train --engine torch --device cpu` takes it."""
    from charlm.engines.torch_team import TorchTeam

    cfg, params = _charlm_setup(cell, hidden, layers)
    ocfg = OptimConfig(lr=2e-3, clip=5.0)
    ids = np.random.default_rng(1).integers(0, VOCAB, BATCH * (4 * SEQ + 1)).astype(np.uint8)  # 4 windows
    team = TorchTeam(cfg, params, BATCH, {"train": ids}, device="cpu", distributed=False)
    opt = team.optimizer_state(0, optim.init_state(ocfg, params)["slots"])
    carry = {"i": 0}

    def run(k):
        for _ in range(k):
            _, grads = team.train_step("train", carry["i"] % 4, SEQ, carry["i"])
            team.clip_grads(grads, ocfg.clip)
            team.update(grads, opt, ocfg, ocfg.lr)
            carry["i"] += 1
        return k * BATCH * SEQ
    return Workload("charlm train, torch engine", "torch", "chars", run)


def charlm_evaluate(cell: str, hidden: int, layers: int = 2, workers: int | None = None,
                    blas: int = 1) -> Workload:
    cfg, params = _charlm_setup(cell, hidden, layers)
    ids = np.random.default_rng(2).integers(0, VOCAB, EVAL_BATCH * SEQ + 1).astype(np.uint8)
    team = NumpyTeam(cfg, params, EVAL_BATCH, threads.workers(workers, EVAL_BATCH), {"text": ids}, threads=blas)

    def run(k):
        with threads.limited(blas):
            for _ in range(k):
                charlm_eval(team)
        return k * EVAL_BATCH * SEQ
    return Workload("charlm eval", "numpy", "chars", run, team.close)


def charlm_sampler(cell: str, hidden: int, streams: int, layers: int = 2) -> Workload:
    cfg, params = _charlm_setup(cell, hidden, layers)
    rng = np.random.default_rng(3)
    sampler = stepping.prepare(params, cfg, model.init_state(cfg, streams))  # prepared once, as the CLI does
    carry = {"ids": np.zeros(streams, np.intp)}

    def run(k):
        with threads.limited(threads.blas_threads()):  # as `charlm sample` runs
            carry["ids"] = charlm_sample(sampler, carry["ids"], k * SAMPLE_UNIT, rng)
        return k * SAMPLE_UNIT * streams
    return Workload(f"charlm sample ×{streams}", "numpy", "chars", run)


def _cycled_training(name: str, kind: str, train_step, data: list) -> Workload:
    """k training steps per call, cycling through `data` (a list of (ids, targets))."""
    carry = {"i": 0}

    def run(k):
        for _ in range(k):
            train_step(*data[carry["i"] % len(data)])
            carry["i"] += 1
        return k * BATCH * SEQ
    return Workload(name, kind, "chars", run)


def textbook_train(hidden: int, layers: int = 2) -> Workload:
    lm = TextbookLSTM(VOCAB, hidden, layers, lr=2e-3, clip=5.0)
    return _cycled_training("textbook train", "numpy", lm.train_step, _batches(np.random.default_rng(1), BATCH))


def torch_train(torch, cell: str, hidden: int, layers: int = 2) -> Workload:
    lm = TorchLM(torch, cell, VOCAB, hidden, layers)
    data = [(lm.tensor(i), lm.tensor(t)) for i, t in _batches(np.random.default_rng(1), BATCH)]
    return _cycled_training("torch train", "torch", lm.train_step, data)


def torch_evaluate(torch, cell: str, hidden: int, layers: int = 2) -> Workload:
    lm = TorchLM(torch, cell, VOCAB, hidden, layers)
    ids, targets = (lm.tensor(a) for a in _batches(np.random.default_rng(2), EVAL_BATCH, count=1)[0])

    def run(k):
        for _ in range(k):
            lm.evaluate(ids, targets)
        return k * EVAL_BATCH * SEQ
    return Workload("torch eval", "torch", "chars", run)


def torch_sampler(torch, cell: str, hidden: int, streams: int, layers: int = 2) -> Workload:
    lm = TorchLM(torch, cell, VOCAB, hidden, layers)
    carry = {"ids": torch.zeros((streams, 1), dtype=torch.long), "state": None}

    def run(k):
        carry["ids"], carry["state"] = lm.sample(carry["ids"], carry["state"], k * SAMPLE_UNIT)
        return k * SAMPLE_UNIT * streams
    return Workload(f"torch sample ×{streams}", "torch", "chars", run)
