"""Early stopping (--patience K): a run ends after K validations in a row without a new best.

The count is derived from the run's validation history (which the checkpoint holds),
never kept as a separate counter, so a resumed run continues it exactly.
"""

from __future__ import annotations


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


def reason(patience: int, history: list[dict]) -> str | None:
    """Why the run stops early, or None (always None when patience is 0)."""
    if not patience:
        return None
    since, best_step = since_best(history)
    if since < patience:
        return None
    return (f"stopped early: no new best in the last {since} validations (--patience {patience}; "
            f"the best, in best.pkl, was at step {best_step:,})")
