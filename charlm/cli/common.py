"""What the commands share: the stderr console, the error line, finding a model."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.text import Text

from charlm.errors import CharlmError
from charlm.rundir import LATEST

err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def model_path(model: Path | None, given_as: str = "--model") -> Path:
    """The model named on the command line (as `given_as`: the option, or a positional
    argument's name), or the latest run when none is given."""
    if model is not None:
        return model
    if LATEST.exists():
        return LATEST
    raise CharlmError(f"no {given_as} given and no runs/latest here yet: train one with `charlm train CORPUS`, "
                      f"or give {given_as} as a checkpoint or run directory")
