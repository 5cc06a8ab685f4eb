"""A corpus of several files or a folder (--glob) through the real executable: order, separator, resume."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from charlm.data import files
from charlm.errors import CharlmError
from tests.helpers import assert_one_line_error, charlm

TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3",
        "--sample-every", "0", "--quiet"]


def _cached_text(run: Path) -> str:
    """The corpus as the run's id cache holds it, decoded."""
    meta = json.loads((run / "corpus.json").read_text())
    chars = meta["vocab"]["chars"]
    ids = np.fromfile(run / "corpus.ids", dtype=np.uint8)
    return "".join(chars[i] for i in ids)


@pytest.fixture
def src(tmp_path) -> Path:
    """A small source tree: two .py files (one nested, one without a final newline), a .txt, a hidden folder."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / ".git").mkdir()
    (tmp_path / "src" / "b.py").write_text("def b():\n    return 2\n" * 20)
    (tmp_path / "src" / "pkg" / "a.py").write_text("x = 1  # no final newline\ny = x + 1" * 10)
    (tmp_path / "src" / "notes.txt").write_text("not python\n" * 30)
    (tmp_path / "src" / ".git" / "hidden.py").write_bytes(b"\x00\x01binary")
    return tmp_path


def test_a_folder_with_a_glob_reads_matching_files_in_sorted_order(src):
    proc = charlm(["train", "src", "--glob", "*.py", "--max-steps", "3", *TINY], cwd=src)
    assert proc.returncode == 0, proc.stderr
    run = src / "runs" / "src"
    b, a = (src / "src" / "b.py").read_text(), (src / "src" / "pkg" / "a.py").read_text()
    assert _cached_text(run) == b + "\n" + a  # b.py < pkg/a.py; b.py ends in a newline, so one blank line
    rec = pickle.loads((run / "last.pkl").read_bytes())["corpus"]
    assert rec["files"] == [str(src / "src" / "b.py"), str(src / "src" / "pkg" / "a.py")]
    assert rec["glob"] == "*.py" and rec["path"] == f"{src / 'src'} (*.py): 2 files"
    assert rec["fingerprint"]["files"] == 2
    ev = charlm(["eval", "perplexity", "--model", run], cwd=src)
    assert ev.returncode == 0 and "validation split of" in ev.stdout, ev.stderr


def test_several_files_are_joined_with_a_blank_line(tmp_path):
    (tmp_path / "z.txt").write_text("last file\n" * 20)
    (tmp_path / "m.txt").write_text("middle, no newline at the end " * 8)
    proc = charlm(["train", "z.txt", "m.txt", "--max-steps", "3", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "z"  # named after the first input
    m, z = (tmp_path / "m.txt").read_text(), (tmp_path / "z.txt").read_text()
    assert _cached_text(run) == m + "\n\n" + z  # sorted: m.txt first; a newline added, then the blank line


def test_resume_refuses_a_changed_file_set_or_content(src):
    assert charlm(["train", "src", "--glob", "*.py", "--out", "R", "--max-steps", "3", *TINY], cwd=src).returncode == 0
    before = (src / "R" / "last.pkl").read_bytes()
    (src / "src" / "c.py").write_text("c = 3\n" * 10)
    assert_one_line_error(charlm(["train", "--resume", "R", "--max-steps", "6"], cwd=src), 1,
                          f"set of files changed since the checkpoint: 1 file(s) added ({src / 'src' / 'c.py'})")
    (src / "src" / "c.py").unlink()
    (src / "src" / "b.py").write_text("def b():\n    return 3\n" * 20)
    assert_one_line_error(charlm(["train", "--resume", "R", "--max-steps", "6"], cwd=src), 1,
                          "changed since the run was trained on it")
    assert (src / "R" / "last.pkl").read_bytes() == before
    (src / "src" / "b.py").write_text("def b():\n    return 2\n" * 20)
    proc = charlm(["train", "src", "--resume", "R", "--max-steps", "6", "--quiet"], cwd=src)  # the run's --glob
    assert proc.returncode == 0 and "after 6 steps" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args, code, needle", [
    (["src", "--glob", "*.rs"], 1, "holds no text files matching '*.rs'"),
    (["empty"], 1, "holds no text files"),
    (["src/b.py", "--glob", "*.py"], 2, "--glob picks files inside a folder"),
    (["src", "missing.txt"], 1, "corpus not found"),
    (["src", "--glob", "*.bin"], 1, "skipped 1 file that is not text (src/blob.bin)"),  # in a folder: left out
    (["src/blob.bin"], 1, "looks like a binary file"),                                 # named: refused
])
def test_bad_input_is_one_line(src, args, code, needle):
    (src / "empty").mkdir()
    (src / "src" / "blob.bin").write_bytes(b"abc\x00def")
    proc = charlm(["train", *args, "--max-steps", "2", *TINY], cwd=src)
    err = assert_one_line_error(proc, code, needle)
    if "binary" in needle:
        assert "blob.bin" in err
    assert not any((src / "runs").glob("*/last.pkl"))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads everything")
def test_an_unreadable_file_is_one_line(src):
    (src / "src" / "b.py").chmod(0)
    assert_one_line_error(charlm(["train", "src", "--max-steps", "2", *TINY], cwd=src), 1, "not readable")


def test_a_single_file_keeps_its_classic_record(tmp_path):
    (tmp_path / "t.txt").write_text("hello there\n" * 30)
    source = files.expand([tmp_path / "t.txt"])
    assert source.single and source.record() == {} and source.label == str(tmp_path / "t.txt")
    assert set(files.fingerprint(source)) == {"size", "mtime_ns", "sha256"}


def test_text_is_told_from_not_text_by_the_corpus_encoding(tmp_path):
    """A NUL byte marks a file as not text when the encoding is not known; with it, what decodes
    without a NUL character is text (UTF-16 holds NUL bytes, latin-1 bytes that UTF-8 refuses)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "wide.txt").write_text("wide text\n" * 20, encoding="utf-16")
    (tmp_path / "d" / "accents.txt").write_text("café crème\n" * 20, encoding="latin-1")
    (tmp_path / "d" / "pickle.pkl").write_bytes(b"\x80\x04\x95\x00\x00\x00")

    def kept(encoding):
        source = files.expand([tmp_path / "d"], encoding=encoding)
        return [Path(f).name for f in source.files], source.skipped
    assert kept(None) == (["accents.txt"], "skipped 2 files that are not text (d/pickle.pkl, d/wide.txt)")
    assert kept("latin-1") == (["accents.txt"], "skipped 2 files that are not text (d/pickle.pkl, d/wide.txt)")
    assert kept("utf-16")[0] == ["wide.txt"]
    with pytest.raises(CharlmError, match="holds no text files .*skipped 3 files that are not text"):
        kept("utf-8")
