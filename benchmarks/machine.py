"""What the benchmark ran on, and how much memory it took.

`describe()` gathers the header (date, cores, CPU model, load, Python, numpy and its
BLAS with its thread count, torch) from the standard library and numpy alone: no new
dependencies. Memory: Linux keeps a per-process peak RSS (VmHWM) that writing "5" to
/proc/self/clear_refs resets, so each workload's peak can be measured on its own;
elsewhere the measurement falls back to the process-wide ru_maxrss.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import gc
import glob
import os
import platform
import re
import resource
import subprocess
import sys
import time

import numpy as np


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        return m.group(1).strip() if m else platform.processor() or "?"
    except OSError:
        return platform.processor() or "?"


def _blas() -> dict:
    """numpy's BLAS: name, version, build configuration, threads it will use."""
    info: dict = {"name": "?", "version": "?", "config": "", "threads": None, "core": None}
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update(name=deps.get("name", "?"), version=deps.get("version", "?"),
                    config=deps.get("openblas configuration", ""))
    except Exception:  # older numpy: no mode="dicts"; the header then says "?"
        pass
    info["threads"], info["core"] = _openblas_runtime()
    return info


def _openblas_runtime() -> tuple[int | None, str | None]:
    """Ask the OpenBLAS bundled in numpy's wheel for its thread count and the CPU kernel
    it picked at run time (None, None: not found, e.g. a numpy linked to another BLAS)."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            threads = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            if threads is not None:
                threads.restype = ctypes.c_int
                name = None
                if core is not None:
                    core.restype = ctypes.c_char_p
                    name = core().decode(errors="replace")
                return int(threads()), name
    return None, None


def describe(torch, torch_skipped: str = "torch is not importable") -> dict:
    """The header facts; `torch` is the module, or None and `torch_skipped` says why."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": cores, "usable_cores": usable, "cpu": _cpu_model(),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(), "platform": platform.platform(),
        "numpy": np.__version__, "blas": _blas(),
        "torch_skipped": None if torch is not None else torch_skipped,
        "torch": None if torch is None else {
            "version": torch.__version__, "threads": torch.get_num_threads(),
            "blas": "MKL" if torch.backends.mkl.is_available() else "?"},
        "argv": sys.argv[1:],
    }


def header_lines(info: dict) -> list[str]:
    b, t = info["blas"], info["torch"]
    load = " ".join(f"{x:.2f}" for x in info["loadavg_start"])
    return [
        f"charlm benchmark  {info['date']}",
        f"machine  {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"load average at start {load}",
        f"python   {info['python']} on {info['platform']}",
        f"numpy    {info['numpy']}, BLAS {b['name']} {b['version']}, "
        f"{b['threads'] if b['threads'] is not None else '?'} threads, kernel {b['core'] or '?'}",
        "torch    " + (f"comparison skipped: {info['torch_skipped']}"
                       if t is None else f"{t['version']}, {t['threads']} threads, {t['blas']}"),
    ]


# ------------------------------------------------------------ other processes

class OtherLoad:
    """How many cores other processes kept busy between start() and stop(): the machine's
    busy CPU time (/proc/stat, without idle, iowait and steal) minus this process's own
    (all its threads), over the wall time. None where /proc/stat is missing."""

    def start(self) -> None:
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_seconds(), _own_seconds()

    def stop(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self._busy0 is None:
            return None
        wall = time.perf_counter() - self._t0
        return max(0.0, (busy - self._busy0 - (_own_seconds() - self._own0)) / wall)


def wait_quiet(max_wait: float, threshold: float = 0.3, sample: float = 0.5) -> float:
    """Wait, up to max_wait seconds, until other processes use under `threshold` cores
    over a `sample`-second look. Returns the seconds waited (0 when max_wait is 0)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        meter = OtherLoad()
        meter.start()
        time.sleep(sample)
        load = meter.stop()
        if load is None or load < threshold:
            break
        time.sleep(2 * sample)
    return time.perf_counter() - t0


def _busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and its live children (charlm's worker processes)."""
    t = os.times()
    own = t.user + t.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _children():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own += (int(fields[11]) + int(fields[12])) / tick   # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return own


def _children() -> list[str]:
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return []
    pids = []
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += f.read().split()
        except OSError:
            pass
    return [p for p in pids if p not in _HOGS]


_HOGS: set[str] = set()  # our children that stand for other programs: not counted as our own time


@contextlib.contextmanager
def busy_core():
    """Another process keeps one core busy (a Python busy loop) while the body runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    _HOGS.add(str(hog.pid))
    try:
        time.sleep(0.5)
        yield
    finally:
        hog.kill()
        hog.wait()


# ----------------------------------------------------------------- memory (MB)

def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def reset_peak() -> bool:
    """Start a new peak-RSS window; False where the OS cannot (then peaks are process-wide)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def start_window() -> float:
    """Free what can be freed, start a peak window, and return the RSS (MB) it starts from.

    malloc_trim hands memory that was freed but kept by glibc back to the OS; without it
    a workload could reuse pages an earlier one left behind and look smaller than it is.
    """
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    reset_peak()
    return rss_mb()


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else max_rss_mb()


def peak_mb() -> float:
    """Peak RSS since the last reset_peak() (or since the process started)."""
    kb = _status_kb("VmHWM")
    return kb / 1024 if kb is not None else max_rss_mb()


def max_rss_mb() -> float:
    """Process-wide peak RSS (ru_maxrss is kB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2 ** 20 if sys.platform == "darwin" else r / 1024
