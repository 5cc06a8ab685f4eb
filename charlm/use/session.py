"""An interactive sampling session: each line primes or continues the model, the state carried.

The library side of `charlm sample --interactive`; the CLI owns the terminal.
A line of text (with the escapes of `sample.unescape`) is fed to the model after
everything before it, and the model answers with up to `length` characters. An
empty line continues from where the last answer stopped. A line starting with
":" is a command (`HELP` lists them); "::" starts a line of text with one ":".

Letters: V vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig
from charlm.data.vocab import Vocab, listing
from charlm.errors import UsageError
from charlm.nn import stepping
from charlm.nn.sample import Settings, Stopper, UnseenChars, check_stop, next_ids, start, unescape, unknown_chars

HELP = """\
Type text and press Enter: the model reads it after everything so far and answers.
An empty line continues the last answer. \\n, \\t and \\\\ in a line are a newline, a tab, a backslash;
start a line with :: to begin it with one ':'. Ctrl-C stops an answer; Ctrl-D (or Ctrl-C at the prompt) ends.
  :temperature T   softmax temperature, 0 = greedy        :top-k K   the K likeliest only (0 = all)
  :top-p P         nucleus mass in (0, 1]                  :length N  characters per answer
  :stop TEXT       also end answers at TEXT (:stop alone clears the stops)
  :settings        show the settings    :reset  forget everything read so far    :help  this text"""

_FIELDS = {"temperature": float, "top-k": int, "top-p": float, "length": int}


@dataclass(frozen=True)
class Reply:
    """What one line of input gives: a message (a command's answer) or text to stream."""
    message: str = ""
    text: Iterator[str] | None = None


class Session:
    """A conversation with a model: the settings and the one stream's state, carried between lines."""

    def __init__(self, params: dict, cfg: ModelConfig, vocab: Vocab, settings: Settings,
                 rng: np.random.Generator, stop: Sequence[str] = (), lines: int = 0, skip_unknown: bool = False):
        check_stop(stop, lines)
        self.params, self.cfg, self.vocab = params, cfg, vocab
        self.settings, self.rng, self.stop, self.lines = settings.check(), rng, tuple(stop), lines
        self.skip_unknown = skip_unknown
        self.reset()

    def reset(self) -> None:
        """Forget everything read: the next line starts from a fresh state, as the first did."""
        self.run: dict | None = None
        self.pending: int | None = None     # the last character read or written, not yet fed to the model

    def describe(self) -> str:
        s = self.settings
        stops = ", ".join(map(repr, self.stop)) or "none"
        return (f"temperature {s.temperature:g}, top-k {s.top_k}, top-p {s.top_p:g}, length {s.length}, "
                f"stop {stops}" + (f", lines {self.lines}" if self.lines else ""))

    def handle(self, line: str, should_stop: Callable[[], bool] = lambda: False) -> Reply:
        """One line of input (without its newline). A bad command raises a one-line CharlmError
        and changes nothing; `should_stop` is polled between characters of an answer."""
        if line.startswith(":") and not line.startswith("::"):
            return Reply(message=self._command(line[1:].strip()))
        text = unescape(line[1:] if line.startswith("::") else line)
        bad = unknown_chars(text, self.vocab)
        if bad and not self.skip_unknown:
            raise UnseenChars("the line", bad, "nothing was read")
        text = "".join(ch for ch in text if ch not in bad)
        shown = self._read(text)
        return Reply(message=f"skipped characters the model never saw: {listing(bad)}" if bad else "",
                     text=self._answer(shown, should_stop))

    def _command(self, command: str) -> str:
        name, _, arg = command.partition(" ")
        arg = arg.strip()
        if name in ("help", "?"):
            return HELP
        if name == "settings":
            return self.describe()
        if name == "reset":
            self.reset()
            return "forgot everything read so far"
        if name == "stop":
            self.stop = (unescape(arg),) if arg else ()
            return self.describe()
        if name not in _FIELDS:
            raise UsageError(f"unknown command :{name} (:help lists them)")
        try:
            value = _FIELDS[name](arg)
        except ValueError:
            raise UsageError(f":{name} needs a{'n integer' if _FIELDS[name] is int else ' number'}, "
                             f"got {arg or 'nothing'!r}") from None
        try:
            self.settings = dataclasses.replace(self.settings, **{name.replace("-", "_"): value}).check()
        except UsageError as e:  # the message names the option; here it is a command
            raise UsageError(str(e).replace(f"--{name}", f":{name}")) from None
        return self.describe()

    def _read(self, text: str) -> str:
        """Feed `text` after everything so far. The first line starts the stream as `sample.start`
        does; returns the character it drew to start from, when it had to draw one ("" otherwise)."""
        if self.run is None:
            shown, state, last = start(self.params, self.cfg, self.vocab, text, 1, [self.rng])
            self.run, self.pending = stepping.prepare(self.params, self.cfg, state), int(last[0])
            return shown[0][len(text):]
        index = self.vocab.index()
        for ch in text:
            stepping.advance(self.run, np.array([self.pending]))
            self.pending = index[ch]
        return ""

    def _answer(self, shown: str, should_stop: Callable[[], bool]) -> Iterator[str]:
        """Up to `length` characters, each fed back before the next is drawn; stops keep the state exact."""
        s, stopper = self.settings, Stopper(self.stop, self.lines)
        if shown:
            yield shown
        for _ in range(s.length):
            if should_stop():
                return
            logits = stepping.advance(self.run, np.array([self.pending]))   # (1, V)
            self.pending = int(next_ids(logits, self.rng, s.temperature, s.top_k, s.top_p)[0])
            ch = self.vocab.chars[self.pending]
            yield ch
            if stopper.done(ch):
                return
