"""`charlm sample`: options → the API's Model (charlm/api.py) → text on stdout, notes on stderr.

Three ways to write: sampling (streamed character by character, or BLOCK samples
at a time), beam search (--beam), and an interactive session (--interactive) whose
terminal side lives here: prompt, Ctrl-C and Ctrl-D; the session itself is
charlm/use/session.py.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from charlm import threads
from charlm.api import Model
from charlm.cli.common import StepOpt, err, error_line, model_path, say
from charlm.cli.use_cmds import ModelOpt, ThreadsOpt
from charlm.data.vocab import listing
from charlm.errors import CharlmError, UsageError
from charlm.nn.sample import (
    BLOCK,
    Settings,
    UnseenChars,
    check_options,
    check_stop,
    unescape,
    unknown_chars,
    unseen,
    uses_rng,
)

SKIP = "--skip-unknown drops them"

S = Settings()
ESCAPES = "\\n is a newline, \\t a tab, \\\\ a backslash"


def sample(
    model: ModelOpt = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-t", metavar="T",
                                                         help="Softmax temperature; 0 = greedy",
                                                         show_default=str(S.temperature))] = None,
    length: Annotated[int, typer.Option("--length", "-n", help="Characters to generate per sample (at most, "
                                        "with --stop or --lines)")] = S.length,
    prime: Annotated[str, typer.Option("--prime", "-p", help=f"Text to start from (printed first); {ESCAPES}")] = "",
    prime_file: Annotated[str | None, typer.Option("--prime-file", help="Start from this file's text, exactly "
                                                     "(a final newline included); - reads stdin",
                                                     metavar="FILE", show_default=False)] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", metavar="K", help="Sample only from the K likeliest (0 = all)",
                                                 show_default=str(S.top_k))] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", metavar="P",
                                                   help="Nucleus: smallest set with this much mass",
                                                   show_default=f"{S.top_p:g}")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed: sample i of a seed is the same "
                                                "text whatever --num-samples is",
                                                show_default="random, printed")] = None,
    num_samples: Annotated[int, typer.Option("--num-samples", help=f"Independent samples, generated {BLOCK} at a "
                                             "time and printed as each group finishes")] = 1,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="End a sample after this text in what it "
                                                      "generates (included in the output; repeatable; "
                                                      f"{ESCAPES})",
                                                      show_default=False)] = None,
    lines: Annotated[int, typer.Option("--lines", min=0, help="End a sample after its N-th generated newline "
                                       "(0 = no limit)")] = 0,
    beam: Annotated[int, typer.Option("--beam", min=0, metavar="K", help="Beam search with K beams: the most "
                                      "probable continuation of --length characters they find, with no randomness; "
                                      "blander than sampling, at least as probable as greedy -t 0 (0 = sample "
                                      "instead). Its log-probability goes to stderr, or into --json")] = 0,
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="A session: each line you type is read "
                                              "after everything so far and the model answers; :help lists commands "
                                              "(:temperature, :top-k, :top-p, :length, :stop, :reset). Piped stdin "
                                              "works: each line is answered")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object: the texts and seed, or the "
                                           "beam's text and log-probability")] = False,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="Drop prime characters the model "
                                               "never saw (they are listed) instead of failing")] = False,
    threads_n: ThreadsOpt = None,
    step: StepOpt = None,
):
    """Generate text; it streams to stdout, everything else goes to stderr."""
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    settings = Settings(**{k: v for k, v in sampling.items() if v is not None}, length=length)
    check_options(settings.temperature, settings.top_k, settings.top_p, length, num_samples)
    stop = [unescape(s) for s in stop or []]
    check_stop(stop, lines)
    _check_combinations(sampling, seed, prime, prime_file, num_samples, beam, interactive, json_out)
    m = Model(model_path(model, step=step))
    prime = _prime(m, unescape(prime), prime_file, skip_unknown)
    with threads.limited(threads.blas_threads(threads_n)):
        if beam:
            _beam(m, prime, beam, length, stop, lines, json_out)
        elif interactive:
            _interactive(m, settings, _seed(seed, True), stop, lines, skip_unknown)
        else:
            random = uses_rng(m.vocab, prime, settings.temperature)
            if not random and num_samples > 1:
                say(f"--temperature 0 is greedy: all {num_samples:,} samples would be the same text, so it is "
                    "printed once")
                num_samples = 1
            options = {"prime": prime, "length": length, "temperature": settings.temperature,
                       "top_k": settings.top_k, "top_p": settings.top_p, "stop": stop, "lines": lines}
            options["seed"] = _seed(seed, random)
            if json_out:
                texts = _collect(m, options, num_samples)
                print(json.dumps({"seed": options["seed"], "samples": texts}, ensure_ascii=False))
            else:
                _stream(m, options, num_samples)


def _check_combinations(sampling: dict, seed: int | None, prime: str, prime_file: str | None, num_samples: int,
                        beam: int, interactive: bool, json_out: bool) -> None:
    if prime and prime_file is not None:
        raise UsageError("give --prime or --prime-file, not both")
    if beam:
        given = [f"--{k.replace('_', '-')}" for k, v in {**sampling, "seed": seed}.items() if v is not None]
        if given:
            raise UsageError(f"--beam is deterministic: {given[0]} does not apply to it")
        if num_samples > 1 or interactive:
            raise UsageError("--beam finds one continuation: it takes neither --num-samples nor --interactive")
    if interactive and (num_samples > 1 or json_out):
        raise UsageError("--interactive writes one stream: it takes neither --num-samples nor --json")
    if interactive and prime_file == "-":
        raise UsageError("--interactive reads its lines from stdin, so --prime-file cannot be - there")


def _prime(m: Model, prime: str, prime_file: str | None, skip_unknown: bool) -> str:
    """The prime: --prime with its escapes read, or --prime-file's text exactly. Unseen characters
    are dropped with a note under --skip-unknown, else refused with a list of them: as bad usage
    (exit 2) when typed in --prime, as an error (exit 1) when they come from a file or stdin,
    like any text a command cannot use."""
    what = "--prime"
    if prime_file is not None:
        what = "stdin (--prime-file -)" if prime_file == "-" else f"--prime-file {prime_file}"
        encoding = m.checkpoint.encoding
        try:
            raw = sys.stdin.buffer.read() if prime_file == "-" else Path(prime_file).read_bytes()
            prime = raw.decode(encoding)
        except OSError as e:
            raise CharlmError(f"cannot read --prime-file {prime_file}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise CharlmError(f"{what} is not valid {encoding} text (undecodable byte 0x{e.object[e.start]:02x} "
                              f"at byte offset {e.start})") from None
    bad = unknown_chars(prime, m.vocab)
    if bad and not skip_unknown:
        raise (UsageError if prime_file is None else CharlmError)(unseen(what, bad, SKIP))
    if bad:
        say(f"skipping prime characters the model never saw: {listing(bad)}")
    return m.check_text(prime, skip_unknown=True)


def _seed(seed: int | None, random: bool) -> int | None:
    """The seed given, or a fresh one (printed) when the text depends on it."""
    if seed is None and random:
        seed = int(np.random.SeedSequence().entropy % (2**32))
        say(f"--seed {seed}")
    return seed


def _beam(m: Model, prime: str, width: int, length: int, stop: list[str], lines: int, json_out: bool) -> None:
    found = m.beam(prime, width=width, length=length, stop=stop, lines=lines)
    n = len(found.text)
    if json_out:
        print(json.dumps({"prime": found.prefix, "text": found.text, "beam": width, "chars": n,
                          "log_prob": found.log_prob, "bits_per_char": found.bits_per_char}, ensure_ascii=False))
        return
    sys.stdout.write(_line(found.prefix + found.text))
    sys.stdout.flush()
    say(f"beam {width}: log-probability {found.log_prob:.4f} nats for the {n:,} characters after the prime "
        f"({found.bits_per_char:.4f} bits/char)")


def _collect(m: Model, options: dict, num_samples: int) -> list[str]:
    texts: list[str] = []
    for first in range(0, num_samples, BLOCK):
        parts: list[list[str]] = [[] for _ in range(min(BLOCK, num_samples - first))]
        for piece in m.generate(num_samples=len(parts), first=first, **options):
            for part, ch in zip(parts, piece, strict=True):
                part.append(ch)
        texts += ["".join(p) for p in parts]
    return texts


def _stream(m: Model, options: dict, num_samples: int) -> None:
    """Write the samples to stdout: one streams character by character, more go BLOCK at a time."""
    out = sys.stdout
    if num_samples == 1:
        last = ""
        for piece in m.generate(num_samples=1, **options):
            out.write(piece[0])
            out.flush()
            last = piece[0][-1:] or last
        if last != "\n":
            out.write("\n")
    for first in range(0, num_samples if num_samples > 1 else 0, BLOCK):  # streams go together, BLOCK at a time
        texts: list[list[str]] = [[] for _ in range(min(BLOCK, num_samples - first))]
        try:
            for piece in m.generate(num_samples=len(texts), first=first, **options):
                for text, ch in zip(texts, piece, strict=True):
                    text.append(ch)
        except KeyboardInterrupt:  # keep what was generated so far, then stop
            if texts[0]:
                _write_samples(out, first, texts, " (interrupted)")
            raise
        _write_samples(out, first, texts)
    out.flush()


def _line(text: str) -> str:
    """`text` ending in one newline: added, unless the text already ends in one (--lines, --stop "\n")."""
    return text if text.endswith("\n") else text + "\n"


def _write_samples(out, first: int, texts: list[list[str]], mark: str = "") -> None:
    """Write a block of samples whole: a Ctrl-C that comes meanwhile waits until it is written."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        out.write("".join(f"=== sample {first + i + 1}{mark} ===\n{_line(''.join(text))}"
                          for i, text in enumerate(texts)))
        out.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _interactive(m: Model, settings: Settings, seed: int | None, stop: list[str], lines: int,
                 skip_unknown: bool) -> None:
    """The terminal side of a session: read a line, show the reply; errors are one line and it goes on.
    Ctrl-C stops an answer (the state stays exact); at the prompt, like Ctrl-D or the end of piped input,
    it ends the session, with exit status 0."""
    session = m.session(temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                        length=settings.length, seed=seed, stop=stop, lines=lines, skip_unknown=skip_unknown)
    tty = sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        say(f"{m.path}: type text and press Enter; :help lists the commands, Ctrl-D ends ({session.describe()})")
    interrupted: list[int] = []
    while True:
        try:
            line = input("> ") if tty else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if not tty:
            if not line:
                break
            line = line.removesuffix("\n").removesuffix("\r")
        try:
            reply = session.handle(line, should_stop=lambda: bool(interrupted))
        except UnseenChars as e:
            error_line(unseen(e.what, e.chars, f"nothing was read; {SKIP}"))
            continue
        except CharlmError as e:
            error_line(str(e))
            continue
        if reply.message:
            err.print(reply.message)
        if reply.text is not None:
            _answer(reply.text, interrupted)
    if tty:
        err.print()


def _answer(text, interrupted: list[int]) -> None:
    """Stream one answer; a Ctrl-C meanwhile ends it after the current character."""
    interrupted.clear()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    last = "\n"
    try:
        for ch in text:
            sys.stdout.write(ch)
            sys.stdout.flush()
            last = ch
    finally:
        signal.signal(signal.SIGINT, previous)
    if last != "\n":
        sys.stdout.write("\n")
    sys.stdout.flush()
    if interrupted:
        say("stopped (Ctrl-C); the next line goes on from here")
