"""Structurally wrong checkpoints through every load path of the real executable.

Six damaged files (each a real run's checkpoint with one field broken) go through
sample, eval perplexity, info, export, report and train --resume: every one of the
36 cases must end in one line on stderr naming what is wrong, exit 1, no
traceback, and leave the file as it was.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from charlm import checkpoint
from tests.helpers import assert_one_line_error, charlm


def _breakers():
    def first_param(c):
        return sorted(c["params"])[0]
    return {
        "model_config a string": (lambda c: c.__setitem__("model_config", "gru"), "model_config"),
        "a parameter missing": (lambda c: c["params"].pop(first_param(c)), "missing"),
        "a parameter of the wrong shape": (
            lambda c: c["params"].__setitem__(first_param(c), np.zeros((3, 3), np.float32)), "shape"),
        "vocab not a dict": (lambda c: c.__setitem__("vocab", ["a", "b"]), "vocab"),
        "progress None": (lambda c: c.__setitem__("progress", None), "progress"),
        "optimizer state of the wrong type": (lambda c: c.__setitem__("optimizer", [1, 2]), "optimizer"),
    }


BREAKERS = _breakers()
PATHS = {
    "sample": lambda f, d: ["sample", "-m", f, "-n", "5", "--seed", "0"],
    "eval": lambda f, d: ["eval", "perplexity", "-m", f, d / "t.txt"],
    "info": lambda f, d: ["info", f],
    "export": lambda f, d: ["export", f, d / "out.pt"],
    "report": lambda f, d: ["report", f, "--out", d / "r.html"],
    "resume": lambda f, d: ["train", "--resume", f, "--max-steps", "99"],
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """One good run, then one damaged copy of its last.pkl per breaker."""
    root = tmp_path_factory.mktemp("malformed")
    (root / "t.txt").write_text("the quick brown fox jumps over the lazy dog.\n" * 80)
    p = charlm(["train", "t.txt", "--out", "run", "--hidden", "8", "--layers", "1", "--seq-len", "8",
                "--batch-size", "2", "--max-steps", "3"], root)
    assert p.returncode == 0, p.stderr
    good = (root / "run" / "last.pkl").read_bytes()
    files = {}
    for i, (name, (breaker, _)) in enumerate(BREAKERS.items()):
        data = pickle.loads(good)
        breaker(data)
        path = root / f"bad{i}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=checkpoint.PROTOCOL))
        files[name] = path
    return root, files


@pytest.fixture(scope="module")
def ran(broken):
    root, files = broken
    cases = [(b, p) for b in BREAKERS for p in PATHS]

    def one(case):
        b, path = case
        work = root / f"{path}-{list(BREAKERS).index(b)}"
        work.mkdir()
        (work / "t.txt").write_text((root / "t.txt").read_text())
        before = files[b].read_bytes()
        proc = charlm(PATHS[path](files[b], work), work)
        return case, (proc, files[b].read_bytes() == before)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, cases))


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("breaker", list(BREAKERS))
def test_one_line_naming_the_fault(ran, breaker, path):
    proc, unchanged = ran[breaker, path]
    assert_one_line_error(proc, 1, BREAKERS[breaker][1])
    assert unchanged
