"""The report's colour scales: surprisal (magma) and activations (RdBu), and how light a colour looks.

Shared by the HTML page (charlm/report/page.py) and the terminal view (`charlm eval surprisal`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Surprisal, 0 → 8 bits (clipped), on one perceptually uniform scale: matplotlib's magma, light to dark,
# so each bit darkens a character by about the same amount (CIE L* 98 → 0), in a terminal's 256 colours too.
SURPRISAL_STOPS = [(0, "#fcfdbf"), (1, "#fec287"), (2, "#fb8761"), (3, "#e55064"), (4, "#b5367a"),
                   (5, "#812581"), (6, "#4f127b"), (7, "#1c1044"), (8, "#000004")]
SURPRISAL_MAX = 8.0
OUTSIDE = ("#d4d4d4", "#3c3c3c")  # (background, text) of a character outside the vocabulary: shown, struck, not scored
# Activations in [−1, 1]: blue – white – red (ColorBrewer RdBu), so the sign reads at a glance.
ACTIVATION_STOPS = [(-1, "#2166ac"), (-0.6, "#67a9cf"), (-0.25, "#d1e5f0"), (0, "#f7f7f7"),
                    (0.25, "#fddbc7"), (0.6, "#ef8a62"), (1, "#b2182b")]


def color(stops: Sequence[tuple[float, str]], v: float) -> str:
    """Piecewise-linear colour of v on `stops` [(value, "#rrggbb")…], clipped at the ends."""
    v = min(max(v, stops[0][0]), stops[-1][0])
    for (a, ca), (b, cb) in zip(stops, stops[1:], strict=False):
        if v <= b:
            f = (v - a) / (b - a)
            rgb = [round(int(ca[i:i + 2], 16) * (1 - f) + int(cb[i:i + 2], 16) * f) for i in (1, 3, 5)]
            return "#" + "".join(f"{c:02x}" for c in rgb)
    return stops[-1][1]


def lightness(hex_color: str) -> float:
    """CIE L* (0 black … 100 white) of an sRGB "#rrggbb": how light a colour looks."""
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)  # linear light
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 116 * y ** (1 / 3) - 16 if y > 216 / 24389 else y * 24389 / 27


def surprisal_color(bits: float) -> tuple[str, str]:
    """(background, text colour) for a character's surprisal in bits (nan: not scored)."""
    if math.isnan(bits):
        return "#ffffff", "#888888"
    bg = color(SURPRISAL_STOPS, bits)
    return bg, "#ffffff" if lightness(bg) < 55 else "#111111"
