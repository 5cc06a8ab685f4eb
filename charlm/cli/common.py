"""What the commands share: the consoles, the error line, finding a model.

A reader that leaves (`charlm … | head -1`) is not an error. What was meant for
stderr is then dropped and the command goes on; when stdout's reader leaves, the
command has nobody to write for and ends with exit status 0 (cli/__init__.py).
rich's own Console exits 1 there, and silences stdout even when stderr broke.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.text import Text

from charlm.data.vocab import listing
from charlm.errors import CharlmError, UsageError
from charlm.training.plans import RUNS

LATEST = RUNS / "latest"



def drop(stream) -> None:
    """Send what `stream` still buffers, and every later write to it, to /dev/null: its reader left."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
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


def model_path(model: Path | None, given_as: str = "--model") -> Path:
    """The model named on the command line (as `given_as`: the option, or a positional
    argument's name), or the latest run when none is given."""
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
