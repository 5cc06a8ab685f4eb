"""`charlm export` through the real executable: what it points at, where it cannot write, a device
it must not replace, bad input."""

from __future__ import annotations

import os
import stat

import pytest

from tests.cli.conftest import bad_input_tests
from tests.helpers import ERROR, IS_ROOT, USAGE, assert_one_line_error, assert_runner_error, charlm, invoke, run_cli


def test_a_directory_as_the_output_is_bad_usage(run, tmp_path):
    (tmp_path / "somedir").mkdir()
    proc = charlm(["export", run, tmp_path / "somedir"], cwd=run.parent)
    assert_one_line_error(proc, 2, f"cannot write {tmp_path / 'somedir'}: it is a directory; give a file name such as")


def test_export_points_at_nothing_the_user_lacks(shared, tmp_path):
    proc = run_cli(["export", shared["run"], tmp_path / "m.npz"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "README" not in proc.stderr and "state_dict" in proc.stderr


def test_export_into_a_file_as_directory(shared, tmp_path, monkeypatch):
    args = ["export", shared["run"], shared["afile"] / "model.npz"]
    assert_runner_error(invoke(args, tmp_path, monkeypatch), ERROR, "cannot write")
    assert_one_line_error(run_cli(args, cwd=tmp_path), ERROR, "cannot write")


def test_export_to_a_device_does_not_replace_it(shared, tmp_path):
    if not IS_ROOT or not hasattr(os, "mknod"):
        pytest.skip("needs root to make a private copy of /dev/full")
    dev = tmp_path / "full"  # never the real /dev/full: the bug would replace it
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except OSError:
        pytest.skip("mknod not permitted here")
    proc = run_cli(["export", shared["run"], dev], cwd=tmp_path)
    still_a_device = stat.S_ISCHR(os.lstat(dev).st_mode)
    assert still_a_device, "the device node was replaced by a regular file"
    assert_one_line_error(proc, ERROR, "no space left on device")


# ---------------------------------------------------------------- bad input: rows of the matrix (conftest.py)

CASES = [
    ("export-missing-model", ["export", "{missing}", "{tmp}/out.npz"], ERROR, "not found"),
    ("export-out-is-a-directory", ["export", "{run}", "{directory}"], USAGE, "cannot write"),
]
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(CASES, runner_only={"export-missing-model"})
