"""The edges a new user hits (issue 13), each through the real `charlm` executable.

The one-line failures (a negative --seed, a model too big for memory, a positional
argument named as such, an unknown corpus name) are rows of the matrix in
test_cli_errors.py. Here are the cases that need more than one line to check:
honest notes, what a finished or damaged run says, files that must not appear in
the current directory, streaming samples, what `info` shows, the report's bound
and colours. A tiny run is trained once per module and copied where a test changes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from charlm import checkpoint
from charlm.config import ModelConfig, OptimConfig
from charlm.nn import model, optim
from charlm.report import colors
from charlm.training import memory
from tests.test_cli_errors import CHARLM, ENV, ERROR, TINY, _text, assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict:
    """A 3-step run (RUN), one without a validation split (NOVAL), and their training logs."""
    d = tmp_path_factory.mktemp("charlm-edges")
    corpus = d / "corpus.txt"
    corpus.write_text(_text(), encoding="utf-8")
    (d / "other.txt").write_text(_text().upper(), encoding="utf-8")
    f = {"dir": d, "corpus": corpus, "other": d / "other.txt", "run": d / "RUN", "noval": d / "NOVAL"}
    for name, extra in (("run", []), ("noval", ["--val-fraction", "0"])):
        proc = run(["train", corpus, "--out", f[name], "--max-steps", "3", *TINY, *extra], cwd=d)
        assert proc.returncode == 0, proc.stderr
        f[f"{name}_log"] = proc.stderr
    return f


def _copy(ws, dest: Path) -> Path:
    shutil.copytree(ws["run"], dest)
    return dest


# ---------------------------------------------------------------- training messages


def test_settings_line_shows_what_runs_and_help_gives_the_rule(ws, tmp_path):
    log = ws["run_log"]
    assert "defaults for no time budget, with your --layers, --hidden: gru 1×8, embedding 8 input" in log
    assert "2×256" not in log and "defaults.py" not in log and "README" not in log
    proc = subprocess.run(CHARLM + ["train", "--help"], cwd=tmp_path, env={**ENV, "COLUMNS": "400"},
                          capture_output=True, text=True, timeout=60)
    assert "384 or 256 or 128 by the speed measured here (rule below); 256 with no budget" in proc.stdout, proc.stdout
    assert "defaults.py" not in proc.stdout


def test_log_lines_have_eta_and_rate(ws):
    """stderr is a pipe here, not a terminal: progress comes as lines, the first one at once."""
    line = next(x for x in ws["run_log"].splitlines() if "ETA" in x)
    assert re.search(r"\d+% step \d+ .* [\d.]+k chars/s, ETA \d\d:\d\d", line), line


def test_no_validation_split(ws, tmp_path):
    assert f"next: charlm sample --model {ws['noval']}   |   charlm eval perplexity TEXT_FILE --model" \
        in ws["noval_log"]
    assert "eval perplexity TEXT_FILE" not in ws["run_log"]
    for args in (["eval", "perplexity", "-m", ws["noval"]], ["eval", "surprisal", "-m", ws["noval"]]):
        err = assert_one_line_error(run(args, cwd=tmp_path), ERROR, "no validation split")
        assert "FILE" in err and "vocabulary" not in err
    ok = run(["eval", "perplexity", ws["corpus"], "-m", ws["noval"]], cwd=tmp_path)
    assert ok.returncode == 0 and "bits/char" in ok.stdout, ok.stderr


def test_resume_names_a_different_file_or_a_changed_one(ws, tmp_path):
    err = assert_one_line_error(run(["train", "--resume", ws["run"], ws["other"], "--max-steps", "6"],
                                    cwd=tmp_path), ERROR, "different file")
    assert str(ws["corpus"]) in err and "changed" not in err
    own = tmp_path / "own.txt"
    own.write_text(_text(), encoding="utf-8")
    assert run(["train", own, "--out", tmp_path / "R", "--max-steps", "3", *TINY], cwd=tmp_path).returncode == 0
    own.write_text(_text()[::-1], encoding="utf-8")
    before = (tmp_path / "R" / "last.pkl").read_bytes()
    assert_one_line_error(run(["train", "--resume", tmp_path / "R", "--max-steps", "6"], cwd=tmp_path),
                          ERROR, "changed since the checkpoint")
    assert (tmp_path / "R" / "last.pkl").read_bytes() == before


def test_resume_of_a_finished_run_says_to_raise_the_budget(ws, tmp_path):
    copy = _copy(ws, tmp_path / "R")
    proc = run(["train", "--resume", copy], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"already reached its budget, so nothing was trained; to train on, raise it: " \
           f"charlm train --resume {copy} --max-steps 6" in proc.stderr
    proc = run(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path)
    assert proc.returncode == 0 and "already reached" not in proc.stderr, proc.stderr


def test_resume_without_last_pkl_says_it_uses_best(ws, tmp_path):
    copy = _copy(ws, tmp_path / "R")
    (copy / "last.pkl").unlink()
    proc = run(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{copy} has no last.pkl; resuming from best.pkl, saved at step 3" in proc.stderr


def test_damaged_id_cache_is_rebuilt_with_a_note(ws, tmp_path):
    copy = _copy(ws, tmp_path / "R")
    expected = run(["eval", "perplexity", "-m", copy], cwd=tmp_path)
    ids = copy / "corpus.ids"
    for command in (["eval", "perplexity", "-m", copy], ["train", "--resume", copy, "--max-steps", "6"]):
        ids.write_bytes(ids.read_bytes()[: ids.stat().st_size // 2])
        proc = run(command, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert re.search(r"the id cache \S+corpus.ids is damaged \([\d,]+ bytes where [\d,]+ were expected\); "
                         "rebuilding it", proc.stderr), proc.stderr
        if command[0] == "eval":
            assert proc.stdout == expected.stdout
    assert "damaged" not in run(["eval", "perplexity", "-m", copy], cwd=tmp_path).stderr  # rebuilt once


# ---------------------------------------------------------------- memory


def test_memory_estimate_covers_a_real_training_step():
    """The estimate is not below what one step really allocates, nor far above it."""
    import tracemalloc

    for cell, name in (("gru", "adam"), ("lstm", "rmsprop"), ("rnn", "sgd")):
        cfg = ModelConfig(vocab_size=60, cell=cell, layers=2, hidden=64, embedding_dim=32, dropout=0.1)
        ocfg = OptimConfig(name=name)
        rng = np.random.default_rng(0)
        tracemalloc.start()
        params = model.init_params(cfg, rng)
        ostate = optim.init_state(ocfg, params)
        x, y = rng.integers(0, 60, (16, 40)), rng.integers(0, 60, (16, 40))
        _, _, _, cache = model.forward(params, cfg, x, y, model.init_state(cfg, 16), rng=rng)
        grads, _ = model.backward(params, cfg, cache)
        optim.update(params, grads, ostate, ocfg, 1e-3)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(ostate["slots"]) == memory.SLOTS[name] + bool(ocfg.ema)  # the average is one more
        estimate = memory.training_bytes(cfg, 16, 40, name, bool(ocfg.ema))
        assert 0.9 * peak <= estimate <= 2.5 * peak, (cell, estimate, peak)


def test_too_big_is_refused_before_anything_is_made(ws, tmp_path):
    err = assert_one_line_error(run(["train", ws["corpus"], "--out", tmp_path / "big", "--hidden", "100000"],
                                    cwd=tmp_path), ERROR, "available")
    assert re.search(r"needs about [\d.]+ TiB of memory .* this machine has [\d.]+ [GMT]iB available", err), err
    assert not (tmp_path / "big").exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- files in the current directory


def test_out_elsewhere_makes_no_runs_folder_here(ws, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    proc = run(["train", ws["corpus"], "--out", tmp_path / "away", "--max-steps", "1", *TINY], cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert list(here.iterdir()) == [] and "no runs/latest was made" in proc.stderr
    (here / "runs").mkdir()  # a directory that keeps runs: runs/latest follows the newest one
    proc = run(["train", ws["corpus"], "--out", tmp_path / "away2", "--max-steps", "1", *TINY], cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert (here / "runs" / "latest").resolve() == (tmp_path / "away2").resolve()
    assert "runs/latest now points at" in proc.stderr


def test_bare_train_builds_its_corpus_in_the_user_cache(tmp_path):
    here, cache = tmp_path / "here", tmp_path / "cache"
    here.mkdir()
    env = {**ENV, "XDG_CACHE_HOME": str(cache)}
    args = ["train", "--max-steps", "1", *TINY, "--val-max-chars", "200", "--out", tmp_path / "run"]
    proc = subprocess.run(CHARLM + [str(a) for a in args], cwd=here, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    built = cache / "charlm" / "corpora" / "python.txt"
    assert built.is_file() and list(here.iterdir()) == []
    assert f"building the offline python corpus (about 9 MB, once) at {built}" in proc.stderr
    listed = subprocess.run(CHARLM + ["corpus", "list"], cwd=here, env=env, capture_output=True, text=True)
    assert str(built) in listed.stdout


# ---------------------------------------------------------------- sampling


def test_greedy_prints_no_seed_and_one_copy(ws, tmp_path):
    one = run(["sample", "-m", ws["run"], "-t", "0", "-n", "20"], cwd=tmp_path)
    assert one.returncode == 0 and one.stderr == "", one.stderr
    many = run(["sample", "-m", ws["run"], "-t", "0", "-n", "20", "--num-samples", "3"], cwd=tmp_path)
    assert many.returncode == 0 and many.stdout == one.stdout
    assert many.stderr.strip() == ("charlm: --temperature 0 is greedy: all 3 samples would be the same text, "
                                   "so it is printed once")
    assert "--seed" in run(["sample", "-m", ws["run"], "-n", "5"], cwd=tmp_path).stderr  # sampling: printed


def test_num_samples_stream_and_ctrl_c_keeps_them(ws, tmp_path):
    n = 4000  # a block of 256 streams takes about a second: long enough to interrupt in the middle
    p = subprocess.Popen(CHARLM + ["sample", "-m", str(ws["run"]), "--num-samples", "100000", "-n", str(n),
                                   "--seed", "1"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "=== sample 1 ===\n"  # streamed: the run is far from done
    while p.stdout.readline() != "=== sample 256 ===\n":
        pass
    assert len(p.stdout.read(n + 1)) == n + 1  # the first block's last sample and its newline
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)  # while the second block is generated
    rest = p.stdout.read()
    assert p.wait(timeout=60) == 130
    assert p.stderr.read().strip() == "error: interrupted"
    kept = rest.split("=== sample 512 (interrupted) ===\n")
    assert rest.startswith("=== sample 257 (interrupted) ===\n") and len(kept) == 2, rest[:200]
    assert 0 < len(kept[1]) - 1 < n and "=== sample 513" not in rest  # part of a sample, then nothing more


def test_num_samples_memory_is_bounded(tmp_path, ws):
    """Peak memory with 16 blocks of streams is about that of one block (it grew with N before)."""
    big = tmp_path / "BIG"
    assert run(["train", ws["corpus"], "--out", big, "--hidden", "256", "--layers", "1", "--max-steps", "1",
                "--seq-len", "8", "--batch-size", "2"], cwd=tmp_path).returncode == 0

    def peak_kib(n: int) -> int:
        with open(os.devnull, "w") as null:
            p = subprocess.Popen(CHARLM + ["sample", "-m", str(big), "--num-samples", str(n), "-n", "20",
                                           "--seed", "1"], cwd=tmp_path, env=ENV, stdout=null)
            _, status, usage = os.wait4(p.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss

    assert peak_kib(16 * 256) - peak_kib(256) < 20 * 1024


# ---------------------------------------------------------------- info, report, export


def test_info_names_its_checkpoint_and_fractional_epochs(ws, tmp_path):
    copy = _copy(ws, tmp_path / "R")
    best = (copy / "best.pkl").read_bytes()
    assert run(["train", "--resume", copy, "--max-steps", "6"], cwd=tmp_path).returncode == 0
    (copy / "best.pkl").write_bytes(best)  # as if the validation got worse after step 3
    proc = run(["info", copy], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"progress  3 steps, 0\.0\d+ epochs, .* as saved in best.pkl \(its best validation; "
                     r"the run went on to step 6, in last.pkl\)", proc.stdout), proc.stdout
    data = json.loads(run(["info", copy / "last.pkl", "--json"], cwd=tmp_path).stdout)
    windows = ((len(_text()) * 9 // 10) // 2 - 1) // 8  # B 2, T 8, 90% of the text for training
    assert data["steps"] == data["run_steps"] == 6 and data["epochs"] == pytest.approx(6 / windows)


def test_report_chars_0_is_bounded_and_says_so(ws, tmp_path):
    long_text = tmp_path / "long.txt"
    long_text.write_text(_text() * 8, encoding="utf-8")  # ~25,000 characters
    out = tmp_path / "r.html"
    proc = run(["report", ws["run"], "--text", long_text, "--chars", "0", "--out", out], cwd=tmp_path,
               timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"--chars 0: showing the first 20,000 of [\d,]+ characters", proc.stderr), proc.stderr
    assert "20,000 characters" in proc.stderr.splitlines()[-1]
    assert out.read_text(encoding="utf-8").count('<span class="ch') == 2 * 20_000  # surprisal and cell views


def test_export_points_at_nothing_the_user_lacks(ws, tmp_path):
    proc = run(["export", ws["run"], tmp_path / "m.npz"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "README" not in proc.stderr and "state_dict" in proc.stderr


# ---------------------------------------------------------------- surprisal colours


def test_surprisal_colours_are_one_even_scale():
    """Lightness falls with every step of surprisal, by about as much per bit; in 256 colours, never rises."""
    from rich.color import Color, ColorSystem

    def term(c: str) -> str:
        return "#{:02x}{:02x}{:02x}".format(*Color.parse(c).downgrade(ColorSystem.EIGHT_BIT).get_truecolor())

    light = [colors.lightness(colors.surprisal_color(b)[0]) for b in np.linspace(0, 8, 33)]
    assert all(a > b for a, b in zip(light, light[1:], strict=False)), light
    per_bit = -np.diff(light[::4])
    assert per_bit.max() < 2 * per_bit.min(), per_bit
    in_256 = [colors.lightness(term(colors.surprisal_color(b)[0])) for b in np.linspace(0, 8, 33)]
    assert all(a >= b for a, b in zip(in_256, in_256[1:], strict=False)), in_256


def test_terminal_surprisal_has_the_scale_and_a_legend(ws, tmp_path):
    env = {k: v for k, v in ENV.items() if k != "NO_COLOR"} | {"FORCE_COLOR": "1", "COLORTERM": "truecolor"}
    proc = subprocess.run(CHARLM + ["eval", "surprisal", "-m", str(ws["run"]), "--chars", "100"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "48;2;252;253;191" in proc.stdout and "48;2;0;0;4" in proc.stdout  # the legend's two ends
    assert re.search(r"surprisal  0 .* 8\+ bits", re.sub(r"\x1b\[[\d;]*m", "", proc.stdout))


# ---------------------------------------------------------------- packaging


def test_license_is_an_spdx_string():
    """A table here makes setuptools ≥ 77 print a long deprecation warning on every install."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77
               for r in project["build-system"]["requires"])


