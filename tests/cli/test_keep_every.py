"""`--keep-every N` and `--step N` through the real `charlm` executable: the kept checkpoints are
listed, read by sample, eval, info and report, and every bad use is one line."""

from __future__ import annotations

import json

import pytest

from charlm import rundir
from tests.helpers import assert_one_line_error, charlm

TEXT = "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east.\n\n" * 60
TINY = ["--cell", "gru", "--layers", "1", "--hidden", "12", "--batch-size", "4", "--seq-len", "16", "--workers", "1",
        "--eval-every", "6", "--lr", "0.02", "--schedule", "constant"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("keep")
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    done = charlm(["train", "c.txt", "--out", "kept", "--max-steps", "12", "--keep-every", "4", *TINY], cwd=root)
    assert done.returncode == 0, done.stderr
    assert "keeping a checkpoint every 4 steps" in done.stderr and "3 by the end of the budget" in done.stderr
    plain = charlm(["train", "c.txt", "--out", "plain", "--max-steps", "6", *TINY], cwd=root)
    assert plain.returncode == 0, plain.stderr
    return root


def test_the_run_keeps_a_checkpoint_every_n_steps(ws):
    assert sorted(rundir.kept(ws / "kept")) == [4, 8, 12]
    assert (ws / "kept" / "step-000008.pkl").is_file() and not rundir.kept(ws / "plain")


def test_info_lists_what_is_kept_and_reads_a_kept_one(ws):
    out = charlm(["info", "kept"], cwd=ws)
    assert out.returncode == 0, out.stderr
    assert "3 checkpoint(s) along the way, at steps 4, 8, 12" in out.stdout and "--step N" in out.stdout
    data = json.loads(charlm(["info", "kept", "--json"], cwd=ws).stdout)
    assert [k["step"] for k in data["kept"]] == [4, 8, 12] and all(k["bytes"] > 0 for k in data["kept"])
    one = charlm(["info", "kept", "--step", "8"], cwd=ws)
    assert one.returncode == 0 and "step-000008.pkl" in one.stdout and "8 steps" in one.stdout
    assert "kept along the way; the run went on to step 12" in one.stdout


def test_sample_eval_and_report_read_a_kept_checkpoint(ws):
    early = charlm(["sample", "--model", "kept", "--step", "4", "--seed", "3", "-n", "60"], cwd=ws)
    late = charlm(["sample", "--model", "kept", "--step", "12", "--seed", "3", "-n", "60"], cwd=ws)
    assert early.returncode == late.returncode == 0 and early.stdout != late.stdout
    scores = [json.loads(charlm(["eval", "perplexity", "--model", "kept", "--step", str(s), "--json"],
                                cwd=ws).stdout)["nats_per_char"] for s in (4, 12)]
    assert scores[1] < scores[0]                                # the later weights score the held-out text better
    page = charlm(["report", "kept", "--step", "8", "-o", "r8.html", "--chars", "200"], cwd=ws)
    assert page.returncode == 0, page.stderr
    assert "step-000008.pkl" in (ws / "r8.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("args,code,needle", [
    (["train", "c.txt", "--out", "zero", "--keep-every", "0"], 2, "--keep-every"),
    (["sample", "--model", "kept", "--step", "5"], 1, "kept no checkpoint at step 5; it kept steps 4, 8, 12"),
    (["info", "plain", "--step", "6"], 1, "trained without --keep-every"),
    (["sample", "--model", "kept/best.pkl", "--step", "4"], 2, "give the run directory"),
    (["eval", "perplexity", "--model", "nowhere", "--step", "4"], 2, "not one"),
    (["report", "kept", "--step", "-1"], 2, "--step"),
    (["train", "--resume", "kept/step-000004.pkl"], 1, "cannot be resumed"),
])
def test_bad_input_is_one_line(ws, args, code, needle):
    assert_one_line_error(charlm(args, cwd=ws), code, needle)
    assert not (ws / "zero").exists()


def test_a_resume_may_change_the_cadence_and_keeps_on(ws, tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    assert charlm(["train", "c.txt", "--out", "r", "--max-steps", "6", "--keep-every", "4", *TINY],
                  cwd=tmp_path).returncode == 0
    more = charlm(["train", "--resume", "r", "--max-steps", "12", "--keep-every", "5"], cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "resuming with --keep-every 5, where the run had 4 (as you asked)" in more.stderr
    assert sorted(rundir.kept(tmp_path / "r")) == [4, 10]
