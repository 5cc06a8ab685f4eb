"""Issue 15's sampling, through the real `charlm` executable: escapes in --prime, --prime-file,
--stop and --lines, --beam (checked against an independent scoring), --json, and --interactive
(piped, and Ctrl-C in the middle of an answer). A tiny run is trained once per module."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time

import numpy as np
import pytest

import charlm
from tests.cli.conftest import english
from tests.helpers import CHARLM, ENV, ERROR, MINI, USAGE, assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("charlm-sample")
    corpus = d / "corpus.txt"
    corpus.write_text(english(60) + "a\tb\n", encoding="utf-8")  # and a tab
    proc = run_cli(["train", corpus, "--out", d / "RUN", "--max-steps", "30", "--lr", "0.02", *MINI], cwd=d)
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "run": d / "RUN", "model": charlm.load(d / "RUN")}


def sample(ws, *args, **kw) -> subprocess.CompletedProcess:
    proc = run_cli(["sample", "-m", ws["run"], *args], cwd=ws["dir"], **kw)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def feed(ws, stdin: str, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run(CHARLM + ["sample", "-m", str(ws["run"]), *args], cwd=ws["dir"], env=ENV, input=stdin,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# ---------------------------------------------------------------- priming


def test_prime_escapes_and_prime_file_give_the_same_text(ws, tmp_path):
    (tmp_path / "prime.txt").write_text("the\tfox\n", encoding="utf-8")
    typed = sample(ws, "--prime", "the\\tfox\\n", "--seed", "3", "-n", "40").stdout
    from_file = sample(ws, "--prime-file", tmp_path / "prime.txt", "--seed", "3", "-n", "40").stdout
    piped = feed(ws, "the\tfox\n", "--prime-file", "-", "--seed", "3", "-n", "40")
    assert typed.startswith("the\tfox\n") and len(typed) == len("the\tfox\n") + 40 + 1
    assert typed == from_file == piped.stdout and piped.returncode == 0


def test_prime_backslash_escapes(ws):
    err = assert_one_line_error(run_cli(["sample", "-m", ws["run"], "--prime", "the\\\\n"], cwd=ws["dir"]), USAGE)
    assert "--prime has 1 character(s) the model never saw: '\\\\'" in err  # \\ is one literal backslash
    assert sample(ws, "--prime", "a\\qb", "--skip-unknown", "-n", "3").stdout.startswith("aqb")  # \q stays


@pytest.mark.parametrize("args, code, needle", [
    (["--prime-file", "{dir}/missing.txt"], ERROR, "cannot read --prime-file"),
    (["--prime-file", "{dir}/bad.bin"], ERROR, "is not valid utf-8 text"),
    (["--prime-file", "{dir}/unseen.txt"], ERROR, "--prime-file {dir}/unseen.txt has 1 character(s) the model "
                                                  "never saw: 'Z'"),
    (["--prime-file", "{dir}/unseen.txt", "--prime", "a"], USAGE, "not both"),
    (["--stop", ""], USAGE, "--stop needs a non-empty string"),
    (["--beam", "2", "-t", "0.5"], USAGE, "--temperature does not apply"),
    (["--beam", "2", "--num-samples", "2"], USAGE, "--beam finds one continuation"),
    (["--interactive", "--json"], USAGE, "--interactive writes one stream"),
    (["--beam", "2", "--length", "0"], USAGE, "--length must be ≥ 1"),
])
def test_bad_sampling_options_are_one_line(ws, args, code, needle):
    (ws["dir"] / "bad.bin").write_bytes(b"ab\xff\xfe")
    (ws["dir"] / "unseen.txt").write_text("Zebra", encoding="utf-8")
    args = [a.format(dir=ws["dir"]) for a in args]
    assert_one_line_error(run_cli(["sample", "-m", ws["run"], *args], cwd=ws["dir"]), code,
                          needle.format(dir=ws["dir"]))


# ---------------------------------------------------------------- stopping


def test_stop_ends_at_the_first_stop_string_included(ws):
    full = sample(ws, "--prime", "the ", "--seed", "5", "-n", "300").stdout[len("the "):-1]
    for stop in ("o", full[150:153]):  # a letter, and three characters the sample holds
        cut = sample(ws, "--prime", "the ", "--seed", "5", "-n", "300", "--stop", stop, "--stop", "zz").stdout
        gen = cut[len("the "):-1]
        assert gen.endswith(stop) and gen.find(stop) == len(gen) - len(stop), gen
        assert full.startswith(gen) and len(gen) < len(full)


def test_lines_ends_after_the_nth_newline_and_stop_takes_escapes(ws):
    full = sample(ws, "--seed", "6", "-n", "400").stdout
    two = sample(ws, "--seed", "6", "-n", "400", "--lines", "2").stdout  # ends in its own newline: none added
    assert two.count("\n") == 2 and two.endswith("\n") and full.startswith(two)
    assert sample(ws, "--seed", "6", "-n", "400", "--stop", "\\n").stdout == full[:full.index("\n") + 1]


def test_json_samples_and_stops_per_stream(ws):
    out = json.loads(sample(ws, "--seed", "2", "-n", "60", "--num-samples", "3", "--stop", " ", "--json").stdout)
    assert out["seed"] == 2 and len(out["samples"]) == 3
    assert all(s.endswith(" ") and s.count(" ") == 1 for s in out["samples"]), out


# ---------------------------------------------------------------- beam search


def test_beam_one_is_greedy_and_wider_beams_are_at_least_as_probable(ws):
    m = ws["model"]
    greedy = sample(ws, "-t", "0", "--prime", "the ", "-n", "50").stdout
    one = sample(ws, "--beam", "1", "--prime", "the ", "-n", "50")
    assert one.stdout == greedy and "beam 1: log-probability" in one.stderr
    found = {k: json.loads(sample(ws, "--beam", str(k), "--prime", "the ", "-n", "50", "--json").stdout)
             for k in (1, 3, 8)}
    for k, f in found.items():
        assert f["prime"] == "the " and len(f["text"]) == f["chars"] == 50
        bits = m.surprisal(f["prime"] + f["text"])[len(f["prime"]):]  # scored by model.forward, not the beam
        assert f["log_prob"] == pytest.approx(-bits.sum() * math.log(2), rel=1e-5, abs=1e-4), k
        assert f["log_prob"] >= found[1]["log_prob"] - 1e-4, k
    assert found[1]["text"] == greedy[len("the "):-1]


def test_beam_with_a_stop_reports_the_part_kept(ws):
    full = json.loads(sample(ws, "--beam", "3", "-n", "80", "--json").stdout)
    cut = json.loads(sample(ws, "--beam", "3", "-n", "80", "--json", "--stop", " ").stdout)
    assert full["text"].startswith(cut["text"]) and cut["text"].endswith(" ") and cut["text"].count(" ") == 1
    bits = ws["model"].surprisal("\n" + cut["text"])[1:]  # no prime: the model starts from a newline
    assert cut["log_prob"] == pytest.approx(-bits.sum() * math.log(2), rel=1e-5, abs=1e-4)


# ---------------------------------------------------------------- interactive


def test_piped_session_carries_the_state_and_survives_bad_commands(ws):
    proc = feed(ws, ":temperature 0\n:length 12\nthe \n\n:bogus\n:top-p 2\nfox\n", "--interactive")
    assert proc.returncode == 0
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert errors == ["error: unknown command :bogus (:help lists them)", "error: :top-p must be in (0, 1], got 2.0"]
    greedy = sample(ws, "-t", "0", "--prime", "the ", "-n", "24").stdout[len("the "):-1]
    read = "the " + greedy + "fox"
    after = sample(ws, "-t", "0", "--prime", read, "-n", "12").stdout[len(read):-1]
    shown = [x + ("" if x.endswith("\n") else "\n") for x in (greedy[:12], greedy[12:], after)]
    assert proc.stdout == "".join(shown)  # an empty line continues; the next line is read after all of it


def test_session_ctrl_c_stops_the_answer_and_the_session_goes_on(ws):
    p = subprocess.Popen(CHARLM + ["sample", "-m", str(ws["run"]), "--interactive", "--seed", "1"], cwd=ws["dir"],
                         env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(":length 10000000\nthe \n")
    p.stdin.flush()
    assert p.stdout.read(20)  # the answer is streaming
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(":length 5\n:settings\n", timeout=60)
    assert p.returncode == 0 and "Traceback" not in err, err
    assert "stopped (Ctrl-C)" in err and "length 5" in err


def test_api_session_is_the_cli_session(ws):
    s = ws["model"].session(temperature=0, length=7)
    text = "".join(s.handle("the ").text)
    assert text == ws["model"].sample("the ", temperature=0, length=7)[len("the "):]
    with pytest.raises(charlm.CharlmError, match="needs a number"):
        s.handle(":top-p lots")
    assert s.describe().startswith("temperature 0, top-k 0, top-p 1, length 7")
    np.testing.assert_equal(s.handle(":reset").message, "forgot everything read so far")
