"""Commands that use a trained model: eval perplexity, info, export (sample: sample_cmd.py)."""

from __future__ import annotations

import json
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from charlm import __version__, checkpoint, defaults, rundir, threads
from charlm.api import Model
from charlm.cli.common import StepOpt, either, err, model_path, note_excluded, say
from charlm.data import corpus as corpus_mod
from charlm.data.vocab import listing
from charlm.errors import CharlmError, UsageError
from charlm.training import memory
from charlm.use import evaluate
from charlm.use import export as export_mod
from charlm.use import info as info_mod
from charlm.use.evaluate import Score

ModelOpt = Annotated[Path | None, typer.Option(
    "--model", "-m", metavar="MODEL", help="Checkpoint or run directory", show_default="runs/latest")]
ModelArg = Annotated[Path | None, typer.Argument(
    help="Checkpoint or run directory (or give it as -m/--model)", metavar="MODEL", show_default="runs/latest")]

WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help=f"Processes sharing the work (env {threads.ENV_WORKERS})",
    show_default=f"one per usable core and {threads.MIN_SCORE_CHARS:,} chars")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help=f"BLAS threads per process (env {threads.ENV_THREADS})", show_default="1")]


def perplexity(
    files: Annotated[list[Path] | None, typer.Argument(help="Text files to score", metavar="FILE",
                                                          show_default="the run's validation split")] = None,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on characters outside the vocabulary")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Lanes scored in parallel")
                          ] = defaults.EVAL_BATCH,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Window length")] = defaults.EVAL_SEQ_LEN,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding of FILE",
                                                    show_default="the training corpus's")] = None,
    workers: WorkersOpt = None,
    threads_n: ThreadsOpt = None,
    step: StepOpt = None,
):
    """Perplexity, bits/char and nats/char of a model on text, with the state carried through it."""
    m = Model(model_path(model, step=step))
    ckpt, vocab = m.checkpoint, m.vocab
    oov: dict[str, int] = {}
    encoding = encoding or ckpt.encoding
    if files:
        parts = []
        for f in files:
            ids, bad = corpus_mod.encode_text(f, vocab, encoding)
            for ch, n in bad.items():
                oov[ch] = oov.get(ch, 0) + n
            parts.append((str(f), ids[ids >= 0]))
        if oov and strict:
            raise CharlmError(f"{sum(oov.values()):,} character(s) outside the model's vocabulary ({listing(oov)}); "
                              "drop --strict to score without them")
    else:
        val = evaluate.held_out(ckpt, say, "a text FILE")
        parts = [(f"validation split of {ckpt.corpus and ckpt.corpus.path}", val)]
    total_chars = sum(max(len(ids) - 1, 0) for _, ids in parts)
    scores = []
    with tqdm(total=total_chars, file=sys.stderr, disable=None, unit="char", unit_scale=True,
              desc="eval", leave=False) as bar:
        for name, ids in parts:
            if len(ids) < 2:
                raise CharlmError(f"{name}: needs at least 2 characters in the vocabulary to score")
            scores.append((name, m.score_ids(ids, batch=batch_size, seq_len=seq_len, workers=workers,
                                             threads=threads_n, progress=bar.update)))
    chars = sum(s.chars for _, s in scores)
    total = Score(sum(s.nats_per_char * s.chars for _, s in scores) / chars, chars)
    n_oov = sum(oov.values())
    if json_out:
        print(json.dumps({"nats_per_char": total.nats_per_char, "bits_per_char": total.bits_per_char,
                          "perplexity": total.perplexity, "chars": total.chars, "oov_chars": n_oov}))
        return
    note_excluded(oov)
    for name, s in scores + ([("total", total)] if len(scores) > 1 else []):
        print(f"{name}: {s.nats_per_char:.4f} nats/char, {s.bits_per_char:.4f} bits/char, "
              f"perplexity {s.perplexity:.3f} over {s.chars:,} chars")


