"""`charlm info` (and every command that falls back to runs/latest) with a runs/latest that dangles."""

from __future__ import annotations

import pytest

from tests.helpers import assert_one_line_error, charlm


@pytest.mark.parametrize("args, given_as", [
    (["info"], "MODEL or --model"), (["report"], "RUN or --model"), (["sample", "-n", "5"], "--model"),
    (["eval", "perplexity"], "--model"),
])
def test_a_dangling_runs_latest_says_where_it_points(tmp_path, args, given_as):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to("gone")
    err = assert_one_line_error(charlm(args, cwd=tmp_path), 1)
    assert err == ("error: runs/latest points at runs/gone, which is gone: train a run with `charlm train CORPUS`, "
                   f"or give {given_as} as a checkpoint or run directory")
