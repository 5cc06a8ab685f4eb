"""The run report's inline stylesheet and script (kept apart so report.py reads as Python)."""

CSS = """
:root { --ink: #1d232b; --muted: #5b6675; --line: #d9dee5; --bg: #fbfbfa; --accent: #2171b5; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK KR", sans-serif; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 1.9rem; margin: 0 0 6px; } h1 .run { color: var(--muted); font-weight: 400; }
h2 { font-size: 1.35rem; margin: 0 0 4px; } h3 { font-size: 1.05rem; margin: 22px 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px; margin: 18px 0; }
.lede { color: var(--muted); max-width: 60em; margin: 0; }
.explain { color: var(--muted); max-width: 62em; margin: 0 0 14px; }
.note { color: var(--muted); font-size: .9rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { color: var(--muted); font-size: .85rem; } .card .v { font-size: 1.5rem; font-weight: 600; }
.card .u { color: var(--muted); font-size: .8rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(420px, 100%), 1fr)); gap: 16px; }
.chart { width: 100%; height: auto; font-size: 12px; }
.keys { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: .85rem; color: var(--muted); margin-bottom: 4px; }
.keys i { display: inline-block; width: 22px; margin: 0 6px 3px 0; vertical-align: middle; }
.keys i.dash { border-top: 2px dashed #9aa3ae; }
.chart .ct { font-weight: 600; font-size: 14px; fill: var(--ink); }
.chart .grid { stroke: #eef0f3; } .chart .axis { stroke: #8a94a3; }
.chart .tick { fill: var(--muted); } .chart .label { fill: var(--ink); font-size: 13px; }
.chart .ref { stroke: #9aa3ae; stroke-dasharray: 5 4; }
.configs { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); gap: 12px; margin-top: 16px; }
table.config { border-collapse: collapse; font-size: .85rem; width: 100%; }
table.config caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
table.config th { text-align: left; color: var(--muted); font-weight: 400; padding: 2px 10px 2px 0; }
table.config td { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; word-break: break-all; }
.samples { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(480px, 100%), 1fr)); gap: 12px; }
.sample { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.sample figcaption { font-weight: 600; color: var(--accent); }
pre, .passage { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, "Noto Sans Mono CJK KR", monospace;
  font-size: 13px; white-space: pre-wrap; word-break: break-all; margin: 6px 0 0; }
.passage { line-height: 1.75; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  max-height: 34em; overflow-y: auto; }
.ch { padding: 1px 0; border-radius: 2px; } .ch.nl { opacity: .55; }
.oov { padding: 1px 0; border-radius: 2px; text-decoration: line-through; }
.ch:hover { outline: 2px solid var(--ink); }
.legend { width: 340px; margin: 4px 0 12px; font-size: .8rem; color: var(--muted); }
.legend .bar { height: 12px; border-radius: 3px; border: 1px solid var(--line); }
.legend .ticks { position: relative; height: 16px; white-space: nowrap; }
.legend .ticks span { position: absolute; transform: translateX(-50%); }
.legend .ticks span:last-child { transform: translateX(-100%); } .legend .ticks span:first-child { transform: none; }
.legend .cap { font-style: italic; }
.surprising { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
table.surprising { border-collapse: collapse; } .surprising td { padding: 1px 0; }
.surprising .ctx { color: var(--muted); white-space: pre; } .surprising .before { text-align: right; }
.surprising .bits { font-weight: 600; padding-left: 1.5em; text-align: right; }
.surprising mark { background: #fe9929; padding: 0 2px; }
.controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-bottom: 10px; }
.controls input { width: 5em; } .controls select, .controls input, .controls button { font: inherit; }
table.units { border-collapse: collapse; font-size: .9rem; }
table.units th { text-align: left; padding: 4px 12px 4px 0; font-weight: 600; cursor: help; white-space: nowrap; }
button.unit { font: inherit; font-size: .85rem; margin: 2px; padding: 2px 8px; border: 1px solid var(--line);
  border-radius: 12px; background: #f4f6f8; cursor: pointer; }
button.unit:hover { border-color: var(--accent); } button.unit.active { background: var(--accent); color: #fff; }
button.unit .r { font-variant-numeric: tabular-nums; opacity: .8; }
#tip { position: fixed; z-index: 10; background: #1d232b; color: #fff; border-radius: 6px; padding: 8px 10px;
  font-size: 13px; pointer-events: none; min-width: 180px; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
#tip .big { font-size: 1.3rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
#tip .row { display: flex; gap: 8px; align-items: center; }
#tip .g { font-family: ui-monospace, "DejaVu Sans Mono", monospace; min-width: 5.5em; white-space: pre; }
#tip .b { height: 8px; background: #fe9929; border-radius: 2px; }
#tip .hit { color: #fec44f; font-weight: 600; }
footer { color: var(--muted); font-size: .85rem; padding-bottom: 30px; }
ol.grew { list-style: none; padding: 0; margin: 0; }
.grew li { display: grid; grid-template-columns: 10.5em minmax(0, 1fr); gap: 4px 18px; padding: 10px 0;
  border-top: 1px solid var(--line); }
.grew .at { font-size: .85rem; color: var(--muted); display: flex; flex-direction: column; }
.grew .at b { color: var(--ink); font-size: 1rem; }
.lossbar { display: block; height: 6px; max-width: 9em; margin: 4px 0; background: #eef0f3; border-radius: 3px; }
.lossbar i { display: block; height: 100%; background: #d94801; border-radius: 3px; }
.grew pre { margin: 0; }
.live { border-left: 5px solid #2ca25f; } .live.ended { border-left-color: #6b7685; }
.live.bad { border-left-color: #d94801; } .live .state { font-size: 1.15rem; font-weight: 600; margin: 0 0 4px; }
.live .dot { display: inline-block; width: .7em; height: .7em; border-radius: 50%; background: #2ca25f;
  margin-right: .4em; animation: pulse 1.6s ease-in-out infinite; }
@keyframes pulse { 50% { opacity: .25; } }
.table-wrap { overflow-x: auto; }
table.runs { border-collapse: collapse; font-size: .85rem; }
table.runs th, table.runs td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
table.runs th { color: var(--muted); font-weight: 400; white-space: nowrap; }
table.runs td.num, table.runs td:first-child { font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 14px; height: 4px; margin: 0 6px 3px 0; vertical-align: middle; }
.warn { background: #fff4e5; border: 1px solid #f5c28b; border-radius: 8px; padding: 8px 12px; }
@media (max-width: 600px) {
  header, main, footer { padding: 0 10px; } header { padding-top: 16px; } h1 { font-size: 1.45rem; }
  section { padding: 14px 12px; margin: 12px 0; }
  .grew li { grid-template-columns: minmax(0, 1fr); }
  .grew .at { flex-direction: row; flex-wrap: wrap; gap: 2px 12px; align-items: center; }
  .lossbar { width: 6em; }
  .legend { width: 100%; }
}
"""

