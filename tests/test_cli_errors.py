"""Bad input at the command line: a clear one-line message, never a traceback, nothing lost.

Every case runs in-process with Typer's `CliRunner` (the exit code, no exception
other than SystemExit, the message on stderr), and one case of each kind also
through the real `charlm` executable in a subprocess (one line on stderr, nothing
on stdout, the documented exit code). Errors are exit 1; bad usage is exit 2.
Under `CliRunner` click's own parse errors print a multi-line usage box, so only
their exit code is checked there.

A tiny model is trained once per module; everything else (damaged checkpoints,
undecodable files, a crafted pickle) is built from it in temporary directories.
The full-disk cases use a real ENOSPC where the machine allows it (a small tmpfs
in a private mount namespace, /dev/full as stdout) and a simulated one always.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import shutil
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm import checkpoint, fileio
from charlm.cli import app
from tests.helpers import CHARLM, ENV, assert_one_line_error, charlm, stored

TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

ERROR, USAGE = 1, 2


# ---------------------------------------------------------------- helpers


def run(args: list[str], cwd: Path, stdout=subprocess.PIPE, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real executable, as a user would run it."""
    return charlm(args, cwd, timeout=timeout, stdout=stdout)


def invoke(args: list[str], cwd: Path, monkeypatch) -> object:
    """The same command in-process through Typer's CliRunner (cwd matters: runs/latest)."""
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_runner_error(result, code: int, needle: str | None = "") -> None:
    """`needle=None`: a click parse error (multi-line usage box) — only the exit code is checked."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"raised {result.exception!r}, not a clean exit"
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}; stderr:\n{result.stderr}"
    assert result.stdout == "", f"stdout should be empty on error, got {result.stdout!r}"
    if needle is None:
        return
    err = result.stderr.strip()
    assert err and "\n" not in err, f"expected exactly one line on stderr, got:\n{result.stderr}"
    assert err.startswith("error: ") and needle.lower() in err.lower(), err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the shared workspace


def _text() -> str:
    """~3 KB of plain ASCII text, the same every time."""
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while birds sing in green trees".split()
    lines = [" ".join(words[i] for i in rng.integers(0, len(words), 9)) for _ in range(60)]
    return "\n".join(lines) + "\n"


class _Crafted:
    """A pickle that would create a file if anything unpickled it blindly."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, Path]:
    """A trained run plus one of every bad file; paths are absolute."""
    d = tmp_path_factory.mktemp("charlm-bad-input")
    corpus = d / "corpus.txt"
    corpus.write_text(_text(), encoding="utf-8")
    proc = run(["train", corpus, "--out", d / "RUN", "--max-steps", "3", *TINY], cwd=d)
    assert proc.returncode == 0, proc.stderr
    best = d / "RUN" / "best.pkl"
    assert best.is_file() and (d / "RUN" / "last.pkl").is_file()

    f = {"dir": d, "corpus": corpus, "run": d / "RUN", "best": best, "marker": d / "PWNED"}
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
    if "ws" in request.fixturenames:
        marker = request.getfixturevalue("ws")["marker"]
        assert not marker.exists(), "a crafted pickle ran code while being loaded"


# ---------------------------------------------------------------- the matrix

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

