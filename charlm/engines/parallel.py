"""Data parallelism on one machine: the B lanes of a batch split over K processes.

Rank 0 is the calling process; ranks 1..K-1 are worker processes it spawns. Each
rank owns a contiguous share of the lanes and their carried state, and runs one
BLAS thread (charlm/threads.py says why). Shared memory — one file in /dev/shm,
unlinked as soon as every rank has mapped it, so nothing is left behind even by a
crash — holds:
    params    (P,)           the parameters, flat (charlm/engines/flat.py); only rank 0
                             writes them, and only between steps
    grads     (K, P)         each rank's gradient of its own mean loss
    state     h (L, B, H)    the carried state of every lane (+ c for LSTM)
    losses    (K,)           each rank's mean loss over its positions
    scores    (K, 2)         each rank's (nll sum, count) from a scoring pass
    ids:NAME  (n,)           the id arrays the ranks read (training text, validation), unless
                             they are a `FileSlice` of the corpus's id cache: then every rank
                             maps that file read-only, and the page cache holds one copy
A training step: rank 0 tells every worker which window to train on, does its own
share, waits for all of them and sums the gradients in rank order, each weighted
by its rank's share of the lanes: the gradient of the mean loss over all B·T
positions. The ranks synchronise once per step, through pipes, never inside it.

Determinism: rank r draws its dropout masks (charlm/nn/dropout.py) from a generator
seeded by (seed, step, r) and the sum runs in a fixed order, so a run is the same for a
given K and a resume needs no generator state. With K = 1 nothing is spawned or shared.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig
from charlm.data import batches
from charlm.data.batches import FileSlice
from charlm.engines.flat import Layout
from charlm.errors import CharlmError
from charlm.nn import model, score

ALIGN = 64  # bytes: every shared array starts on a cache line


@dataclass(frozen=True)
class Spec:
    """What a worker needs to attach to the shared arrays and do its share."""
    cfg: ModelConfig
    layout: Layout
    path: str                                   # the shared-memory file ("" for K = 1)
    size: int                                   # its bytes
    arrays: tuple                               # (name, dtype str, shape, byte offset) each
    files: tuple                                # (name, FileSlice) each: ids every rank maps itself
    shares: tuple[tuple[int, int], ...]         # [lo, hi) lanes of each rank
    seed: int
    threads: int


def _plan(cfg: ModelConfig, layout: Layout, lanes: int, workers: int, ids: dict) -> tuple[tuple, int]:
    """The arrays of the shared memory and its size in bytes."""
    L, H, dt = cfg.layers, cfg.hidden, layout.dtype
    wanted = [("params", dt, (layout.size,)), ("grads", dt, (workers, layout.size)),
              ("state:h", dt, (L, lanes, H)), ("losses", "<f8", (workers,)), ("scores", "<f8", (workers, 2))]
    if cfg.cell == "lstm":
        wanted.append(("state:c", dt, (L, lanes, H)))
    wanted += [(f"ids:{name}", a.dtype.str, a.shape) for name, a in ids.items() if not isinstance(a, FileSlice)]
    out, offset = [], 0
    for name, dtype, shape in wanted:
        out.append((name, dtype, shape, offset))
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        offset += -(-max(nbytes, 1) // ALIGN) * ALIGN
    return tuple(out), offset


class _Rank:
    """One rank's view of the shared arrays and the work it does."""

    def __init__(self, spec: Spec, rank: int, buffer):
        self.spec, self.rank = spec, rank
        self.lo, self.hi = spec.shares[rank]
        self.a = {name: np.frombuffer(buffer, dtype, int(np.prod(shape)), offset).reshape(shape)
                  for name, dtype, shape, offset in spec.arrays}
        self.a |= {f"ids:{name}": f.open() for name, f in spec.files}
        self.params = spec.layout.views(self.a["params"])
        self.grads = self.a["grads"][rank]                                  # (P,) this rank's
        self.state = {k[6:]: v for k, v in self.a.items() if k.startswith("state:")}  # (L, B, H)

    def train(self, source: str, window: int, seq_len: int, step: int) -> None:
        """Forward and backward over this rank's lanes of one window."""
        cfg = self.spec.cfg
        lanes = batches.lanes(self.a[f"ids:{source}"], self.spec.shares[-1][1])[self.lo: self.hi]
        x, y = batches.window(lanes, window, seq_len)                       # (n, T) each
        state = {k: v[:, self.lo: self.hi] for k, v in self.state.items()}  # (L, n, H)
        rng = np.random.default_rng((self.spec.seed, step, self.rank)) if cfg.stochastic else None
        loss, _, final, cache = model.forward(self.params, cfg, x, y, state, rng=rng)
        if math.isfinite(loss):
            grads, _ = model.backward(self.params, cfg, cache)
            self.spec.layout.pack(grads, out=self.grads)
        else:
            self.grads.fill(np.nan)
        for k, v in final.items():
            self.state[k][:, self.lo: self.hi] = v
        self.a["losses"][self.rank] = loss

    def score(self, source: str, batch: int, seq_len: int, warmup: int,
              progress: Callable[[int], None] | None = None) -> None:
        """This rank's part of the lane walk (charlm/nn/score.py) over ids:source."""
        k = len(self.spec.shares)
        total, count = score.score_part(self.params, self.spec.cfg, self.a[f"ids:{source}"], batch=batch,
                                        seq_len=seq_len, warmup=warmup, part=(self.rank, k), progress=progress)
        self.a["scores"][self.rank] = (total, count)


