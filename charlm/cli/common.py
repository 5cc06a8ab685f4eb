"""What the commands share: the stderr console, the error line, finding a model."""

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

from charlm.errors import CharlmError
from charlm.rundir import LATEST, kept_path

err = Console(stderr=True, highlight=False, soft_wrap=True)

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


def note_excluded(excluded: dict[str, int]) -> None:
    """Say which characters outside the model's vocabulary were left out of the text."""
    if excluded:
        err.print(f"charlm: excluded {sum(excluded.values())} character(s) outside the vocabulary: "
                  f"{', '.join(repr(c) for c in sorted(excluded)[:10])}")


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
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.fd)  # what is still buffered goes there too
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
