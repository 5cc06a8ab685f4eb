"""Runs side by side: one self-contained page (`charlm report RUN1 RUN2 … -o compare.html`).

The validation curves of every run on one chart, against steps and against training time; a
table of each run's configuration and best score; each run's gradient flow through time on one
chart (charlm/lessons/gradflow.py, measured by the CLI where the run's text is available); and
the last sample each run wrote. Runs with different corpora, validation splits or vocabularies
may be compared: `groups` sorts them by what their scores were measured on, and the page says
which scores do not compare. Rendering only: the CLI (charlm/cli/report_cmd.py) loads the runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from charlm.checkpoint import Checkpoint
from charlm.lessons import gradflow
from charlm.report import probes
from charlm.report.parts import footer, num, shell
from charlm.report.svg import esc, line_chart

# Okabe–Ito: told apart with the common colour-vision deficiencies; more runs than colours repeat them.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999933")


@dataclass(frozen=True)
class Entry:
    """One run, as the CLI loaded it."""
    label: str                              # what the page calls it (its directory's name, made unique)
    ckpt: Checkpoint                        # the checkpoint reported on (best.pkl unless one was named)
    metrics: list[dict]                     # metrics.jsonl's rows
    history: list[dict]                     # its validations (last.pkl's: the fullest)
    samples: list[dict] = field(default_factory=list)   # samples.jsonl's rows
    flow: gradflow.Flow | None = None
    flow_note: str = ""                     # why there is no flow


def _key(e: Entry) -> tuple:
    """What a run's validation scores were measured on."""
    c, t = e.ckpt.corpus, e.ckpt.train
    return (c.fingerprint.get("sha256") if c else None, t.val_fraction if t else None,
            t.val_max_chars if t else None, e.ckpt.vocab.chars)


def groups(entries: list[Entry]) -> list[list[int]]:
    """The runs (indices) grouped by what their scores were measured on, in order of first appearance."""
    found: dict[tuple, list[int]] = {}
    for i, e in enumerate(entries):
        found.setdefault(_key(e), []).append(i)
    return list(found.values())


def _differs(a: Entry, b: Entry) -> str:
    what = ["the corpus", "the validation split (--val-fraction)", "the validation slice (--val-max-chars)",
            "the vocabulary"]
    return ", ".join(w for w, x, y in zip(what, _key(a), _key(b), strict=True) if x != y) or "nothing"


def _comparable(entries: list[Entry], parts: list[list[int]]) -> str:
    if len(parts) == 1:
        c = entries[0].ckpt.corpus
        sha = f" (sha256 {c.fingerprint.get('sha256', '?')[:12]}…)" if c else ""
        return (f'<p class="explain">All {len(entries)} runs were validated on the same text{esc(sha)}, in the '
                "same vocabulary: their scores compare directly.</p>")
    lines = []
    for k, part in enumerate(parts):
        names = ", ".join(entries[i].label for i in part)
        differs = f" — differs from group A in {_differs(entries[parts[0][0]], entries[part[0]])}" if k else ""
        lines.append(f"<li><b>group {chr(65 + k)}</b>: {esc(names)}{esc(differs)}</li>")
    return ('<div class="warn"><p><b>Not all of these scores compare.</b> A loss in nats/char measures how well a '
            "model predicts one particular text; runs validated on different text, or over a different alphabet, "
            "are scored on different tests. Compare scores within a group only; the curves' shapes still "
            f"compare.</p><ul>{''.join(lines)}</ul></div>")


def _curves(entries: list[Entry]) -> str:
    vals = [probes.curves(e.metrics, e.history)["val"] for e in entries]
    sizes = {len(e.ckpt.vocab) for e in entries}
    hline = (math.log(sizes.pop()), "uniform guess") if len(sizes) == 1 else None
    minutes = max((p[1] for v in vals for p in v), default=0) > 180
    out = []
    for col, label in ((0, "training step"), (1, "training time (minutes)" if minutes else "training time (s)")):
        series = [{"name": e.label, "x": [p[col] / 60 if col == 1 and minutes else p[col] for p in v],
                   "y": [p[2] for p in v], "color": PALETTE[i % len(PALETTE)], "width": 2, "dots": True,
                   "tip": [f"{e.label}, step {p[0]:.0f}: val {p[2]:.4f} nats/char" for p in v]}
                  for i, (e, v) in enumerate(zip(entries, vals, strict=True)) if v]
        if not series:
            return '<p class="note">None of these runs recorded a validation loss (no validation split).</p>'
        out.append(line_chart(series, x_label=label, y_label="validation loss (nats/char)", hline=hline,
                              title=f"Validation loss against {label.split(' (')[0]}"))
    missing = [e.label for e, v in zip(entries, vals, strict=True) if not v]
    note = (f'<p class="note">No validation loss to draw for {esc(", ".join(missing))}.</p>' if missing else "")
    return f'{_keys(entries)}<div class="charts">{"".join(out)}</div>{note}'


def _keys(entries: list[Entry]) -> str:
    return '<div class="keys">' + "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]};height:3px"></i>{esc(e.label)}</span>'
        for i, e in enumerate(entries)) + "</div>"