# (id, args with {placeholders} for workspace paths, exit code, a word the message must contain)
CASES = (
    [(f"train-{k}", ["train", f"{{{k}}}", "--out", "{tmp}/out", "--max-steps", "1"], ERROR, w)
     for k, w in CORPUS_CASES]
    + [(f"perplexity-{k}", ["eval", "perplexity", f"{{{k}}}", "--model", "{run}"], ERROR, w)
       for k, w in CORPUS_CASES]
    + [(f"sample-{k}", ["sample", "--model", f"{{{k}}}", "--length", "5"], ERROR, w) for k, w in CKPT_CASES]
    + [(f"info-{k}", ["info", f"{{{k}}}"], ERROR, w) for k, w in CKPT_CASES]
    + [(f"perplexity-model-{k}", ["eval", "perplexity", "--model", f"{{{k}}}"], ERROR, w)
       for k, w in CKPT_CASES if k in ("truncated", "crafted")]
    + [(f"sample-{name}", ["sample", "--model", "{run}", *opt], USAGE, w) for name, opt, w in [
        ("temperature-nan", ["--temperature", "nan"], "--temperature"),
        ("temperature-negative", ["--temperature", "-1"], "--temperature"),
        ("temperature-inf", ["--temperature", "inf"], "--temperature"),
        ("top-p-0", ["--top-p", "0"], "--top-p"),
        ("top-p-1.5", ["--top-p", "1.5"], "--top-p"),
        ("top-k-negative", ["--top-k", "-1"], "--top-k"),
        ("length-0", ["--length", "0"], "--length"),
        ("length-negative", ["--length", "-3"], "--length"),
        ("num-samples-0", ["--num-samples", "0"], "--num-samples"),
        ("temperature-not-a-number", ["--temperature", "warm"], "--temperature"),
    ]]
    + [
        ("sample-prime-unseen", ["sample", "--model", "{run}", "--prime", "Zebra 한", "--length", "5"], USAGE,
         "'Z', '한'"),
        ("sample-no-model", ["sample", "--length", "5"], ERROR, "no --model"),
        ("info-no-model", ["info"], ERROR, "no MODEL or --model given"),
        ("report-no-model", ["report"], ERROR, "no RUN or --model given"),
        ("perplexity-file-is-not-a-corpus", ["eval", "perplexity", "{missing}", "--model", "{run}"], ERROR,
         "text file not found"),
        ("train-seed-negative", ["train", "{corpus}", "--out", "{tmp}/out", "--seed", "-1"], USAGE, "--seed"),
        ("sample-seed-negative", ["sample", "--model", "{run}", "--seed", "-1"], USAGE, "--seed"),
        ("report-seed-negative", ["report", "{run}", "--seed", "-1"], USAGE, "--seed"),
        ("train-too-big-for-memory", ["train", "{corpus}", "--out", "{tmp}/out", "--hidden", "100000"], ERROR,
         "available"),
        ("corpus-get-unknown", ["corpus", "get", "nosuch"], USAGE, "unknown corpus 'nosuch'"),
        ("train-out-is-a-file", ["train", "{corpus}", "--out", "{afile}/run", "--max-steps", "1"], ERROR,
         "cannot write"),
        ("train-out-exists", ["train", "{corpus}", "--out", "{run}", "--max-steps", "1", *TINY], USAGE,
         "already holds a run"),
        ("train-resume-missing", ["train", "--resume", "{missing}"], ERROR, "not found"),
        ("train-resume-with-out", ["train", "--resume", "{run}", "--out", "{tmp}/branch"], USAGE,
         "is not the directory of the run being resumed"),
        ("train-out-current-dir", ["train", "{corpus}", "--out", "", "--max-steps", "1"], USAGE,
         "--out needs a directory name"),
        ("train-device-numpy-engine", ["train", "{corpus}", "--out", "{tmp}/out", "--device", "cuda"], USAGE,
         "--device chooses where --engine torch trains"),
        ("train-val-max-chars-1", ["train", "{corpus}", "--out", "{tmp}/out", "--val-max-chars", "1"], USAGE,
         "--val-max-chars must be 0"),
        ("train-resume-crafted", ["train", "--resume", "{crafted}"], ERROR, "refused"),
        ("export-missing-model", ["export", "{missing}", "{tmp}/out.npz"], ERROR, "not found"),
        ("export-out-is-a-directory", ["export", "{run}", "{directory}"], USAGE, "cannot write"),
        ("unknown-command", ["sing"], USAGE, "sing"),
        ("unknown-option", ["sample", "--model", "{run}", "--temprature", "1"], USAGE, "--temprature"),
    ]
)
PARSE_ERRORS = {"sample-temperature-not-a-number", "unknown-command", "unknown-option",  # click's own
                "train-seed-negative", "sample-seed-negative", "report-seed-negative"}
# Each subprocess costs ~0.4 s of interpreter start-up, so the real executable runs one case per kind
# of failure; CliRunner runs them all (`info` loads checkpoints exactly as `sample` does, and so on).
RUNNER_ONLY = {
    "train-nul", "perplexity-nul",
    "sample-array", "sample-incomplete", "sample-bad_shape",
    "info-missing", "info-directory", "info-empty", "info-random", "info-other", "info-array",
    "info-incomplete", "info-bad_shape",
    "perplexity-model-truncated", "perplexity-model-crafted",
    "sample-temperature-inf", "sample-length-negative", "sample-num-samples-0",
    "train-resume-missing", "export-missing-model",
}
assert RUNNER_ONLY <= {c[0] for c in CASES}
SUBPROCESS_CASES = [c for c in CASES if c[0] not in RUNNER_ONLY]


