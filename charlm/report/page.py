"""The run report: one self-contained HTML page (inline CSS, SVG and a little JS; no URLs at all).

`build` gathers the data (through `charlm.report.probes`) and `render` turns it into
the page: loss curves, how the text grew while it trained (growth.py), the run's figures
and configuration, samples at a few temperatures, the surprisal view and the
cell-activation view. The pieces every page shares are charlm/report/parts.py's. Every piece of
text is escaped; the data the script needs travels as JSON in a
`<script type="application/json">`, with `<`, `>` and `&` escaped so a passage
can never close the tag. Views are shaded in Python so the page reads even
without JS; the script adds tooltips and the unit picker.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence

import numpy as np

from charlm import defaults
from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab, listing
from charlm.report import grads as report_grads
from charlm.report import growth
from charlm.report import probes as probe
from charlm.report.assets import JS
from charlm.report.colors import ACTIVATION_STOPS, OUTSIDE, SURPRISAL_STOPS, color, surprisal_color
from charlm.report.parts import charts, config_groups, config_tables, figure_cards, footer, num, shell
from charlm.report.svg import esc as _esc

GLYPHS = {"\n": "↵", "\r": "\\r"}  # shown in place of characters that would not show


def build(ckpt: Checkpoint, cfg: ModelConfig, params: dict, vocab: Vocab, ids: np.ndarray, metrics: list[dict], *,
          source: str, excluded: dict[str, int] | None = None, shown: str | None = None,
          temperatures: Sequence[float] = defaults.REPORT_TEMPERATURES,
          sample_length: int = defaults.REPORT_SAMPLE_LENGTH, seed: int = defaults.REPORT_SEED, command: str = "",
          history: list[dict] | None = None, grew: list[dict] | None = None,
          progress: Callable[[str], None] = lambda stage: None) -> str:
    """The whole page for a loaded model, a passage `ids` (n,) and the run's metrics rows
    (`history`: the run's validation history, if fuller than the checkpoint's; `grew`: its
    samples.jsonl rows, the text it wrote as it trained). `shown`: the passage as the text had
    it, with the characters outside the vocabulary that `ids` leaves out; the views show them,
    struck through and not scored."""
    text = vocab.decode(ids)
    progress("samples")
    samples = probe.samples(params, cfg, vocab, temperatures, sample_length, seed)
    progress("surprisal")
    surp = probe.surprisal(params, cfg, ids)
    progress("activations")
    acts = probe.activations(params, cfg, ids)
    feats = probe.features(text)
    corr = probe.correlations(acts, feats)
    progress("gradients")
    grads = report_grads.gather(ckpt, cfg, params, ids, metrics)
    data = {"ckpt": ckpt, "cfg": cfg, "vocab": vocab, "text": text, "source": source, "excluded": excluded or {},
            "gaps": probe.gaps(shown if shown is not None else text, vocab),
            "figures": probe.run_figures(ckpt, params, metrics),
            "curves": probe.curves(metrics, history or ckpt.history), "samples": samples, "seed": seed,
            "surprisal": surp, "acts": acts, "corr": corr, "top": probe.top_units(corr, list(feats)),
            "command": command, "grads": grads, "grew": grew or []}
    progress("page")
    return render(data)


def _json_script(obj: object, id_: str) -> str:
    """JSON that can sit inside <script> whatever the strings hold."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{id_}">{s}</script>'


def _passage_spans(text: str, backgrounds: Sequence[tuple[str, str]], gaps: Sequence[str] = ()) -> str:
    """One <span class="ch"> per character (a newline shows as ↵, then breaks the line); `gaps[i]`,
    the characters outside the vocabulary before character i, as <span class="oov"> (not "ch", so
    the script's i-th "ch" stays the data's i-th character)."""
    out = []
    for i, (ch, (bg, fg)) in enumerate(zip(text, backgrounds, strict=True)):
        out.append(_outside(gaps[i] if gaps else ""))
        cls = "ch nl" if ch in GLYPHS else "ch"
        out.append(f'<span class="{cls}" style="background:{bg};color:{fg}">{_esc(GLYPHS.get(ch, ch))}</span>')
        if ch == "\n":
            out.append("\n")
    return "".join(out) + _outside(gaps[-1] if gaps else "")


def _outside(chars: str) -> str:
    bg, fg = OUTSIDE
    return "".join(f'<span class="oov" style="background:{bg};color:{fg}" title="outside the vocabulary: not '
                   f'scored">{_esc(GLYPHS.get(ch, ch))}</span>' + ("\n" if ch == "\n" else "") for ch in chars)


def _figures(d: dict) -> str:
    f = d["figures"]
    return figure_cards(f["best_val_nats"], f["parameters"], d["cfg"], f["steps"], f["seconds"], f["chars_per_sec"])


