"""The report and its views: the data behind them is exact, the page is valid and self-contained.

Activations are checked against `model.forward`'s final state on every prefix,
surprisal against the loss `model.forward` (and `score_ids`) reports, for every
cell and both input kinds. The HTML is parsed (balanced tags, no URLs, the data
survives `</script>` and Korean), the commands run through CliRunner, and, when
a `chromium` is installed (`make test-browser`), the page is loaded headless
over the DevTools pipe and driven: no console errors, the curves, spans and unit
list are there, tooltips and the unit picker work.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from charlm import checkpoint
from charlm.cli import app
from charlm.cli.report_cmd import plain_surprisal, shaded_surprisal
from charlm.cli.sparkline import sparkline
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.data.files import CorpusRecord
from charlm.data.vocab import Vocab
from charlm.lessons import gradflow
from charlm.nn import model
from charlm.report import grads as report_grads
from charlm.report import page as report
from charlm.report import probes as probe
from charlm.training import plans
from charlm.use import evaluate
from tests.helpers import run_events

ENGLISH = ('KING RICHARD:\nHe said "stand (and wait) here" & left.\n'
           'QUEEN: <b>not</b> [so] fast; 3 < 4 & "x" \'y\' </script>\n') * 12
KOREAN = "동해물과 백두산이 마르고 닳도록\n하느님이 보우하사 \"우리나라\" 만세.\n(무궁화) 삼천리 화려강산\n" * 10
CASES = [(cell, emb) for cell in ("lstm", "gru", "rnn") for emb in (0, 6)]


def tiny(text: str, cell: str = "lstm", embedding_dim: int = 0, seed: int = 0):
    vocab = Vocab("".join(sorted(set(text))), [1] * len(set(text)))
    cfg = ModelConfig(len(vocab), cell=cell, layers=2, hidden=10, embedding_dim=embedding_dim)
    params = model.init_params(cfg, np.random.default_rng(seed))
    params = {k: v * 2.5 for k, v in params.items()}  # livelier units than the small init gives
    return cfg, params, vocab, vocab.encode(text)


# ---------------------------------------------------------------- the data behind the views


@pytest.mark.parametrize("cell,emb", CASES)
def test_activations_match_a_direct_forward_pass(cell, emb):
    cfg, params, vocab, ids = tiny(ENGLISH[:300], cell, emb)
    acts = probe.activations(params, cfg, ids)
    assert set(acts) == ({"h", "c"} if cell == "lstm" else {"h"})
    for t in (1, 2, 37, 150, len(ids)):
        _, _, final, _ = model.forward(params, cfg, ids[None, :t], None, model.init_state(cfg, 1))
        for kind, a in acts.items():
            np.testing.assert_allclose(a[:, t - 1], final[kind][:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell,emb", CASES)
def test_surprisal_sums_to_the_loss_forward_reports(cell, emb):
    cfg, params, vocab, ids = tiny(ENGLISH[:400], cell, emb)
    s = probe.surprisal(params, cfg, ids, chunk=53)  # several chunks: the state must carry
    loss, logits, _, _ = model.forward(params, cfg, ids[None, :-1], ids[None, 1:], model.init_state(cfg, 1),
                                       want_logits=True)
    assert math.isnan(s.bits[0]) and np.isfinite(s.bits[1:]).all()
    assert s.nats_per_char == pytest.approx(loss, rel=1e-5)
    assert np.nansum(s.bits) * math.log(2) == pytest.approx(loss * (len(ids) - 1), rel=1e-5)
    score = evaluate.score_ids(params, cfg, ids, batch=1, seq_len=1000)
    assert s.nats_per_char == pytest.approx(score.nats_per_char, rel=1e-5)
    assert (s.top_ids[1:, 0] == logits[0].argmax(axis=1)).all()           # best guess first
    assert (np.diff(s.top_probs[1:], axis=1) <= 1e-12).all()
    p = 2.0 ** -s.bits[1:]
    assert (p <= s.top_probs[1:, 0] + 1e-9).all()                          # nothing beats the top guess
    hit = s.top_ids[1:] == ids[1:, None]
    np.testing.assert_allclose(s.top_probs[1:][hit], p[hit.any(axis=1)], rtol=1e-6)


def test_features_mark_quotes_brackets_lines_and_case():
    text = 'ab "Cd (e)" F\nxy'
    f = probe.features(text)
    assert "".join("q" if v else "." for v in f["in quotes"]) == '...qqqqqqq.....'.ljust(len(text), ".")[:len(text)]
    assert f["in brackets"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert f["position in line"].tolist()[-4:] == [13, 0, 1, 2]
    assert f["line start"].tolist().index(1) == text.index("\n")
    assert [text[i] for i in np.flatnonzero(f["uppercase"])] == ["C", "F"]
    assert f["in a word"][text.index("C")] == 1 and f["in a word"][2] == 0
    korean = probe.features("한국어 「인용」")
    assert korean["in a word"][:3].tolist() == [1, 1, 1] and korean["in quotes"][5] == 1
    assert korean["uppercase"].sum() == 0


def test_correlations_find_a_planted_unit_and_skip_absent_features():
    text = 'one "two" three\nfour "five six" seven\n' * 5
    feats = probe.features(text)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2, len(text), 8)).astype(np.float32)          # (L, n, H)
    h[1, :, 5] = feats["in quotes"] * 0.9 - 0.3                              # layer 1 unit 5 tracks quotes
    c = rng.standard_normal((2, len(text), 8)).astype(np.float32)
    c[0, :, 2] = -feats["position in line"]                                 # c unit 2 counts down the line
    c[0, :, 3] = 0.5                                                        # a dead unit
    corr = probe.correlations({"h": h, "c": c}, feats)
    assert corr["h"].shape == (2, 8, len(feats))
    top = probe.top_units(corr, list(feats))
    assert top["in quotes"][0] == probe.Unit("h", 1, 5, pytest.approx(1.0))
    assert top["position in line"][0] == probe.Unit("c", 0, 2, pytest.approx(-1.0))
    assert "in brackets" not in top and "uppercase" not in top           # never happen in this text
    assert corr["c"][0, 3, 0] == 0.0


def test_passage_starts_and_ends_on_line_boundaries():
    vocab = Vocab("".join(sorted(set(ENGLISH))), [1] * len(set(ENGLISH)))
    ids = vocab.encode(ENGLISH)
    p = vocab.decode(probe.passage(ids, 300, vocab.index()["\n"]))
    assert p.startswith("He said") and p.endswith("\n") and 240 <= len(p) <= 300
    assert len(probe.passage(ids[:50], 200, 0)) == 50 and len(probe.passage(ids, 0, 0)) == len(ids)


def test_curves_add_validations_only_the_history_holds():
    metrics = [{"step": 10, "seconds": 1.0, "train_loss": 3.0, "val_loss": None},
               {"step": 20, "seconds": 2.0, "train_loss": 2.5, "val_loss": 2.6}, {"oops": 1}]
    history = [{"step": 20, "seconds": 2.0, "val_loss": 2.6}, {"step": 25, "seconds": 2.4, "val_loss": 2.4}]
    c = probe.curves(metrics, history)
    assert c["train"] == [(10, 1.0, 3.0), (20, 2.0, 2.5)] and c["val"] == [(20, 2.0, 2.6), (25, 2.4, 2.4)]
    assert probe.curves([], history)["val"] == c["val"]


def test_sparkline():
    assert sparkline([3.0, 2.0, 1.0, 1.5]) == "█▅▁▃"
    assert sparkline([]) == "" and sparkline([float("nan"), None]) == ""
    assert sparkline([2.0, 2.0]) == "▄▄"
    assert len(sparkline(list(range(1000)), width=40)) == 40


# ---------------------------------------------------------------- the page


class _Checker(HTMLParser):
    """Fails on a closing tag that does not match the innermost open one."""
    VOID = {"meta", "link", "br", "input", "img", "hr", "line", "circle", "polyline", "path", "rect"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def check_page(page: str, text: str) -> dict:
    """Valid, self-contained, and carrying the passage intact; returns the embedded data."""
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:|ftp:|url\(|@import", page, re.I), "the page must not reference any URL"
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    for tag, attrs in checker.tags:
        assert "src" not in attrs, f"<{tag} src=…> loads something"
        assert attrs.get("href", "data:").startswith("data:"), f"<{tag} href={attrs['href']}>"
    scripts = [a for t, a in checker.tags if t == "script"]
    assert len(scripts) == 2 and scripts[0].get("type") == "application/json"
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                page, re.S).group(1))
    assert data["text"] == text
    assert sum(1 for t, a in checker.tags if t == "span" and "ch" in a.get("class", "").split()) == 2 * len(text)
    assert sum(1 for t, a in checker.tags if t == "svg" and a.get("aria-label", "").startswith("Loss against")) == 2
    return data


def saved(cfg, params, vocab, **fields) -> checkpoint.Checkpoint:
    """A checkpoint as charlm.checkpoint.load returns it, without a file."""
    return checkpoint.Checkpoint(path=Path("/x/run/best.pkl"), saved_by="test", model=cfg, vocab=vocab, params=params,
                                 **fields)


@pytest.mark.parametrize("text,cell,emb", [(ENGLISH, "lstm", 0), (KOREAN, "gru", 6), (ENGLISH, "rnn", 6)])
def test_page_is_valid_self_contained_and_escaped(text, cell, emb):
    cfg, params, vocab, ids = tiny(text, cell, emb)
    metrics = [{"step": s, "seconds": s / 10, "train_loss": 4 - s / 100, "val_loss": 3.5 - s / 120 if s % 50 == 0
                else None, "chars_per_sec": 1000.0, "grad_norm": 8.0 if s < 50 else 2.0} for s in range(10, 210, 10)]
    ckpt = saved(cfg, params, vocab, best_val_loss=1.9, progress=checkpoint.Progress(200, 1, 0, 80_000, 20.0),
                 corpus=CorpusRecord("/x/c.txt", "utf-8", {}), optim=OptimConfig(clip=5.0))
    page = report.build(ckpt, cfg, params, vocab, ids, metrics, source="A <test> & passage",
                        excluded={"€": 2}, sample_length=40)
    data = check_page(page, text)
    assert "A &lt;test&gt; &amp; passage" in page and page.count("</script>") == 2
    assert text is KOREAN or '">&lt;</span>' in page and '">&amp;</span>' in page
    assert "Left out 2 character(s)" in page
    assert len(data["bits"]) == len(text) and data["bits"][0] is None
    kinds = {"h", "c"} if cell == "lstm" else {"h"}
    assert set(data["acts"]) == kinds and len(data["acts"]["h"]) == cfg.layers
    assert data["top"], "some feature varies in the passage, so some unit is listed"
    # loss curves 2 × 3, gradient flow 3 (mean and quartiles), gradient norm 1
    assert page.count("<polyline") == 10 and "temperature 0.2" in page and "temperature 1" in page
    assert "Gradient flow through time" in page and "clip limit 5" in page
    assert "4 of the 20 logged steps were above it" in page
    if text is KOREAN:
        assert "동해물과" in page


# ---------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny LSTM trained for a few steps, with metrics.jsonl, checkpoints and an id cache."""
    root = tmp_path_factory.mktemp("report")
    (root / "corpus.txt").write_text(ENGLISH * 3, encoding="utf-8")
    data = corpus.load(root / "corpus.txt", root / "run")
    mcfg = ModelConfig(len(data.vocab), cell="lstm", layers=1, hidden=12, embedding_dim=4)
    tcfg = TrainConfig(seq_len=16, batch_size=4, max_steps=12, eval_every=4, log_every=2, seed=0)
    run_events(plans.decide(data, root / "run", mcfg, OptimConfig(lr=1e-2), tcfg))
    return root / "run"


