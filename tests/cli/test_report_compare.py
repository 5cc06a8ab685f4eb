"""`charlm report RUN1 RUN2 … -o compare.html` through the real executable: the page holds every
run, says where scores do not compare, renders in headless Chromium, and bad input is one line."""

from __future__ import annotations

import re

import pytest

from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.data.files import CorpusRecord
from charlm.data.vocab import Vocab
from charlm.report import compare
from charlm.training import plans
from tests.helpers import assert_one_line_error, charlm, run_events
from tests.report.browser import CHROMIUM, NO_CHROMIUM, DevTools, Tab, self_contained

SPEECH = "KING:\nWe are a king, and so we will be.\nQUEEN:\nAnd so we are, my lord.\n\n" * 60
CODE = "def f(x):\n    return x * 2  # <double> & done\n\nprint(f(3))\n" * 60


def train(root, name: str, text: str, cell: str, steps: int = 12):
    path = root / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    data = corpus.load(path, root / name)
    mcfg = ModelConfig(len(data.vocab), cell=cell, layers=1, hidden=12, embedding_dim=0)
    tcfg = TrainConfig(seq_len=16, batch_size=4, max_steps=steps, eval_every=4, log_every=2, seed=0, workers=1)
    run_events(plans.decide(data, root / name, mcfg, OptimConfig(lr=2e-2, schedule="constant"), tcfg))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    train(root, "gru", SPEECH, "gru")
    (root / "rnn.txt").write_text(SPEECH, encoding="utf-8")
    train(root, "rnn", SPEECH, "rnn", steps=8)
    train(root, "code", CODE, "lstm")
    (root / "empty").mkdir()
    return root


def test_runs_on_one_text_side_by_side(ws):
    done = charlm(["report", "gru", "rnn", "-o", "two.html"], cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "wrote two.html" in done.stderr and "2 runs" in done.stderr and done.stdout == ""
    page = (ws / "two.html").read_text(encoding="utf-8")
    tags = self_contained(page)
    charts = [a["aria-label"] for t, a in tags if t == "svg"]
    assert charts[:2] == ["Validation loss against training step", "Validation loss against training time"]
    assert "log10 ‖∂L_t/∂h_(t−k)‖, mean over positions" in charts and "Gradient norm before clipping" in charts
    assert page.count('<polyline class="series"') == 2 * 2 + 2 + 2     # 2 runs × (2 curves, a flow, the norms)
    assert "their scores compare directly" in page and "Not all of these scores compare" not in page
    rows = re.findall(r"<tr><td>.*?</tr>", page)
    assert len(rows) == 2 and "gru 1×12, one-hot input" in rows[0] and "rnn 1×12" in rows[1]
    assert "What each wrote last" in page and "gru, step 12" in page and "rnn, step 8" in page


def test_runs_on_other_texts_are_grouped_and_the_page_says_so(ws):
    done = charlm(["report", "gru", "code", "rnn/best.pkl", "-o", "three.html"], cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "2 groups" in done.stderr
    page = (ws / "three.html").read_text(encoding="utf-8")
    self_contained(page)
    assert "Not all of these scores compare" in page
    assert "<b>group A</b>: gru, rnn" in page and "<b>group B</b>: code — differs from group A in the corpus" in page
    assert "code, step 12" in page       # its sample, drawn from an alphabet with < > &, kept the tags balanced
    assert page.count("group B</td>") == 1 and page.count("group A</td>") == 2


def test_groups_follow_the_validated_text():
    entries = [compare.Entry(f"r{i}", ckpt, [], []) for i, ckpt in enumerate([_ckpt("a", 0.1), _ckpt("a", 0.1),
                                                                               _ckpt("a", 0.2), _ckpt("b", 0.1)])]
    assert compare.groups(entries) == [[0, 1], [2], [3]]


def _ckpt(sha: str, val_fraction: float) -> Checkpoint:
    """Just what `compare.groups` reads: the corpus, the validation split, the vocabulary."""
    return Checkpoint(path=None, model=None, vocab=Vocab("ab", [1, 1]), params={},
                      train=TrainConfig(val_fraction=val_fraction), corpus=CorpusRecord("c", "utf-8", {"sha256": sha}))


@pytest.mark.parametrize("args,code,needle", [
    (["report", "gru", "nowhere", "-o", "x.html"], 1, "nowhere is not a run: there is no such directory"),
    (["report", "gru", "empty", "-o", "x.html"], 1, "empty is not a run: no best.pkl or last.pkl"),
    (["report", "gru", "gru/best.pkl", "-o", "x.html"], 2, "are the same run"),
    (["report", "gru", "rnn", "-o", "missing/x.html"], 1, "cannot write missing/x.html"),
    (["report", "gru", "rnn", "-o", "empty"], 2, "is a directory"),
    (["report", "gru", "rnn", "--step", "4"], 2, "--step"),
    (["report", "gru", "rnn", "--text", "nothing.txt"], 1, "nothing.txt"),
])
def test_bad_input_is_one_line(ws, args, code, needle):
    assert_one_line_error(charlm(args, cwd=ws), code, needle)
    assert not (ws / "x.html").exists() and not (ws / "compare.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_comparison_in_headless_chromium(ws, tmp_path):
    assert charlm(["report", "gru", "rnn", "code", "-o", tmp_path / "c.html"], cwd=ws).returncode == 0
    tools = DevTools(tmp_path / "profile")
    try:
        for width in (1200, 380):
            tab = Tab(tools, width)
            tab.open(tmp_path / "c.html")
            assert tab.errors() == [] and not tab.overflows()   # the wide table scrolls inside its own box
            assert tab.eval("document.querySelectorAll('svg.chart').length") == 4
            assert tab.eval("document.querySelectorAll('table.runs tbody tr').length") == 3
            assert tab.screenshot(tmp_path / f"compare-{width}.png").stat().st_size > 10_000
    finally:
        tools.close()
