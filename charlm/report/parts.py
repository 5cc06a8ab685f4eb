"""What every charlm page shares: the page around the content, the headline cards, the loss
curves, the configuration tables. The full report (charlm/report/page.py), the live page
(live.py) and the comparison of runs (compare.py) are built from these; each is one
self-contained HTML file (inline CSS and SVG; no URLs at all), every piece of text escaped.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from charlm.config import ModelConfig
from charlm.errors import CharlmError
from charlm.fileio import atomic_write
from charlm.report.assets import CSS
from charlm.report.svg import esc, line_chart


def num(v: float | None, fmt: str = ".4f", none: str = "—") -> str:
    """A figure as shown, or — for none (or not finite)."""
    return none if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def smooth(ys: list[float]) -> list[float]:
    """Centred moving average over ~1/15 of the points (no lag, unlike an EMA); shorter at the ends."""
    half = len(ys) // 30
    c = np.concatenate([[0.0], np.cumsum(ys)])                          # (n+1,)
    lo = np.maximum(np.arange(len(ys)) - half, 0)
    hi = np.minimum(np.arange(len(ys)) + half + 1, len(ys))
    return ((c[hi] - c[lo]) / (hi - lo)).tolist()


def charts(curves: dict, vocab_size: int) -> str:
    """The loss curves against steps and against time, with their key."""
    train, val = curves["train"], curves["val"]
    if not train and not val:
        return '<p class="note">No metrics were recorded for this run (no metrics.jsonl).</p>'
    minutes = max((p[1] for p in train + val), default=0) > 180
    out = []
    for col, label in ((0, "training step"), (1, "training time (minutes)" if minutes else "training time (s)")):
        def xs(points, col=col):
            return [p[col] / 60 if col == 1 and minutes else p[col] for p in points]
        series = [{"name": "train (per step)", "x": xs(train), "y": [p[2] for p in train], "color": "#9ecae1",
                   "width": 1},
                  {"name": "train (smoothed)", "x": xs(train), "y": smooth([p[2] for p in train]),
                   "color": "#2171b5", "width": 2},
                  {"name": "validation", "x": xs(val), "y": [p[2] for p in val], "color": "#d94801", "width": 2,
                   "dots": True, "tip": [f"step {p[0]:.0f}: val {p[2]:.4f} nats/char" for p in val]}]
        series = [s for s in series if s["x"]]
        out.append(line_chart(series, x_label=label, y_label="loss (nats/char)",
                              hline=(math.log(vocab_size), f"uniform guess, ln {vocab_size}"),
                              title=f"Loss against {label.split(' (')[0]}"))
    keys = "".join(f'<span><i style="background:{s["color"]};height:{max(s["width"], 2)}px"></i>{esc(s["name"])}'
                   "</span>" for s in series)
    keys += '<span><i class="dash"></i>uniform guessing (no learning)</span>'
    return f'<div class="keys">{keys}</div><div class="charts">' + "".join(out) + "</div>"


def figure_cards(best: float | None, parameters: int, cfg: ModelConfig, steps: int, seconds: float,
                 chars_per_sec: float | None) -> str:
    """The headline numbers as cards: the best score three ways, size, training, throughput."""
    cards = [("best validation loss", num(best), "nats/char"),
             ("bits per character", num(best and best / math.log(2), ".3f"), "lower is better"),
             ("perplexity", num(best and math.exp(best), ".2f"), "effective choices per char"),
             ("parameters", f"{parameters:,}", f"{cfg.cell.upper()} {cfg.layers}×{cfg.hidden}"),
             ("training", f"{steps:,} steps", f"{seconds:.0f} s"),
             ("throughput", num(chars_per_sec, ",.0f"), "chars/s while training")]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
        f'<div class="u">{esc(u)}</div></div>' for k, v, u in cards) + "</div>"


def config_groups(model, train, optim) -> list[tuple[str, dict]]:
    """The three configs as (caption, {field: value}) groups (an absent one is empty)."""
    return [(name, dataclasses.asdict(cfg) if cfg else {})
            for name, cfg in (("model", model), ("training", train), ("optimizer", optim))]


def config_tables(groups: list[tuple[str, dict]]) -> str:
    """(caption, {field: value}) groups as small tables side by side."""
    return '<div class="configs">' + "".join(
        f'<table class="config"><caption>{esc(name)}</caption>' + "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows.items()) + "</table>"
        for name, rows in groups) + "</div>"


def shell(title: str, body: str, *, head: str = "") -> str:
    """A whole self-contained page around `body` (header, main, footer …): the inline stylesheet,
    no URL anywhere; `head` adds to the <head> (the live page's refresh)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">{head}
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
{body}
</body>
</html>
"""


def footer(command: str = "") -> str:
    return (f'<footer><p>Made by charlm{(" with <code>" + esc(command) + "</code>") if command else ""}.\n'
            "Self-contained: no scripts, fonts or data are loaded from anywhere.</p></footer>")


def write_page(path: Path, html: str) -> None:
    """Put a page at `path` atomically: a browser reloading it mid-write still reads the old page, whole."""
    try:
        atomic_write(Path(path), lambda f: f.write(html.encode("utf-8")))
    except OSError as e:
        raise CharlmError(f"cannot write {path}: {e.strerror or e}") from None