def info(
    model: ModelArg = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    model_opt: ModelOpt = None,
    step: StepOpt = None,
):
    """What a checkpoint holds: architecture, size, vocabulary, progress, corpus, and the checkpoints its run kept."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(either(model, model_opt), "MODEL or --model", step))
    data = info_mod.summary(ckpt)
    best, later = ckpt.best_val_loss, data["run_steps"]
    if json_out:
        print(json.dumps(data, ensure_ascii=False))
        return
    inp = f"embedding {cfg.embedding_dim}" if cfg.embedding_dim else "one-hot"
    fp = data["corpus_fingerprint"] or {}
    saved_as = "kept along the way" if rundir.kept_step(ckpt.path) is not None else "its best validation"
    lines = [
        ("checkpoint", f"{data['checkpoint']} (format {data['format_version']}, saved by charlm "
                       f"{data['saved_by']}; this is charlm {__version__})"),
        ("model", f"{cfg.cell} {cfg.layers}×{cfg.hidden}, {inp} input, "
                  f"{'locked ' if cfg.locked_dropout else ''}dropout {cfg.dropout:g}"
                  f"{f', weight drop {cfg.weight_drop:g}' if cfg.weight_drop else ''}"
                  f"{f', embedding dropout {cfg.embed_dropout:g}' if cfg.embed_dropout else ''}"
                  f"{', tied decoder' if cfg.tie_weights else ''}"),
        ("parameters", f"{data['parameters']:,}"),
        ("vocabulary", f"{len(vocab):,} chars: {data['vocab_preview']}"),
        ("progress", f"{data['steps']:,} steps, {_num(data['epochs'])} epochs, {data['chars_trained'] or 0:,} chars, "
                     f"{data['train_seconds'] or 0:.0f}s, as saved in {ckpt.path.name}"
                     + (f" ({saved_as}; the run went on to step {later}, in last.pkl)"
                        if later and later != data["steps"] else "")),
        ("best val", "—" if best is None else f"{best:.4f} nats/char, {best / math.log(2):.4f} bits/char, "
                                              f"perplexity {math.exp(best):.3f}"),
        ("corpus", f"{data['corpus']} ({fp.get('size', '?'):,} bytes, sha256 {str(fp.get('sha256'))[:16]}…)"
         if fp else str(data["corpus"])),
    ]
    if ckpt.optim is not None:
        o = ckpt.optim
        averaged = "; best.pkl holds the average of the weights" if o.ema else ""
        lines.insert(3, ("optimizer", f"{o.describe()}, clip {o.clip:g}{averaged}"))
    if origin := data["init_from"]:
        added = origin.get("added_chars") or ""
        lines.append(("fine-tuned", f"from {origin.get('path')} (step {origin.get('step')}, sha256 "
                                    f"{str(origin.get('sha256'))[:16]}…, trained on {origin.get('corpus')})"
                                    + (f"; added {len(added):,} new character(s)" if added else "")))
    if data["kept"]:
        sizes = [k["bytes"] for k in data["kept"]]
        steps = rundir.steps_list([k["step"] for k in data["kept"]])
        lines.append(("kept", f"{len(sizes)} checkpoint(s) along the way, at steps {steps} ({memory.human(max(sizes))} "
                              f"each, {memory.human(sum(sizes))} in all); read one with --step N"))
    for key, value in lines:
        print(f"{key:>11}  {value}")


def _num(x) -> str:
    return "?" if x is None else f"{x:.3g}"


class Format(str, Enum):
    torch = "torch"


def export(
    model: Annotated[Path | None, typer.Argument(help="Checkpoint or run directory (or give it as -m/--model)",
                                                    metavar="MODEL", show_default=False)] = None,
    out: Annotated[Path | None, typer.Argument(help="The .npz file to write", metavar="OUT",
                                                  show_default=False)] = None,
    format: Annotated[Format, typer.Option("--format", help="Target naming scheme")] = Format.torch,
    model_opt: Annotated[Path | None, typer.Option("--model", "-m", metavar="MODEL", show_default=False,
                                                      help="Checkpoint or run directory; then OUT alone")] = None,
):
    """Write the parameters under PyTorch state_dict names (embedding / rnn / decoder) to an .npz."""
    if model_opt is not None and out is None:
        model, out = None, model  # `export -m MODEL OUT`: the one argument is OUT
    if out is None:
        raise UsageError("give the model and the .npz file to write: charlm export MODEL OUT, or "
                         "charlm export -m MODEL OUT")
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(either(model, model_opt), "MODEL or --model"))
    arrays = export_mod.torch_state_dict(cfg, params, vocab)
    export_mod.save_npz(out, arrays)
    err.print(f"charlm: wrote {out} ({cfg.cell} {cfg.layers}×{cfg.hidden}, {len(vocab):,} chars): PyTorch state_dict "
              f"arrays for nn.Embedding / nn.{cfg.cell.upper()} / nn.Linear, to pass through torch.from_numpy "
              "to load_state_dict")