def expand(args: list[str], ws: dict, tmp: Path) -> list[str]:
    names = {k: str(v) for k, v in ws.items()} | {"tmp": str(tmp)}
    return [a.format(**names) for a in args]


def _snapshot(ws) -> dict:
    return {p.name: sha(p) for p in ws["run"].iterdir() if p.suffix == ".pkl"}


@pytest.fixture(scope="module")
def ran(ws) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict]]:
    """Every subprocess case, run concurrently (each ~0.5 s of interpreter start-up), each in its own
    empty working directory: {id: (process, run snapshot before, after)}."""
    def one(case):
        name, args, _, _ = case
        cwd = ws["dir"] / "cases" / name
        cwd.mkdir(parents=True)
        before = _snapshot(ws)
        return name, (run(expand(args, ws, cwd), cwd=cwd), before, _snapshot(ws))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, SUBPROCESS_CASES))


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES])
def test_subprocess(case, ran):
    name, _, code, needle = case
    proc, before, after = ran[name]
    assert_one_line_error(proc, code, needle)
    assert after == before, "a failed command changed the existing run"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_runner(case, ws, tmp_path, monkeypatch):
    name, args, code, needle = case
    before = _snapshot(ws)
    result = invoke(expand(args, ws, tmp_path), tmp_path, monkeypatch)
    assert_runner_error(result, code, None if name in PARSE_ERRORS else needle)
    assert _snapshot(ws) == before, "a failed command changed the existing run"


