"""The command line: a thin top floor over the library (the only place that imports typer).

`main` runs the Typer app without click's standalone mode so that every
failure ends the same way: one red line on stderr and exit 1 for errors, 2 for
bad usage, 130 for Ctrl-C. Generated text goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import functools
import sys

import typer

from charlm import __version__, defaults, threads
from charlm.cli import corpus_cmd, demo_cmd, report_cmd, sample_cmd, train_cmd, use_cmds
from charlm.cli.common import fail, settle
from charlm.errors import CharlmError

app = typer.Typer(
    name="charlm", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Character-level language models (RNN, LSTM, GRU) in numpy: train, sample, evaluate.")


def _version(value: bool):
    if value:
        print(f"charlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")):
    """Character-level language models (RNN, LSTM, GRU) in numpy: train, sample, evaluate."""


def _guard(command):
    """Every way a command can fail ends here, as one line and an exit code, whether
    the app runs as the real executable or under Typer's CliRunner (which is why
    this wraps each command rather than living only in `main`)."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            threads.check_environment()
            with threads.limited(threads.blas_threads()):  # the policy in charlm/threads.py; --threads wins inside
                return command(*args, **kwargs)
        except CharlmError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:  # `charlm sample | head`: the reader left, which is not an error
            settle()
            raise SystemExit(0) from None
        except OSError as e:  # e.g. stdout on a full disk
            where = f" ({e.filename})" if e.filename else ""
            fail(f"{e.strerror or e}{where}", 1)
    return run


app.command("train", epilog=defaults.rule())(_guard(train_cmd.train))
app.command("sample")(_guard(sample_cmd.sample))
app.command("info")(_guard(use_cmds.info))
app.command("export")(_guard(use_cmds.export))
app.command("report")(_guard(report_cmd.report))
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate a model (perplexity, …).")
eval_app.command("perplexity")(_guard(use_cmds.perplexity))
eval_app.command("surprisal")(_guard(report_cmd.surprisal))
eval_app.command("gradient-flow")(_guard(demo_cmd.gradient_flow))
app.add_typer(eval_app, name="eval")
corpus_app = typer.Typer(no_args_is_help=True, help="List and build the corpora charlm knows.")
corpus_app.command("list")(_guard(corpus_cmd.list_corpora))
corpus_app.command("get")(_guard(corpus_cmd.get))
app.add_typer(corpus_app, name="corpus")
demo_app = typer.Typer(no_args_is_help=True, help="Lessons: what the RNN notes teach, computed live.")
demo_app.command("hello")(_guard(demo_cmd.hello))
demo_app.command("gradients")(_guard(demo_cmd.gradients))
app.add_typer(demo_app, name="demo")


def main(argv: list[str] | None = None) -> None:
    """The `charlm` executable. Whatever is still buffered is flushed here, before the
    interpreter's own flush at exit, so that a reader who left (`charlm info | head -1`)
    costs nothing but the output: exit status 0, no "Exception ignored" message."""
    try:
        code = _run(argv)
    except SystemExit as e:
        code = e.code
    except BrokenPipeError:  # `charlm sample | head`: the reader left; not an error
        code = 0
    settle()
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="charlm", standalone_mode=False)
    except CharlmError as e:
        fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        raise
    except Exception as e:  # click's exceptions (typer vendors click, so matched by interface)
        kind = type(e).__name__
        if kind == "NoArgsIsHelpError":  # click has already shown the help
            code = 2
        elif kind == "Abort":
            fail("interrupted", 130)
        elif callable(getattr(e, "format_message", None)) and isinstance(getattr(e, "exit_code", None), int):
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and e.exit_code == 2 else ""
            fail(f"{e.format_message()}{hint}", e.exit_code)
        else:
            raise
    return code if isinstance(code, int) else 0
