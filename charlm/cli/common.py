"""What the commands share: the stderr console, the error line, finding a model."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.text import Text

from charlm.errors import CharlmError

RUNS = Path("runs")
LATEST = RUNS / "latest"

err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: the only way a command reports failure."""
    err.print(Text.assemble(("error: ", "bold red"), " ".join(str(message).split())))
    raise SystemExit(code)


def note_excluded(excluded: dict[str, int]) -> None:
    """Say which characters outside the model's vocabulary were left out of the text."""
    if excluded:
        err.print(f"charlm: excluded {sum(excluded.values())} character(s) outside the vocabulary: "
                  f"{', '.join(repr(c) for c in sorted(excluded)[:10])}")


def model_path(model: Path | None) -> Path:
    """--model, or the latest run when none is given."""
    if model is not None:
        return model
    if LATEST.exists():
        return LATEST
    raise CharlmError("no --model given and no runs/latest here yet: train one with `charlm train CORPUS`, "
                      "or name a checkpoint or run directory")
