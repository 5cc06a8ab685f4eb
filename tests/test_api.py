"""The public Python API (charlm/api.py), through Python: fit, load, sample, beam, score, surprisal."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import charlm
from charlm import checkpoint
from tests.helpers import MINI, english, run_cli

OPTIONS = {"hidden": 8, "layers": 1, "seq_len": 8, "batch_size": 2, "eval_every": 3, "max_steps": 6}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("charlm-api")
    corpus = d / "corpus.txt"
    corpus.write_text(english(60), encoding="utf-8")
    events: list[dict] = []
    m = charlm.fit(corpus, d / "API", on_event=events.append, **OPTIONS)
    return {"dir": d, "corpus": corpus, "model": m, "events": events}


def test_import_is_cheap_and_the_surface_small():
    code = "import sys, charlm; print(sorted(m for m in ('numpy', 'typer', 'charlm.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(charlm.__all__) == {"CharlmError", "Model", "fit", "load", "__version__"}
    with pytest.raises(AttributeError):
        charlm.generate  # noqa: B018  (internal names stay internal)


def test_fit_has_the_cli_defaults(ws, tmp_path):
    """The same options through `charlm train` give the same run: same defaults, same seed, same weights."""
    assert run_cli(["train", ws["corpus"], "--out", tmp_path / "CLI", "--max-steps", "6", *MINI],
               cwd=tmp_path).returncode == 0
    api, cli = checkpoint.load(ws["dir"] / "API"), checkpoint.load(tmp_path / "CLI")
    assert (api.model, api.optim, api.train) == (cli.model, cli.optim, cli.train)
    for name, p in cli.params.items():
        np.testing.assert_array_equal(api.params[name], p, err_msg=name)
    kinds = [e["event"] for e in ws["events"]]
    assert kinds[0] == "start" and "eval" in kinds and kinds[-1] == "done"
    assert ws["model"].path == ws["dir"] / "API" / "best.pkl"


def test_fit_refuses_unknown_options_and_an_existing_run(ws):
    with pytest.raises(charlm.CharlmError, match="no option 'hiden'"):
        charlm.fit(ws["corpus"], ws["dir"] / "X", hiden=8)
    with pytest.raises(charlm.CharlmError, match="already holds a run"):
        charlm.fit(ws["corpus"], ws["dir"] / "API", **OPTIONS)


def test_sample_is_seeded_primed_and_stoppable(ws):
    m = ws["model"]
    a, b, c = (m.sample("the ", length=40, seed=s) for s in (1, 1, 2))
    assert a == b != c and a.startswith("the ") and len(a) == 44
    cut = m.sample("the ", length=40, seed=1, stop=["o"])
    assert a.startswith(cut) and cut.endswith("o") and cut[4:].count("o") == 1
    lines = m.sample(length=300, seed=3, lines=1)
    assert lines.count("\n") == 1 and lines.endswith("\n")
    with pytest.raises(charlm.CharlmError, match="prime has 1 character"):
        m.sample("Zoo")


def test_beam_one_is_greedy(ws):
    m = ws["model"]
    greedy = m.sample("the ", length=30, temperature=0)
    one, four = m.beam("the ", width=1, length=30), m.beam("the ", width=4, length=30)
    assert one.prefix + one.text == greedy
    assert four.log_prob >= one.log_prob - 1e-4
    assert one.bits_per_char == pytest.approx(-one.log_prob / math.log(2) / 30)


def test_score_and_surprisal_agree_with_eval_perplexity(ws, tmp_path):
    m = ws["model"]
    text = "the lazy dog sings in green trees\nover a brown fox\n"
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    proc = run_cli(["eval", "perplexity", tmp_path / "t.txt", "-m", ws["dir"] / "API", "--json"], cwd=tmp_path)
    cli = json.loads(proc.stdout)
    s = m.score(text)
    assert s.chars == cli["chars"] == len(text) - 1
    assert s.nats_per_char == pytest.approx(cli["nats_per_char"], rel=1e-9)
    assert s.perplexity == pytest.approx(math.exp(s.nats_per_char))
    bits = m.surprisal(text)
    assert bits.shape == (len(text),) and np.isnan(bits[0])
    assert np.nanmean(bits) * math.log(2) == pytest.approx(s.nats_per_char, rel=1e-5)
    assert m.score("Zthe fox", skip_unknown=True).chars == len("the fox") - 1
    with pytest.raises(charlm.CharlmError, match="the text has 1 character"):
        m.surprisal("Zthe fox")


def test_load_errors_are_charlm_errors(tmp_path):
    with pytest.raises(charlm.CharlmError, match="checkpoint not found"):
        charlm.load(tmp_path / "nothing.pkl")


SCRIPT = """\
import sys
import charlm
m = charlm.fit(sys.argv[1], out=sys.argv[2], max_steps=3, hidden=8, layers=1, seq_len=8, batch_size=16, workers=2)
print(round(m.score_ids(m.ids(open(sys.argv[1]).read()), workers=2).nats_per_char, 6))
"""


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_can_use_worker_processes(ws, tmp_path, how):
    """Worker processes start without re-running the caller's script, so a plain script (no
    `if __name__ == "__main__":`) and code read from stdin can train and score with workers."""
    script = tmp_path / "plain.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script)] if how == "file" else [sys.executable, "-"]
    proc = subprocess.run([*args, str(ws["corpus"]), str(tmp_path / "run")], input=None if how == "file" else SCRIPT,
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and math.isfinite(float(proc.stdout))
    assert checkpoint.load(tmp_path / "run").train.workers == 2


def test_sample_and_beam_can_drop_unknown_prime_characters(ws):
    m, c = ws["model"], ws["model"].chars[0]
    with pytest.raises(charlm.CharlmError, match="never saw.*skip_unknown=True"):
        m.sample("☺" + c, length=5, seed=1)
    assert m.sample("☺" + c, length=5, seed=1, skip_unknown=True) == m.sample(c, length=5, seed=1)
    assert m.beam("☺" + c, width=2, length=5, skip_unknown=True) == m.beam(c, width=2, length=5)
