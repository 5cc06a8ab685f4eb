"""Which files a corpus is made of: one text file, several, or the files under a folder.

`charlm train a.txt b.txt` or `charlm train src/ --glob '*.py'`: a folder gives every
file below it (recursively) whose name matches the glob (all files without one),
skipping hidden files and folders (.git, .venv, …), charlm's own run directories
(a folder holding any of RUN_MARKERS: `charlm train .` writes runs/ inside the
corpus) and files that are not text (`is_text`); the Source says what it skipped.
Files named directly are always read, and a path named twice counts once. The
files are read in sorted path order as one text, joined by SEPARATOR_RULE. A
single file named directly is exactly the one-file corpus it always was: same
fingerprint, same checkpoint record.

The fingerprint of several files is the SHA-256 of their SHA-256s in reading order,
so it changes when any file's content does or when files come, go or are renamed.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from charlm.errors import CharlmError, UsageError

CHUNK_BYTES = 1 << 22  # 4 MiB per read
SNIFF_BYTES = 8192     # what `is_text` reads of a file: enough to tell text from an image or a pickle
RUN_MARKERS = ("best.pkl", "last.pkl", "corpus.ids", "metrics.jsonl")  # what a charlm run directory holds
SEPARATOR_RULE = ("one blank line between files (a newline is first added to a file that does not end with "
                  "one)")


@dataclass(frozen=True)
class Source:
    files: tuple[str, ...]          # resolved paths, in reading order (sorted)
    inputs: tuple[str, ...]         # the files and folders given, resolved
    glob: str | None = None         # the pattern folders were searched with
    skipped_runs: tuple[str, ...] = field(default=(), compare=False)   # run directories left out of folders
    not_text: tuple[str, ...] = field(default=(), compare=False)       # files in folders that are not text

    @property
    def single(self) -> bool:
        """One file named directly: the classic corpus."""
        return len(self.inputs) == 1 and self.inputs == self.files

    @property
    def label(self) -> str:
        """What to call it in messages and in the checkpoint's corpus path."""
        if self.single:
            return self.files[0]
        pattern = f" ({self.glob})" if self.glob else ""
        return f"{', '.join(self.inputs)}{pattern}: {count(len(self.files), 'file', 'files')}"

    @property
    def skipped(self) -> str | None:
        """What the folders held that is not read, as one line (None when nothing was left out)."""
        parts = [f"{count(len(names), *what)} ({some(names)})" for names, what in
                 ((self.skipped_runs, ("charlm run directory", "charlm run directories")),
                  (self.not_text, ("file that is not text", "files that are not text"))) if names]
        return f"skipped {' and '.join(parts)}" if parts else None

    @property
    def name(self) -> str:
        """The run directory's default name: the first file's or folder's."""
        return Path(self.inputs[0]).stem or "run"

    def record(self) -> dict:
        """What a checkpoint adds to its corpus entry so a resume can find the same files."""
        if self.single:
            return {}
        return {"files": list(self.files), "inputs": list(self.inputs), "glob": self.glob}


def check_readable(path: Path, what: str = "corpus") -> None:
    """`what` names the file's role in the messages: the corpus, or a text file being scored."""
    if not path.exists():
        raise CharlmError(f"{what} not found: {path}")
    if path.is_dir():
        raise CharlmError(f"{what} is a directory, not a text file: {path}")
    if not os.access(path, os.R_OK):
        raise CharlmError(f"{what} is not readable (permission denied): {path}")


def expand(paths: list[str | Path], glob: str | None = None, encoding: str | None = None) -> Source:
    """The files that `paths` (files and folders) name, as a Source; one-line errors for
    a path that is missing, a folder with nothing to read, an unreadable file. `encoding`
    is the corpus's, for telling text from not text in folders (see `is_text`)."""
    inputs = list(dict.fromkeys(Path(p).resolve() for p in paths))  # each path once, in the order given
    if glob is not None and not any(p.is_dir() for p in inputs):
        raise UsageError("--glob picks files inside a folder, and no folder was given")
    found: set[Path] = set()
    runs: set[str] = set()      # what is left out, as the folder's name / the path inside it
    not_text: set[str] = set()
    for p in inputs:
        if not p.exists():
            raise CharlmError(f"corpus not found: {p}")
        if not p.is_dir():
            found.add(p)
            continue
        if not os.access(p, os.R_OK | os.X_OK):
            raise CharlmError(f"corpus folder is not readable (permission denied): {p}")
        below = [f for f in p.rglob(glob or "*") if f.is_file() and not _hidden(f.relative_to(p))]
        text = []
        for f in below:
            run = _run_dir(p, f)
            if run is not None:
                runs.add(_shown(p, run))
            elif not is_text(f, encoding):
                not_text.add(_shown(p, f))
            else:
                text.append(f)
        if not text:
            what = f"no text files matching {glob!r}" if glob else "no text files"
            left_out = Source((), (), skipped_runs=_names(runs), not_text=_names(not_text)).skipped
            raise CharlmError(f"the folder {p} holds {what} (hidden files and folders are skipped"
                              + (f"; {left_out}" if left_out else "") + ")")
        found.update(text)
    files = sorted(found, key=str)
    for f in files:
        check_readable(f)
    return Source(tuple(map(str, files)), tuple(map(str, inputs)), glob, _names(runs), _names(not_text))


