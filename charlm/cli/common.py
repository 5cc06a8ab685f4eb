"""What the commands share: the consoles, the error line, finding a model.

A reader that leaves (`charlm … | head -1`) is not an error. What was meant for
stderr is then dropped and the command goes on; when stdout's reader leaves, the
command has nobody to write for and ends with exit status 0 (cli/__init__.py).
rich's own Console exits 1 there, and silences stdout even when stderr broke.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from charlm.data.vocab import listing
from charlm.errors import CharlmError, UsageError
from charlm.rundir import LATEST, kept_path


def drop(stream) -> None:
    """Send what `stream` still buffers, and every later write to it, to /dev/null: its reader left."""
    _to_devnull(stream.fileno())


def _to_devnull(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def settle() -> bool:
    """Flush stdout and stderr; one whose reader left is dropped. True when a reader had left."""
    left = False
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: already closed
            left = True
            try:
                drop(stream)
            except (OSError, ValueError):
                pass
    return left


class _Console(Console):
    """rich's Console, where a closed pipe is handled as this module says."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        drop(self.file)
        if not self.stderr:
            raise BrokenPipeError  # stdout's reader left: the command ends, exit status 0


err = _Console(stderr=True, highlight=False, soft_wrap=True)


def out() -> Console:
    """A console for a command's output on stdout: plain when piped or under NO_COLOR."""
    return _Console(highlight=False, soft_wrap=True, emoji=False, markup=False)

StepOpt = Annotated[int | None, typer.Option(
    "--step", min=0, help="Read the checkpoint the run kept at step N (trained with --keep-every; `charlm info RUN` "
    "lists them)", show_default="best.pkl")]


def say(text: str) -> None:
    """A note on stderr, marked as charlm's (the `note` callbacks of the library end here)."""
    err.print(f"charlm: {text}")


def error_line(message: str) -> None:
    """A failure as one red line on stderr (an interactive session goes on after it)."""
    err.print(Text.assemble(("error: ", "bold red"), " ".join(str(message).split())))


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: the only way a command reports failure."""
    error_line(message)
    raise SystemExit(code)


def size(n_bytes: int) -> str:
    """A file's size as a message gives it: '812 bytes', '39 kB', '1.1 MB'."""
    if n_bytes < 1000:
        return f"{n_bytes:,} bytes"
    return f"{n_bytes / 1e3:.0f} kB" if n_bytes < 1e6 else f"{n_bytes / 1e6:,.1f} MB"


def note_excluded(excluded: dict[str, int]) -> None:
    """Say which characters outside the model's vocabulary were left out of the text."""
    if excluded:
        say(f"excluded {sum(excluded.values()):,} character(s) outside the vocabulary: {listing(excluded)}")


def either(positional: Path | None, option: Path | None) -> Path | None:
    """The model a command was given as its MODEL argument or as -m/--model (not both)."""
    if positional is not None and option is not None:
        raise UsageError(f"give the model once, as MODEL ({positional}) or as --model ({option})")
    return positional if positional is not None else option


def model_path(model: Path | None, given_as: str = "--model", step: int | None = None) -> Path:
    """The model named on the command line (as `given_as`: the option, or a positional
    argument's name), or the latest run when none is given; with `step` (--step N), the
    checkpoint that run kept at step N (charlm/rundir.py)."""
    if step is not None:
        return kept_path(model_path(model, given_as), step)
    if model is not None:
        return model
    if LATEST.exists():
        return LATEST
    if LATEST.is_symlink():
        target = LATEST.parent / os.readlink(LATEST)
        raise CharlmError(f"runs/latest points at {target}, which is gone: train a run with `charlm train CORPUS`, "
                          f"or give {given_as} as a checkpoint or run directory")
    raise CharlmError(f"no {given_as} given and no runs/latest here yet: train one with `charlm train CORPUS`, "
                      f"or give {given_as} as a checkpoint or run directory")


class _Survivor(io.TextIOBase):
    """A text stream that drops what its reader is no longer there to read: after the first
    write to a closed pipe, its file descriptor points at /dev/null and nothing more is said."""

    def __init__(self, stream, fd: int):
        self.stream, self.fd, self.gone = stream, fd, False

    def _try(self, action):
        if not self.gone:
            try:
                return action()
            except OSError as e:
                if not isinstance(e, BrokenPipeError) and e.errno != errno.EPIPE:
                    raise
                self.gone = True
                _to_devnull(self.fd)  # what is still buffered goes there too
        return None

    def write(self, text: str) -> int:
        self._try(lambda: self.stream.write(text))
        return len(text)

    def flush(self) -> None:
        self._try(self.stream.flush)

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding


@contextlib.contextmanager
def surviving_closed_output() -> Iterator[None]:
    """`charlm train … 2>&1 | head`: a reader that leaves must not end a training run. From the
    first write to a closed stdout or stderr on, what would go there is dropped, and the run
    goes on and saves as it would have."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Survivor(sys.stdout, 1), _Survivor(sys.stderr, 2)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
