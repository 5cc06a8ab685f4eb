"""`charlm sample` through the real executable: seeds per sample, messages, exit codes, newlines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import charlm as charlm_api
from tests.helpers import charlm


def sample(run, *args, **kw):
    proc = charlm(["sample", "-m", run, *args], cwd=run.parent, **kw)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def samples(stdout: str) -> list[str]:
    """The texts of `=== sample i ===` blocks, in order (each block's own text, its final newline removed)."""
    parts = re.split(r"^=== sample \d+ ===\n", stdout, flags=re.M)[1:]
    return [p.removesuffix("\n") for p in parts]


# ---------------------------------------------------------------- a seed per sample


def test_sample_i_of_a_seed_is_the_same_whatever_num_samples_is(run):
    one = sample(run, "--seed", "5", "--length", "40").stdout.removesuffix("\n")
    two, three = (samples(sample(run, "--seed", "5", "--length", "40", "--num-samples", n).stdout) for n in "23")
    assert len(two) == 2 and len(three) == 3 and len(set(three)) == 3
    assert one == two[0] == three[0] and two[1] == three[1]
    js = json.loads(sample(run, "--seed", "5", "--length", "40", "--num-samples", "3", "--json").stdout)
    assert js == {"seed": 5, "samples": three}
    assert charlm_api.load(run).sample(length=40, seed=5) == one  # the API's sample is the CLI's first


def test_a_seed_reaches_past_the_first_block(run):
    """Samples go 256 at a time: sample 258 is the same in a second block of 2 and of 44."""
    a = json.loads(sample(run, "--seed", "9", "--length", "6", "--num-samples", "258", "--json").stdout)
    b = json.loads(sample(run, "--seed", "9", "--length", "6", "--num-samples", "300", "--json").stdout)
    alone = "".join(p[0] for p in charlm_api.load(run).generate(length=6, seed=9, first=257))
    assert a["samples"] == b["samples"][:258] and a["samples"][257] == alone


def test_the_interactive_session_answers_as_sample_1_continues_the_line(run):
    primed = sample(run, "--prime", "the ", "--seed", "4", "--length", "30").stdout
    session = sample(run, "--interactive", "--seed", "4", "--length", "30", input="the \n").stdout
    assert session.removesuffix("\n") == primed.removesuffix("\n")[len("the "):]


def test_help_and_readme_say_what_a_seed_reproduces(run):
    help_text = " ".join(charlm(["sample", "--help"], cwd=run.parent).stdout.split())
    assert "sample i of a seed is the same text whatever --num-samples is" in help_text
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "sample i of a seed is the same text\nwhatever M is" in readme
