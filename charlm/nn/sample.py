"""Text generation: temperature softmax (0 = greedy), top-k and top-p filtering, priming, stopping.

Each stream draws from its own generator. A seeded run makes stream i's from
(seed, i) alone (`stream_rngs`), so sample i of a seed is the same text whether
1, 3 or 1,000 samples are drawn with it.

Letters: N streams sampled together, V vocabulary, P prime length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from charlm import defaults
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab, listing
from charlm.errors import CharlmError, UsageError
from charlm.nn import model, stepping

BLOCK = 256  # streams generated together at most: memory stays bounded whatever --num-samples asks

Rngs = np.random.Generator | Sequence[np.random.Generator]  # one for all N streams, or one per stream


def stream_rngs(seed: int | None, first: int = 0, n: int = 1) -> list[np.random.Generator]:
    """The generators of streams first … first+n−1 of a run seeded with `seed` (None: fresh
    entropy): stream i's is made from (seed, i) alone, as SeedSequence(seed).spawn would make it."""
    root = np.random.SeedSequence(seed)
    return [np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(i,)))
            for i in range(first, first + n)]


def per_stream(rng: Rngs, n: int) -> list[np.random.Generator]:
    """One generator per stream: those given, or the one given for a single stream (used as
    it is), or n spawned from it."""
    if not isinstance(rng, np.random.Generator):
        rngs = list(rng)
        if len(rngs) != n:
            raise ValueError(f"{len(rngs)} generators for {n} streams")
        return rngs
    return [rng] if n == 1 else rng.spawn(n)


def _uniforms(rng: Rngs, n: int) -> np.ndarray:
    """(n,) uniform draws in [0, 1): n from one generator, or one from each of n."""
    if isinstance(rng, np.random.Generator):
        return rng.random(n)
    return np.array([g.random() for g in rng])