# ---------------------------------------------------------------- a log in proportion to the run


def test_log_stays_proportional_and_quiet_is_quiet(ws, tmp_path):
    """100 validations (every 2 of 200 steps): the log shows each improvement and the last,
    the other validation lines at most every 5% of the run, and at most 10 sample blocks;
    --sample-every 0 shows none, and --quiet only the summary."""
    args = ["train", ws["corpus"], "--max-steps", "200", *TINY, "--eval-every", "2"]
    loud = run([*args, "--out", tmp_path / "loud"], cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    history = checkpoint.load(tmp_path / "loud" / "last.pkl").history
    best, improved = float("inf"), 0
    for h in history:
        if h["val_loss"] < best:
            best, improved = h["val_loss"], improved + 1
    lines = [x for x in loud.stderr.splitlines() if re.match(r"step \d+: val ", x)]
    assert len(history) == 100 and improved <= len(lines) <= improved + 21, (improved, len(lines))
    assert 1 <= loud.stderr.count("--- sample at step") <= 10
    none = run([*args, "--out", tmp_path / "none", "--sample-every", "0"], cwd=tmp_path)
    assert none.returncode == 0 and "--- sample" not in none.stderr
    quiet = run([*args, "--out", tmp_path / "quiet", "--quiet"], cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "charlm: done — reached --max-steps 200" in quiet.stderr
    summary = ("  val loss ", "charlm: done — ", "  checkpoints: ", "  next: ")
    assert all(line.startswith(summary) for line in quiet.stderr.splitlines()), quiet.stderr


def test_explicit_zero_budgets_mean_no_limit(ws, tmp_path):
    """--max-steps 0 given means no limit (until Ctrl-C), not the 10 epochs of a run given no budget."""
    proc = subprocess.Popen(CHARLM + ["train", str(ws["corpus"]), "--out", str(tmp_path / "z"), "--max-steps", "0",
                                      *TINY], cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "z" / "last.pkl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "no budget: until Ctrl-C" in err


def test_validation_slice_then_more_at_the_end(ws, tmp_path):
    """--val-max-chars N scores N chars during training and up to 10 N at the end, and says both."""
    for n, final in ((20, "the first 200"), (40, "all 268")):  # the corpus's validation split: 268 chars
        proc = run(["train", ws["corpus"], "--out", tmp_path / f"v{n}", "--max-steps", "6", *TINY,
                    "--val-max-chars", str(n)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        said = final.replace("all 268", "all")
        assert f"validating on the first {n} of them during training, on {said} at the end" in proc.stderr
        assert re.search(rf"on the first {n} validation chars; on {final}: [\d.]+ nats/char", proc.stderr), \
            proc.stderr
