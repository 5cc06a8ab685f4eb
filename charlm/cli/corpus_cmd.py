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
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from charlm.cli.common import say
from charlm.data import sources as corpora
from charlm.errors import CharlmError, UsageError

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


def get(
    name: Annotated[str | None, typer.Argument(help="Corpus name (see `charlm corpus list`)", metavar="NAME",
                                                show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build it again when it is already here")] = False,
):
    """Build a corpus into ./corpora/NAME.txt (once: a corpus already there is kept)."""
    if name is None:
        raise UsageError(f"give a corpus name: charlm corpus get NAME, one of {', '.join(corpora.CORPORA)}")
    path = corpora.corpus_path(name, CORPORA_DIR)  # an unknown name fails here, before anything is said or made
    if path.is_file() and not rebuild:
        say(f"{path} is already here ({path.stat().st_size:,} bytes); --rebuild builds it again")
        return
    _check_writable(CORPORA_DIR)
    say(f"building corpus {name!r} …")
    path = corpora.get_corpus(name, CORPORA_DIR)
    text = path.read_text(encoding="utf-8")
    say(f"wrote {path}: {len(text):,} characters, {len(set(text)):,} distinct")


def _check_writable(folder: Path) -> None:
    """Refuse, before any download or build, a folder that cannot be made or written to."""
    try:
        here = os.getcwd()
    except OSError:
        here = "this directory (it was deleted)"
    if folder.exists() and not folder.is_dir():
        raise CharlmError(f"{folder} in {here} is a file, not a folder: move it away, or run `charlm corpus get` "
                          "elsewhere")
    try:
        folder.mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise CharlmError(f"cannot write {folder}/ in {here}: {e.strerror or e}; run `charlm corpus get` where "
                          "you can write") from None
