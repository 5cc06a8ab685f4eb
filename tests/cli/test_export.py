"""`charlm export` through the real executable."""

from __future__ import annotations

from tests.helpers import assert_one_line_error, charlm


def test_a_directory_as_the_output_is_bad_usage(run, tmp_path):
    (tmp_path / "somedir").mkdir()
    proc = charlm(["export", run, tmp_path / "somedir"], cwd=run.parent)
    assert_one_line_error(proc, 2, f"cannot write {tmp_path / 'somedir'}: it is a directory; give a file name such as")
