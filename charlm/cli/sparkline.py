"""A one-line terminal chart of a series (the validation loss at the end of `charlm train`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """Block characters from ▁ (the lowest value) to █ (the highest); non-finite values are
    skipped, and more than `width` values are averaged into `width` columns."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(vals) > width:  # column k averages values [k·n/w, (k+1)·n/w)
        n = len(vals)
        vals = [sum(vals[k * n // width: (k + 1) * n // width]) / ((k + 1) * n // width - k * n // width)
                for k in range(width)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return BLOCKS[3] * len(vals)
    return "".join(BLOCKS[min(int((v - lo) / (hi - lo) * len(BLOCKS)), len(BLOCKS) - 1)] for v in vals)