JS = """
"use strict";
(() => {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const chars = Array.from(D.text), n = chars.length, vocab = Array.from(D.vocab);
  const $ = (id) => document.getElementById(id), tip = $("tip");
  const surpSpans = document.querySelectorAll("#surprisal .ch"), cellSpans = document.querySelectorAll("#cells .ch");
  const name = (c) => ({" ": "␣ space", "\\n": "↵ newline", "\\t": "⇥ tab", "\\r": "\\\\r return"})[c] || c;
  const rgb = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  function mix(stops, v) {
    v = Math.min(Math.max(v, stops[0][0]), stops[stops.length - 1][0]);
    for (let k = 1; k < stops.length; k++) {
      if (v <= stops[k][0]) {
        const f = (v - stops[k - 1][0]) / (stops[k][0] - stops[k - 1][0]);
        const a = rgb(stops[k - 1][1]), b = rgb(stops[k][1]);
        return "rgb(" + a.map((x, i) => Math.round(x * (1 - f) + b[i] * f)).join(",") + ")";
      }
    }
    return stops[stops.length - 1][1];
  }
  const decoded = {};
  function values(kind, layer, unit) {
    const key = kind + layer, blk = D.acts[kind][layer];
    if (!decoded[key]) {
      const s = atob(blk.b64), q = new Int8Array(s.length);
      for (let i = 0; i < s.length; i++) q[i] = (s.charCodeAt(i) << 24) >> 24;
      decoded[key] = q;
    }
    const q = decoded[key], sc = blk.scale[unit] / 127, out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = q[unit * n + i] * sc;
    return out;
  }
  let cur = null;
  function show(kind, layer, unit) {
    if (!D.acts[kind]) kind = "h";
    layer = Math.max(0, Math.min(D.acts[kind].length - 1, layer | 0));
    const H = D.acts[kind][layer].scale.length;
    unit = ((unit | 0) % H + H) % H;
    const v = values(kind, layer, unit);
    cellSpans.forEach((el, i) => {
      const x = kind === "c" ? Math.tanh(v[i]) : v[i];
      el.style.background = mix(D.act_stops, x);
      el.style.color = Math.abs(x) > 0.75 ? "#fff" : "#111";
    });
    cur = { kind, layer, unit, v };
    $("kind").value = kind; $("layer").value = String(layer); $("unit").value = String(unit);
    const r = D.corr[kind][layer][unit];
    const signed = (x) => (x >= 0 ? "+" : "") + x.toFixed(2);
    $("unit-info").textContent = "r with: " + D.features.map((f, j) => r[j] === null ? "" : f + " " + signed(r[j]))
      .filter((x) => x).join(" · ");
    document.querySelectorAll("button.unit").forEach((b) => b.classList.toggle("active",
      b.dataset.kind === kind && +b.dataset.layer === layer && +b.dataset.unit === unit));
  }
  const pick = () => show($("kind").value, +$("layer").value, +$("unit").value);
  ["kind", "layer", "unit"].forEach((id) => $(id).addEventListener("change", pick));
  $("prev").addEventListener("click", () => show(cur.kind, cur.layer, cur.unit - 1));
  $("next").addEventListener("click", () => show(cur.kind, cur.layer, cur.unit + 1));
  document.querySelectorAll("button.unit").forEach((b) => b.addEventListener("click", () => {
    show(b.dataset.kind, +b.dataset.layer, +b.dataset.unit);
    $("cells").scrollIntoView({ behavior: "smooth", block: "center" });
  }));
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function surprisalTip(i) {
    tip.replaceChildren(el("div", "big", name(chars[i])));
    if (D.bits[i] === null) { tip.append(el("div", "", "first character: nothing before it to predict from")); return; }
    const p = Math.pow(2, -D.bits[i]);
    tip.append(el("div", "", "p = " + (100 * p).toPrecision(3) + "%  ·  " + D.bits[i].toFixed(2) + " bits"),
      el("div", "", "the model's top guesses:"));
    D.guess[i].forEach((id, k) => {
      const hit = vocab[id] === chars[i], row = el("div", "row"), g = el("span", hit ? "g hit" : "g", name(vocab[id]));
      const bar = el("span", "b"); bar.style.width = Math.max(2, 90 * D.guessp[i][k]) + "px";
      row.append(g, bar, el("span", "", (100 * D.guessp[i][k]).toFixed(1) + "%"));
      tip.append(row);
    });
  }
  function cellTip(i) {
    const x = cur.v[i];
    const what = "layer " + cur.layer + " " + cur.kind + " #" + cur.unit + " = " + x.toFixed(3);
    const squashed = cur.kind === "c" ? "  (tanh " + Math.tanh(x).toFixed(3) + ")" : "";
    tip.replaceChildren(el("div", "big", name(chars[i])), el("div", "", what + squashed));
  }
  function hover(spans, fill) {
    const index = new Map(Array.from(spans, (s, i) => [s, i]));
    const box = spans.length ? spans[0].parentElement : null;
    if (!box) return;
    box.addEventListener("mouseover", (e) => {
      const i = index.get(e.target);
      if (i === undefined) return;
      fill(i);
      tip.hidden = false;
    });
    box.addEventListener("mousemove", (e) => {
      const w = tip.offsetWidth, h = tip.offsetHeight;
      tip.style.left = Math.min(e.clientX + 14, window.innerWidth - w - 8) + "px";
      tip.style.top = (e.clientY + 18 + h > window.innerHeight ? e.clientY - h - 12 : e.clientY + 18) + "px";
    });
    box.addEventListener("mouseleave", () => { tip.hidden = true; });
  }
  hover(surpSpans, surprisalTip);
  hover(cellSpans, cellTip);
  show(D.kind, D.layer, D.unit);
})();
"""