def _config_tables(d: dict) -> str:
    ckpt, vocab = d["ckpt"], d["vocab"]
    corpus = ckpt.corpus
    groups = config_groups(ckpt.model, ckpt.train, ckpt.optim)
    groups.append(("data", {"corpus": corpus.path if corpus else "—", "encoding": ckpt.encoding,
                            "vocabulary": f"{len(vocab):,} chars: {vocab.preview().replace('␠', '␣')}",
                            "checkpoint": str(ckpt.path), "best at step": d["figures"]["best_step"]}))
    return config_tables(groups)


def _samples(d: dict) -> str:
    return '<div class="samples">' + "".join(
        f'<figure class="sample"><figcaption>temperature {t:g}</figcaption><pre>{_esc(text)}</pre></figure>'
        for t, text in d["samples"]) + "</div>"


def _legend(stops: Sequence[tuple[float, str]], labels: Sequence[tuple[float, str]], caption: str) -> str:
    lo, hi = stops[0][0], stops[-1][0]
    grad = ", ".join(f"{c} {100 * (v - lo) / (hi - lo):.0f}%" for v, c in stops)
    ticks = "".join(f'<span style="left:{100 * (v - lo) / (hi - lo):.1f}%">{_esc(t)}</span>' for v, t in labels)
    return (f'<div class="legend"><div class="bar" style="background:linear-gradient(to right, {grad})"></div>'
            f'<div class="ticks">{ticks}</div><div class="cap">{_esc(caption)}</div></div>')


def _most_surprising(text: str, bits: np.ndarray, k: int = 8) -> str:
    scored = np.where(np.isnan(bits), -1.0, bits)
    rows = []
    for t in np.argsort(-scored, kind="stable")[:k]:
        if scored[t] < 0:
            break
        before = "".join(GLYPHS.get(c, c) for c in text[max(0, t - 24): t])
        after = "".join(GLYPHS.get(c, c) for c in text[t + 1: t + 8])
        rows.append(f'<tr><td class="ctx before">{_esc(before)}</td><td><mark>{_esc(GLYPHS.get(text[t], text[t]))}'
                    f'</mark></td><td class="ctx">{_esc(after)}</td><td class="bits">{bits[t]:.1f} bits</td></tr>')
    return '<table class="surprising">' + "".join(rows) + "</table>"


def _unit_data(d: dict) -> dict:
    """Activations as int8 per (kind, layer), unit-major (H, n), base64, with a per-unit scale."""
    acts = {}
    for kind, a in d["acts"].items():
        acts[kind] = []
        for layer in a:                                                 # (n, H)
            scale = np.abs(layer).max(axis=0).astype(np.float64)       # (H,)
            q = np.round(layer.T / np.where(scale > 0, scale, 1.0)[:, None] * 127).astype(np.int8)  # (H, n)
            acts[kind].append({"b64": base64.b64encode(q.tobytes()).decode("ascii"),
                               "scale": [float(f"{s:.4g}") for s in scale]})
    corr = {kind: [[[None if math.isnan(r) else round(float(r), 3) for r in unit] for unit in layer] for layer in c]
            for kind, c in d["corr"].items()}                          # None: the feature never varies
    top = {name: [[u.kind, u.layer, u.unit, round(u.r, 3)] for u in units] for name, units in d["top"].items()}
    return {"acts": acts, "corr": corr, "top": top, "features": list(probe.FEATURES)}


def _default_unit(d: dict) -> probe.Unit:
    best = [units[0] for units in d["top"].values()]
    kind = "c" if "c" in d["acts"] else "h"
    return max(best, key=lambda u: abs(u.r)) if best else probe.Unit(kind, d["cfg"].layers - 1, 0, 0.0)


def _activation_colors(d: dict, unit: probe.Unit) -> list[tuple[str, str]]:
    v = d["acts"][unit.kind][unit.layer][:, unit.unit].astype(np.float64)  # (n,)
    v = np.tanh(v) if unit.kind == "c" else v
    return [(color(ACTIVATION_STOPS, x), "#ffffff" if abs(x) > 0.75 else "#111111") for x in v]


def _unit_list(d: dict) -> str:
    if not d["top"]:
        return '<p class="note">None of the features varies over this passage.</p>'
    rows = []
    for name, units in d["top"].items():
        buttons = "".join(f'<button type="button" class="unit" data-kind="{u.kind}" data-layer="{u.layer}" '
                          f'data-unit="{u.unit}">{_unit_name(u)} <span class="r">{u.r:+.2f}</span></button>'
                          for u in units)
        rows.append(f'<tr><th title="{_esc(probe.FEATURES[name])}">{_esc(name)}</th><td>{buttons}</td></tr>')
    missing = [n for n in probe.FEATURES if n not in d["top"]]
    note = (f'<p class="note">Not in this passage, so not correlated: {_esc(", ".join(missing))}.</p>'
            if missing else "")
    return f'<table class="units">{"".join(rows)}</table>{note}'


def _unit_name(u: probe.Unit) -> str:
    return f"layer {u.layer} {u.kind} #{u.unit}"