@contextlib.contextmanager
def _caller_not_rerun():
    """Start workers without the caller's __main__. Spawn otherwise re-runs the caller's script in
    every worker (to find anything defined there), which breaks a script that calls charlm at its
    top level, without `if __name__ == "__main__":`, and code read from stdin. The workers run
    charlm's own `_worker` and need nothing from __main__."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__dict__["__spec__"] = None
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def _worker(conn, spec: Spec, rank: int) -> None:
    """A worker process: attach, then do whatever rank 0 asks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is rank 0's to handle
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=spec.threads, user_api="blas")
    with open(spec.path, "r+b") as f:
        buffer = mmap.mmap(f.fileno(), spec.size)
    me = _Rank(spec, rank, buffer)
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            getattr(me, msg[0])(*msg[1:])
            conn.send(("ok",))
        except Exception as e:  # reported to rank 0, which raises it as one line
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Team:
    """K ranks over one batch of lanes; rank 0 runs in this process.

    params: the initial parameters (copied into shared memory; `self.params` are
    the live views to update in place). ids: {name: (n,) id array, copied into shared
    memory, or FileSlice} the ranks read.
    Use as a context manager, or call `close`.
    """

    def __init__(self, cfg: ModelConfig, params: dict[str, np.ndarray], lanes: int, workers: int,
                 ids: dict[str, np.ndarray | FileSlice], seed: int = 0, threads: int = 1):
        layout = Layout.of(params)
        arrays, size = _plan(cfg, layout, lanes, workers, ids)
        self.workers, self.lanes, self.conns, self.procs = workers, lanes, [], []
        path = ""
        if workers == 1:
            buffer = mmap.mmap(-1, size)
        else:
            fd, path = tempfile.mkstemp(prefix="charlm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
            with os.fdopen(fd, "r+b") as f:
                f.truncate(size)
                buffer = mmap.mmap(f.fileno(), size)
        files = tuple((name, a) for name, a in ids.items() if isinstance(a, FileSlice))
        self.spec = Spec(cfg, layout, path, size, arrays, files, batches.shares(lanes, workers), seed, threads)
        self.me = _Rank(self.spec, 0, buffer)
        layout.pack(params, out=self.me.a["params"])
        for name, a in ids.items():
            if not isinstance(a, FileSlice):
                self.me.a[f"ids:{name}"][...] = a
        self.params, self.state = self.me.params, self.me.state
        self.ids = {name: self.me.a[f"ids:{name}"] for name in ids}
        self.flat = self.me.a["params"]                                     # (P,)
        self._total = np.empty_like(self.flat) if workers > 1 else None     # (P,) summed gradient
        try:
            self._spawn(workers)
        except BaseException:
            self.close()
            raise
        finally:
            if path:
                os.unlink(path)  # every rank has it mapped (or has failed): the name can go

    def _spawn(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # fork would copy BLAS thread pools mid-state
        with _caller_not_rerun():
            for rank in range(1, workers):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_worker, args=(child, self.spec, rank), daemon=True,
                                name=f"charlm-rank{rank}")
                p.start()
                child.close()
                self.conns.append(parent)
                self.procs.append(p)
        self._gather()

    def _gather(self, hint: str = "") -> None:
        """Wait for every worker's reply; raise its error (or its death) as one line."""
        problems = []
        for rank, conn in enumerate(self.conns, start=1):
            try:
                reply = conn.recv()
            except (EOFError, OSError):
                reply = ("error", f"exited with code {self.procs[rank - 1].exitcode}")
            if reply[0] == "error":
                problems.append(f"worker {rank}: {reply[1]}")
        if problems:
            raise CharlmError("a worker process failed (" + "; ".join(problems) + "); "
                              f"one process (--workers 1, or workers=1 from Python) works without them{hint}")

    def _all(self, method: str, *args, **local) -> None:
        """Every rank runs `method(*args)`; rank 0 also gets the keyword arguments `local`."""
        for conn in self.conns:
            try:
                conn.send((method, *args))
            except OSError:  # a dead worker: _gather reports it
                pass
        try:
            getattr(self.me, method)(*args, **local)
        finally:  # the workers' replies are collected even when rank 0 failed
            self._gather()

    def train_step(self, source: str, window: int, seq_len: int, step: int) -> tuple[float, np.ndarray]:
        """Forward and backward of window `window` of ids:source laid out in this team's
        lanes. Returns the mean loss over all positions and its gradient (P,) — a buffer
        that the next step overwrites. Advances `self.state` to the window's end."""
        self._all("train", source, window, seq_len, step)
        shares = [(hi - lo) / self.lanes for lo, hi in self.spec.shares]
        losses = self.me.a["losses"]
        loss = float(sum(w * float(v) for w, v in zip(shares, losses, strict=True)))
        grads = self.me.a["grads"]                                          # (K, P)
        if self.workers == 1:
            return loss, grads[0]
        np.multiply(grads[0], shares[0], out=self._total)
        for r in range(1, self.workers):
            grads[r] *= shares[r]
            self._total += grads[r]
        return loss, self._total

    def score(self, source: str, batch: int, seq_len: int, warmup: int = score.WARMUP,
              progress: Callable[[int], None] | None = None) -> score.Score:
        """`score.score_ids` of ids:source under the current parameters, over all ranks.
        `progress(n)` is called as rank 0 goes, with an estimate of all ranks' characters."""
        k = self.workers  # rank 0 reports its own characters, scaled to stand for every rank's
        self._all("score", source, batch, seq_len, warmup, progress=(lambda n: progress(n * k)) if progress else None)
        total, count = (float(v) for v in self.me.a["scores"].sum(axis=0))
        return score.Score(total / count if count else float("nan"), int(count))

    def reset_state(self) -> None:
        for v in self.state.values():
            v.fill(0)

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self.conns, self.procs = [], []

    def __enter__(self) -> Team:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

