"""Help that reads at 80 columns, in one metavar style, and -m/--model wherever a model is named."""

from __future__ import annotations

import re

import pytest

from tests.helpers import assert_one_line_error, charlm

COMMANDS = [[], ["train"], ["sample"], ["info"], ["export"], ["report"], ["eval"], ["eval", "perplexity"],
            ["eval", "surprisal"], ["eval", "gradient-flow"], ["corpus"], ["corpus", "get"], ["corpus", "list"],
            ["demo"], ["demo", "hello"], ["demo", "gradients"]]
OPTION = re.compile(r"^  (?:-\w, )?(--[\w-]+)(?: / --[\w-]+)?(?: (\S+))?(?:  |$)")  # an option's line: name, metavar


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "charlm" for c in COMMANDS])
def test_help_fits_80_columns_in_one_style(tmp_path, command):
    proc = charlm([*command, "--help"], cwd=tmp_path, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert not re.search(r"<\w[\w \[\]]*>", proc.stdout), proc.stdout          # no <bool>, <path>, <int range>
    usage = lines[0]
    assert usage.startswith("Usage: charlm") and "{" not in usage, usage       # [MODEL], not {model}
    assert re.fullmatch(r"Usage: charlm[\w -]*( \[OPTIONS\])?( (\[[A-Z]+\](\.\.\.)?|COMMAND \[ARGS\]\.\.\.))*",
                        usage), usage
    for line in lines:
        if m := OPTION.match(line):
            flag, metavar = m.groups()
            assert metavar is None or re.fullmatch(r"[A-Z]+|[a-z]+(\|[a-z]+)*", metavar), line
    assert "x>=" not in proc.stdout and "Input should" not in proc.stdout


def test_flags_show_no_value(tmp_path):
    out = charlm(["sample", "--help"], cwd=tmp_path, env={"COLUMNS": "80"}).stdout
    for flag in ("--json", "--skip-unknown", "-i, --interactive", "--help"):
        assert re.search(rf"^  {re.escape(flag)}  +\S", out, re.M), flag


@pytest.mark.parametrize("args", [
    ["info", "-m", "{run}"], ["info", "--model", "{run}"], ["info", "{run}"],
    ["report", "-m", "{run}", "-o", "{tmp}/r.html"], ["report", "{run}", "-o", "{tmp}/r2.html"],
    ["export", "-m", "{run}", "{tmp}/m.npz"], ["export", "{run}", "{tmp}/m2.npz"],
    ["eval", "perplexity", "-m", "{run}"], ["eval", "surprisal", "-m", "{run}", "--chars", "50"],
    ["eval", "gradient-flow", "-m", "{run}", "--max-lag", "3", "--positions", "3"],
    ["sample", "-m", "{run}", "-n", "5", "--seed", "1"],
])
def test_a_model_is_named_with_m_everywhere(run, tmp_path, args):
    proc = charlm([a.format(run=run, tmp=tmp_path) for a in args], cwd=run.parent)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["info", "{run}", "-m", "{run}"], "give the model once, as MODEL"),
    (["export", "{run}"], "give the model and the .npz file to write"),
])
def test_a_model_named_twice_or_an_export_without_out_is_bad_usage(run, args, needle):
    assert_one_line_error(charlm([a.format(run=run) for a in args], cwd=run.parent), 2, needle)
