"""Commands that use a trained model: sample, eval perplexity, info, export."""

from __future__ import annotations

import json
import math
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from tqdm import tqdm

from charlm import __version__, checkpoint, parallel, threads
from charlm import export as export_mod
from charlm.cli.common import err, model_path, note_excluded, say
from charlm.data import batches
from charlm.data import corpus as corpus_mod
from charlm.errors import CharlmError
from charlm.evaluate import Score
from charlm.sample import BLOCK, check_options, generate, uses_rng

ModelOpt = Annotated[Path | None, typer.Option(
    "--model", "-m", help="Checkpoint or run directory", show_default="runs/latest")]

WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help=f"Processes sharing the work (env {threads.ENV_WORKERS})",
    show_default=f"one per usable core and {threads.MIN_SCORE_CHARS:,} chars")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help=f"BLAS threads per process (env {threads.ENV_THREADS})", show_default="1")]


def sample(
    model: ModelOpt = None,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="Softmax temperature; 0 = greedy")] = 0.8,
    length: Annotated[int, typer.Option("--length", "-n", help="Characters to generate per sample")] = 500,
    prime: Annotated[str, typer.Option("--prime", "-p", help="Text to start from (printed first)")] = "",
    top_k: Annotated[int, typer.Option("--top-k", help="Sample only from the K likeliest (0 = all)")] = 0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus: smallest set with this much mass")] = 1.0,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed",
                                                show_default="random, printed")] = None,
    num_samples: Annotated[int, typer.Option("--num-samples", help=f"Independent samples, generated {BLOCK} at a "
                                             "time and printed as each group finishes")] = 1,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="Drop prime characters the model "
                                               "never saw (they are listed) instead of failing")] = False,
    threads_n: ThreadsOpt = None,
):
    """Generate text; it streams to stdout, everything else goes to stderr."""
    check_options(temperature, top_k, top_p, length, num_samples)
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(model))
    unknown = sorted({ch for ch in prime if ch not in vocab.index()})
    if unknown and skip_unknown:
        err.print(f"charlm: skipping prime characters the model never saw: {', '.join(map(repr, unknown))}")
        prime = "".join(ch for ch in prime if ch not in unknown)
    elif unknown:
        shown = ", ".join(map(repr, unknown[:10])) + (" …" if len(unknown) > 10 else "")
        raise CharlmError(f"--prime has {len(unknown)} character(s) the model never saw: {shown} "
                          "(use --skip-unknown to drop them)")
    random = uses_rng(vocab, prime, temperature)
    if not random and num_samples > 1:
        say(f"--temperature 0 is greedy: all {num_samples} samples would be the same text, so it is printed once")
        num_samples = 1
    if seed is None and random:
        seed = int(np.random.SeedSequence().entropy % (2**32))
        say(f"--seed {seed}")
    rng = np.random.default_rng(seed)
    options = {"length": length, "prime": prime, "temperature": temperature, "top_k": top_k, "top_p": top_p,
               "rng": rng}
    with threads.limited(threads.blas_threads(threads_n)):
        _stream(params, cfg, vocab, options, num_samples)


def _stream(params, cfg, vocab, options: dict, num_samples: int) -> None:
    """Write the samples to stdout: one streams character by character, more go BLOCK at a time."""
    out = sys.stdout
    if num_samples == 1:
        for piece in generate(params, cfg, vocab, num_samples=1, **options):
            out.write(piece[0])
            out.flush()
        out.write("\n")
    for first in range(0, num_samples if num_samples > 1 else 0, BLOCK):  # streams go together, BLOCK at a time
        texts: list[list[str]] = [[] for _ in range(min(BLOCK, num_samples - first))]
        try:
            for piece in generate(params, cfg, vocab, num_samples=len(texts), **options):
                for text, ch in zip(texts, piece, strict=True):
                    text.append(ch)
        except KeyboardInterrupt:  # keep what was generated so far, then stop
            if texts[0]:
                _write_samples(out, first, texts, " (interrupted)")
            raise
        _write_samples(out, first, texts)
    out.flush()


