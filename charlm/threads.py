"""How charlm uses the cores: worker processes and BLAS threads, decided in one place.

The policy (measured: benchmarks/RESULTS.md, "Threads and workers"):
- Every process runs ONE BLAS thread. A training step is thousands of small
  GEMMs (one per time step, over B rows) between elementwise numpy calls;
  splitting each across BLAS threads gains little on a quiet machine and, when
  another program keeps a core busy, every GEMM waits for the thread parked on
  that core: training fell to 0.28× its quiet speed with two threads and kept
  ~1.0× with one. The once-per-chunk GEMMs over T·B rows gain from a second
  thread only when the machine is quiet, and not enough to pay for that risk.
- The cores are used by data parallelism instead: training and evaluation split
  their B lanes over K worker processes (charlm/engines/parallel.py), one per usable
  core, with at least MIN_LANES lanes each. They synchronise once per step,
  not once per GEMM, so a busy core slows a step down instead of stalling it.

`--threads N` / CHARLM_THREADS and `--workers K` / CHARLM_WORKERS win over
the policy (command-line option first, then the environment variable). BLAS
threads beyond the usable cores only wait for each other: more are capped
(`too_many_threads` says when, for the command line to tell).
"""

from __future__ import annotations

import contextlib
import os

from charlm.errors import UsageError

ENV_THREADS = "CHARLM_THREADS"
ENV_WORKERS = "CHARLM_WORKERS"
MIN_LANES = 8   # a worker with fewer lanes spends its step on Python overhead
MIN_SCORE_CHARS = 50_000  # a worker takes ~0.4 s to start: scoring less text is quicker without it


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _from_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{name} must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


def check_environment() -> None:
    """Refuse a malformed CHARLM_THREADS or CHARLM_WORKERS before any work starts."""
    _from_env(ENV_THREADS)
    _from_env(ENV_WORKERS)


def blas_threads(requested: int | None = None) -> int:
    """BLAS threads per process: --threads, else CHARLM_THREADS, else 1; at most the usable cores."""
    return min(requested or _from_env(ENV_THREADS) or 1, usable_cores())


def too_many_threads(requested: int | None = None) -> tuple[str, int] | None:
    """(where the count came from: "--threads N" or "CHARLM_THREADS=N", the cores it is capped
    at) when the BLAS threads asked for exceed the usable cores; None when they fit."""
    asked = requested or _from_env(ENV_THREADS)
    if asked is None or asked <= usable_cores():
        return None
    return (f"--threads {asked:,}" if requested else f"{ENV_THREADS}={asked:,}"), usable_cores()


def workers(requested: int | None, lanes: int) -> int:
    """Worker processes for `lanes` parallel lanes: --workers, else CHARLM_WORKERS,
    else one per usable core with at least MIN_LANES lanes each. Never more than lanes."""
    k = requested or _from_env(ENV_WORKERS) or max(1, min(usable_cores(), lanes // MIN_LANES))
    return max(1, min(k, lanes))


def score_workers(requested: int | None, chars: int) -> int:
    """Worker processes for scoring `chars` characters: as `workers`, but one per
    MIN_SCORE_CHARS at most, so a short text is scored without starting any."""
    return requested or _from_env(ENV_WORKERS) or max(1, min(usable_cores(), chars // MIN_SCORE_CHARS))


@contextlib.contextmanager
def limited(n: int):
    """Run the body with n BLAS threads in this process (threadpoolctl), then restore."""
    from threadpoolctl import threadpool_limits  # imported on use: it inspects the loaded libraries

    with threadpool_limits(limits=n, user_api="blas"):
        yield
