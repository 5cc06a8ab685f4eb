"""The view "how the text grew": what a run wrote at its validations, by step, beside the
validation loss at each (RUN/samples.jsonl, charlm/rundir.py).

Every sample is drawn from the same prime, seed and temperature, so only the model changes
from one to the next: gibberish first, then words, then lines. A long run has many; the view
shows at most defaults.GROWTH_SHOWN of them, spaced evenly in log(step) (the text changes
fastest early), always the first and the last. Each entry stacks above its text on a
phone-width page and sits beside it on a wide one (the stylesheet's `.grew`).
"""

from __future__ import annotations

import math

from charlm import defaults, rundir
from charlm.report.svg import esc


def pick(rows: list[dict], most: int = defaults.GROWTH_SHOWN) -> list[dict]:
    """At most `most` of `rows` (in step order), spaced evenly in log(1 + step), first and last kept."""
    if len(rows) <= most:
        return rows
    logs = [math.log1p(max(r["step"], 0)) for r in rows]
    chosen: set[int] = set()
    for k in range(most):
        target = logs[0] + (logs[-1] - logs[0]) * k / (most - 1)
        free = [i for i in range(len(rows)) if i not in chosen]
        chosen.add(min(free, key=lambda i: abs(logs[i] - target)))
    return [rows[i] for i in sorted(chosen)]


def _entry(row: dict, uniform: float | None) -> str:
    val = row.get("val_loss")
    score = (f'<span>val {val:.3f} nats/char</span><span class="bits">{val / math.log(2):.2f} bits/char</span>'
             if isinstance(val, (int, float)) else '<span>no validation split</span>')
    bar = ""
    if isinstance(val, (int, float)) and uniform:  # the share of a uniform guess's loss left
        bar = (f'<span class="lossbar" title="validation loss as a share of a uniform guess\'s (ln V)">'
               f'<i style="width:{min(100.0, 100 * val / uniform):.1f}%"></i></span>')
    text, prime = row["text"], row.get("prime") or ""
    shown = (f"<b>{esc(prime)}</b>{esc(text[len(prime):])}" if prime and text.startswith(prime) else esc(text))
    seconds = row.get("seconds")
    when = f'<span class="when">{seconds:,.0f} s</span>' if isinstance(seconds, (int, float)) else ""
    return (f'<li><div class="at"><b>step {row["step"]:,}</b>{score}{bar}{when}</div>'
            f"<pre>{shown}</pre></li>")


def section(rows: list[dict], vocab_size: int | None, run: str = "") -> str:
    """The <section>: the samples of `rows` (samples.jsonl's, in step order) that `pick` keeps."""
    head = '<section id="growth-section">\n<h2>How the text grew</h2>\n'
    if not rows:
        return (head + f'<p class="note">No samples were kept for this run: {rundir.SAMPLES} is missing or empty '
                "(a run records one at each validation; one trained before charlm kept them has none).</p>"
                "\n</section>")
    rows = sorted(rows, key=lambda r: r["step"])
    shown = pick(rows)
    latest = rows[-1]  # the settings are the same on every line (defaults.TRAINING_SAMPLE)
    prime = latest.get("prime") or ""
    drawn = (f"{esc(latest.get('length', '?'))} characters from seed {esc(latest.get('seed', '?'))} at temperature "
             f"{esc(latest.get('temperature', '?'))}" + (f", after the prime <b>{esc(prime)}</b>" if prime else ""))
    where = f"{run}/{rundir.SAMPLES}" if run else rundir.SAMPLES
    count = (f"Showing {len(shown)} of the {len(rows)} samples, spaced evenly in log(step) (the text changes "
             f"fastest early); all of them are in {esc(where)}." if len(shown) < len(rows) else
             f"All {len(rows)} samples, from {esc(where)}.")
    uniform = math.log(vocab_size) if vocab_size and vocab_size > 1 else None
    bar_note = (" The bar is the validation loss as a share of a uniform guess's (ln of the vocabulary size): "
                "full at the start, shorter as the model learns." if uniform else "")
    return (head + f'<p class="explain">At each validation the run wrote {drawn}: the same draw every time, so only '
            f"the model changed between them.{bar_note} {count}</p>\n"
            f'<ol class="grew">{"".join(_entry(r, uniform) for r in shown)}</ol>\n</section>')