def _table(entries: list[Entry], parts: list[list[int]]) -> str:
    group = {i: chr(65 + k) for k, part in enumerate(parts) for i in part}
    head = ["run", "model", "parameters", "optimizer", "batch × seq", "steps", "time", "best val (nats/char)",
            "bits/char", "best at step", f"gradient left at lag {gradflow.MAX_LAG}", "corpus", "vocabulary"] + (
        ["scores compare within"] if len(parts) > 1 else [])
    rows = []
    for i, e in enumerate(entries):
        c, m, o, t = e.ckpt, e.ckpt.model, e.ckpt.optim, e.ckpt.train
        last = e.metrics[-1] if e.metrics else {}
        steps = last.get("step", c.step or 0)
        seconds = last.get("seconds", c.progress.elapsed if c.progress else 0.0) or 0.0
        best = c.best_val_loss
        corpus = (f"{Path(c.corpus.path).name} ({c.corpus.fingerprint.get('sha256', '?')[:8]})" if c.corpus else "—")
        cells = [f'<i class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></i>{esc(e.label)}',
                 esc(m.describe()), f"{sum(p.size for p in c.params.values()):,}",
                 esc(o.describe()) if o else "—",
                 esc(f"{t.batch_size} × {t.seq_len}") if t else "—", f"{steps:,}", f"{seconds:,.0f} s",
                 num(best), num(best and best / math.log(2), ".3f"), f"{c.step:,}" if c.step is not None else "—",
                 f"{gradflow.decay(e.flow):.2g}" if e.flow else "—", esc(corpus), f"{len(c.vocab)} chars"]
        cells += [f"group {group[i]}"] if len(parts) > 1 else []
        rows.append("<tr>" + "".join(f'<td class="num">{x}</td>' if k in (2, 5, 6, 7, 8, 9, 10) else f"<td>{x}</td>"
                                     for k, x in enumerate(cells)) + "</tr>")
    return ('<div class="table-wrap"><table class="runs"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _flows(entries: list[Entry]) -> str:
    series = [{"name": e.label, "x": e.flow.lags, "y": [math.log10(v) if v > 0 else math.nan for v in e.flow.mean],
               "color": PALETTE[i % len(PALETTE)], "width": 2} for i, e in enumerate(entries) if e.flow]
    series = [s for s in series if all(math.isfinite(y) for y in s["y"])]
    drawn = {s["name"] for s in series}
    notes = "".join(f'<li>{esc(e.label)}: {esc(e.flow_note or "some gradients are exactly zero")}</li>'
                    for e in entries if e.label not in drawn)
    chart = (line_chart(series, x_label="lag k (steps back)", y_label="log10 mean norm",
                     title="log10 ‖∂L_t/∂h_(t−k)‖, mean over positions") if series else "")
    missing = f'<p class="note">No gradient flow for:</p><ul class="note">{notes}</ul>' if notes else ""
    return f'<div class="charts">{chart}{_norms(entries)}</div>{missing}'


def _norms(entries: list[Entry]) -> str:
    """Each run's gradient norm before clipping, over training (metrics.jsonl's grad_norm)."""
    series = []
    for i, e in enumerate(entries):
        rows = [r for r in e.metrics if isinstance(r.get("grad_norm"), (int, float)) and math.isfinite(r["grad_norm"])]
        if rows:
            series.append({"name": e.label, "x": [r["step"] for r in rows], "y": [r["grad_norm"] for r in rows],
                           "color": PALETTE[i % len(PALETTE)], "width": 1.5})
    return (line_chart(series, x_label="training step", y_label="gradient norm",
                       title="Gradient norm before clipping") if series else "")


def _last_samples(entries: list[Entry]) -> str:
    cards = "".join(f'<figure class="sample"><figcaption>{esc(e.label)}, step {e.samples[-1]["step"]:,}'
                    f'</figcaption><pre>{esc(e.samples[-1]["text"])}</pre></figure>' for e in entries if e.samples)
    if not cards:
        return '<p class="note">None of these runs kept samples (samples.jsonl).</p>'
    return f'<div class="samples">{cards}</div>'


def page(entries: list[Entry], command: str = "") -> str:
    """The comparison page of `entries` (two or more runs)."""
    parts = groups(entries)
    names = ", ".join(e.label for e in entries)
    body = f"""<header>
<h1>charlm: {len(entries)} runs side by side</h1>
<p class="lede">{esc(names)}.</p>
</header>
<main>
<section id="compare-curves">
<h2>Validation loss</h2>
<p class="explain">Each run's validation loss (held-out text) as it trained, against optimizer steps and against
seconds of training. Against steps the models compare per update; against time, per second of this machine.</p>
{_comparable(entries, parts)}
{_curves(entries)}
</section>
<section id="compare-table">
<h2>The runs</h2>
<p class="explain">Each run's configuration and the best validation score it saved. "Gradient left at lag
{gradflow.MAX_LAG}" is the mean of ‖∂L_t/∂h_(t−{gradflow.MAX_LAG})‖ over its mean at lag 1: how much a character
{gradflow.MAX_LAG} steps back still moves the loss.</p>
{_table(entries, parts)}
</section>
<section id="compare-gradients">
<h2>Gradient flow through time</h2>
<p class="explain">How much the loss at one character depends on the hidden state k characters earlier, for each
run's model, measured on its own held-out text (or --text). A vanilla RNN's falls fastest: the LSTM's and GRU's
additive paths carry the gradient further back, which is why they learn longer patterns. Beside it, each run's
gradient norm before clipping as it trained.</p>
{_flows(entries)}
</section>
<section id="compare-samples">
<h2>What each wrote last</h2>
<p class="explain">The last sample each run recorded as it trained, all drawn with the same seed and temperature.
Each run's own report shows how its text grew.</p>
{_last_samples(entries)}
</section>
</main>
{footer(command)}"""
    return shell(f"charlm — {names}", body)
