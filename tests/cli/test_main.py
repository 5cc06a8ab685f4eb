"""`charlm` itself, whatever the command: an unknown command or option is bad usage (exit 2), in one
line. The exit codes and the rest of the bad-input matrix: tests/cli/conftest.py."""

from __future__ import annotations

from tests.cli.conftest import bad_input_tests
from tests.helpers import USAGE

CASES = [
    ("unknown-command", ["sing"], USAGE, "sing"),
    ("unknown-option", ["sample", "--model", "{run}", "--temprature", "1"], USAGE, "--temprature"),
]
test_bad_input_subprocess, test_bad_input_cli_runner = bad_input_tests(
    CASES, parse_errors={"unknown-command", "unknown-option"})  # click's own