def _write_samples(out, first: int, texts: list[list[str]], mark: str = "") -> None:
    """Write a block of samples whole: a Ctrl-C that comes meanwhile waits until it is written."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        out.write("".join(f"=== sample {first + i + 1}{mark} ===\n{''.join(text)}\n" for i, text in enumerate(texts)))
        out.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def perplexity(
    files: Annotated[list[Path] | None, typer.Argument(help="Text files to score",
                                                          show_default="the run's validation split")] = None,
    model: ModelOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on characters outside the vocabulary")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Lanes scored in parallel")] = 64,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Window length")] = 256,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding of FILE",
                                                    show_default="the training corpus's")] = None,
    workers: WorkersOpt = None,
    threads_n: ThreadsOpt = None,
):
    """Perplexity, bits/char and nats/char of a model on text, with the state carried through it."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(model))
    oov: dict[str, int] = {}
    encoding = encoding or (ckpt.get("corpus") or {}).get("encoding") or "utf-8"
    if files:
        parts = []
        for f in files:
            ids, bad = corpus_mod.encode_text(f, vocab, encoding)
            for ch, n in bad.items():
                oov[ch] = oov.get(ch, 0) + n
            parts.append((str(f), ids[ids >= 0]))
        if oov and strict:
            shown = ", ".join(map(repr, sorted(oov)[:10]))
            raise CharlmError(f"{sum(oov.values())} character(s) outside the model's vocabulary ({shown}); "
                              "drop --strict to score without them")
    else:
        parts = [(f"validation split of {ckpt['corpus']['path']}", corpus_mod.held_out(ckpt, say))]
    total_chars = sum(max(len(ids) - 1, 0) for _, ids in parts)
    scores = []
    with tqdm(total=total_chars, file=sys.stderr, disable=None, unit="char", unit_scale=True,
              desc="eval", leave=False) as bar:
        for name, ids in parts:
            if len(ids) < 2:
                raise CharlmError(f"{name}: needs at least 2 characters in the vocabulary to score")
            scores.append((name, parallel.score(params, cfg, ids, batch=batch_size, seq_len=seq_len,
                                                workers=workers, threads_n=threads_n, progress=bar.update)))
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
    model: Annotated[Path | None, typer.Argument(help="Checkpoint or run directory", metavar="MODEL",
                                                    show_default="runs/latest")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
):
    """What a checkpoint holds: architecture, size, vocabulary, progress, corpus."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model_path(model, "MODEL"))
    progress = ckpt.get("progress", {})
    best = ckpt.get("best_val_loss")
    shown, later = Path(ckpt["path"]), _last_step(Path(ckpt["path"]))
    data = {
        "checkpoint": str(Path(ckpt["path"]).resolve()), "charlm_version": __version__,
        "saved_by": ckpt.get("charlm_version"), "format_version": ckpt["version"],
        "model": ckpt["model_config"], "parameters": int(sum(p.size for p in params.values())),
        "vocab_size": len(vocab), "vocab_preview": vocab.preview(),
        "steps": progress.get("step"), "epochs": _epochs(ckpt), "run_steps": later or progress.get("step"),
        "chars_trained": progress.get("chars"), "train_seconds": progress.get("elapsed"),
        "best_val_loss": best, "best_val_bits_per_char": best / math.log(2) if best is not None else None,
        "corpus": (ckpt.get("corpus") or {}).get("path"),
        "corpus_fingerprint": (ckpt.get("corpus") or {}).get("fingerprint"),
        "train_config": ckpt.get("train_config"), "optim_config": ckpt.get("optim_config"),
        "init_from": ckpt.get("init_from"),
    }
    if json_out:
        print(json.dumps(data, ensure_ascii=False))
        return
    m = ckpt["model_config"]
    inp = f"embedding {m['embedding_dim']}" if m["embedding_dim"] else "one-hot"
    fp = data["corpus_fingerprint"] or {}
    lines = [
        ("checkpoint", f"{data['checkpoint']} (format {data['format_version']}, saved by charlm "
                       f"{data['saved_by']}; this is charlm {__version__})"),
        ("model", f"{m['cell']} {m['layers']}×{m['hidden']}, {inp} input, dropout {m['dropout']:g}"
                  f"{', tied decoder' if m['tie_weights'] else ''}"),
        ("parameters", f"{data['parameters']:,}"),
        ("vocabulary", f"{len(vocab)} chars: {data['vocab_preview']}"),
        ("progress", f"{data['steps']} steps, {_num(data['epochs'])} epochs, {data['chars_trained'] or 0:,} chars, "
                     f"{data['train_seconds'] or 0:.0f}s, as saved in {shown.name}"
                     + (f" (its best validation; the run went on to step {later}, in last.pkl)"
                        if later and later != data["steps"] else "")),
        ("best val", "—" if best is None else f"{best:.4f} nats/char, {best / math.log(2):.4f} bits/char, "
                                              f"perplexity {math.exp(best):.3f}"),
        ("corpus", f"{data['corpus']} ({fp.get('size', '?'):,} bytes, sha256 {str(fp.get('sha256'))[:16]}…)"
         if fp else str(data["corpus"])),
    ]
    if origin := data["init_from"]:
        added = origin.get("added_chars") or ""
        lines.append(("fine-tuned", f"from {origin.get('path')} (step {origin.get('step')}, sha256 "
                                    f"{str(origin.get('sha256'))[:16]}…, trained on {origin.get('corpus')})"
                                    + (f"; added {len(added)} new character(s)" if added else "")))
    for key, value in lines:
        print(f"{key:>11}  {value}")


def _num(x) -> str:
    return "?" if x is None else f"{x:.3g}"


def _last_step(path: Path) -> int | None:
    """The step of last.pkl beside a checkpoint (the run's latest state), if there is one."""
    last = path.with_name("last.pkl")
    try:
        return checkpoint.load(last).get("progress", {}).get("step") if last.is_file() else None
    except CharlmError:
        return None


def _epochs(ckpt: dict) -> float | None:
    """Passes over the training text so far, fractional (0.59, not 0): whole epochs plus the windows
    read of the current one, sized from the run's id cache; None when that cache is gone."""
    progress, tc = ckpt.get("progress") or {}, ckpt.get("train_config") or {}
    n, state = corpus_mod.cached_length(Path(ckpt["path"]).parent), (ckpt.get("carried_state") or {}).get("h")
    if n is None or not hasattr(state, "shape") or "epoch" not in progress:
        return None
    n_train = corpus_mod.train_length(n, tc.get("val_fraction", 0.1))
    windows = batches.windows_per_epoch(n_train, state.shape[1], tc.get("seq_len", 100))  # B from the state
    return progress["epoch"] + progress.get("window", 0) / windows if windows else None


class Format(str, Enum):
    torch = "torch"


def export(
    model: Annotated[Path, typer.Argument(help="Checkpoint or run directory")],
    out: Annotated[Path, typer.Argument(help="Output .npz file")],
    format: Annotated[Format, typer.Option("--format", help="Target naming scheme")] = Format.torch,
):
    """Write the parameters under PyTorch state_dict names (embedding / rnn / decoder) to an .npz."""
    ckpt, cfg, params, vocab = checkpoint.load_model(model)
    arrays = export_mod.torch_state_dict(cfg, params, vocab)
    export_mod.save_npz(out, arrays)
    err.print(f"charlm: wrote {out} ({cfg.cell} {cfg.layers}×{cfg.hidden}, {len(vocab)} chars): PyTorch state_dict "
              f"arrays for nn.Embedding / nn.{cfg.cell.upper()} / nn.Linear, to pass through torch.from_numpy "
              "to load_state_dict")
