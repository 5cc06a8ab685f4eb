"""`charlm report` (the HTML page of a run, or of several side by side) and `charlm eval surprisal`
(the same shading in the terminal)."""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.cells import cell_len
from rich.text import Text

from charlm import checkpoint, defaults, rundir
from charlm.checkpoint import Checkpoint
from charlm.cli import common
from charlm.cli.common import StepOpt, either, err, model_path, note_excluded, say
from charlm.cli.use_cmds import ModelOpt
from charlm.data import corpus as corpus_mod
from charlm.data import files
from charlm.data.vocab import Vocab
from charlm.errors import CharlmError, UsageError
from charlm.lessons import gradflow
from charlm.report import colors, compare, parts
from charlm.report import page as report_mod
from charlm.report import probes as probe
from charlm.use import evaluate

CharsOpt = Annotated[int, typer.Option("--chars", min=0, help="Length of the passage in characters (0 = all)")]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="Text encoding of the file",
                                                    show_default="the training corpus's")]
ALL_CHARS = 20_000  # what `report --chars 0` shows at most: each character costs the page ~0.2 kB
MARKS = [(1.0, " "), (2.0, "."), (4.0, ":"), (6.0, "+"), (math.inf, "#")]  # plain-text surprisal marks
OUTSIDE_MARK = "?"  # under a character outside the vocabulary: shown, not scored


def _passage(ckpt: Checkpoint, vocab: Vocab, text: Path | None, chars: int, encoding: str | None,
             instead: str) -> tuple[str, np.ndarray, str]:
    """(the passage as shown, its ids (n,) with −1 for characters outside the vocabulary, where it
    comes from): FILE's first `chars` characters, else a passage from the start of the run's
    validation split (`instead`: how to give a FILE, should the run have none)."""
    if text is None:
        val = np.asarray(evaluate.held_out(ckpt, say, instead))  # it refuses a run without a split or a corpus
        ids = probe.passage(val, chars, vocab.index().get("\n"))
        frac, name = ckpt.train.val_fraction, Path(ckpt.corpus.path).name
        return vocab.decode(ids), ids, f"Held-out text from the last {frac:.0%} of {name}, which the model never " \
                                       "trained on"
    shown, raw = corpus_mod.read_passage(text, vocab, encoding or ckpt.encoding, chars)
    return shown, raw, f"Text from {text.name}"


def _scored(shown: str, raw: np.ndarray, text: Path | None) -> tuple[np.ndarray, dict[str, int]]:
    """(the ids the model reads: the passage's characters in the vocabulary, {the others: count})."""
    ids = raw[raw >= 0].astype(np.intp)
    if len(ids) < 2:
        raise CharlmError(f"{text}: needs at least 2 characters in the model's vocabulary")
    excluded: dict[str, int] = {}
    for i in np.flatnonzero(raw < 0):
        excluded[shown[i]] = excluded.get(shown[i], 0) + 1
    return ids, excluded


