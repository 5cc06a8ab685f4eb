"""Peak private memory of `charlm train` on a large corpus, its worker processes included.

Builds a corpus of SIZE bytes by repeating ../shared/data/tinyshakespeare.txt
(into a scratch directory, never the repository), runs `charlm train` on it in a
subprocess and samples /proc/PID/status of it and its children every 20 ms for
RssAnon + RssShmem (the heap, numpy buffers and the workers' shared memory; not the
page cache or the memmapped ids). Shared memory mapped by several processes is
counted once per process, so the sum overstates it a little.

    python benchmarks/memory.py --size-mib 1024 --hidden 128 --max-steps 200
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def private_kib(pid: int) -> int | None:
    """RssAnon + RssShmem of pid and its children, in KiB (None once pid is gone)."""
    total, pids = 0, [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return None
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(("RssAnon:", "RssShmem:")):
                    total += int(line.split()[1])
        except OSError:
            if p == pid:
                return None
    return total


def build_corpus(path: Path, size: int) -> None:
    block = SHARED.read_bytes()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            chunk = block[: size - written]
            f.write(chunk)
            written += len(chunk)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--val-max-chars", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="charlm-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    text = work / "big.txt"
    if not text.exists() or text.stat().st_size != args.size_mib << 20:
        build_corpus(text, args.size_mib << 20)
    cmd = [sys.executable, "-m", "charlm", "train", str(text), "--out", str(work / "run"),
           "--layers", "2", "--hidden", str(args.hidden), "--max-steps", str(args.max_steps),
           "--eval-every", str(args.max_steps), "--val-max-chars", str(args.val_max_chars)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak, samples = 0, 0
    while proc.poll() is None:
        kib = private_kib(proc.pid)
        if kib is not None:
            peak, samples = max(peak, kib), samples + 1
        time.sleep(0.02)
    log = proc.stderr.read()
    print(f"corpus {args.size_mib} MiB, GRU 2x{args.hidden}, {args.max_steps} steps: exit {proc.returncode}, "
          f"{time.perf_counter() - t0:.0f}s, peak RssAnon + RssShmem {peak / 1024:.1f} MiB (workers included) "
          f"over {samples} samples")
    print(log.strip().splitlines()[-3] if log.strip() else "")
    if proc.returncode:
        print(log, file=sys.stderr)
        sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
