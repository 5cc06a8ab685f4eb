"""`charlm sample` through the real executable: seeds per sample, messages, exit codes, newlines,
unseen characters in a prime, greedy sampling, streamed samples and their memory, a full or closed
stdout, bad input. Priming, stopping, beams and sessions: test_sample_more.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

import charlm as charlm_api
from tests.cli.conftest import CKPT_CASES, bad_input_tests, damaged
from tests.helpers import CHARLM, ENV, ERROR, USAGE, assert_one_line_error, assert_runner_error, charlm, invoke, run_cli


def sample(run, *args, **kw):
    proc = charlm(["sample", "-m", run, *args], cwd=run.parent, **kw)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def samples(stdout: str) -> list[str]:
    """The texts of `=== sample i ===` blocks, in order (each block's own text, its final newline removed)."""
    parts = re.split(r"^=== sample \d+ ===\n", stdout, flags=re.M)[1:]
    return [p.removesuffix("\n") for p in parts]


# ---------------------------------------------------------------- a seed per sample


def test_sample_i_of_a_seed_is_the_same_whatever_num_samples_is(run):
    one = sample(run, "--seed", "5", "--length", "40").stdout.removesuffix("\n")
    two, three = (samples(sample(run, "--seed", "5", "--length", "40", "--num-samples", n).stdout) for n in "23")
    assert len(two) == 2 and len(three) == 3 and len(set(three)) == 3
    assert one == two[0] == three[0] and two[1] == three[1]
    js = json.loads(sample(run, "--seed", "5", "--length", "40", "--num-samples", "3", "--json").stdout)
    assert js == {"seed": 5, "samples": three}
    assert charlm_api.load(run).sample(length=40, seed=5) == one  # the API's sample is the CLI's first


def test_a_seed_reaches_past_the_first_block(run):
    """Samples go 256 at a time: sample 258 is the same in a second block of 2 and of 44."""
    a = json.loads(sample(run, "--seed", "9", "--length", "6", "--num-samples", "258", "--json").stdout)
    b = json.loads(sample(run, "--seed", "9", "--length", "6", "--num-samples", "300", "--json").stdout)
    alone = "".join(p[0] for p in charlm_api.load(run).generate(length=6, seed=9, first=257))
    assert a["samples"] == b["samples"][:258] and a["samples"][257] == alone


def test_the_interactive_session_answers_as_sample_1_continues_the_line(run):
    primed = sample(run, "--prime", "the ", "--seed", "4", "--length", "30").stdout
    session = sample(run, "--interactive", "--seed", "4", "--length", "30", input="the \n").stdout
    assert session.removesuffix("\n") == primed.removesuffix("\n")[len("the "):]


def test_help_and_readme_say_what_a_seed_reproduces(run):
    help_text = " ".join(charlm(["sample", "--help"], cwd=run.parent).stdout.split())
    assert "sample i of a seed is the same text whatever --num-samples is" in help_text
    root = Path(__file__).parents[2]
    readme, guide = ((root / name).read_text(encoding="utf-8") for name in ("README.md", "docs/guide.md"))
    assert "sample\ni of `--seed S` is the same text whatever `--num-samples` is" in readme
    assert "sample i of a seed is the same text\nwhatever M is" in guide


# ---------------------------------------------------------------- characters the model never saw


def test_prime_with_unseen_characters_names_the_flag_only(run, tmp_path):
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime", "한국어"], cwd=run.parent), 2)
    assert err == "error: --prime has 3 character(s) the model never saw: '국', '어', '한' (--skip-unknown drops them)"
    (tmp_path / "p.txt").write_text("한국어", encoding="utf-8")
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime-file", tmp_path / "p.txt"], cwd=run.parent), 1)
    assert err.endswith("has 3 character(s) the model never saw: '국', '어', '한' (--skip-unknown drops them)")
    many = "".join(chr(0xAC00 + i) for i in range(12))
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime", many], cwd=run.parent), 2)
    assert "'갉' and 2 more (--skip-unknown drops them)" in err and "skip_unknown=" not in err
    session = charlm(["sample", "-m", run, "-i", "--seed", "1", "-n", "5"], cwd=run.parent, input="the 한\n")
    assert session.returncode == 0 and session.stderr == ("error: the line has 1 character(s) the model never saw: "
                                                          "'한' (nothing was read; --skip-unknown drops them)\n")
    with pytest.raises(charlm_api.CharlmError, match=r"^prime has 3 .* \(skip_unknown=True drops them\)$"):
        charlm_api.load(run).sample("한국어")


def test_skip_unknown_prime(shared, tmp_path, monkeypatch):
    args = ["sample", "--model", shared["run"], "--prime", "Zebra 한", "--skip-unknown", "--length", "5",
            "--seed", "1"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipping" in proc.stderr and "'Z'" in proc.stderr and "'한'" in proc.stderr
    assert proc.stdout.startswith("ebra ") and len(proc.stdout) == len("ebra ") + 5 + 1  # + newline
    result = invoke(args, tmp_path, monkeypatch)
    assert result.exit_code == 0 and result.exception is None
    assert result.stdout == proc.stdout  # same seed, same text, in-process or not
    assert "skipping" in result.stderr


def test_beam_refuses_a_seed_as_it_refuses_a_temperature(run):
    for given in (["--seed", "4"], ["-t", "0.5"]):
        err = assert_one_line_error(charlm(["sample", "-m", run, "--beam", "3", *given], cwd=run.parent), 2)
        assert err == f"error: --beam is deterministic: {'--seed' if given[0] == '--seed' else '--temperature'} " \
                      "does not apply to it"


@pytest.mark.parametrize("args", [["--lines", "2"], ["--stop", "\\n\\n", "--length", "2000"], ["--length", "7"]])
def test_a_sample_that_ends_in_a_newline_gets_no_other(run, args):
    """stdout is the sample's own text, plus a newline only where it does not end in one."""
    text = json.loads(sample(run, "--seed", "0", *args, "--json").stdout)["samples"][0]
    line = text if text.endswith("\n") else text + "\n"
    assert text.endswith("\n") == (args[0] != "--length"), text
    assert sample(run, "--seed", "0", *args).stdout == line
    assert sample(run, "--seed", "0", *args, "--num-samples", "2").stdout.startswith(f"=== sample 1 ===\n{line}=== ")


# ---------------------------------------------------------------- greedy, streamed, many


def test_greedy_prints_no_seed_and_one_copy(shared, tmp_path):
    one = run_cli(["sample", "-m", shared["run"], "-t", "0", "-n", "20"], cwd=tmp_path)
    assert one.returncode == 0 and one.stderr == "", one.stderr
    many = run_cli(["sample", "-m", shared["run"], "-t", "0", "-n", "20", "--num-samples", "3"], cwd=tmp_path)
    assert many.returncode == 0 and many.stdout == one.stdout
    assert many.stderr.strip() == ("charlm: --temperature 0 is greedy: all 3 samples would be the same text, "
                                   "so it is printed once")
    assert "--seed" in run_cli(["sample", "-m", shared["run"], "-n", "5"], cwd=tmp_path).stderr  # sampling: printed


def test_num_samples_stream_and_ctrl_c_keeps_them(shared, tmp_path):
    n = 4000  # a block of 256 streams takes about a second: long enough to interrupt in the middle
    p = subprocess.Popen(CHARLM + ["sample", "-m", str(shared["run"]), "--num-samples", "100000", "-n", str(n),
                                   "--seed", "1"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "=== sample 1 ===\n"  # streamed: the run is far from done
    while p.stdout.readline() != "=== sample 256 ===\n":
        pass
    assert len(p.stdout.read(n + 1)) == n + 1  # the first block's last sample and its newline
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)  # while the second block is generated
    rest = p.stdout.read()
    assert p.wait(timeout=60) == 130
    assert p.stderr.read().strip() == "error: interrupted"
    kept = rest.split("=== sample 512 (interrupted) ===\n")
    assert rest.startswith("=== sample 257 (interrupted) ===\n") and len(kept) == 2, rest[:200]
    assert 0 < len(kept[1]) - 1 < n and "=== sample 513" not in rest  # part of a sample, then nothing more


def test_num_samples_memory_is_bounded(tmp_path, shared):
    """Peak memory with 16 blocks of streams is about that of one block (it grew with N before)."""
    big = tmp_path / "BIG"
    assert run_cli(["train", shared["corpus"], "--out", big, "--hidden", "256", "--layers", "1", "--max-steps",
                       "1", "--seq-len", "8", "--batch-size", "2"], cwd=tmp_path).returncode == 0

    def peak_kib(n: int) -> int:
        with open(os.devnull, "w") as null:
            p = subprocess.Popen(CHARLM + ["sample", "-m", str(big), "--num-samples", str(n), "-n", "20",
                                           "--seed", "1"], cwd=tmp_path, env=ENV, stdout=null)
            _, status, usage = os.wait4(p.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss

    assert peak_kib(16 * 256) - peak_kib(256) < 20 * 1024


# ---------------------------------------------------------------- a full or closed stdout


def test_sample_to_full_stdout(shared, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = run_cli(["sample", "--model", shared["run"], "--length", "50", "--seed", "1"], cwd=tmp_path,
                          stdout=full)
    proc.stdout = None
    assert_one_line_error(proc, ERROR, "no space left on device")


def test_sample_into_a_closed_pipe(shared, tmp_path):
    """`charlm sample | head -c 10`: the reader leaving is not an error."""
    p = subprocess.Popen(CHARLM + ["sample", "--model", str(shared["run"]), "--length", "100000", "--seed", "1"],
                         cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "error" not in err, err


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = (
    [(f"sample-{k}", ["sample", "--model", f"{{{k}}}", "--length", "5"], ERROR, w) for k, w in CKPT_CASES]
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
        ("sample-seed-negative", ["sample", "--model", "{run}", "--seed", "-1"], USAGE, "--seed"),
    ]
)
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(
    CASES,
    runner_only={"sample-array", "sample-incomplete", "sample-bad_shape",
                 "sample-temperature-inf", "sample-length-negative", "sample-num-samples-0"},
    parse_errors={"sample-temperature-not-a-number", "sample-seed-negative"},
)

MALFORMED = {  # the charlm marker and version, but a field of the wrong type: a damaged or hand-made file
    "model-config-not-a-dict": lambda d: {**d, "model_config": "lstm"},
    "vocab-chars-not-a-string": lambda d: {**d, "vocab": {"chars": 5, "counts": []}},
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_checkpoint_fields(name, shared, tmp_path, monkeypatch):
    bad = damaged(shared, tmp_path / f"{name}.pkl", MALFORMED[name])
    assert_runner_error(invoke(["sample", "--model", bad, "--length", "5"], tmp_path, monkeypatch), ERROR,
                        "checkpoint")
