"""A reader that leaves (`charlm … | head -1`) is not an error: every command that writes to
stdout exits 0, with no traceback and no "Exception ignored" line. The reader leaves before
the command writes anything (the worst case: every write fails), or after one line, as
`head -1` does; stderr goes to the same pipe or its own."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import CHARLM, ENV

COMMANDS = [
    ["eval", "surprisal", "-m", "{run}", "--chars", "300"],
    ["eval", "gradient-flow", "-m", "{run}", "--max-lag", "5", "--positions", "4"],
    ["eval", "perplexity", "-m", "{run}"],
    ["demo", "hello"],
    ["demo", "gradients", "--steps", "2"],
    ["info", "{run}"],
    ["corpus", "list"],
    ["sample", "-m", "{run}", "--length", "2000", "--seed", "1"],
    ["sample", "-m", "{run}", "--length", "50", "--num-samples", "30", "--seed", "1"],
]


def head(args: list[str], cwd, lines: int, merge: bool) -> subprocess.CompletedProcess:
    """Run with stdout (and stderr, when `merge`) into a pipe whose reader leaves after `lines` lines."""
    env = {k: v for k, v in ENV.items() if k != "NO_COLOR"}  # as a user's shell has it: plain because piped
    proc = subprocess.Popen(CHARLM + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge else subprocess.PIPE)
    for _ in range(lines):
        proc.stdout.readline()
    proc.stdout.close()
    err = b"" if merge else proc.stderr.read()
    proc.wait(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, b"", err.decode())


@pytest.mark.parametrize("lines, merge", [(0, False), (1, True)], ids=["at-once", "2>&1-after-a-line"])
@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_a_reader_that_leaves_is_exit_0(run, args, merge, lines):
    proc = head([a.format(run=run) for a in args], run.parent, lines, merge)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert "error" not in proc.stderr, proc.stderr
