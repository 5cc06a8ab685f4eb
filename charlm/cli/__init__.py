"""The command line: a thin top floor over the library (the only place that imports typer).

`main` runs the Typer app without click's standalone mode so that every
failure ends the same way: one red line on stderr and exit 1 for errors, 2 for
bad usage, 130 for Ctrl-C. Generated text goes to stdout, everything else to stderr.
Help is click's plain layout (a wide description column at 80 columns, no boxes),
in the one style of cli/voice.py, which also words typer's refusals as charlm's.
"""

from __future__ import annotations

import functools
import sys

import typer

from charlm import __version__, defaults, threads
from charlm.cli import corpus_cmd, demo_cmd, report_cmd, sample_cmd, train_cmd, use_cmds, voice
from charlm.cli.common import fail, say, settle
from charlm.errors import CharlmError

PLAIN = {"rich_markup_mode": None, "no_args_is_help": True, "cls": voice.Group}  # click's plain layout

app = typer.Typer(
    name="charlm", add_completion=False, pretty_exceptions_enable=False, **PLAIN,
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
            voice.check_finite(kwargs)
            threads.check_environment()
            if capped := threads.too_many_threads(kwargs.get("threads_n")):
                cores = f"{capped[1]} usable core" + ("s" if capped[1] > 1 else "")
                say(f"{capped[0]} is more than the {cores}; using {capped[1]} BLAS thread{'s' * (capped[1] > 1)}")
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


def _add(group: typer.Typer, name: str, command, summary: str, **kw) -> None:
    """Register `command` as `name`: guarded, in charlm's style, with its one-line summary for the list."""
    group.command(name, cls=voice.Command, short_help=summary, **kw)(_guard(command))


_add(app, "train", train_cmd.train, "Train a model on text files, or fine-tune one.", epilog=defaults.rule())
_add(app, "sample", sample_cmd.sample, "Write text with a model.")
_add(app, "info", use_cmds.info, "What a checkpoint holds.")
_add(app, "export", use_cmds.export, "Write a model's weights for PyTorch (.npz).")
_add(app, "report", report_cmd.report, "Write an HTML page about a run.")
eval_app = typer.Typer(**PLAIN, help="Measure a model: perplexity, surprisal, gradient flow.")
_add(eval_app, "perplexity", use_cmds.perplexity, "Perplexity and bits/char on text.")
_add(eval_app, "surprisal", report_cmd.surprisal, "Text shaded by how much it surprised the model.")
_add(eval_app, "gradient-flow", demo_cmd.gradient_flow, "How far back in the text the loss reaches.")
app.add_typer(eval_app, name="eval")
corpus_app = typer.Typer(**PLAIN, help="List and build the corpora charlm knows.")
_add(corpus_app, "list", corpus_cmd.list_corpora, "The corpora charlm can build.")
_add(corpus_app, "get", corpus_cmd.get, "Build a corpus into ./corpora.")
app.add_typer(corpus_app, name="corpus")
demo_app = typer.Typer(**PLAIN, help="Lessons: what the RNN notes teach, computed live.")
_add(demo_app, "hello", demo_cmd.hello, "A tiny RNN learns a word, every step shown.")
_add(demo_app, "gradients", demo_cmd.gradients, "RNN, LSTM and GRU: how gradients flow.")
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
            ctx, text = getattr(e, "ctx", None), voice.message(e)
            plain = text == e.format_message()  # click's own words: point at the help; charlm's need no pointer
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and e.exit_code == 2 and plain else ""
            fail(f"{text}{hint}", e.exit_code)
        else:
            raise
    return code if isinstance(code, int) else 0
