"""`charlm demo hello`, `charlm demo gradients` and `charlm eval gradient-flow`: the lessons, rendered.

Everything goes to stdout (it is the command's output), in colour on a terminal and
plain under NO_COLOR or when piped. The numbers come from charlm/lessons/hello.py,
charlm/lessons/gradients.py and charlm/lessons/gradflow.py; this file only lays them out.
"""

from __future__ import annotations

import dataclasses
import json
import math
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from charlm import checkpoint
from charlm.cli import common
from charlm.cli.common import err, model_path, note_excluded
from charlm.cli.use_cmds import ModelOpt
from charlm.data import corpus as corpus_mod
from charlm.errors import CharlmError
from charlm.lessons import gradflow
from charlm.lessons import gradients as gradients_lesson
from charlm.lessons import hello as hello_lesson
from charlm.lessons.gradflow import Flow
from charlm.use import evaluate

BAR = 24  # width of a curve's bar at the largest value shown (shared among the curves side by side)


class Cell(str, Enum):
    rnn = "rnn"
    lstm = "lstm"
    gru = "gru"


def _vec(values, fmt: str = "+.2f") -> str:
    return "[" + " ".join(format(v, fmt) for v in values) + "]"


# --------------------------------------------------------------------- hello


def hello(
    text: Annotated[str, typer.Option("--text", help="The word to learn")] = hello_lesson.WORD,
    cell: Annotated[Cell, typer.Option("--cell", help="Recurrent cell")] = Cell.rnn,
):
    """Train a tiny one-hot model on a word, live, and show every step before and after training."""
    lesson = hello_lesson.run(text, cell.value)
    out = common.out()
    chars = " ".join(repr(c) for c in lesson.vocab.chars)
    out.print(Text.assemble((f"{lesson.word!r}", "bold"), f": vocabulary of {len(lesson.vocab)} ({chars}), "
                            f"one-hot input, one {cell.value.upper()} layer of {lesson.cfg.hidden} units. "
                            "Vectors list the vocabulary in this order."))
    _snapshot(out, "before training", lesson.before)
    norms = lesson.norms
    out.print(Text(f"\ntrained {lesson.steps_trained:,} steps of Adam on the whole word (lr {hello_lesson.OPTIM.lr:g}, "
                   f"gradient norm before clipping: first {norms[0]:.3g}, last {norms[-1]:.3g})", "dim"))
    _snapshot(out, "after training", lesson.after)


def _snapshot(out: Console, title: str, snap: hello_lesson.Snapshot) -> None:
    steps = len(snap.steps)
    out.rule(f"{title}: {snap.correct}/{steps} right, loss {snap.loss:.3f} nats/char")
    for t, s in enumerate(snap.steps):
        mark = ("right", "bold green") if s.right else ("wrong", "bold red")
        p = max(s.probs)
        out.print(Text.assemble(f"t={t}  input ", (repr(s.char), "bold"), f"  one-hot {_vec(s.onehot, 'd')}"))
        out.print(f"     hidden h  {_vec(s.hidden)}")
        out.print(f"     scores    {_vec(s.scores)}")
        out.print(f"     softmax   {_vec(s.probs, '.2f')}")
        out.print(Text.assemble("     predicts ", (repr(s.predicted), "bold"), f" (p={p:.2f}), target ",
                                (repr(s.target), "bold"), "  ", mark))


# --------------------------------------------------------------------- curves


def _bar(v: float, lo: float, hi: float, width: int) -> str:
    """A bar on a log scale from lo (empty) to hi (`width` blocks)."""
    if not (v > 0 and hi > lo > 0):
        return ""
    return "█" * max(1, round(width * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))))


