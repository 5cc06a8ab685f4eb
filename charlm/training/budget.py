"""What a training run is asked to do: the TrainConfig, and the budget arithmetic on it.

Budgets (--max-steps, --epochs, --time-budget) are totals for the run, so a resumed
run continues toward the same end, on the same schedule. Field defaults come from
charlm/defaults.py, the one owner of every default.
"""

from __future__ import annotations

from charlm.config import TrainConfig


def fraction_done(tc: TrainConfig, progress: dict, windows: int) -> float:
    """How far the run is toward whichever budget ends it first (for the cosine schedule)."""
    parts = [0.0]
    if tc.max_steps:
        parts.append(progress["step"] / tc.max_steps)
    if tc.epochs:
        parts.append((progress["epoch"] + progress["window"] / windows) / tc.epochs)
    if tc.time_budget:
        parts.append(progress["elapsed"] / tc.time_budget)
    return max(parts)


def budget_reached(tc: TrainConfig, progress: dict, windows: int) -> str | None:
    """Why the run ends now, or None while every budget has room."""
    if tc.max_steps and progress["step"] >= tc.max_steps:
        return f"reached --max-steps {tc.max_steps}"
    if tc.epochs and progress["epoch"] + progress["window"] / windows >= tc.epochs - 1e-9:
        return f"reached --epochs {tc.epochs:g}"
    if tc.time_budget and progress["elapsed"] >= tc.time_budget:
        return f"reached --time-budget {tc.time_budget:g}s"
    return None
