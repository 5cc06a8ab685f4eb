"""The budget-keyed defaults: the rule in charlm/defaults.py, printed, and overridable."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from charlm import checkpoint, defaults
from charlm.cli import app
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.training import plans

FAST = {384: 3.1, 256: 5.3, 128: 9.0}    # steps/s of each tier's model on a fast box
SLOW = {384: 0.9, 256: 2.0, 128: 4.5}    # and on one 2.5× slower


@pytest.mark.parametrize("budget,rates,hidden,dropout", [
    (300, FAST, 256, 0.0), (600, FAST, 384, 0.2), (1800, FAST, 384, 0.2),
    (200, SLOW, 128, 0.0), (300, SLOW, 256, 0.0), (1800, SLOW, 256, 0.0), (3600, SLOW, 384, 0.2)])
def test_tier_by_measured_speed(budget, rates, hidden, dropout):
    """The first tier, largest first, whose model takes its minimum steps in the budget."""
    asked = []

    def steps_per_second(kw):
        asked.append(kw["hidden"])
        return rates[kw["hidden"]]
    model_kw, why = defaults.choose(budget, steps_per_second)
    assert model_kw["hidden"] == hidden and model_kw["dropout"] == dropout and model_kw["cell"] == "gru"
    assert ModelConfig(65, **model_kw).embedding_dim == hidden                      # E follows H
    assert asked == [t.hidden for t in defaults.TIERS][: asked.index(hidden) + 1]  # measured top-down
    assert f"2×{hidden}" in why and f"measured {rates[hidden]:.2f} steps/s" in why
    assert f"about {rates[hidden] * budget:,.0f} steps" in why
    assert ("the smallest tier" in why) == (hidden == defaults.TIERS[-1].hidden)


def test_no_budget_measures_nothing():
    model_kw, why = defaults.choose(0.0, lambda kw: pytest.fail("measured without a budget"))
    assert model_kw["hidden"] == 256 and why == ""


def test_help_states_the_rule():
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "300"})
    text = " ".join(r.output.split())
    assert "gru 2×384, embedding 384, dropout 0.2 if it can take ≥ 1,850 steps" in text
    assert "With no budget option given: gru 2×256" in text and "until validation stops improving" in text
    assert "at least 10 epochs and 2,000 steps and at most 50 epochs" in text
    assert "Recurrent cell [default: (gru)]" in text and "(lstm)]" not in text  # what a run trains
    assert "Warm-up steps (cosine) [default: (100); ≥ 0]" in text and "[default: (cosine)]" in text
    assert "Validation every 200 steps, or every epoch if that is shorter" in text


def test_config_defaults_are_the_cli_defaults():
    """A config dataclass built with no arguments is what `charlm train` with no options runs
    (with no time budget): the same cell, size, E = H, optimizer, rate, schedule and budget."""
    m, o, t = ModelConfig(65), OptimConfig(), TrainConfig()
    tier = defaults.NO_BUDGET
    assert (m.cell, m.layers, m.hidden, m.embedding_dim, m.dropout) == ("gru", 2, tier.hidden, tier.hidden, 0.0)
    assert ModelConfig(65, hidden=64).embedding_dim == 64 and ModelConfig(65, embedding_dim=0).embedding_dim == 0
    assert (o.name, o.lr, o.schedule, o.warmup_steps, o.clip) == ("adam", 3e-3, "cosine", 100, 5.0)
    assert OptimConfig(name="sgd").lr == 1.0 and OptimConfig(name="rmsprop", lr=0.1).lr == 0.1
    assert (t.max_steps, t.epochs, t.time_budget) == (None, None, None) and not t.budget_given  # the plan decides
    assert (TrainConfig(max_steps=5).epochs, TrainConfig(max_steps=0).epochs) == (0.0, 0.0)  # any budget given
    assert t.eval_every is None and plans.eval_every(1_003_854, t.batch_size, t.seq_len) == 200


def _train(tmp_path, monkeypatch, *args):
    """`charlm train` in-process on a small text, 8 hidden units, 4 lanes of 8; its stderr and last.pkl."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("abc def ghi\n" * 300)
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run", "--hidden", "8", "--seq-len", "8",
                                 "--batch-size", "4", *args])
    assert r.exit_code == 0, r.output
    return r.stderr, checkpoint.load(tmp_path / "run" / "last.pkl")


