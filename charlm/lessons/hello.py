"""The "hello" lesson: a tiny one-hot model learns a word, and every step of it is laid open.

Letters: T time steps (len(word) − 1), V vocabulary, H hidden units.

The model reads the word one character at a time from a zero state; after each it
scores every vocabulary character, turns the scores into probabilities with a
softmax, and predicts the likeliest as the next character. `run` takes a snapshot of
every step (input, one-hot, hidden state, scores, probabilities, prediction) before
training and after, training in between on the whole word as one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig, OptimConfig
from charlm.data.vocab import Vocab
from charlm.errors import UsageError
from charlm.nn import model, optim, reference

WORD = "hello"
HIDDEN = 4          # H: small enough to print every unit
MAX_LEN = 24        # a longer word no longer fits the screen step by step
MAX_STEPS = 500     # training stops earlier once every prediction is right and the loss is low
DONE_LOSS = 0.05    # nats/char: "confidently right"
OPTIM = OptimConfig(lr=0.05, clip=5.0, schedule="constant")


@dataclass(frozen=True)
class Step:
    """One time step: the model has read `char` and predicts the next character."""
    char: str
    onehot: list[int]        # (V,)
    hidden: list[float]      # (H,) top layer's h after reading `char`
    scores: list[float]      # (V,) logits
    probs: list[float]       # (V,) softmax of the scores
    predicted: str
    target: str

    @property
    def right(self) -> bool:
        return self.predicted == self.target


@dataclass(frozen=True)
class Snapshot:
    steps: list[Step]
    loss: float              # mean nats/char over the word

    @property
    def correct(self) -> int:
        return sum(s.right for s in self.steps)


@dataclass(frozen=True)
class Lesson:
    word: str
    vocab: Vocab
    cfg: ModelConfig
    before: Snapshot
    after: Snapshot
    steps_trained: int
    norms: list[float]       # gradient norm before clipping, per training step


def check_word(word: str) -> Vocab:
    """The word's vocabulary, or a UsageError saying why there is nothing to learn."""
    if len(word) < 2:
        raise UsageError(f"--text needs at least 2 characters (one to read, one to predict), got {word!r}")
    if len(word) > MAX_LEN:
        raise UsageError(f"--text is {len(word):,} characters; the step-by-step view fits at most {MAX_LEN}")
    chars = "".join(sorted(set(word)))
    if len(chars) < 2:
        raise UsageError(f"--text {word!r} has only the character {chars!r}: every next character is "
                         "certain, so there is no prediction to make; use at least two different characters")
    return Vocab(chars, [word.count(c) for c in chars])


def train_step(params: dict, cfg: ModelConfig, ocfg: OptimConfig, opt_state: dict, x: np.ndarray,
               y: np.ndarray, state: dict) -> tuple[float, float]:
    """One forward, backward, clip and update on x, y (N, T) from `state`; returns (loss, pre-clip norm)."""
    loss, _, _, cache = model.forward(params, cfg, x, y, state)
    grads, _ = model.backward(params, cfg, cache)
    norm = optim.clip_grads(grads, ocfg.clip)
    optim.update(params, grads, opt_state, ocfg, ocfg.lr)
    return loss, norm


def snapshot(params: dict, cfg: ModelConfig, vocab: Vocab, ids: np.ndarray) -> Snapshot:
    """Every step of reading ids (T+1,) from a zero state, through the plain math of
    charlm/nn/reference.py: the hidden state, the scores and the softmax at each step."""
    x, y = ids[None, :-1], ids[None, 1:]                                   # (1, T)
    loss, logits, _, cache = reference.forward(params, cfg, x, y, model.init_state(cfg, 1, np.float64))
    scores, probs = logits[0], cache["probs"][0]                           # (T, V) each
    hidden = [h[0] for h in cache["tops"]]                                 # T × (H,) the top layer's h
    eye = np.eye(len(vocab), dtype=int)                                    # (V, V)
    steps = [Step(vocab.chars[i], eye[i].tolist(), hidden[t].tolist(), scores[t].tolist(), probs[t].tolist(),
                  vocab.chars[int(probs[t].argmax())], vocab.chars[int(y[0, t])])
             for t, i in enumerate(x[0])]
    return Snapshot(steps, loss)


def run(word: str = WORD, cell: str = "rnn", seed: int = 0) -> Lesson:
    """Train a one-hot `cell` model of HIDDEN units on `word` and snapshot it before and after."""
    vocab = check_word(word)
    ids = vocab.encode(word)                                               # (T+1,)
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, layers=1, hidden=HIDDEN, embedding_dim=0)
    params = model.init_params(cfg, np.random.default_rng(seed), dtype=np.float64)
    before = snapshot(params, cfg, vocab, ids)
    opt_state = optim.init_state(OPTIM, params)
    zero = model.init_state(cfg, 1, np.float64)
    norms: list[float] = []
    for _ in range(MAX_STEPS):
        loss, norm = train_step(params, cfg, OPTIM, opt_state, ids[None, :-1], ids[None, 1:], zero)
        norms.append(norm)
        if loss < DONE_LOSS:
            break
    return Lesson(word, vocab, cfg, before, snapshot(params, cfg, vocab, ids), len(norms), norms)
