"""When a run ends: how far it is toward its budgets, and whether a budget or early stopping
ends it now.

Budgets (--max-steps, --epochs, --time-budget; TrainConfig in charlm/config.py) are
totals for the run, so a resumed run continues toward the same end, on the same
schedule: the cosine learning rate follows `fraction_done`. Early stopping (--patience K)
ends a run after K validations in a row without a new best; the count is derived from
the run's validation history (which the checkpoint holds), never kept as a separate
counter, so a resumed run continues it exactly.
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


def since_best(history: list[dict]) -> tuple[int, int | None]:
    """(validations since the best val loss, the step of the best) over a run's history."""
    best, best_step, since = None, None, 0
    for h in history:
        val = h.get("val_loss")
        if val is None:
            continue
        if best is None or val < best:
            best, best_step, since = val, h["step"], 0
        else:
            since += 1
    return since, best_step


def early_stop(patience: int, history: list[dict]) -> str | None:
    """Why the run stops early, or None (always None when patience is 0)."""
    if not patience:
        return None
    since, best_step = since_best(history)
    if since < patience:
        return None
    return (f"stopped early: no new best in the last {since} validations (--patience {patience}; "
            f"the best, in best.pkl, was at step {best_step:,})")
