"""The live page of `charlm train --report`: while the run goes it reloads itself and carries the
live mark; when the run ends (finished, interrupted, diverged) it stops and says how; it is
rewritten at a bounded cost; and in headless Chromium it updates during a real run."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm import checkpoint, defaults, rundir
from charlm.cli import app, train_view
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.errors import CharlmError
from charlm.report import live, parts
from charlm.training import plans
from tests.helpers import CHARLM, ENV, charlm
from tests.report.browser import CHROMIUM, NO_CHROMIUM, DevTools, Tab, self_contained

TEXT = "MACBETH:\nIs this a dagger which I see before me,\nThe handle toward my hand?\n\n" * 60
TINY = ["--cell", "gru", "--layers", "1", "--hidden", "12", "--batch-size", "4", "--seq-len", "16", "--workers", "1",
        "--eval-every", "10", "--threads", "1", "--patience", "0"]
REFRESH = re.compile(r'<meta http-equiv="refresh" content="(\d+)">')


def tiny_plan(root, **train) -> plans.Plan:
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    data = corpus.load(root / "c.txt", root / "run")
    mcfg = ModelConfig(len(data.vocab), cell="rnn", layers=1, hidden=12)
    tcfg = TrainConfig(**{"seq_len": 16, "batch_size": 4, "max_steps": 20, "eval_every": 5, "seed": 0, "workers": 1,
                          **train})
    return plans.decide(data, root / "run", mcfg, OptimConfig(), tcfg)


def test_the_page_while_running_and_once_ended(tmp_path):
    plan = tiny_plan(tmp_path)
    run = live.Run(tmp_path / "run", plan.mcfg, plan.ocfg, plan.tcfg, "c.txt", 30, 1234)
    history = [{"step": 5, "seconds": 0.5, "val_loss": 3.2}, {"step": 10, "seconds": 1.0, "val_loss": 2.9}]
    going = live.page(run, live.Status(10, 0.5, written="12:00:00"), [], history, [])
    self_contained(going)
    assert REFRESH.search(going).group(1) == str(defaults.LIVE_REFRESH) and rundir.LIVE_MARK in going
    assert "Training: step 10 (50% of the budget)" in going and "so far: 2.9000 nats/char" in going
    assert "charlm report " in going and "gradient flow" in going           # where the full report comes from
    ended = live.page(run, live.Status(20, 1.0, "Finished at step 20: reached --max-steps 20"), [], history, [])
    self_contained(ended)
    assert not REFRESH.search(ended) and rundir.LIVE_MARK not in ended
    assert "Finished at step 20: reached --max-steps 20" in ended and "no longer reloads" in ended


def test_train_report_ends_with_a_final_page_and_report_keeps_a_live_one(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    done = charlm(["train", "c.txt", "--out", "r", "--max-steps", "20", "--report", *TINY], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the live report is r/report.html" in done.stderr and "final page" in done.stderr
    page = (tmp_path / "r" / rundir.REPORT).read_text(encoding="utf-8")
    assert "Finished at step 20: reached --max-steps 20" in page and not REFRESH.search(page)
    assert "How the text grew" in page and page.count("<li>") == 2      # validations at steps 10 and 20
    assert not rundir.is_live(tmp_path / "r")
    # a live page (as a run still going leaves it) is not overwritten by `charlm report`: the full one goes beside it
    running = page.replace("<title>", rundir.LIVE_MARK + "<title>")
    (tmp_path / "r" / rundir.REPORT).write_text(running, encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "r"), "--chars", "200"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r" / rundir.FULL_REPORT).is_file() and "report-full.html" in result.stderr
    assert (tmp_path / "r" / rundir.REPORT).read_text(encoding="utf-8") == running


def test_an_interrupted_run_says_so(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    proc = subprocess.Popen(CHARLM + ["train", "c.txt", "--out", "r", "--max-steps", "100000", "--report", *TINY],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    page = tmp_path / "r" / rundir.REPORT
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (page.exists() and "Training: step 1" in page.read_text()):
        time.sleep(0.1)                                                  # a validation has been drawn
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    final = page.read_text(encoding="utf-8")
    assert "Interrupted (Ctrl-C) at step" in final and "charlm train --resume r" in final
    assert not REFRESH.search(final)


def test_a_diverged_run_says_so(tmp_path):
    plan = tiny_plan(tmp_path, max_steps=5)
    train_view.show(plan, quiet=True)
    resume = checkpoint.load(tmp_path / "run" / rundir.LAST)
    zeros = {k: np.zeros_like(v) for k, v in resume.params.items()}
    resume = dataclasses.replace(resume, optimizer={"step": 0, "slots": {"m": zeros, "v": dict(zeros)}})
    wild = plans.decide(plan.data, plan.run_dir, plan.mcfg, OptimConfig(lr=1e3, clip=0, weight_decay=0.0, ema=0.0),
                        dataclasses.replace(plan.tcfg, max_steps=200, eval_every=50), checkpoint=resume)
    with pytest.raises(CharlmError, match="diverged"):
        train_view.show(wild, quiet=True, live=True)
    page = (tmp_path / "run" / rundir.REPORT).read_text(encoding="utf-8")
    assert "Diverged at step" in page and "live ended bad" in page and not REFRESH.search(page)


def test_the_page_costs_a_bounded_share_of_the_run(tmp_path, monkeypatch):
    clock, writes = [100.0], []

    def write_page(path, html):  # each write "takes" 10 ms of the fake clock
        writes.append(clock[0])
        clock[0] += 0.01
    monkeypatch.setattr(train_view.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(parts, "write_page", write_page)
    page = train_view.LivePage(tiny_plan(tmp_path))
    page.start(100)
    for step in range(5, 50, 5):                    # validations 1 ms apart: drawn at most every 50 × 10 ms
        clock[0] += 0.001
        page.validated({"step": step, "val_loss": 3.0})
    assert len(writes) == 1
    clock[0] += defaults.LIVE_SPACING * 0.01
    page.validated({"step": 50, "val_loss": 2.9})
    page.end(50, "Finished")
    assert len(writes) == 3 and len(page.history) == 10


def test_a_page_that_cannot_be_written_does_not_stop_the_run(tmp_path, monkeypatch, capsys):
    def full_disk(path, html):
        raise CharlmError(f"cannot write {path}: No space left on device")
    monkeypatch.setattr(parts, "write_page", full_disk)
    train_view.show(tiny_plan(tmp_path), quiet=True, live=True)
    err = capsys.readouterr().err
    assert err.count("No space left on device; training goes on without the live report") == 1
    assert "charlm: done — reached --max-steps 20" in err and (tmp_path / "run" / rundir.LAST).is_file()


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_live_page_updates_in_a_browser_during_a_run(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    log = open(tmp_path / "train.log", "w", encoding="utf-8")  # a file, not a pipe nobody reads until the end
    proc = subprocess.Popen(CHARLM + ["train", "c.txt", "--out", "r", "--time-budget", "12", "--report", *TINY],
                            cwd=tmp_path, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True)
    page = tmp_path / "r" / rundir.REPORT
    tools = DevTools(tmp_path / "profile")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not page.exists():
            time.sleep(0.1)
        tab = Tab(tools, 380)
        tab.open(page)
        step = "+document.title.match(/step ([\\d,]+)/)[1].replace(/,/g, '')"
        first = tab.eval(step)
        assert tab.eval("document.querySelector('meta[http-equiv=refresh]').content") == str(defaults.LIVE_REFRESH)
        for _ in range(20):  # it reloads itself (nobody navigates) until a later validation has rewritten it
            tab.wait_load(timeout=60)
            if tab.eval(step) > first:
                break
        assert tab.eval(step) > first
        tab.screenshot(tmp_path / "live-running.png")
        for _ in range(20):                                              # until the run's final page is loaded
            if "Finished" in tab.eval("document.getElementById('live').textContent"):
                break
            tab.wait_load(timeout=60)
        assert proc.wait(timeout=60) == 0, (tmp_path / "train.log").read_text(encoding="utf-8")[-2000:]
        assert "reached --time-budget 12s" in tab.eval("document.getElementById('live').textContent")
        assert tab.eval("document.querySelector('meta[http-equiv=refresh]')") is None
        assert tab.errors() == [] and not tab.overflows()
        assert tab.screenshot(tmp_path / "live-finished.png").stat().st_size > 10_000
    finally:
        tools.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