def report(
    runs: Annotated[list[Path] | None, typer.Argument(
        help="Run directory or checkpoint; two or more: the runs side by side on one page (validation curves, "
             "configurations, best scores, gradient flow)", metavar="RUN", show_default="runs/latest")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="FILE", help="HTML file to write",
                                                 show_default="the run's report.html; compare.html for several runs"
                                             )] = None,
    text: Annotated[Path | None, typer.Option("--text", metavar="FILE", help="Text for the surprisal, activation "
                                                  "and gradient views", show_default="the run's held-out text")] = None,
    chars: Annotated[int, typer.Option("--chars", min=0, help="Length of the passage in characters "
                                       f"(0 = all, up to {ALL_CHARS:,})")] = defaults.REPORT_CHARS,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed of the samples")
                    ] = defaults.REPORT_SEED,
    sample_length: Annotated[int, typer.Option("--sample-length", min=1, help="Characters per sample")
                             ] = defaults.REPORT_SAMPLE_LENGTH,
    encoding: EncodingOpt = None,
    model: ModelOpt = None,
    step: StepOpt = None,
):
    """Write one self-contained HTML page about a run (loss curves, how its text grew, samples, surprisal, cell
    activations), or about several side by side."""
    if text is not None:
        files.check_readable(text, "--text file")
    runs = [either(runs[0] if runs else None, model)] if len(runs or []) <= 1 else runs
    if model is not None and len(runs) > 1:
        raise UsageError("give the runs to compare as RUN arguments, or one run as -m/--model, not both")
    if len(runs) > 1:
        if step is not None:
            raise UsageError("--step picks one run's kept checkpoint; runs are compared whole, without it")
        _compare(runs, _out(out or Path("compare.html")), text, chars, encoding)
        return
    run_dir = runs[0]
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(run_dir, "RUN or --model", step))
    run = ckpt.run_dir
    if out is None and rundir.is_live(run):
        out = run / rundir.FULL_REPORT
        say(f"{run / rundir.REPORT} is the live page of a run training with --report; writing the full report "
            f"beside it, to {out}")
    out = _out(out or run / rundir.REPORT)
    shown, raw, source = _passage(ckpt, vocab, text, chars, encoding, "--text FILE")
    if not chars and len(shown) > ALL_CHARS:
        say(f"--chars 0: showing the first {ALL_CHARS:,} of {len(shown):,} characters (a page of them all would be "
            f"about {len(shown) * 0.2 / 1000:.0f} MB); give --chars N for a longer passage")
        shown, raw = shown[:ALL_CHARS], raw[:ALL_CHARS]
    ids, excluded = _scored(shown, raw, text)
    note_excluded(excluded)
    command = ["charlm", "report", str(run_dir or "runs/latest"), "--chars", str(chars), "--seed", str(seed),
               "--sample-length", str(sample_length)] + (["--text", str(text)] if text else []) + (
        ["--step", str(step)] if step is not None else [])
    stages = {"samples": "writing samples", "surprisal": "scoring the passage",
              "activations": "recording activations", "page": "drawing the page",
              "gradients": "measuring gradient flow"}
    with err.status("charlm: building the report") as status:
        page = report_mod.build(ckpt, cfg, params, vocab, ids, rundir.read_metrics(run),
                                source=source, excluded=excluded, shown=shown, seed=seed, sample_length=sample_length,
                                command=shlex.join(command), history=_history(ckpt), grew=rundir.read_samples(run),
                                progress=lambda stage: status.update(f"charlm: {stages[stage]}"))
    parts.write_page(out, page)
    say(f"wrote {out} ({common.size(len(page.encode()))}, with a passage of {len(shown):,} characters); "
        "open it in a browser")


def _out(out: Path) -> Path:
    """The page's path, refused before any work when it cannot be a file that can be written."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name such as {out / 'report.html'}")
    if not out.parent.is_dir():
        raise CharlmError(f"cannot write {out}: there is no directory {out.parent}")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise CharlmError(f"cannot write {out}: permission denied")
    return out


def _history(ckpt: Checkpoint) -> list[dict]:
    """The run's validations: last.pkl's, which go on past best.pkl's, when it is there and readable."""
    last = ckpt.run_dir / rundir.LAST
    if last.is_file() and ckpt.path.name != rundir.LAST:
        try:
            return checkpoint.load(last).history or ckpt.history
        except CharlmError:
            pass
    return ckpt.history


def _compare(paths: list[Path], out: Path, text: Path | None, chars: int, encoding: str | None) -> None:
    """`charlm report RUN1 RUN2 … -o out`: each run loaded, its gradient flow measured where its text is there."""
    entries, seen = [], {}
    names = [Path(p).resolve().name if Path(p).is_dir() else Path(p).resolve().parent.name for p in paths]
    with err.status("charlm: loading the runs") as status:
        for path, name in zip(paths, names, strict=True):
            if not Path(path).exists() or (Path(path).is_dir() and not rundir.holds_run(Path(path))):
                why = "no best.pkl or last.pkl in it" if Path(path).exists() else "there is no such directory or file"
                raise CharlmError(f"{path} is not a run: {why}")
            ckpt, cfg, params, vocab = checkpoint.load_model(path)
            if (key := ckpt.path.resolve()) in seen:
                raise UsageError(f"{path} and {seen[key]} are the same run ({ckpt.path}); give each run once")
            seen[key] = path
            status.update(f"charlm: measuring the gradient flow of {ckpt.run_dir}")
            flow, why = None, ""
            try:
                flow = gradflow.measure(params, cfg, _scored(*_passage(ckpt, vocab, text, chars, encoding,
                                                                       "--text FILE")[:2], text)[0])
            except CharlmError as e:
                why = str(e)
            label = name if names.count(name) == 1 else str(path)
            entries.append(compare.Entry(label, ckpt, rundir.read_metrics(ckpt.run_dir), _history(ckpt),
                                         rundir.read_samples(ckpt.run_dir), flow, why))
    for e in entries:
        if e.flow is None:
            say(f"no gradient flow for {e.label}: {e.flow_note}")
    parted = compare.groups(entries)
    if len(parted) > 1:
        say(f"the runs fall into {len(parted)} groups validated on different text or vocabularies; the page says "
            "which scores compare")
    command = shlex.join(["charlm", "report", *map(str, paths), "-o", str(out)])
    page = compare.page(entries, command)
    parts.write_page(out, page)
    say(f"wrote {out} ({common.size(len(page.encode()))}, {len(entries)} runs); open it in a browser")