def test_failed_train_leaves_latest_alone(ws, tmp_path, monkeypatch):
    """A train that fails on its corpus must not repoint runs/latest at a run that does not exist."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(ws["run"])
    result = invoke(["train", ws["binary"], "--out", tmp_path / "new"], tmp_path, monkeypatch)
    assert_runner_error(result, ERROR, "utf-8")
    assert (tmp_path / "runs" / "latest").resolve() == ws["run"].resolve()


def test_failed_train_leaves_no_empty_run_dir(ws, tmp_path, monkeypatch):
    result = invoke(["train", ws["missing"], "--out", tmp_path / "new"], tmp_path, monkeypatch)
    assert_runner_error(result, ERROR, "not found")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- prime handling that succeeds


def test_skip_unknown_prime(ws, tmp_path, monkeypatch):
    args = ["sample", "--model", ws["run"], "--prime", "Zebra 한", "--skip-unknown", "--length", "5",
            "--seed", "1"]
    proc = run(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipping" in proc.stderr and "'Z'" in proc.stderr and "'한'" in proc.stderr
    assert proc.stdout.startswith("ebra ") and len(proc.stdout) == len("ebra ") + 5 + 1  # + newline
    result = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 0 and result.exception is None
    assert result.stdout == proc.stdout  # same seed, same text, in-process or not
    assert "skipping" in result.stderr


# ---------------------------------------------------------------- unwritable places


def test_unwritable_out_under_proc(ws, tmp_path):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    proc = run(["train", ws["corpus"], "--out", "/proc/charlm-nope", "--max-steps", "1"], cwd=tmp_path)
    assert_one_line_error(proc, ERROR, "cannot write")


def test_unwritable_out_read_only_dir(ws, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:  # root (and some filesystems) ignore the mode: then this case cannot be set up
            (ro / "probe").write_text("")
            pytest.skip("chmod 0o500 does not stop writes here (running as root?)")
        except PermissionError:
            pass
        proc = run(["train", ws["corpus"], "--out", ro / "run", "--max-steps", "1"], cwd=tmp_path)
        assert_one_line_error(proc, ERROR, "permission denied")
        assert_runner_error(invoke(["train", ws["corpus"], "--out", ro / "run", "--max-steps", "1"],
                                   tmp_path, monkeypatch), ERROR, "permission denied")
    finally:
        ro.chmod(0o700)


def test_export_into_a_file_as_directory(ws, tmp_path, monkeypatch):
    args = ["export", ws["run"], ws["afile"] / "model.npz"]
    assert_runner_error(invoke(args, tmp_path, monkeypatch), ERROR, "cannot write")
    assert_one_line_error(run(args, cwd=tmp_path), ERROR, "cannot write")


# ---------------------------------------------------------------- a full disk


def _copy_run(ws, dest: Path) -> Path:
    shutil.copytree(ws["run"], dest)
    return dest


class _FillsUp:
    """A file that takes a little, then reports the disk full (what a real ENOSPC looks like)."""

    def __init__(self, path, mode):
        self.f = open(path, mode)
        self.room = 1000

    def write(self, b):
        if len(b) > self.room:
            self.f.write(b[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_full_disk_while_saving_simulated(ws, tmp_path, monkeypatch):
    """ENOSPC halfway through writing last.pkl: exit 1, one line, both old checkpoints intact."""
    run_dir = _copy_run(ws, tmp_path / "RUN")
    before = {n: sha(run_dir / n) for n in ("best.pkl", "last.pkl")}
    monkeypatch.setattr(fileio, "open", _FillsUp, raising=False)  # shadows the builtin where checkpoints are written
    result = invoke(["train", "--resume", run_dir, "--max-steps", "6"], tmp_path, monkeypatch)
    monkeypatch.undo()
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == ERROR
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1], result.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1 and "Traceback" not in result.stderr
    assert {n: sha(run_dir / n) for n in before} == before
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name], "temporary files left behind"
    for name in before:
        checkpoint.load_model(run_dir / name)


def _can_mount_tmpfs(where: Path) -> bool:
    if not (IS_ROOT and shutil.which("unshare") and shutil.which("mount")):
        return False
    where.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{where}'"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


def test_full_disk_while_saving_real(ws, tmp_path):
    """A run on a nearly full tmpfs (private mount namespace): the resumed run cannot save."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("needs root and `unshare -m` to mount a small tmpfs")
    src = ws["run"]
    used = sum(-(-p.stat().st_size // 4096) * 4096 for p in src.iterdir())
    out = tmp_path / "after"
    out.mkdir()
    charlm = " ".join(f"'{a}'" for a in CHARLM)
    script = (f"mount -t tmpfs -o size={used + 4096} tmpfs '{disk}' && cp -a '{src}/.' '{disk}/' || exit 99; "
              f"{charlm} train --resume '{disk}' --max-steps 6; rc=$?; "
              f"cp '{disk}'/*.pkl '{out}/'; ls -a '{disk}' > '{out}/listing'; exit $rc")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 99, proc.stderr
    assert proc.returncode == ERROR, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()  # the "resuming …" line, then the error
    assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1], proc.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1
    for name in ("best.pkl", "last.pkl"):
        assert sha(out / name) == sha(src / name), f"{name} changed"
        checkpoint.load_model(out / name)
    assert ".tmp" not in (out / "listing").read_text()


def test_sample_to_full_stdout(ws, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = run(["sample", "--model", ws["run"], "--length", "50", "--seed", "1"], cwd=tmp_path, stdout=full)
    proc.stdout = None
    assert_one_line_error(proc, ERROR, "no space left on device")


def test_export_to_a_device_does_not_replace_it(ws, tmp_path):
    if not IS_ROOT or not hasattr(os, "mknod"):
        pytest.skip("needs root to make a private copy of /dev/full")
    dev = tmp_path / "full"  # never the real /dev/full: the bug would replace it
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except OSError:
        pytest.skip("mknod not permitted here")
    proc = run(["export", ws["run"], dev], cwd=tmp_path)
    still_a_device = stat.S_ISCHR(os.lstat(dev).st_mode)
    assert still_a_device, "the device node was replaced by a regular file"
    assert_one_line_error(proc, ERROR, "no space left on device")


def test_sample_into_a_closed_pipe(ws, tmp_path):
    """`charlm sample | head -c 10`: the reader leaving is not an error."""
    p = subprocess.Popen(CHARLM + ["sample", "--model", str(ws["run"]), "--length", "100000", "--seed", "1"],
                         cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "error" not in err, err


MALFORMED = {  # the charlm marker and version, but a field of the wrong type: a damaged or hand-made file
    "model-config-not-a-dict": ("sample", lambda d: {**d, "model_config": "lstm"}),
    "vocab-chars-not-a-string": ("sample", lambda d: {**d, "vocab": {"chars": 5, "counts": []}}),
    "progress-not-a-dict": ("info", lambda d: {**d, "progress": "step 3"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_checkpoint_fields(name, ws, tmp_path, monkeypatch):
    command, damage = MALFORMED[name]
    data = stored(ws["best"])
    bad = tmp_path / f"{name}.pkl"
    bad.write_bytes(pickle.dumps(damage(data), protocol=checkpoint.PROTOCOL))
    args = ["sample", "--model", bad, "--length", "5"] if command == "sample" else ["info", bad]
    assert_runner_error(invoke(args, tmp_path, monkeypatch), ERROR, "checkpoint")
