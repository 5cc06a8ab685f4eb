"""The report's gradient section: gradient flow through time, and the pre-clip gradient norm over training.

`gather` measures the run's model on the report's passage (charlm/lessons/gradflow.py) and
reads `grad_norm` from the run's metrics rows; `section` draws both as inline SVG
charts (charlm/report/svg.py), the clip limit from the checkpoint's optim_config
drawn across the norm chart. The flow spans orders of magnitude, so it is drawn as
log₁₀ of the norm.
"""

from __future__ import annotations

import math

import numpy as np

from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.errors import CharlmError
from charlm.lessons import gradflow
from charlm.report.svg import esc, line_chart


def gather(ckpt: Checkpoint, cfg: ModelConfig, params: dict, ids: np.ndarray, metrics: list[dict]) -> dict:
    """{"flow": Flow | None, "flow_note": why there is none, "norms": [(step, norm)…], "clip": limit | None}."""
    flow, note = None, ""
    try:
        flow = gradflow.measure(params, cfg, ids)
    except CharlmError as e:
        note = str(e)
    norms = [(float(r["step"]), float(r["grad_norm"])) for r in metrics
             if isinstance(r.get("grad_norm"), (int, float)) and math.isfinite(r["grad_norm"])]
    return {"flow": flow, "flow_note": note, "norms": norms, "clip": ckpt.optim.clip if ckpt.optim else None}


def _log10(values: list[float]) -> list[float]:
    return [math.log10(v) if v > 0 else math.nan for v in values]


def _flow_chart(g: dict) -> str:
    flow = g["flow"]
    if flow is None:
        return f'<p class="note">No gradient-flow chart: {esc(g["flow_note"])}</p>'
    series = [{"name": name, "x": flow.lags, "y": _log10(ys), "color": color, "width": width}
              for name, ys, color, width in (("25th percentile", flow.q25, "#9ecae1", 1),
                                             ("75th percentile", flow.q75, "#9ecae1", 1),
                                             ("mean", flow.mean, "#2171b5", 2))]
    if any(not math.isfinite(y) for s in series for y in s["y"]):
        return '<p class="note">No gradient-flow chart: some gradients are exactly zero.</p>'
    return line_chart(series, x_label="lag k (steps back)", y_label="log10 norm",
                      title=f"log10 ‖∂L_t/∂h_(t−k)‖ over {flow.positions:,} positions")


def _norm_chart(g: dict) -> str:
    if not g["norms"]:
        return '<p class="note">No gradient norms were logged for this run (no grad_norm in metrics.jsonl).</p>'
    steps, norms = zip(*g["norms"], strict=True)
    clip = g["clip"]
    hline = (clip, f"clip limit {clip:g}") if clip else None
    return line_chart([{"name": "norm", "x": list(steps), "y": list(norms), "color": "#d94801", "width": 1.5}],
                      x_label="training step", y_label="gradient norm", hline=hline,
                      title="Gradient norm before clipping")


def section(g: dict) -> str:
    """The <section> for the page."""
    flow, clip, norms = g["flow"], g["clip"], [n for _, n in g["norms"]]
    kept = (f" At lag {flow.lags[-1]} the gradient is {gradflow.decay(flow):.2g} of its size at lag 1."
            if flow is not None else "")
    fired = sum(n > clip for n in norms) if clip else 0
    clip_text = (f"The dashed line is the clip limit ({clip:g}): {fired:,} of the {len(norms):,} logged steps were "
                 "above it and were scaled down to it." if clip else "Clipping was off for this run.")
    return f"""<section id="gradients-section">
<h2>Gradient flow through time</h2>
<p class="explain">How much the loss at one character depends on the hidden state k characters earlier: the
norm of ∂L_t/∂h_(t−k), measured on the passage below with the model's own backward pass. In a vanilla RNN it
shrinks fast with k (gradients vanish), so the model cannot learn from far back; the LSTM's and GRU's additive
paths keep more of it.{esc(kept)}</p>
<p class="explain">The second chart is the gradient's global norm at each logged training step, before
clipping. {esc(clip_text)}</p>
<div class="charts">{_flow_chart(g)}{_norm_chart(g)}</div>
</section>"""
