"""What the command tests share: a small English text and one tiny run trained on it per session;
the shared workspace (a 3-step run, one without a validation split, one of every bad file); and
the bad-input matrix, whose rows each command's file holds.

Bad input at the command line gets a clear one-line message, never a traceback, and loses nothing.
Every row of the matrix runs in-process with Typer's `CliRunner` (the exit code, no exception other
than SystemExit, the message on stderr), and one row of each kind also through the real `charlm`
executable in a subprocess (one line on stderr, nothing on stdout, the documented exit code). Errors
are exit 1; bad usage is exit 2. Under `CliRunner` click's own parse errors print a multi-line usage
box, so only their exit code is checked there.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from charlm import checkpoint
from tests.helpers import (
    MINI,
    assert_one_line_error,
    assert_runner_error,
    charlm,
    english,
    invoke,
    run_cli,
    sha,
    stored,
)

TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch-size", "4", "--eval-every", "10",
        "--sample-every", "0", "--quiet"]


@pytest.fixture(scope="session")
def run(tmp_path_factory) -> Path:
    """A tiny model (40 steps) trained on `english()`; its corpus sits beside it as corpus.txt."""
    d = tmp_path_factory.mktemp("charlm-cli")
    (d / "corpus.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", "corpus.txt", "--out", "RUN", "--max-steps", "40", "--lr", "0.02", *TINY], cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d / "RUN"


# ---------------------------------------------------------------- the shared workspace


class _Crafted:
    """A pickle that would create a file if anything unpickled it blindly."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> dict:
    """A 3-step run (RUN) and one without a validation split (NOVAL), with their training logs, plus
    one of every bad file; paths are absolute. Never changed by a test: `copy_run` it to change it."""
    d = tmp_path_factory.mktemp("charlm-shared")
    corpus = d / "corpus.txt"
    corpus.write_text(english(60), encoding="utf-8")
    (d / "other.txt").write_text(english(60).upper(), encoding="utf-8")
    f = {"dir": d, "corpus": corpus, "other_text": d / "other.txt", "run": d / "RUN", "noval": d / "NOVAL",
         "best": d / "RUN" / "best.pkl", "marker": d / "PWNED"}
    for name, extra in (("run", []), ("noval", ["--val-fraction", "0"])):
        proc = run_cli(["train", corpus, "--out", f[name], "--max-steps", "3", *MINI, *extra], cwd=d)
        assert proc.returncode == 0, proc.stderr
        f[f"{name}_log"] = proc.stderr
    best = f["best"]
    assert best.is_file() and (d / "RUN" / "last.pkl").is_file()

    f["missing"] = d / "no-such-file.txt"
    f["directory"] = d / "a-directory"
    f["directory"].mkdir()
    f["empty"] = d / "empty.txt"
    f["empty"].write_bytes(b"")
    f["binary"] = d / "image.png"   # a PNG header and noise: 0x89 is never a UTF-8 start byte
    f["binary"].write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(2000))
    f["latin1"] = d / "latin1.txt"  # real text, just not UTF-8
    f["latin1"].write_bytes("café crème brûlée, naïve façade\n".encode("latin-1") * 20)
    f["nul"] = d / "nul.txt"
    f["nul"].write_bytes(b"plain text\x00with a NUL\n")

    raw = best.read_bytes()
    f["truncated"] = d / "truncated.pkl"
    f["truncated"].write_bytes(raw[: len(raw) // 2])
    f["random"] = d / "random.pkl"
    f["random"].write_bytes(np.random.default_rng(2).bytes(4096))
    f["crafted"] = d / "crafted.pkl"
    f["crafted"].write_bytes(pickle.dumps(_Crafted(f["marker"])))
    f["other"] = d / "other-program.pkl"
    f["other"].write_bytes(pickle.dumps({"weights": [1, 2]}))
    f["array"] = d / "just-an-array.pkl"  # only allowed globals, but not a checkpoint
    f["array"].write_bytes(pickle.dumps(np.zeros(3), protocol=checkpoint.PROTOCOL))
    data = stored(best)
    f["newer"] = d / "newer.pkl"  # checkpoint.save would stamp version 1 itself
    f["newer"].write_bytes(pickle.dumps({**data, "version": 99}, protocol=checkpoint.PROTOCOL))
    f["incomplete"] = d / "incomplete.pkl"
    f["incomplete"].write_bytes(pickle.dumps({k: v for k, v in data.items() if k != "params"},
                                             protocol=checkpoint.PROTOCOL))
    bad_shape = {**data, "params": {k: v[..., :1] for k, v in data["params"].items()}}
    f["bad_shape"] = d / "bad-shape.pkl"
    f["bad_shape"].write_bytes(pickle.dumps(bad_shape, protocol=checkpoint.PROTOCOL))
    f["afile"] = d / "a-file.txt"
    f["afile"].write_text("not a directory\n")
    return f


@pytest.fixture(autouse=True)
def _nothing_ran(request):
    """Whatever a test did, the crafted pickle never executed."""
    yield
    if "shared" in request.fixturenames:
        marker = request.getfixturevalue("shared")["marker"]
        assert not marker.exists(), "a crafted pickle ran code while being loaded"


def copy_run(shared: dict, dest: Path) -> Path:
    """A copy of the shared run, for a test that changes it."""
    shutil.copytree(shared["run"], dest)
    return dest


def damaged(shared: dict, bad: Path, damage) -> Path:
    """The shared run's best.pkl with `damage` done to its stored dict, written to `bad`."""
    bad.write_bytes(pickle.dumps(damage(stored(shared["best"])), protocol=checkpoint.PROTOCOL))
    return bad


# ---------------------------------------------------------------- the bad-input matrix

# the bad files of the shared workspace, and a word of what a command says of each
CORPUS_CASES = [
    ("missing", "not found"),
    ("directory", "directory"),
    ("empty", "empty"),
    ("binary", "not valid utf-8"),
    ("latin1", "not valid utf-8"),
    ("nul", "binary"),
]
CKPT_CASES = [
    ("missing", "not found"),
    ("directory", "no checkpoint"),
    ("empty", "checkpoint"),
    ("truncated", "truncated"),
    ("random", "not a readable charlm checkpoint"),
    ("crafted", "refused"),
    ("other", "not a charlm checkpoint"),
    ("array", "not a charlm checkpoint"),
    ("newer", "newer"),
    ("incomplete", "incomplete"),
    ("bad_shape", "damaged"),
]


def bad_input_tests(cases: list[tuple], runner_only: set[str] = frozenset(), parse_errors: set[str] = frozenset()):
    """The two tests of one command's rows of the matrix, to be bound in its file as
    `test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, …)`.

    A row is (id, args with {placeholders} for the shared workspace's paths and {tmp}, exit code, a
    word the message must contain). Each subprocess costs ~0.4 s of interpreter start-up, so the real
    executable runs one row per kind of failure; CliRunner runs them all (`info` loads checkpoints
    exactly as `sample` does, and so on): `runner_only` names the rows the subprocess skips.
    `parse_errors` names click's own parse errors, whose message CliRunner does not check."""
    names = {c[0] for c in cases}
    assert runner_only <= names and parse_errors <= names
    subprocess_cases = [c for c in cases if c[0] not in runner_only]

    @pytest.mark.parametrize("case", subprocess_cases, ids=[c[0] for c in subprocess_cases])
    def test_bad_input_subprocess(case, ran):
        name, _, code, needle = case
        proc, before, after = ran[name]
        assert_one_line_error(proc, code, needle)
        assert after == before, "a failed command changed the existing run"

    @pytest.mark.parametrize("case", cases, ids=[c[0] for c in cases])
    def test_bad_input_cli_runner(case, shared, tmp_path, monkeypatch):
        name, args, code, needle = case
        before = _snapshot(shared)
        result = invoke(_expand(args, shared, tmp_path), tmp_path, monkeypatch)
        assert_runner_error(result, code, None if name in parse_errors else needle)
        assert _snapshot(shared) == before, "a failed command changed the existing run"

    return test_bad_input_subprocess, test_bad_input_cli_runner


def _expand(args: list[str], shared: dict, tmp: Path) -> list[str]:
    names = {k: str(v) for k, v in shared.items()} | {"tmp": str(tmp)}
    return [a.format(**names) for a in args]


def _snapshot(shared) -> dict:
    return {p.name: sha(p) for p in shared["run"].iterdir() if p.suffix == ".pkl"}


@pytest.fixture(scope="session")
def ran(shared, request) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict]]:
    """Every subprocess row of the session's tests, whatever command's file holds it, run concurrently
    (each ~0.5 s of interpreter start-up), each in its own empty working directory:
    {id: (process, run snapshot before, after)}."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if getattr(item, "originalname", None) == "test_bad_input_subprocess"]
    assert len({c[0] for c in cases}) == len(cases), "two rows of the matrix share an id"

    def one(case):
        name, args, _, _ = case
        cwd = shared["dir"] / "cases" / name
        cwd.mkdir(parents=True)
        before = _snapshot(shared)
        return name, (run_cli(_expand(args, shared, cwd), cwd=cwd), before, _snapshot(shared))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, cases))
