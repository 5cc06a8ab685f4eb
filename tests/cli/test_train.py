"""`charlm train` on a folder that holds its own runs, files that are not text, a file named twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import TINY, english
from tests.helpers import assert_one_line_error, charlm

STEPS = ["--max-steps", "4"]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"


@pytest.fixture
def proj(tmp_path) -> Path:
    """A project folder with one text file, trained on once: runs/proj now sits inside it."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "notes.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", ".", *STEPS, *TINY], cwd=proj)
    assert proc.returncode == 0, proc.stderr
    assert (proj / "runs" / "proj" / "last.pkl").is_file()
    return proj


def test_a_folder_skips_the_runs_it_holds_and_files_that_are_not_text(proj):
    (proj / "logo.png").write_bytes(PNG)
    resumed = charlm(["train", "--resume", "runs/proj", "--max-steps", "8", "--quiet"], cwd=proj)
    assert resumed.returncode == 0 and "after 8 steps" in resumed.stderr, resumed.stderr
    again = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY], cwd=proj)
    assert again.returncode == 0, again.stderr
    first, second = (proj / "runs" / name / "corpus.json" for name in ("proj", "second"))
    assert second.read_text().count(".txt") == first.read_text().count(".txt") == 1  # notes.txt alone


def test_a_folder_says_what_it_skipped_in_one_line(proj):
    (proj / "logo.png").write_bytes(PNG)
    (proj / "data.bin").write_bytes(b"\x00" * 64)
    proc = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY[:-1]], cwd=proj)
    lines = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert lines == ["charlm: skipped 1 charlm run directory (proj/runs/proj) and 2 files that are not text "
                     "(proj/data.bin, proj/logo.png)"], proc.stderr


def test_a_folder_of_nothing_but_runs_and_binaries_says_so(proj):
    (proj / "notes.txt").unlink()
    (proj / "logo.png").write_bytes(PNG)
    proc = charlm(["train", ".", "--out", "runs/second", *STEPS, *TINY], cwd=proj)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"error: the folder {proj} holds no text files (hidden files and folders are "
                                  "skipped; skipped 1 charlm run directory (proj/runs/proj) and 1 file that is "
                                  "not text (proj/logo.png))"), proc.stderr


def test_a_file_named_twice_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", "a.txt", "a.txt", "./a.txt", "--out", "R", *STEPS, *TINY[:-1]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"on {tmp_path / 'a.txt'} —" in proc.stderr and "files" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("corpus", ["notes.txt", "."])
def test_an_unknown_encoding_is_bad_usage(tmp_path, corpus):
    (tmp_path / "notes.txt").write_text(english(), encoding="utf-8")
    proc = charlm(["train", corpus, "--encoding", "bogus", "--out", "R", *STEPS, *TINY], cwd=tmp_path)
    assert_one_line_error(proc, 2, "unknown encoding 'bogus'")
    assert not (tmp_path / "R").exists()


def test_counts_in_messages_have_thousands_separators(tmp_path):
    (tmp_path / "a.txt").write_text(english(400), encoding="utf-8")  # 16,005 characters to train on
    proc = charlm(["train", "a.txt", "--out", "R", *STEPS, *TINY, "--seq-len", "100000"], cwd=tmp_path)
    assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1, proc.stderr  # its exit code: training's
    assert " characters, too short for one window of --seq-len 100000 (needs 100,001)" in proc.stderr
    assert "has only 16,005 characters" in proc.stderr, proc.stderr