def flow_table(flows: dict[str, Flow], spread: bool) -> Table:
    """One row per lag k, one column group per curve: the mean norm (and quartiles) and a log-scale bar."""
    values = [v for f in flows.values() for v in f.mean if v > 0]
    hi = max(values, default=1.0)
    lo = min(min(values, default=hi), hi / 1e3) / 2
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False,
                  title="mean ‖∂L_t/∂h_(t−k)‖ over positions; bars on a log scale")
    table.add_column("k", justify="right")
    for name in flows:
        table.add_column(f"{name} mean", justify="right")
        if spread:
            table.add_column("25%–75%", justify="right")
        table.add_column("", no_wrap=True)
    width = BAR // len(flows) + 4 * (len(flows) > 1)
    lags = next(iter(flows.values())).lags
    for i, k in enumerate(lags):
        row = [str(k)]
        for f in flows.values():
            row.append(f"{f.mean[i]:.2e}")
            if spread:
                row.append(f"{f.q25[i]:.1e}–{f.q75[i]:.1e}")
            row.append(_bar(f.mean[i], lo, hi, width))
        table.add_row(*row)
    return table


# --------------------------------------------------------------------- gradient flow


def gradient_flow(
    file: Annotated[Path | None, typer.Argument(help="Text file to measure on", metavar="FILE",
                                                   show_default="the run's validation split")] = None,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    max_lag: Annotated[int, typer.Option("--max-lag", min=1, max=200, help="Largest lag k (cost grows as k²)")
                       ] = gradflow.MAX_LAG,
    positions: Annotated[int, typer.Option("--positions", min=1, help="Positions averaged over")
                         ] = gradflow.POSITIONS,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding of FILE",
                                                    show_default="the training corpus's")] = None,
):
    """How much the loss at a position depends on the hidden state k steps earlier: ‖∂L_t/∂h_(t−k)‖ for k = 1…K."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(model))
    if file is not None:
        raw, excluded = corpus_mod.encode_text(file, vocab, encoding or ckpt.encoding)
        ids, source = raw[raw >= 0], str(file)
    else:
        ids, excluded = np.asarray(evaluate.held_out(ckpt, instead="a text FILE")), {}
        source = f"validation split of {ckpt.corpus.path}"
    with err.status("charlm: measuring gradient flow"):
        flow = gradflow.measure(params, cfg, ids, max_lag=max_lag, count=positions)
    if json_out:
        print(json.dumps({"model": dataclasses.asdict(cfg), "text": source, **flow.to_dict(),
                          "kept_at_max_lag": gradflow.decay(flow)}))
        return
    note_excluded(excluded)
    out = common.out()
    out.print(flow_table({cfg.cell.upper(): flow}, spread=True))
    out.print(f"{cfg.cell.upper()} {cfg.layers}×{cfg.hidden} on {source}: {flow.positions:,} positions; at lag "
              f"{max_lag} the gradient is {gradflow.decay(flow):.2g} of its size at lag 1.")


# --------------------------------------------------------------------- three cells


def gradients(
    steps: Annotated[int, typer.Option("--steps", min=1, max=2000, help="Training steps per cell")
                     ] = gradients_lesson.STEPS,
):
    """An RNN, an LSTM and a GRU of one size: gradient flow at initialisation and after a short run, and clipping."""
    with err.status("charlm: training") as status:
        results = gradients_lesson.run(steps=steps,
                                     progress=lambda cell: status.update(f"charlm: measuring and training {cell}"))
    if not results:
        raise CharlmError("no cells to compare")
    out = common.out()
    r0 = results[0]
    out.print(f"Three one-layer models of {gradients_lesson.HIDDEN} units on Python standard-library source "
              f"({gradients_lesson.TEXT_BYTES:,} bytes), {len(r0.norms)} Adam steps of {gradients_lesson.BATCH}×"
              f"{gradients_lesson.SEQ} characters each, clip {r0.clip:g}; flow measured on the held-out 10%.")
    for phase, title in (("at_init", "at initialisation"), ("trained", f"after {len(r0.norms):,} steps")):
        out.rule(title)
        out.print(flow_table({r.cell.upper(): getattr(r, phase) for r in results}, spread=False))
    out.rule("training")
    for r in results:
        out.print(f"{r.cell.upper():>4}: loss {r.losses[0]:.2f} → {r.losses[-1]:.2f} nats/char")
    out.rule("what the numbers show")
    for line in gradients_lesson.summary(results):
        out.print(line)
