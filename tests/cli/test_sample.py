"""`charlm sample` through the real executable: seeds per sample, messages, exit codes, newlines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import charlm as charlm_api
from tests.helpers import assert_one_line_error, charlm


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
    root = Path(__file__).parents[2]
    readme, guide = ((root / name).read_text(encoding="utf-8") for name in ("README.md", "docs/guide.md"))
    assert "sample\ni of `--seed S` is the same text whatever `--num-samples` is" in readme
    assert "sample i of a seed is the same text\nwhatever M is" in guide


# ---------------------------------------------------------------- characters the model never saw


def test_prime_with_unseen_characters_names_the_flag_only(run, tmp_path):
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime", "한국어"], cwd=run.parent), 2)
    assert err == "error: --prime has 3 character(s) the model never saw: '국', '어', '한' (--skip-unknown drops them)"
    (tmp_path / "p.txt").write_text("한국어", encoding="utf-8")
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime-file", tmp_path / "p.txt"], cwd=run.parent), 1)
    assert err.endswith("has 3 character(s) the model never saw: '국', '어', '한' (--skip-unknown drops them)")
    many = "".join(chr(0xAC00 + i) for i in range(12))
    err = assert_one_line_error(charlm(["sample", "-m", run, "--prime", many], cwd=run.parent), 2)
    assert "'갉' and 2 more (--skip-unknown drops them)" in err and "skip_unknown=" not in err
    session = charlm(["sample", "-m", run, "-i", "--seed", "1", "-n", "5"], cwd=run.parent, input="the 한\n")
    assert session.returncode == 0 and session.stderr == ("error: the line has 1 character(s) the model never saw: "
                                                          "'한' (nothing was read; --skip-unknown drops them)\n")
    with pytest.raises(charlm_api.CharlmError, match=r"^prime has 3 .* \(skip_unknown=True drops them\)$"):
        charlm_api.load(run).sample("한국어")


def test_beam_refuses_a_seed_as_it_refuses_a_temperature(run):
    for given in (["--seed", "4"], ["-t", "0.5"]):
        err = assert_one_line_error(charlm(["sample", "-m", run, "--beam", "3", *given], cwd=run.parent), 2)
        assert err == f"error: --beam is deterministic: {'--seed' if given[0] == '--seed' else '--temperature'} " \
                      "does not apply to it"


@pytest.mark.parametrize("args", [["--lines", "2"], ["--stop", "\\n\\n", "--length", "2000"], ["--length", "7"]])
def test_a_sample_that_ends_in_a_newline_gets_no_other(run, args):
    """stdout is the sample's own text, plus a newline only where it does not end in one."""
    text = json.loads(sample(run, "--seed", "0", *args, "--json").stdout)["samples"][0]
    line = text if text.endswith("\n") else text + "\n"
    assert text.endswith("\n") == (args[0] != "--length"), text
    assert sample(run, "--seed", "0", *args).stdout == line
    assert sample(run, "--seed", "0", *args, "--num-samples", "2").stdout.startswith(f"=== sample 1 ===\n{line}=== ")