def surprisal(
    file: Annotated[Path | None, typer.Argument(help="Text file to shade", metavar="FILE",
                                                   show_default="the run's held-out text")] = None,
    model: ModelOpt = None,
    chars: CharsOpt = defaults.REPORT_CHARS,
    encoding: EncodingOpt = None,
    step: StepOpt = None,
):
    """Shade each character of a text by how much it surprised the model (plain marks under NO_COLOR)."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(model, step=step))
    shown, raw, source = _passage(ckpt, vocab, file, chars, encoding, "a text FILE")
    ids, excluded = _scored(shown, raw, file)
    note_excluded(excluded)
    s = probe.surprisal(params, cfg, ids)
    bits = np.full(len(shown), np.nan)                                  # (len(shown),) nan where not scored
    bits[raw >= 0] = s.bits
    outside = raw < 0
    out = common.out()
    if out.color_system is None or out.no_color:  # not a terminal, or NO_COLOR
        out.file.write(plain_surprisal(shown, bits, outside))
    else:
        out.print(shaded_surprisal(shown, bits, outside))
        out.print(surprisal_legend(outside.any()))
    scored = len(ids) - 1
    out.print(f"{source}: {scored:,} characters scored, {s.bits_per_char:.3f} bits/char "
              f"({s.nats_per_char:.4f} nats/char, perplexity {math.exp(s.nats_per_char):.2f})")


def shaded_surprisal(text: str, bits: np.ndarray, outside: np.ndarray | None = None) -> Text:
    """Each character on its surprisal colour; a newline's own colour is a shaded cell at the line end.
    A character `outside` the vocabulary is struck through on grey: shown, not scored."""
    out = Text()
    outside = np.zeros(len(text), bool) if outside is None else outside
    for ch, b, oov in zip(text, bits, outside, strict=True):
        bg, fg = colors.OUTSIDE if oov else colors.surprisal_color(float(b))
        style = f"{fg} on {bg}" + (" strike" if oov else "")
        if ch == "\n":
            out.append(" ", style)
            out.append("\n")
        else:
            out.append(ch, style)
    if not text.endswith("\n"):
        out.append("\n")
    return out


def surprisal_legend(outside: bool = False) -> Text:
    legend = Text("surprisal  0 ")
    for b in np.linspace(0, colors.SURPRISAL_MAX, 17):
        legend.append("  ", f"on {colors.surprisal_color(float(b))[0]}")
    legend.append(f" {colors.SURPRISAL_MAX:g}+ bits (a shaded cell at a line end is the newline)")
    if outside:
        bg, fg = colors.OUTSIDE
        legend.append("; ").append("struck", f"{fg} on {bg} strike").append(": outside the vocabulary, not scored")
    return legend


def _mark(b: float, oov: bool = False) -> str:
    return OUTSIDE_MARK if oov else " " if math.isnan(b) else next(m for limit, m in MARKS if b < limit)


def plain_surprisal(text: str, bits: np.ndarray, outside: np.ndarray | None = None) -> str:
    """Without colour: each line, then a row of marks under its surprising characters
    (the last mark is the newline's) and the line's mean bits/char; blank lines stay blank.
    A character `outside` the vocabulary is marked OUTSIDE_MARK: shown, not scored."""
    lines, start = [], 0
    outside = np.zeros(len(text), bool) if outside is None else outside
    key = ", ".join(f"'{m}' < {limit:g}" for limit, m in MARKS[:-1]) + f", '{MARKS[-1][1]}' more (bits)"
    if outside.any():
        key += f", '{OUTSIDE_MARK}' outside the vocabulary (not scored)"
    for line in text.split("\n"):
        end = min(start + len(line) + 1, len(text))           # the line and its newline, if any
        b, o = bits[start:end], outside[start:end]
        marks = "".join(ch if ch == "\t" else _mark(float(x), bool(oov)) * cell_len(ch)
                        for ch, x, oov in zip(line, b, o, strict=False))
        marks += _mark(float(b[-1]), bool(o[-1])) if end - start > len(line) else ""
        scored = b[~np.isnan(b)]
        mean = f"{scored.mean():.2f} bits/char" if scored.size else "not scored"
        lines += [line, f"{marks.rstrip():<{cell_len(line) + 1}}  [{mean}]"] if line else [line]
        start = end
    if text.endswith("\n"):
        lines = lines[:-1]  # the empty "line" after the last newline
    return "\n".join(lines) + f"\nmarks: {key}\n"