def test_report_command_writes_a_page(run_dir, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(out), "--chars", "300"])
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stderr and result.stdout == ""
    page = out.read_text(encoding="utf-8")
    text = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))["text"]
    check_page(page, text)
    assert text.split("\n")[0] in ENGLISH.split("\n") and len(text) <= 300  # held out, from a line start
    assert "Gradient norm before clipping" in page and "clip limit 5" in page  # metrics.jsonl's grad_norm
    assert "Held-out text" in page and page.count("<circle") == 2 * 3  # a validation dot per evaluation, per chart


def test_report_defaults_to_runs_latest_and_reports_excluded_chars(run_dir, tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(run_dir)
    other = tmp_path / "other.txt"
    other.write_text("QUEEN: wait here ☃ (now) ☃\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--text", str(other)])
    assert result.exit_code == 0, result.stderr
    assert "excluded 2 character(s)" in result.stderr and "'☃'" in result.stderr
    check_page((run_dir / "report.html").read_text(encoding="utf-8"), "QUEEN: wait here  (now) \n")


def test_eval_surprisal_plain_and_coloured(run_dir, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("He said \"stand\"\nQUEEN: wait.\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "surprisal", "--model", str(run_dir), str(f)],
                                env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "\x1b[" not in result.stdout
    assert lines[0] == 'He said "stand"' and "bits/char]" in lines[1] and lines[2] == "QUEEN: wait."
    assert re.search(r"28 characters scored, \d+\.\d{3} bits/char", lines[-1])
    coloured = CliRunner().invoke(app, ["eval", "surprisal", "--model", str(run_dir), str(f)],
                                  env={"FORCE_COLOR": "1", "NO_COLOR": "", "COLORTERM": "truecolor"})
    assert coloured.exit_code == 0 and "\x1b[" in coloured.stdout and "He said" not in coloured.stdout


def test_surprisal_renderings_align_wide_characters():
    text = "한국 ab\nxy"
    bits = np.array([np.nan, 0.5, 7.0, 1.5, 3.0, 9.0, 5.0, 0.2])
    plain = plain_surprisal(text, bits).splitlines()
    assert plain[0] == "한국 ab" and plain[1] == "    #.:#  [4.20 bits/char]"   # wide chars get two marks
    assert plain[2] == "xy" and plain[3] == "+    [2.60 bits/char]" and plain[4].startswith("marks:")
    buf = StringIO()
    Console(file=buf, force_terminal=True, color_system="truecolor", width=80).print(shaded_surprisal(text, bits))
    assert "48;2;" in buf.getvalue()                                          # truecolor backgrounds


def test_report_without_a_passage_fails_cleanly(run_dir, tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("☃☃☃\n☃", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(run_dir), "--text", str(empty), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "at least 2 characters" in result.stderr
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- in a real browser (optional)

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)

PROBE_JS = """(() => {
  const q = (s) => document.querySelectorAll(s), cells = q("#cells .ch");
  const before = Array.from(cells, (e) => e.style.background).join("|");
  const buttons = q("button.unit"), activeBefore = q("button.unit.active").length;
  const last = buttons[buttons.length - 1];
  last.click();
  const after = Array.from(cells, (e) => e.style.background).join("|");
  const span = q("#surprisal .ch")[5];
  span.dispatchEvent(new MouseEvent("mouseover", {bubbles: true, clientX: 50, clientY: 50}));
  const tip = document.getElementById("tip");
  return {charts: q("svg.chart").length, lines: q("svg.chart polyline").length, spans: q("#surprisal .ch").length,
          cells: cells.length, units: buttons.length, activeBefore, clickedActive: last.classList.contains("active"),
          reshaded: before !== after, tipShown: !tip.hidden, tip: tip.textContent,
          info: document.getElementById("unit-info").textContent,
          headings: Array.from(q("h2"), (h) => h.textContent), n: Array.from(JSON.parse(
            document.getElementById("report-data").textContent).text).length};
})()"""


class DevTools:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out), stdlib only."""

    def __init__(self, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        hi_r, hi_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 50), fcntl.fcntl(res_w, fcntl.F_DUPFD, 50)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        move = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                "os.execv(sys.argv[3], sys.argv[3:])")
        self.proc = subprocess.Popen([sys.executable, "-c", move, str(hi_r), str(hi_w), CHROMIUM, *flags],
                                     pass_fds=(hi_r, hi_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (cmd_r, res_w, hi_r, hi_w):
            os.close(fd)
        self._buf, self._id, self.events = b"", 0, []

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return self.wait(lambda m, i=self._id: m.get("id") == i, timeout)

    def wait(self, match, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if match(m):
                    if "error" in m:
                        raise RuntimeError(m["error"])
                    return m.get("result", m)
                self.events.append(m)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._res_r)


def open_page(tools: DevTools, path: Path) -> tuple[dict, list]:
    """Load the page in a fresh tab; (what PROBE_JS saw, console errors and exceptions)."""
    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        tools.call(f"{domain}.enable", session=session)
    tools.events.clear()
    tools.call("Page.navigate", {"url": path.as_uri()}, session=session)
    tools.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
    seen = tools.call("Runtime.evaluate", {"expression": PROBE_JS, "returnByValue": True}, session=session)
    errors = [m for m in tools.events if m.get("method") == "Runtime.exceptionThrown"
              or (m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] in ("error", "assert"))
              or (m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error")]
    assert "exceptionDetails" not in seen, seen
    return seen["result"]["value"], errors


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test-browser installs it)")
def test_page_in_headless_chromium(tmp_path):
    pages = []
    for text, cell, emb in ((ENGLISH, "lstm", 0), (KOREAN, "gru", 6)):
        cfg, params, vocab, ids = tiny(text, cell, emb)
        metrics = [{"step": s, "seconds": s * 3.0, "train_loss": 4 - s / 100, "val_loss": 3.5 - s / 200}
                   for s in range(10, 210, 10)]
        path = tmp_path / f"{cell}.html"
        path.write_text(report.build(saved(cfg, params, vocab), cfg, params, vocab, ids, metrics,
                                     source="test passage", sample_length=40), encoding="utf-8")
        pages.append((path, len(text)))
    tools = DevTools(tmp_path / "profile")
    try:
        for path, n in pages:
            seen, errors = open_page(tools, path)
            assert errors == [], [json.dumps(e["params"])[-1500:] for e in errors]
            assert seen["charts"] == 3 and seen["lines"] == 9  # loss ×2, gradient flow; no grad_norm logged
            assert seen["spans"] == seen["cells"] == seen["n"] == n
            assert seen["units"] >= 5 and seen["activeBefore"] >= 1 and seen["clickedActive"]
            assert seen["reshaded"] and seen["info"].startswith("r with:")
            assert seen["tipShown"] and "top guesses" in seen["tip"], seen["tip"]
            assert seen["headings"][:2] == ["At a glance", "Loss curves"] and len(seen["headings"]) == 7
    finally:
        tools.close()


# ---------------------------------------------------------------- the gradient section


def test_gradient_section_measures_the_model_and_reads_the_norms():
    cfg, params, vocab, ids = tiny(ENGLISH, "rnn")
    metrics = [{"step": 5, "grad_norm": 3.0}, {"step": 10, "grad_norm": float("nan")}, {"step": 15}]
    g = report_grads.gather(saved(cfg, params, None, optim=OptimConfig(clip=1.0)), cfg, params, ids, metrics)
    assert g["flow"] == gradflow.measure(params, cfg, ids)
    assert g["norms"] == [(5.0, 3.0)] and g["clip"] == 1.0
    html = report_grads.section(g)
    assert "1 of the 1 logged steps were above it" in html and "clip limit 1" in html
    assert html.count("<polyline") == 4


def test_gradient_section_without_flow_or_norms_says_why():
    cfg, params, vocab, ids = tiny(ENGLISH, "gru")
    g = report_grads.gather(saved(cfg, params, None, optim=OptimConfig(clip=0.0)), cfg, params, ids[:50], [])
    html = report_grads.section(g)
    assert g["flow"] is None and "too short" in html
    assert "no grad_norm in metrics.jsonl" in html and "Clipping was off" in html and "<svg" not in html
