"""Beam search: the most probable continuation of a fixed length, deterministically.

Greedy decoding takes the likeliest character at each step; a low temperature
does nearly the same. Neither looks ahead: a likely character can lead to an
unlikely next one. Beam search keeps the K likeliest continuations so far
(by summed log-probability) and extends each by every character, so it finds
a continuation at least as probable as greedy's — which on a character model
tends to be the blandest, most repetitive text (users found it "more
conservative"). Width 1 is greedy.

Letters: K beams, V vocabulary, S steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.errors import UsageError
from charlm.nn import stepping
from charlm.nn.loss import log_softmax
from charlm.nn.sample import Stopper, check_options, start


@dataclass(frozen=True)
class Beam:
    prefix: str             # what was shown before the continuation: the prime (or a drawn first character)
    text: str               # the continuation found (cut at a stop, if one was met)
    log_prob: float         # its log-probability under the model given the prefix, in nats (temperature 1)

    @property
    def bits_per_char(self) -> float:
        return -self.log_prob / np.log(2) / len(self.text) if self.text else float("nan")


def search(params: dict, cfg: ModelConfig, vocab: Vocab, *, width: int, length: int, prime: str = "",
           stop: Sequence[str] = (), lines: int = 0) -> Beam:
    """The likeliest continuation of `length` characters found with `width` beams.

    With `stop` strings or `lines`, the best continuation of the full length is cut
    after its first stop, and `log_prob` is that of the part kept (the search does
    not prefer continuations that stop early)."""
    if width < 1:
        raise UsageError(f"--beam must be ≥ 1, got {width}")
    check_options(0.0, 0, 1.0, length)
    stopper = Stopper(stop, lines)
    K, V = width, len(vocab)
    shown, state, current = start(params, cfg, vocab, prime, K, None)  # the same for every beam
    prefix = shown[0]
    run = stepping.prepare(params, cfg, state)
    scores = np.full(K, -np.inf)                                        # (K,) all beams start equal:
    scores[0] = 0.0                                                     # only the first is extended
    parents = np.zeros((length, K), dtype=np.intp)                      # (S, K) beam each came from
    chosen = np.zeros((length, K), dtype=np.intp)                       # (S, K) character each added
    step_lp = np.zeros((length, K))                                     # (S, K) that character's log-prob
    for t in range(length):
        logp = log_softmax(stepping.advance(run, current))              # (K, V)
        total = (scores[:, None] + logp).ravel()                        # (K·V,)
        best = np.argsort(-total, kind="stable")[:K]                    # (K,) ties: lower beam, lower id
        parent, ids = np.divmod(best, V)
        parents[t], chosen[t], step_lp[t] = parent, ids, logp[parent, ids]
        scores, current = total[best], ids
        stepping.load_state(run, {k: v[:, parent] for k, v in stepping.read_state(run).items()})
    path, lps, k = [], [], 0                                            # beam 0 holds the best score
    for t in range(length - 1, -1, -1):
        path.append(chosen[t, k])
        lps.append(step_lp[t, k])
        k = parents[t, k]
    path.reverse()
    lps.reverse()
    kept = len(path)
    for i, ch_id in enumerate(path):
        if stopper.done(vocab.chars[ch_id]):
            kept = i + 1
            break
    return Beam(prefix, vocab.decode(path[:kept]), float(np.sum(lps[:kept])))
