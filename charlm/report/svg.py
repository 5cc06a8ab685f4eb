"""Inline SVG line charts for the run report: labelled axes, round ticks, no external anything."""

from __future__ import annotations

import html
import math


def esc(s: object) -> str:
    """Text made safe for HTML element content and attribute values."""
    return html.escape(str(s), quote=True)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k apart) covering [lo, hi]."""
    span = (hi - lo) or abs(hi) or 1.0
    step = 10 ** math.floor(math.log10(span / n))
    step *= next(m for m in (1, 2, 5, 10) if span / (step * m) <= n)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def _tick_label(v: float) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 10000 else f"{v:g}"


def line_chart(series: list[dict], *, x_label: str, y_label: str, title: str,
               hline: tuple[float, str] | None = None, width: int = 560, height: int = 330) -> str:
    """An inline SVG line chart. series: {"name", "x", "y", "color", "width", "dots"?, "tip"?}."""
    ml, mr, mt, mb = 58, 18, 36, 48
    xt = _ticks(0.0, max(x for s in series for x in s["x"]) or 1.0)
    ys = [y for s in series for y in s["y"]] + ([hline[0]] if hline else [])
    yt = _ticks(min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(x: float) -> float:
        return ml + (x - x0) / ((x1 - x0) or 1) * (width - ml - mr)

    def sy(y: float) -> float:
        return height - mb - (y - y0) / ((y1 - y0) or 1) * (height - mt - mb)

    g = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
         f"<title>{esc(title)}</title>", f'<text class="ct" x="{ml}" y="20">{esc(title)}</text>']
    for v in yt:
        g.append(f'<line class="grid" x1="{ml}" x2="{width - mr}" y1="{sy(v):.1f}" y2="{sy(v):.1f}"/>'
                 f'<text class="tick" x="{ml - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{_tick_label(v)}</text>')
    for v in xt:
        g.append(f'<line class="grid" x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{mt}" y2="{height - mb}"/>'
                 f'<text class="tick" x="{sx(v):.1f}" y="{height - mb + 16}" text-anchor="middle">'
                 f"{_tick_label(v)}</text>")
    g.append(f'<line class="axis" x1="{ml}" x2="{width - mr}" y1="{height - mb}" y2="{height - mb}"/>'
             f'<line class="axis" x1="{ml}" x2="{ml}" y1="{mt}" y2="{height - mb}"/>'
             f'<text class="label" x="{(ml + width - mr) / 2}" y="{height - 10}" text-anchor="middle">'
             f"{esc(x_label)}</text>"
             f'<text class="label" transform="translate(15 {(mt + height - mb) / 2}) rotate(-90)" '
             f'text-anchor="middle">{esc(y_label)}</text>')
    if hline:
        g.append(f'<line class="ref" x1="{ml}" x2="{width - mr}" y1="{sy(hline[0]):.1f}" y2="{sy(hline[0]):.1f}"/>'
                 f'<text class="tick" x="{width - mr - 4}" y="{sy(hline[0]) - 5:.1f}" text-anchor="end">'
                 f"{esc(hline[1])}</text>")
    for s in series:
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(s["x"], s["y"], strict=True))
        g.append(f'<polyline class="series" points="{pts}" fill="none" stroke="{s["color"]}" '
                 f'stroke-width="{s["width"]}" stroke-linejoin="round"/>')
        if s.get("dots") and len(s["x"]) <= 400:
            g.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s["color"]}"><title>{esc(t)}'
                     f"</title></circle>" for x, y, t in zip(s["x"], s["y"], s["tip"], strict=True))
    return "".join(g) + "</svg>"