@dataclass(frozen=True)
class Settings:
    """How text is drawn: the defaults of `charlm sample`, the API and the interactive session."""
    temperature: float = defaults.TEMPERATURE   # softmax temperature; 0 = greedy (the likeliest character)
    top_k: int = defaults.TOP_K                 # draw only from the K likeliest characters (0 = all)
    top_p: float = defaults.TOP_P               # nucleus: only the smallest set holding this much probability
    length: int = defaults.LENGTH               # characters to generate (at most, with a stop)

    def check(self) -> Settings:
        check_options(self.temperature, self.top_k, self.top_p, self.length)
        return self


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def unescape(text: str) -> str:
    """The escapes a prime typed on a command line or in a session may hold: \\n newline, \\t tab,
    \\\\ one backslash. A backslash before anything else stays as typed."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPES:
            out.append(ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def unknown_chars(text: str, vocab: Vocab) -> list[str]:
    """The characters of `text` the model never saw, sorted."""
    index = vocab.index()
    return sorted({ch for ch in text if ch not in index})


def unseen(what: str, chars: Sequence[str], remedy: str = "") -> str:
    """The message for `what` holding `chars` the model never saw; `remedy` in the caller's words
    (the command line names its flag, the API its argument)."""
    return (f"{what} has {len(chars):,} character(s) the model never saw: {listing(chars)}"
            + (f" ({remedy})" if remedy else ""))


class UnseenChars(CharlmError):
    """Text with characters the model never saw: `what` it is, and the characters (sorted)."""

    def __init__(self, what: str, chars: Sequence[str], remedy: str = ""):
        self.what, self.chars = what, list(chars)
        super().__init__(unseen(what, chars, remedy))


def check_stop(stop: Sequence[str], lines: int) -> None:
    if any(not s for s in stop):
        raise UsageError("--stop needs a non-empty string")
    if lines < 0:
        raise UsageError(f"--lines must be ≥ 1 (or 0 for no limit), got {lines}")


class Stopper:
    """Watches one stream's generated characters for the first stop string or the N-th newline.
    The text stops after the stop string (it is part of the output) or after that newline."""

    def __init__(self, stop: Sequence[str] = (), lines: int = 0):
        check_stop(stop, lines)
        self.stop, self.lines = tuple(stop), lines
        self.keep = max((len(s) for s in self.stop), default=1)
        self.tail, self.newlines = "", 0

    @property
    def active(self) -> bool:
        return bool(self.stop or self.lines)

    def done(self, ch: str) -> bool:
        """Take the next generated character; True when the text should end with it."""
        if ch == "\n":
            self.newlines += 1
            if self.newlines == self.lines:
                return True
        self.tail = (self.tail + ch)[-self.keep:]
        return any(self.tail.endswith(s) for s in self.stop)


def check_options(temperature: float, top_k: int, top_p: float, length: int, num_samples: int = 1) -> None:
    """Reject nonsense before any work: every message is a one-liner for the CLI."""
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise UsageError(f"--temperature must be a finite number ≥ 0 (0 = greedy), got {temperature}")
    if not (0 < top_p <= 1):
        raise UsageError(f"--top-p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise UsageError(f"--top-k must be ≥ 1 (or 0 for no limit), got {top_k}")
    if length < 1:
        raise UsageError(f"--length must be ≥ 1, got {length}")
    if num_samples < 1:
        raise UsageError(f"--num-samples must be ≥ 1, got {num_samples}")


def next_ids(logits: np.ndarray, rng: Rngs, temperature: float,
             top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """logits (N, V) -> one id per stream (N,); `rng`: one generator for all rows, or one per row.

    Draws by inverse CDF on the unnormalised exp(z − max): the first id whose
    cumulative mass reaches u · total, u uniform in [0, 1). A single stream takes
    a 1-D path (a fixed cost per numpy call dominates at V ≈ 100) that gives the
    same id for the same generator state."""
    if temperature == 0:
        return logits.argmax(axis=1)                                   # (N,) greedy
    z = logits.astype(np.float64)                                      # (N, V)
    z /= temperature
    if 0 < top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]       # (N, 1)
        z[z < kth] = -np.inf
    if top_p < 1.0:
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)                              # (N, V)
        order = np.argsort(-p, axis=1)                                 # (N, V) most likely first
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p                # mass strictly before each
        drop = np.zeros_like(p, dtype=bool)
        np.put_along_axis(drop, order, before >= top_p, axis=1)       # keep the smallest set reaching p
        p[drop] = 0.0
        z = p
    elif len(z) == 1:
        w = z[0]                                                       # (V,)
        w -= w.max()
        np.exp(w, out=w)
        cdf = w.cumsum()                                               # (V,)
        i = cdf.searchsorted(_uniforms(rng, 1)[0] * cdf[-1])           # first id with cdf ≥ u · total
        return np.array([min(i, len(w) - 1)])
    else:
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)                                               # (N, V) unnormalised
    cdf = np.cumsum(z, axis=1)                                         # (N, V)
    u = _uniforms(rng, len(z)) * cdf[:, -1]                            # (N,)
    ids = (cdf < u[:, None]).sum(axis=1)                               # (N,) inverse CDF
    return np.minimum(ids, z.shape[1] - 1)


def uses_rng(vocab: Vocab, prime: str, temperature: float) -> bool:
    """Whether generation draws random numbers (so a seed matters, and samples differ): sampling
    does, and so does a greedy start with no prime and no newline, whose first character is drawn."""
    return temperature > 0 or (not prime and "\n" not in vocab.chars)


def start(params: dict, cfg: ModelConfig, vocab: Vocab, prime: str, n: int,
          rngs: Sequence[np.random.Generator] | None) -> tuple[list[str], dict, np.ndarray]:
    """(text shown first by each stream, the state of n streams warmed up on all of it but
    its last character, that character's id (N,)): where generation begins.

    With no prime the model starts from a newline if the vocabulary has one (not
    shown), else from a character each stream draws by corpus frequency (shown), or
    the most frequent one when there are no `rngs` (beam search is deterministic)."""
    state = model.init_state(cfg, n, params["decoder.bias"].dtype)
    if prime or "\n" in vocab.chars:
        ids = vocab.encode(prime) if prime else np.array([vocab.chars.index("\n")])
        if len(ids) > 1:
            warm = np.broadcast_to(ids[:-1], (n, len(ids) - 1))         # (N, P-1)
            _, _, state, _ = model.forward(params, cfg, warm, None, state)
        return [prime] * n, state, np.full(n, ids[-1])
    counts = np.asarray(vocab.counts, dtype=np.float64)
    firsts = np.array([g.choice(len(vocab), p=counts / counts.sum()) for g in rngs] if rngs is not None
                      else [int(counts.argmax())] * n)                  # (N,)
    return [vocab.chars[i] for i in firsts], state, firsts


def generate(params: dict, cfg: ModelConfig, vocab: Vocab, *, length: int, prime: str = "",
             temperature: float = defaults.TEMPERATURE, top_k: int = defaults.TOP_K,
             top_p: float = defaults.TOP_P, num_samples: int = 1,
             rng: Rngs, stop: Sequence[str] = (), lines: int = 0) -> Iterator[list[str]]:
    """Yield the text of N streams piece by piece: first the prime, then one character per step.

    `rng`: a generator per stream (see `stream_rngs`), or one that N are spawned
    from (a single stream uses it as it is). The state is warmed up on the prime
    in one chunk (see `start`). With `stop` strings or `lines`, a stream that has
    met its stop yields "" from then on, and generation ends when every stream
    has (see `Stopper`).
    """
    check_options(temperature, top_k, top_p, length, num_samples)
    N = num_samples
    rngs = per_stream(rng, N)
    shown, state, current = start(params, cfg, vocab, prime, N, rngs)  # current (N,)
    if shown[0]:
        yield shown
    stoppers = [Stopper(stop, lines) for _ in range(N)]
    watching = stoppers[0].active
    live = [True] * N
    run = stepping.prepare(params, cfg, state)                             # prepared once, advanced in place
    for _ in range(length):
        logits = stepping.advance(run, current)                            # (N, V)
        current = next_ids(logits, rngs, temperature, top_k, top_p)
        piece = [vocab.chars[i] for i in current]
        if watching:
            for k, ch in enumerate(piece):
                if not live[k]:
                    piece[k] = ""
                elif stoppers[k].done(ch):
                    live[k] = False
        yield piece
        if watching and not any(live):
            return
