"""`charlm corpus list|get`: the corpora charlm can build, and the default corpus for `train`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from charlm import corpora
from charlm.cli.common import err

CORPORA_DIR = Path("corpora")


def default_corpus(note: Callable[[str], None]) -> Path:
    """corpora/shakespeare.txt if present, else the offline python corpus (built if needed)."""
    shakespeare = corpora.corpus_path("shakespeare", CORPORA_DIR)
    if shakespeare.exists():
        note(f"charlm: no corpus given; using {shakespeare}")
        return shakespeare
    python = corpora.corpus_path("python", CORPORA_DIR)
    if not python.exists():
        note(f"charlm: no corpus given and no {shakespeare} (get it with `charlm corpus get shakespeare`); "
             f"building the offline python corpus at {python}")
        corpora.get_corpus("python", CORPORA_DIR)
    else:
        note(f"charlm: no corpus given and no {shakespeare}; using the offline python corpus {python}")
    return python


def list_corpora():
    """List the corpora charlm can build, and whether each is already here."""
    for name, description in corpora.CORPORA.items():
        path = corpora.corpus_path(name, CORPORA_DIR)
        status = f"{path} ({path.stat().st_size:,} bytes)" if path.exists() else "not built yet"
        print(f"{name:12s} {description}\n{'':12s} {status}")


def get(name: Annotated[str, typer.Argument(help="Corpus name (see `charlm corpus list`)")]):
    """Build a corpus into corpora/NAME.txt."""
    err.print(f"charlm: building corpus {name!r} …")
    path = corpora.get_corpus(name, CORPORA_DIR)
    text = path.read_text(encoding="utf-8")
    err.print(f"charlm: wrote {path}: {len(text):,} characters, {len(set(text))} distinct")