def render(d: dict) -> str:
    """The page, from the dict `build` assembles."""
    cfg, vocab, surp, text = d["cfg"], d["vocab"], d["surprisal"], d["text"]
    name = d["ckpt"].run_dir.name or "run"
    unit = _default_unit(d)
    kinds = "".join(f'<option value="{k}">{"cell state c" if k == "c" else "hidden state h"}</option>'
                    for k in (["c", "h"] if "c" in d["acts"] else ["h"]))
    layers = "".join(f'<option value="{k}">layer {k}</option>' for k in range(cfg.layers))
    excluded = d["excluded"]
    excl = (f'<p class="note">Left out {sum(excluded.values()):,} character(s) the model never saw: '
            f'{_esc(listing(excluded))}; they are shown struck through, and the model reads the text '
            'without them.</p>' if excluded else "")
    passage_data = {"vocab": vocab.chars, "text": text, "kind": unit.kind, "layer": unit.layer, "unit": unit.unit,
                    "bits": [None if math.isnan(b) else round(float(b), 2) for b in surp.bits],
                    "guess": surp.top_ids.tolist(), "guessp": np.round(surp.top_probs, 3).tolist(),
                    "act_stops": ACTIVATION_STOPS, **_unit_data(d)}
    inp = f"{cfg.embedding_dim}-wide embedding" if cfg.embedding_dim else "one-hot"
    return shell(f"charlm report — {name}", f"""<header>
<h1>charlm report <span class="run">{_esc(name)}</span></h1>
<p class="lede">A character-level {_esc(cfg.cell.upper())} language model:
{cfg.layers} layer{"s" if cfg.layers > 1 else ""} of {cfg.hidden} units, {_esc(inp)} input,
{len(vocab):,} distinct characters. It reads text one character at a time and, after each, guesses the next.</p>
</header>
<main>
<section id="summary">
<h2>At a glance</h2>
<p class="explain">The validation loss is the average surprise (in nats) at each next character of text the
model never trained on; bits/char is the same in bits, and perplexity is how many equally likely characters
that surprise corresponds to.</p>
{_figures(d)}
</section>
<section id="curves">
<h2>Loss curves</h2>
<p class="explain">Training loss is measured on the batch being learned; validation loss on held-out text.
When validation stops falling while training keeps falling, the model has started to memorise.</p>
{charts(d["curves"], len(vocab))}
</section>
{growth.section(d["grew"], len(vocab), name)}
{report_grads.section(d["grads"])}
<section id="samples-section">
<h2>Samples</h2>
<p class="explain">Text the model writes on its own, with seed {d["seed"]}. Low temperatures pick the likeliest
character (safe, repetitive); temperature 1 samples the model's own probabilities (varied, more mistakes).</p>
{_samples(d)}
</section>
<section id="surprisal-section">
<h2>Surprisal: which characters surprise the model</h2>
<p class="explain">{_esc(d["source"])}, {len(text):,} characters. Each character is shaded by how
surprised the model was to see it: −log<sub>2</sub> p, in bits. Hover over a character to see its
probability and what the model expected instead. Mean over the passage:
<b>{num(surp.bits_per_char, ".3f")} bits/char</b>.</p>
{excl}
{_legend(SURPRISAL_STOPS, [(0, "0"), (2, "2"), (4, "4"), (6, "6"), (8, "8+ bits")], "surprisal (bits)")}
<div class="passage" id="surprisal">{_passage_spans(text, [surprisal_color(b) for b in surp.bits], d["gaps"])}</div>
<h3>The most surprising moments</h3>
{_most_surprising(text, surp.bits)}
</section>
<section id="cells-section">
<h2>Cell activations: what single units track</h2>
<p class="explain">Each unit of the network holds one number that changes as it reads. Some learn
interpretable jobs, such as tracking whether the text is inside quotes or how far along the line it is. Pick a
unit to shade the passage by its value after each character (red positive, blue
negative{"; the LSTM cell state c is shown through tanh" if "c" in d["acts"] else ""}).</p>
<div class="controls">
<label>state <select id="kind">{kinds}</select></label>
<label>layer <select id="layer">{layers}</select></label>
<label>unit <button type="button" id="prev" aria-label="previous unit">◀</button>
<input id="unit" type="number" min="0" max="{cfg.hidden - 1}" value="{unit.unit}">
<button type="button" id="next" aria-label="next unit">▶</button></label>
<span id="unit-info" class="note"></span>
</div>
{_legend(ACTIVATION_STOPS, [(-1, "−1"), (0, "0"), (1, "+1")], "activation")}
<div class="passage" id="cells">{_passage_spans(text, _activation_colors(d, unit), d["gaps"])}</div>
<h3>Units that follow simple features</h3>
<p class="explain">For every feature, the units whose activation correlates most with it (Pearson r, over this
passage). Click one to show it above; hover a feature for its definition.</p>
{_unit_list(d)}
</section>
<section id="config-section">
<h2>Configuration</h2>
<p class="explain">Everything that defines this run, as stored in its checkpoint.</p>
{_config_tables(d)}
</section>
</main>
{footer(d["command"])}
<div id="tip" role="tooltip" hidden></div>
{_json_script(passage_data, "report-data")}
<script>{JS}</script>""")
