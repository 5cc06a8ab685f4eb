"""What a run keeps as it trains: the samples record (RUN/samples.jsonl) and the checkpoints kept
along the way (--keep-every); both continue exactly across a resume, and keeping is bounded by
the disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

import charlm
from charlm import checkpoint, defaults, rundir
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.errors import CharlmError
from charlm.training import keep, loop, plans
from tests.helpers import run_events

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


def plan_for(root, name: str = "run", **train) -> plans.Plan:
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    data = corpus.load(root / "c.txt", root / name)
    mcfg = ModelConfig(len(data.vocab), cell="gru", layers=1, hidden=12, embedding_dim=4)
    tcfg = TrainConfig(**{"seq_len": 16, "batch_size": 4, "max_steps": 24, "eval_every": 6, "log_every": 2,
                          "seed": 0, "keep_every": 5, "workers": 1, **train})
    return plans.decide(data, root / name, mcfg, OptimConfig(lr=1e-2), tcfg)


def test_every_validation_writes_a_sample_and_how_it_was_drawn(tmp_path):
    events = run_events(plan_for(tmp_path, sample_every=2, keep_every=6))
    rows = rundir.read_samples(tmp_path / "run")
    lines = (tmp_path / "run" / rundir.SAMPLES).read_text(encoding="utf-8").splitlines()
    assert [list(json.loads(line)) for line in lines] == [list(rundir.SAMPLE_FIELDS)] * 4  # the schema, in order
    assert [r["step"] for r in rows] == [6, 12, 18, 24]
    history = events[-1]["history"]
    assert [r["val_loss"] for r in rows] == [h["val_loss"] for h in history]
    for r in rows:
        assert {k: r[k] for k in defaults.TRAINING_SAMPLE} == defaults.TRAINING_SAMPLE
        assert len(r["text"]) == defaults.TRAINING_SAMPLE["length"] and r["seconds"] >= 0
    # the last sample is what the model kept at its step (with the default --ema, the average of the
    # weights, as validation saw it) writes with the recorded settings: anyone can redraw it
    s = defaults.TRAINING_SAMPLE
    redrawn = charlm.load(rundir.kept_path(tmp_path / "run", 24)).sample(s["prime"], length=s["length"],
                                                                 temperature=s["temperature"], seed=s["seed"])
    assert redrawn == rows[-1]["text"]
    printed = [e for e in events if e["event"] == loop.SAMPLE]   # the log shows some of the same samples
    assert printed and all(e["text"] == next(r["text"] for r in rows if r["step"] == e["step"]) for e in printed)


def test_a_resume_continues_the_record_and_the_kept_checkpoints_exactly(tmp_path):
    run_events(plan_for(tmp_path, "whole"))
    run_events(plan_for(tmp_path, "parts"), stop_at=14)                   # Ctrl-C at step 14: last.pkl
    record = tmp_path / "parts" / rundir.SAMPLES
    with open(record, "a", encoding="utf-8") as f:                         # as if a crash had left lines after it
        f.write(rundir.sample_row(step=18, seconds=1.0, val_loss=1.0, text="lost", **defaults.TRAINING_SAMPLE))
        f.write('{"step": 19, "text": "tor')
    assert sorted(rundir.kept(tmp_path / "parts")) == [5, 10]
    run_events(plans.resume(tmp_path / "parts", [], None, {}))
    whole, parts = (rundir.read_samples(tmp_path / d) for d in ("whole", "parts"))
    assert [(r["step"], r["val_loss"], r["text"]) for r in parts] == [(r["step"], r["val_loss"], r["text"])
                                                                      for r in whole]
    kept_whole, kept_parts = rundir.kept(tmp_path / "whole"), rundir.kept(tmp_path / "parts")
    assert sorted(kept_whole) == sorted(kept_parts) == [5, 10, 15, 20]
    for step, path in kept_whole.items():
        a, b = checkpoint.load(path), checkpoint.load(kept_parts[step])
        assert a.step == b.step == step
        for name, p in a.params.items():
            np.testing.assert_array_equal(p, b.params[name], err_msg=f"step {step} {name}")


def test_a_kept_checkpoint_holds_the_weights_and_cannot_be_resumed(tmp_path):
    run_events(plan_for(tmp_path))
    run = tmp_path / "run"
    kept = rundir.kept(run)[10]
    assert kept.name == "step-000010.pkl" and rundir.kept_step(kept) == 10
    ckpt = checkpoint.load(kept)
    assert ckpt.optimizer is None and ckpt.carried_state is None and ckpt.progress.step == 10
    assert ckpt.train.keep_every == 5 and ckpt.corpus is not None     # enough for eval and the report
    assert kept.stat().st_size < (run / rundir.LAST).stat().st_size / 2
    assert keep.weights_bytes(ckpt.model) >= kept.stat().st_size
    assert charlm.load(kept).sample("Sp", length=10, seed=1).startswith("Sp")
    with pytest.raises(CharlmError, match="cannot be resumed: the checkpoint has no optimizer, carried_state"):
        checkpoint.load(kept, training=True)
    with pytest.raises(CharlmError, match="kept along the way, which holds the weights only"):
        plans.resume(kept, [], None, {})
    assert not list(run.glob(".*tmp*")), "no temp file is left behind"


def test_keeping_is_planned_against_the_disk(tmp_path, monkeypatch):
    plan = plan_for(tmp_path, max_steps=24, keep_every=5)
    note = next(n.text for n in plan.notes if "keeping a checkpoint every 5 steps" in n.text)
    assert "4 by the end of the budget" in note and "free on the disk" in note
    mcfg, ocfg = plan.mcfg, plan.ocfg
    size, reserve = keep.weights_bytes(mcfg), keep.reserve_bytes(mcfg, ocfg)
    monkeypatch.setattr(keep, "free_bytes", lambda run_dir: reserve + 2 * size)   # room for two
    with pytest.raises(CharlmError, match=r"would keep 100 checkpoints .* room for 2 .* --keep-every 50 or more"):
        plan_for(tmp_path, max_steps=100, keep_every=1)
    unbounded = plan_for(tmp_path, max_steps=0, epochs=0, time_budget=60.0, keep_every=1, patience=0)
    assert any("room for about 2 of them" in n.text for n in unbounded.notes)
    assert "more by the end" in keep.check(tmp_path, mcfg, ocfg, TrainConfig(max_steps=30, keep_every=10), 5, 10)


def test_keeping_stops_with_a_warning_when_the_disk_fills(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(keep, "room", lambda *a: calls.append(1) or len(calls) < 3)
    events = run_events(plan_for(tmp_path))
    assert sorted(rundir.kept(tmp_path / "run")) == [5, 10] and len(calls) == 3
    warned = [e for e in events if e["event"] == loop.NOTE and "stopped keeping" in e["text"]]
    assert len(warned) == 1 and not warned[0]["chosen"] and "step 15" in warned[0]["text"]
    assert events[-1]["event"] == loop.DONE and (tmp_path / "run" / rundir.LAST).is_file()


def test_a_kept_checkpoint_that_cannot_be_written_does_not_stop_the_run(tmp_path, monkeypatch):
    save = checkpoint.save

    def failing(path, payload):
        if rundir.kept_step(path) is not None:
            raise CharlmError(f"could not save checkpoint {path}: Input/output error")
        save(path, payload)
    monkeypatch.setattr(checkpoint, "save", failing)
    events = run_events(plan_for(tmp_path))
    warned = [e["text"] for e in events if e["event"] == loop.NOTE and "stopped keeping" in e["text"]]
    assert len(warned) == 1 and "at step 5: could not save checkpoint" in warned[0]
    assert events[-1]["event"] == loop.DONE and not rundir.kept(tmp_path / "run")