def is_text(path: Path, encoding: str | None = None) -> bool:
    """Whether a file's first SNIFF_BYTES read as text: they decode in `encoding` and hold no
    NUL character. Without an encoding, a NUL byte alone marks a file as not text (images,
    pickles and archives hold one early; text in an 8-bit encoding never does)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return True  # check_readable says why it cannot be read
    if encoding is None:
        return b"\0" not in head
    try:
        return "\0" not in decoder(encoding).decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeError:  # undecodable, or (UTF-16) no byte-order mark
        return False


def decoder(encoding: str) -> codecs.IncrementalDecoder:
    """A strict incremental decoder; an unknown encoding is bad usage (the caller's --encoding)."""
    try:
        return codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r}: give a codec name Python knows, such as utf-8, "
                         "latin-1 or cp1252") from None


def _run_dir(top: Path, f: Path) -> Path | None:
    """The charlm run directory below `top` that holds `f`, if any (the folder named is never one)."""
    for folder in f.parents:
        if folder == top:
            return None
        if any((folder / marker).is_file() for marker in RUN_MARKERS):
            return folder
    return None


def _shown(top: Path, path: Path) -> str:
    return str(Path(top.name) / path.relative_to(top))


def _names(paths: set[str]) -> tuple[str, ...]:
    return tuple(sorted(paths))


def count(n: int, one: str, many: str) -> str:
    """'1 file', '2,048 files'."""
    return f"{n:,} {one if n == 1 else many}"


def some(names: list[str] | tuple[str, ...], shown: int = 3) -> str:
    """The first `shown` names, then "and N more"."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more:,} more" if more > 0 else "")


@dataclass(frozen=True)
class CorpusRecord:
    """Which text a run trained on, as its checkpoint records it: where it was, how it was
    decoded, its fingerprint; for a corpus of several files, which files from which inputs."""
    path: str
    encoding: str
    fingerprint: dict               # {"sha256", "size", …} (see `fingerprint`)
    files: tuple | None = None      # the files read, in order (several files only)
    inputs: tuple | None = None     # the paths given (files and folders)
    glob: str | None = None         # the pattern folders were searched with

    def to_dict(self) -> dict:
        """As stored: the several-file fields only when there are several."""
        d = {"path": self.path, "encoding": self.encoding, "fingerprint": self.fingerprint}
        if self.files is not None:
            d |= {"files": list(self.files), "inputs": list(self.inputs or ()), "glob": self.glob}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CorpusRecord:
        several = (tuple(d["files"]), tuple(d["inputs"]), d.get("glob")) if "files" in d else ()
        return cls(str(d["path"]), d.get("encoding") or "utf-8", dict(d.get("fingerprint") or {}), *several)

    @property
    def source(self) -> Source:
        """The files, as recorded."""
        if self.files is None:
            return Source((self.path,), (self.path,))
        return Source(self.files, self.inputs or (), self.glob)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def changes(old: Source, new: Source) -> str | None:
    """How the file set differs (files added or removed), or None when it is the same."""
    added, gone = sorted(set(new.files) - set(old.files)), sorted(set(old.files) - set(new.files))
    if not (added or gone):
        return None
    return "; ".join(x for x in (f"{len(added):,} file(s) added ({some(added)})" if added else "",
                                 f"{len(gone):,} file(s) gone ({some(gone)})" if gone else "") if x)


def quick(source: Source) -> list[list[int]]:
    """[size, mtime_ns] per file: what tells, without reading them, that the files are untouched."""
    stats = [Path(f).stat() for f in source.files]
    return [[st.st_size, st.st_mtime_ns] for st in stats]


def fingerprint(source: Source) -> dict:
    """{"size", "mtime_ns", "sha256"} of a single file; for several, the total size, the
    number of files and the SHA-256 of their SHA-256s."""
    digests, size = [], 0
    for f in source.files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                h.update(block)
        digests.append(h.hexdigest())
        size += Path(f).stat().st_size
    if source.single:
        return {"size": size, "mtime_ns": Path(source.files[0]).stat().st_mtime_ns, "sha256": digests[0]}
    return {"size": size, "files": len(digests), "sha256": hashlib.sha256("\n".join(digests).encode()).hexdigest()}
