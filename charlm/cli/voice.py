"""How every command speaks: option values refused in charlm's words, and help in one style.

Typer checks an option's type and its `min`/`max` itself, in pydantic's words ("Invalid
value for '--time-budget': Input should be greater than or equal to 0"); `message`
says the same as charlm's own checks do ("--time-budget must be a finite number ≥ 0,
got nan"). A bound lets `inf` through, so `check_finite` refuses, before any command
runs, a float option that is not a finite number: no option means anything by inf or nan.

`tidy` also gives the help one metavar style: an option or argument shows an
upper-case word for its value (FILE, MODEL, N, X, TEXT, or the choices, as
`gru|lstm|rnn`), flags show none, and bounds read "≥ 1", "0 to 0.95". Every command
and group of the app is built as a `Command` or a `Group`, which tidy themselves, so
the style holds however the app runs (the executable, or Typer's CliRunner).
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path

from typer.core import TyperCommand, TyperGroup

from charlm.errors import UsageError

BOUNDS = {"greater_than_equal": ("ge", "≥"), "greater_than": ("gt", ">"), "less_than_equal": ("le", "≤"),
          "less_than": ("lt", "<")}
KINDS = {"int_parsing": "a whole number", "int_from_float": "a whole number", "int_type": "a whole number",
         "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number"}
METAVARS = {int: "N", float: "X", str: "TEXT", Path: "PATH"}  # by type, where a parameter names none itself


def name(param) -> str:
    """How a parameter is named to the user: its long option, or its argument's metavar."""
    opts = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    return max(opts, key=len) if opts and getattr(param, "param_type_name", "") == "option" else \
        (param.metavar or param.name.upper())


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _got(value) -> str:
    return str(value) if _number(value) is not None else repr(value)


def message(e) -> str:
    """A click error's message, in charlm's words where typer checked a bound, a type or a choice."""
    param, cause = getattr(e, "param", None), getattr(e, "__cause__", None)
    errors = cause.errors() if callable(getattr(cause, "errors", None)) else []
    if param is None or not errors:
        return e.format_message()
    error = errors[0]
    kind, got, ctx = error.get("type"), error.get("input"), error.get("ctx") or {}
    if kind in BOUNDS:
        key, sign = BOUNDS[kind]
        number = _number(got)
        finite = "a finite number " if number is not None and not math.isfinite(number) else ""
        return f"{name(param)} must be {finite}{sign} {ctx[key]:g}, got {_got(got)}"
    if kind in KINDS:
        return f"{name(param)} must be {KINDS[kind]}, got {_got(got)}"
    choices = _choices(param)
    if choices:
        return f"{name(param)} must be one of {', '.join(choices)}, got {got!r}"
    return e.format_message()


def _choices(param) -> list[str]:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(c.value) for c in annotation]
    return []


def check_finite(options: dict) -> None:
    """Refuse an option whose number is inf or nan (a command's float options are named after
    their parameters: time_budget is --time-budget)."""
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"--{key.replace('_', '-')} must be a finite number, got {value}")


def _metavar(param) -> str | None:
    """The word a parameter's value shows as in help (None for a flag, which takes no value)."""
    if getattr(param, "is_flag", False):
        return None
    if param.metavar:
        return param.metavar
    if getattr(param, "param_type_name", "") == "argument":
        return param.name.upper()
    choices = _choices(param)
    if choices:
        return "|".join(choices)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return next((word for kind, word in METAVARS.items()
                 if isinstance(annotation, type) and issubclass(annotation, kind)), "TEXT")


def _range(param) -> str | None:
    """A parameter's bounds in charlm's words: "≥ 1", "≤ 200", "0 to 0.95"."""
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}" if hi is not None else None


def tidy(command) -> None:
    """Give a command's parameters the style this module describes. The two methods set on
    each replace typer's own help pieces (`<path>` after an argument's name, "x>=0");
    where a typer version has no such method, nothing changes."""
    for param in command.params:
        param.metavar = _metavar(param)
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx: None
        param._get_number_range_help_str = lambda p=param: _range(p)


class Command(TyperCommand):
    """A typer command in charlm's style."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tidy(self)


class Group(TyperGroup):
    """A typer group (charlm, eval, corpus, demo) in charlm's style."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tidy(self)
