"""The lessons: `charlm demo hello`, `charlm demo gradients` and `charlm eval gradient-flow`,
in the library and through the real executable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charlm import checkpoint
from charlm.errors import UsageError
from charlm.lessons import gradflow, gradients, hello
from charlm.lessons.gradflow import Flow
from charlm.nn import model
from charlm.use import evaluate
from tests.helpers import MINI, USAGE, assert_one_line_error, run_cli

ANSI = "\x1b["


# ---------------------------------------------------------------- hello, library


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_hello_learns_all_four(cell):
    lesson = hello.run("hello", cell)
    assert lesson.vocab.chars == "ehlo"
    assert [s.target for s in lesson.after.steps] == list("ello")
    assert lesson.after.correct == 4, [s.predicted for s in lesson.after.steps]
    assert lesson.after.loss < hello.DONE_LOSS < lesson.before.loss
    assert lesson.steps_trained == len(lesson.norms) <= hello.MAX_STEPS


def test_hello_snapshot_is_the_model():
    lesson = hello.run("hello", "rnn")
    params = model.init_params(lesson.cfg, np.random.default_rng(0), dtype=np.float64)
    snap = hello.snapshot(params, lesson.cfg, lesson.vocab, lesson.vocab.encode("hello"))
    assert snap == lesson.before                                       # the same seed, the same untrained model
    x = lesson.vocab.encode("hell")[None]                              # (1, 4)
    _, logits, final, _ = model.forward(params, lesson.cfg, x, None, model.init_state(lesson.cfg, 1, np.float64),
                                        want_logits=True)
    np.testing.assert_allclose(snap.steps[-1].hidden, final["h"][-1, 0])
    np.testing.assert_allclose([s.scores for s in snap.steps], logits[0])
    for s in snap.steps:
        assert s.onehot == [int(c == s.char) for c in lesson.vocab.chars]
        assert sum(s.probs) == pytest.approx(1.0)
        assert s.predicted == lesson.vocab.chars[int(np.argmax(s.probs))]


@pytest.mark.parametrize("word, needle", [("a", "at least 2"), ("", "at least 2"), ("zzzz", "no prediction"),
                                          ("x" * 30, "at most")])
def test_hello_refuses_words_with_nothing_to_learn(word, needle):
    with pytest.raises(UsageError, match=needle):
        hello.run(word)


# ---------------------------------------------------------------- gradients, library


def _flow(means: list[float]) -> Flow:
    return Flow(list(range(1, len(means) + 1)), means, means, means, means, 4)


def _result(cell: str, means: list[float], norms: list[float]) -> gradients.CellResult:
    return gradients.CellResult(cell, _flow(means), _flow(means), [3.0, 2.0], norms, 1.0)


def test_summary_reads_the_numbers():
    vanishing = [_result("rnn", [1.0, 1e-6], [0.5, 2.0, 3.0]), _result("lstm", [1.0, 0.5], [0.1]),
                 _result("gru", [1.0, 0.1], [0.2])]
    text = "\n".join(gradients.summary(vanishing))
    assert "RNN's gradient vanishes fastest" in text
    assert "RNN: clipping fired on 2 of 3 steps" in text
    rnn_keeps = [_result("rnn", [1.0, 0.9], [0.5]), _result("lstm", [1.0, 0.01], [0.1]),
                 _result("gru", [1.0, 2.0], [0.2])]
    text = "\n".join(gradients.summary(rnn_keeps))
    assert "vanishes" not in text and "does not lose its gradient fastest: the LSTM does" in text
    assert "exploding): GRU" in text


def test_gradients_demo_on_a_small_text():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abc de\n"), 3000))
    results = gradients.run(text, steps=4, max_lag=3)
    assert [r.cell for r in results] == ["rnn", "lstm", "gru"]
    for r in results:
        assert len(r.norms) == len(r.losses) == 4 and all(n > 0 for n in r.norms)
        assert r.clipped == sum(n > gradients.OPTIM.clip for n in r.norms)
        assert r.at_init.lags == [1, 2, 3] and r.at_init.mean != r.trained.mean


# ---------------------------------------------------------------- through the executable


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("charlm-lessons")
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog".split()
    (d / "corpus.txt").write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(120)) + "\n")
    proc = run_cli(["train", d / "corpus.txt", "--out", d / "RUN", "--max-steps", "3", "--cell", "gru", *MINI],
                      cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d


def test_cli_hello(ws):
    proc = run_cli(["demo", "hello"], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert ANSI not in proc.stdout
    assert "after training: 4/4 right" in proc.stdout
    assert proc.stdout.count("one-hot [") == 8 and proc.stdout.count("softmax") == 8


def test_cli_hello_other_word_and_cell(ws):
    proc = run_cli(["demo", "hello", "--text", "abracadabra", "--cell", "lstm"], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert "LSTM layer" in proc.stdout and "after training: 10/10 right" in proc.stdout


@pytest.mark.parametrize("args, needle", [(["--text", "a"], "at least 2"), (["--text", "ooo"], "no prediction")])
def test_cli_hello_bad_word(ws, args, needle):
    proc = run_cli(["demo", "hello", *args], cwd=ws)
    assert_one_line_error(proc, USAGE, needle)
    assert proc.stdout == ""


def test_cli_gradient_flow_json_matches_the_library(ws):
    proc = run_cli(["eval", "gradient-flow", "--model", ws / "RUN", "--json", "--max-lag", "5"], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ckpt, cfg, params, _ = checkpoint.load_model(ws / "RUN")
    want = gradflow.measure(params, cfg, evaluate.held_out(ckpt), max_lag=5)
    assert got["lags"] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(got["mean"], want.mean, rtol=1e-6)
    np.testing.assert_allclose(got["q75"], want.q75, rtol=1e-6)
    assert got["model"]["cell"] == "gru"


def test_cli_gradient_flow_on_a_file(ws):
    text = ws / "text.txt"
    text.write_text("the lazy dog and the quick fox\n" * 10)
    proc = run_cli(["eval", "gradient-flow", text, "--model", ws / "RUN", "--max-lag", "4"], cwd=ws)
    assert proc.returncode == 0, proc.stderr
    assert ANSI not in proc.stdout and "at lag 4 the gradient is" in proc.stdout
    assert len([ln for ln in proc.stdout.splitlines() if ln.strip()[:2] in ("1 ", "2 ", "3 ", "4 ")]) == 4


def test_cli_gradient_flow_short_text(ws):
    short = ws / "short.txt"
    short.write_text("the dog\n")
    proc = run_cli(["eval", "gradient-flow", short, "--model", ws / "RUN"], cwd=ws)
    assert_one_line_error(proc, 1, "too short")


def test_cli_demo_gradients(ws):
    proc = run_cli(["demo", "gradients", "--steps", "3"], cwd=ws, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "RNN mean" in out and "LSTM mean" in out and "GRU mean" in out
    for cell in ("RNN", "LSTM", "GRU"):
        assert f"{cell}: clipping fired on" in out
    assert "what the numbers show" in out and ANSI not in out
