"""`charlm corpus get | list` through the real executable: a corpus already there, a folder that
cannot hold corpora/, no name, an unknown name."""

from __future__ import annotations

import os
import subprocess

from tests.cli.conftest import bad_input_tests
from tests.helpers import CHARLM, ENV, USAGE, assert_one_line_error, charlm


def test_a_corpus_already_here_is_kept_unless_rebuild(tmp_path):
    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "korean.txt").write_text("가나다\n", encoding="utf-8")
    proc = charlm(["corpus", "get", "korean"], cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ("charlm: corpora/korean.txt is already here (10 bytes); "
                                                    "--rebuild builds it again\n"), proc.stderr
    assert (tmp_path / "corpora" / "korean.txt").read_text(encoding="utf-8") == "가나다\n"


def test_a_folder_that_cannot_hold_corpora_is_one_line_before_any_download(tmp_path):
    (tmp_path / "corpora").write_text("a file where the folder should be")
    err = assert_one_line_error(charlm(["corpus", "get", "korean"], cwd=tmp_path), 1)
    assert err == f"error: corpora in {tmp_path} is a file, not a folder: move it away, or run `charlm corpus get` " \
                  "elsewhere"
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.run(["bash", "-c", 'cd "$1" && rmdir "$1" && shift && exec "$@"', "-", str(gone), *CHARLM,
                           "corpus", "get", "korean"], env=ENV, capture_output=True, text=True, timeout=60)
    err = assert_one_line_error(proc, 1, "cannot write corpora/ in this directory (it was deleted)")
    assert "building" not in proc.stderr
    if os.path.isdir("/proc/self"):
        proc = subprocess.run(CHARLM + ["corpus", "get", "korean"], cwd="/proc", env=ENV, capture_output=True,
                              text=True, timeout=60)
        assert_one_line_error(proc, 1, "cannot write corpora/ in /proc")


def test_no_name_is_bad_usage(tmp_path):
    assert_one_line_error(charlm(["corpus", "get"], cwd=tmp_path), 2, "give a corpus name: charlm corpus get NAME, "
                                                                      "one of shakespeare, python, korean")


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = [("corpus-get-unknown", ["corpus", "get", "nosuch"], USAGE, "unknown corpus 'nosuch'")]
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES)
