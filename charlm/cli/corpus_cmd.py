"""`charlm corpus list|get`: the corpora charlm can build, and the default corpus for `train`.

Where corpora live: `charlm corpus get NAME` writes ./corpora/NAME.txt, where it was
asked to. A bare `charlm train` looks for a corpus in ./corpora, then in the user's
cache (~/.cache/charlm/corpora, or $XDG_CACHE_HOME/charlm/corpora); when it has to
build the offline python corpus itself it builds it into ./corpora only if that
folder already exists (a checkout of charlm has one), else into the cache, so a
bare command leaves no 9 MB file in whatever directory it was run from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import err
from charlm.data import sources as corpora

CORPORA_DIR = Path("corpora")


def user_corpora_dir() -> Path:
    """The per-user place for corpora nobody asked to have in the current directory."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "charlm" / "corpora"


def find(name: str) -> Path | None:
    """Corpus `name` in ./corpora, else in the user's cache; None when it is in neither."""
    for where in (CORPORA_DIR, user_corpora_dir()):
        path = corpora.corpus_path(name, where)
        if path.exists():
            return path
    return None


def default_corpus(note: Callable[[str], None]) -> Path:
    """The shakespeare corpus if built, else the offline python corpus (built if needed)."""
    shakespeare = find("shakespeare")
    if shakespeare is not None:
        note(f"charlm: no corpus given; using {shakespeare}")
        return shakespeare
    python = find("python")
    if python is None:
        where = CORPORA_DIR if CORPORA_DIR.is_dir() else user_corpora_dir()
        python = corpora.corpus_path("python", where)
        note(f"charlm: no corpus given and no shakespeare corpus (get it with `charlm corpus get shakespeare`); "
             f"building the offline python corpus (about 9 MB, once) at {python}")
        corpora.get_corpus("python", where)
    else:
        note(f"charlm: no corpus given and no shakespeare corpus; using the offline python corpus {python}")
    return python


def list_corpora():
    """List the corpora charlm can build, and whether each is already here."""
    for name, description in corpora.CORPORA.items():
        path = find(name)
        status = f"{path} ({path.stat().st_size:,} bytes)" if path else "not built yet"
        print(f"{name:12s} {description}\n{'':12s} {status}")


def get(name: Annotated[str, typer.Argument(help="Corpus name (see `charlm corpus list`)")]):
    """Build a corpus into ./corpora/NAME.txt."""
    corpora.corpus_path(name, CORPORA_DIR)  # an unknown name fails here, before anything is said or made
    err.print(f"charlm: building corpus {name!r} …")
    path = corpora.get_corpus(name, CORPORA_DIR)
    text = path.read_text(encoding="utf-8")
    err.print(f"charlm: wrote {path}: {len(text):,} characters, {len(set(text))} distinct")
