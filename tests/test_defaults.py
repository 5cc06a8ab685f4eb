"""The budget-keyed defaults: the rule in charlm/defaults.py, printed, and overridable."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from charlm import checkpoint, defaults
from charlm.cli import app


@pytest.mark.parametrize("budget,hidden,dropout", [(0, 256, 0.0), (120, 256, 0.0), (600, 256, 0.0),
                                                    (601, 384, 0.2), (1800, 384, 0.2)])
def test_tier_by_budget(budget, hidden, dropout):
    model_kw, optim_kw, train_kw, why = defaults.choose(budget)
    assert model_kw["hidden"] == model_kw["embedding_dim"] == hidden and model_kw["dropout"] == dropout
    assert optim_kw["schedule"] == "cosine" and train_kw == {"batch_size": 50, "seq_len": 100}
    assert f"2×{hidden}" in why


def test_cli_prints_the_choice_and_flags_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("abc def ghi\n" * 300)
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run", "--hidden", "8", "--max-steps", "2",
                                 "--seq-len", "8", "--batch-size", "4", "--lr", "0.01"])
    assert r.exit_code == 0, r.output
    # the line shows the configuration that runs, and which of it was given (#13)
    assert "defaults for no time budget, with your --hidden, --lr: gru 2×8, embedding 8 input, adam lr 0.01" \
        in r.stderr
    assert "2×256" not in r.stderr and "defaults.py" not in r.stderr
    ckpt = checkpoint.load(tmp_path / "run" / "last.pkl")
    assert ckpt["model_config"]["hidden"] == ckpt["model_config"]["embedding_dim"] == 8  # E follows H
    assert ckpt["model_config"]["cell"] == "gru" and ckpt["optim_config"]["lr"] == 0.01
    assert ckpt["optim_config"]["schedule"] == "cosine" and ckpt["train_config"]["seq_len"] == 8


def test_small_corpus_validates_every_epoch(tmp_path, monkeypatch):
    assert defaults.eval_every(200, 1_003_854, 50, 100) == 200     # tinyshakespeare: unchanged
    assert defaults.eval_every(200, 58_000, 50, 100) == 11       # ⌊(⌊58,000/50⌋ − 1)/100⌋ windows
    assert defaults.eval_every(200, 2_000, 50, 100) == 10        # one-window epochs: not every step
    assert defaults.eval_every(4, 2_000, 50, 100) == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("abc def ghi\n" * 500)          # 5,400 training chars
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run", "--hidden", "8", "--max-steps", "20",
                                 "--seq-len", "8", "--batch-size", "50"])
    assert r.exit_code == 0, r.output
    assert "validating every 13 steps, not every 200" in r.stderr
    history = checkpoint.load(tmp_path / "run" / "last.pkl")["history"]
    assert [h["step"] for h in history] == [13, 20]
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run2", "--hidden", "8", "--max-steps", "20",
                                 "--seq-len", "8", "--batch-size", "50", "--eval-every", "5"])
    assert r.exit_code == 0, r.output
    assert "validating every" not in r.stderr
    assert [h["step"] for h in checkpoint.load(tmp_path / "run2" / "last.pkl")["history"]] == [5, 10, 15, 20]
