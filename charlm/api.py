"""charlm's public Python API: train (`fit`) or load a model, then sample, search and score.

    >>> import charlm
    >>> m = charlm.load("runs/shakespeare")          # a run directory or a checkpoint file
    >>> m.sample("ROMEO:", length=80, seed=1)
    >>> m.beam("ROMEO:", width=4, length=40)         # Beam(prefix, text, log_prob)
    >>> m.score("To be, or not to be").bits_per_char
    >>> m.surprisal("To be, or not to be")           # bits per character, nan for the first

Everything else in the package is internal. `charlm sample` and `charlm eval
perplexity` are built on this module: they parse options, call it, and render.
Characters the model never saw are an error that lists them (`skip_unknown=True`
drops them). Failures raise `charlm.CharlmError`, with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from charlm import checkpoint, defaults, rundir
from charlm.config import ModelConfig
from charlm.data import files
from charlm.errors import CharlmError, UsageError
from charlm.nn.sample import Settings, UnseenChars, generate, stream_rngs, unknown_chars
from charlm.nn.score import Score
from charlm.report import probes
from charlm.training import loop, plans
from charlm.use import beam as beam_mod
from charlm.use import evaluate
from charlm.use.session import Session


class Model:
    """A trained model, as `load` returns it. `path` is the checkpoint file it came from."""

    def __init__(self, path: str | Path, prefer: str = rundir.BEST):
        ckpt, cfg, params, vocab = checkpoint.load_model(path, prefer)
        self.checkpoint, self.config, self.params, self.vocab = ckpt, cfg, params, vocab
        self.path = ckpt.path

    def __repr__(self) -> str:
        return f"<charlm.Model {self.config.describe()}, {len(self.vocab):,} chars, from {self.path}>"

    @property
    def chars(self) -> str:
        """Every character the model knows, sorted."""
        return self.vocab.chars

    def check_text(self, text: str, skip_unknown: bool = False, what: str = "the text") -> str:
        """`text`, or an UnseenChars error (a CharlmError) listing the characters the model never saw
        (dropped if `skip_unknown`)."""
        bad = unknown_chars(text, self.vocab)
        if bad and not skip_unknown:
            raise UnseenChars(what, bad, "skip_unknown=True drops them")
        return "".join(ch for ch in text if ch not in bad) if bad else text

    def generate(self, prime: str = "", *, length: int = defaults.LENGTH, temperature: float = defaults.TEMPERATURE,
                 top_k: int = defaults.TOP_K, top_p: float = defaults.TOP_P, num_samples: int = 1,
                 seed: int | None = None, first: int = 0, rng: np.random.Generator | None = None,
                 stop: Sequence[str] = (), lines: int = 0, skip_unknown: bool = False) -> Iterator[list[str]]:
        """Stream `num_samples` texts together: the prime, then one character per stream per step
        ("" for a stream that has stopped). Text i (numbered from `first`) draws from a generator
        made from (seed, i) alone: the same seed gives text i the same whatever `num_samples` is,
        and `sample(seed=s)` is text 0. With no seed it is random; `rng` instead: the texts'
        generators are spawned from it (one text uses it as it is)."""
        rngs = rng if rng is not None else stream_rngs(seed, first, num_samples)
        prime = self.check_text(prime, skip_unknown, what="prime")
        return generate(self.params, self.config, self.vocab, length=length, prime=prime,
                        temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples, rng=rngs,
                        stop=stop, lines=lines)

    def sample(self, prime: str = "", *, length: int = defaults.LENGTH, temperature: float = defaults.TEMPERATURE,
               top_k: int = defaults.TOP_K, top_p: float = defaults.TOP_P, seed: int | None = None,
               stop: Sequence[str] = (), lines: int = 0, skip_unknown: bool = False) -> str:
        """One text: the prime and up to `length` generated characters. Same seed, same text: the
        first of `generate`'s, and `charlm sample --seed`'s. It ends early after the first of `stop`
        (included) or the `lines`-th newline."""
        return "".join(p[0] for p in self.generate(prime, length=length, temperature=temperature, top_k=top_k,
                                                  top_p=top_p, seed=seed, stop=stop, lines=lines,
                                                  skip_unknown=skip_unknown))

    def beam(self, prime: str = "", *, width: int = defaults.BEAM_WIDTH, length: int = defaults.BEAM_LENGTH,
             stop: Sequence[str] = (), lines: int = 0, skip_unknown: bool = False) -> beam_mod.Beam:
        """The likeliest continuation of `length` characters that `width` beams find
        (width 1 is greedy), with its log-probability: see charlm/use/beam.py."""
        return beam_mod.search(self.params, self.config, self.vocab, width=width, length=length,
                               prime=self.check_text(prime, skip_unknown, what="prime"), stop=stop, lines=lines)

    def ids(self, text: str, skip_unknown: bool = False) -> np.ndarray:
        return self.vocab.encode(self.check_text(text, skip_unknown))

    def score(self, text: str, *, skip_unknown: bool = False) -> Score:
        """Perplexity, bits and nats per character of `text` read as one stream (all characters
        but the first are scored)."""
        return self.score_ids(self.ids(text, skip_unknown))

    def score_ids(self, ids: np.ndarray, *, batch: int = defaults.EVAL_BATCH, seq_len: int = defaults.EVAL_SEQ_LEN,
                  workers: int | None = None, threads: int | None = None,
                  progress: Callable[[int], None] | None = None) -> Score:
        """`score` for text already encoded (ids into `chars`), laid out in `batch` lanes (see
        charlm/use/evaluate.py) and shared by `workers` processes."""
        if len(ids) < 2:
            raise CharlmError("needs at least 2 characters in the model's vocabulary to score")
        return evaluate.score(self.params, self.config, ids, batch=batch, seq_len=seq_len, workers=workers,
                              threads_n=threads, progress=progress)

    def surprisal(self, text: str, *, skip_unknown: bool = False) -> np.ndarray:
        """−log₂ p(character | the text before it), one per character; nan for the first."""
        return probes.surprisal(self.params, self.config, self.ids(text, skip_unknown)).bits

    def session(self, *, temperature: float = defaults.TEMPERATURE, top_k: int = defaults.TOP_K,
                top_p: float = defaults.TOP_P, length: int = defaults.LENGTH, seed: int | None = None,
                stop: Sequence[str] = (), lines: int = 0, skip_unknown: bool = False) -> Session:
        """An interactive session (charlm/use/session.py): `session.handle(line)` answers a line.
        It draws from the generator of `sample`'s text with the same seed: its first answer to a
        line is what `sample(line, seed=seed)` writes after it."""
        return Session(self.params, self.config, self.vocab, Settings(temperature, top_k, top_p, length),
                       stream_rngs(seed)[0], stop, lines, skip_unknown)


def load(path: str | Path, prefer: str = rundir.BEST) -> Model:
    """A model from a checkpoint file, or a run directory (its `prefer`: best.pkl, else last.pkl)."""
    return Model(path, prefer)


def fit(corpus: str | Path, out: str | Path | None = None, *, encoding: str = "utf-8",
        threads: int | None = None, on_event: Callable[[dict], None] | None = None, **options) -> Model:
    """Train a model on the text file `corpus` with the defaults of `charlm train` (options
    given win; their names are those of the command's options with _ for -, e.g.
    max_steps=200, hidden=128, time_budget=60). Checkpoints go to `out` (default
    runs/<corpus name>, as the command picks it). `on_event` receives each event of
    charlm/training/loop.py, the notes on what was chosen and why first.
    Returns the best model (the last one when there is no validation split). A Ctrl-C
    stops the run after its step, saves last.pkl, and raises KeyboardInterrupt."""
    unknown = sorted(set(options) - set(plans.OPTIONS))
    if unknown:
        raise UsageError(f"charlm.fit has no option {unknown[0]!r}; it takes {', '.join(plans.OPTIONS)}")
    tell = on_event or (lambda event: None)
    source = files.expand([Path(corpus)], None, encoding)
    with rundir.new_run_dir(None if out is None else Path(out), source.name) as run_dir:
        plan = plans.start(source, run_dir, options, encoding=encoding, threads_n=threads)
        for event in loop.run(plan):
            tell(event)
            if event["event"] == loop.DIVERGED:
                raise CharlmError(f"training diverged at step {event['step']} (loss {event['loss']:.3g}); "
                                  f"try a lower lr (now {plan.ocfg.lr:g})")
            if event["event"] == loop.DONE and event["reason"] == loop.INTERRUPTED:
                raise KeyboardInterrupt
    return load(run_dir)


__all__ = ["Model", "ModelConfig", "Score", "fit", "load"]