def test_cli_prints_the_choice_and_flags_win(tmp_path, monkeypatch):
    stderr, ckpt = _train(tmp_path, monkeypatch, "--max-steps", "2", "--lr", "0.01")
    # the line shows the configuration that runs, and which of it was given (#13)
    assert "defaults for no time budget, with your --hidden, --lr: gru 2×8, embedding 8 input, adam lr 0.01" \
        in stderr
    assert "2×256" not in stderr and "defaults.py" not in stderr
    assert ckpt.model.hidden == ckpt.model.embedding_dim == 8  # E follows H
    assert ckpt.model.cell == "gru" and ckpt.optim.lr == 0.01
    assert ckpt.optim.schedule == "cosine" and ckpt.train.seq_len == 8


def test_cli_measures_speed_for_a_budget(tmp_path, monkeypatch):
    stderr, ckpt = _train(tmp_path, monkeypatch, "--time-budget", "1")
    assert "steps/s here" in stderr
    assert ckpt.model.hidden == 8                                    # the option still wins


def test_small_corpus_validates_every_epoch(tmp_path, monkeypatch):
    assert plans.eval_every(1_003_854, 50, 100) == 200            # tinyshakespeare: unchanged
    assert plans.eval_every(58_000, 50, 100) == 11                # ⌊(⌊58,000/50⌋ − 1)/100⌋ windows
    assert plans.eval_every(2_000, 50, 100) == 10                 # one-window epochs: not every step
    assert plans.eval_every(2_000, 50, 100, every=4) == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("abc def ghi\n" * 500)          # 5,400 training chars
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run", "--hidden", "8", "--max-steps", "20",
                                 "--seq-len", "8", "--batch-size", "50"])
    assert r.exit_code == 0, r.output
    assert "validating every 13 steps, not every 200" in r.stderr
    history = checkpoint.load(tmp_path / "run" / "last.pkl").history
    assert [h["step"] for h in history] == [13, 20]
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run2", "--hidden", "8", "--max-steps", "20",
                                 "--seq-len", "8", "--batch-size", "50", "--eval-every", "5"])
    assert r.exit_code == 0, r.output
    assert "validating every" not in r.stderr
    assert [h["step"] for h in checkpoint.load(tmp_path / "run2" / "last.pkl").history] == [5, 10, 15, 20]


def test_no_budget_option_trains_until_early_stopping_within_a_cap():
    """A run given no budget has a schedule of NO_BUDGET_STEPS steps, at least NO_BUDGET_EPOCHS and at most
    NO_BUDGET_MAX_EPOCHS passes, and early stopping (the patience default) ends it at its best."""
    lo, hi, steps = defaults.NO_BUDGET_EPOCHS, defaults.NO_BUDGET_MAX_EPOCHS, defaults.NO_BUDGET_STEPS
    assert defaults.no_budget_epochs(10) == hi                      # a small text: the cap
    assert defaults.no_budget_epochs(200) == max(lo, steps / 200)   # tinyshakespeare's 200 steps an epoch
    assert defaults.no_budget_epochs(10**6) == lo                   # a big text: at least NO_BUDGET_EPOCHS
    assert defaults.budgets(None, None, None, 10) == (0, hi, 0.0) and defaults.budgets(5, None, None, 10)[1] == 0.0


def test_a_small_text_given_no_budget_stops_early_at_its_best(tmp_path, monkeypatch):
    """Random letters: nothing to learn past their frequencies, so the model soon memorises its
    training text, validation stops improving and early stopping ends the run before its cap."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "t.txt").write_text("".join(rng.choice(list("abcdefghij \n"), 4000)))
    r = CliRunner().invoke(app, ["train", "t.txt", "--out", "run", "--hidden", "32", "--layers", "1", "--seq-len",
                                 "20", "--batch-size", "10", "--sample-every", "0", "--workers", "1"])
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(tmp_path / "run" / "last.pkl")
    windows = (3600 // 10 - 1) // 20                                # 90% of the 4,000 characters, in 10 × 20
    assert ckpt.train.epochs == defaults.no_budget_epochs(windows) == defaults.NO_BUDGET_MAX_EPOCHS
    assert "no budget given: training until validation stops improving" in r.stderr
    assert "stopped early" in r.stderr and ckpt.progress.epoch < ckpt.train.epochs


def test_each_optimizer_gets_its_own_rate(tmp_path, monkeypatch):
    """--optimizer sgd without --lr trains at SGD's measured rate, not Adam's."""
    _, ckpt = _train(tmp_path, monkeypatch, "--max-steps", "2", "--optimizer", "sgd")
    assert ckpt.optim.name == "sgd"
    assert ckpt.optim.lr == defaults.LEARNING_RATES["sgd"] == 1.0
