"""The data behind the report's views: surprisal, guesses, unit activations, features, run figures.

Letters: n characters in the passage, T steps in one forward chunk, V vocabulary,
K top guesses, L layers, H hidden units, F features.

Character t's surprisal is −log2 p(char t | chars before it): the first
character has no context and is not scored, exactly as `evaluate.score_ids`
does. Position t's activations are the state after reading character t, so a
unit that "tracks quotes" is on from an opening quote to its closing one.
Both start from the zero state, like evaluation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from charlm.checkpoint import Checkpoint
from charlm.config import ModelConfig
from charlm.data.vocab import Vocab
from charlm.nn import model, stepping
from charlm.nn.loss import log_softmax
from charlm.nn.sample import generate, stream_rngs

LN2 = math.log(2)

FEATURES = {  # name: what it is 1 for (or counts), as the report explains it
    "in quotes": "inside quotation marks (\" \", “ ”, « », 「 」)",
    "in brackets": "inside (round), [square] or {curly} brackets",
    "position in line": "characters since the last newline",
    "line start": "the character just read is a newline",
    "uppercase": "the character just read is an uppercase letter",
    "in a word": "the character just read is a letter",
}
_QUOTES = {"“": "”", "«": "»", "「": "」", "『": "』"}
_BRACKETS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Surprisal:
    bits: np.ndarray        # (n,) −log2 p(char t | chars < t); nan for the first character
    top_ids: np.ndarray     # (n, K) the model's likeliest guesses for char t, best first; −1 in row 0
    top_probs: np.ndarray   # (n, K) their probabilities

    @property
    def nats_per_char(self) -> float:
        return float(np.nanmean(self.bits)) * LN2 if len(self.bits) > 1 else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / LN2


@dataclass(frozen=True)
class Unit:
    kind: str       # "h" hidden state | "c" LSTM cell state
    layer: int      # 0-based, as in the parameter names (rnn.weight_hh_l0)
    unit: int       # 0-based index within the layer
    r: float        # Pearson correlation with a feature


def surprisal(params: dict, cfg: ModelConfig, ids: np.ndarray, top_k: int = 5,
              chunk: int = 1024) -> Surprisal:
    """Score `ids` (n,) as one stream (state carried across `chunk`-step forward calls)."""
    ids = np.asarray(ids, dtype=np.intp)
    n, K = len(ids), min(top_k, cfg.vocab_size)
    bits = np.full(n, np.nan)                                           # (n,)
    top_ids = np.full((n, K), -1, dtype=np.intp)                        # (n, K)
    top_probs = np.zeros((n, K))                                        # (n, K)
    state = model.init_state(cfg, 1, params["decoder.bias"].dtype)
    for t0 in range(0, n - 1, chunk):
        t1 = min(n - 1, t0 + chunk)
        _, logits, state, _ = model.forward(params, cfg, ids[None, t0:t1], None, state, want_logits=True)
        logp = log_softmax(logits[0])                                   # (T, V) predicts chars t0+1 … t1
        rows = np.arange(t1 - t0)
        bits[t0 + 1: t1 + 1] = -logp[rows, ids[t0 + 1: t1 + 1]] / LN2
        best = np.argpartition(-logp, K - 1, axis=1)[:, :K] if K < cfg.vocab_size else \
            np.broadcast_to(np.arange(K), (t1 - t0, K))                 # (T, K) unordered
        order = np.argsort(-np.take_along_axis(logp, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)                  # (T, K) best first
        top_ids[t0 + 1: t1 + 1] = best
        top_probs[t0 + 1: t1 + 1] = np.exp(np.take_along_axis(logp, best, axis=1))
    return Surprisal(bits, top_ids, top_probs)


def gaps(shown: str, vocab: Vocab) -> list[str]:
    """For a passage as shown, whose characters in `vocab` the model reads (n of them): the
    characters outside it before each of those n, and after the last (n + 1 strings)."""
    index, out, gap = vocab.index(), [], []
    for ch in shown:
        if ch in index:
            out.append("".join(gap))
            gap = []
        else:
            gap.append(ch)
    return out + ["".join(gap)]


def activations(params: dict, cfg: ModelConfig, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The state after each character of `ids` (n,): {"h": (L, n, H)} plus "c" (L, n, H) for LSTM.

    One `stepping.step` per character, so every position's state is exactly what
    the model carries forward; a test checks it against `model.forward`.
    """
    ids = np.asarray(ids, dtype=np.intp)
    dtype = params["decoder.bias"].dtype
    state = model.init_state(cfg, 1, dtype)
    out = {k: np.empty((cfg.layers, len(ids), cfg.hidden), dtype) for k in state}  # (L, n, H) each
    plan = stepping.plan(params, cfg, 1)
    for t in range(len(ids)):
        _, state = stepping.step(params, cfg, ids[t: t + 1], state, plan)
        for k, s in state.items():
            out[k][:, t] = s[:, 0]
    return out


def features(text: str) -> dict[str, np.ndarray]:
    """Simple per-character properties of `text` (FEATURES), each (n,) float64, at the
    same positions as the activations (after reading the character)."""
    n = len(text)
    f = {name: np.zeros(n) for name in FEATURES}
    quote_close, depth, line_pos = None, 0, 0
    for t, ch in enumerate(text):
        if quote_close is not None and ch == quote_close:
            quote_close = None                  # the closing mark is already outside
        elif quote_close is None and (ch == '"' or ch in _QUOTES):
            quote_close = _QUOTES.get(ch, '"')  # the opening mark is already inside
        if ch in _BRACKETS:
            depth += 1
        elif ch in _BRACKETS.values():
            depth = max(depth - 1, 0)
        line_pos = 0 if ch == "\n" else line_pos + 1
        f["in quotes"][t] = quote_close is not None
        f["in brackets"][t] = depth > 0
        f["position in line"][t] = line_pos
        f["line start"][t] = ch == "\n"
        f["uppercase"][t] = ch.isupper()
        f["in a word"][t] = ch.isalpha()
    return f


def correlations(acts: dict[str, np.ndarray], feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pearson r of every unit with every feature: {kind: (L, H, F)} in `feats` order.

    A feature that is constant over the passage gets nan (nothing to correlate
    with); a unit that never moves gets 0.
    """
    F = np.stack(list(feats.values()), axis=1)                          # (n, F)
    F = F - F.mean(axis=0)
    f_norm = np.sqrt((F * F).sum(axis=0))                               # (F,)
    with np.errstate(invalid="ignore", divide="ignore"):
        F = np.where(f_norm > 0, F / f_norm, np.nan)
    out = {}
    for kind, a in acts.items():
        L, n, H = a.shape
        A = a.transpose(1, 0, 2).reshape(n, L * H).astype(np.float64)   # (n, LH)
        A -= A.mean(axis=0)
        a_norm = np.sqrt((A * A).sum(axis=0))                           # (LH,)
        A /= np.where(a_norm > 1e-12, a_norm, np.inf)
        out[kind] = (A.T @ F).reshape(L, H, -1)                         # (L, H, F)
    return out


def top_units(corr: dict[str, np.ndarray], names: Sequence[str], k: int = 5) -> dict[str, list[Unit]]:
    """The k units most correlated (|r|) with each feature; features absent from the passage are left out."""
    out = {}
    for j, name in enumerate(names):
        cands = [Unit(kind, layer, unit, float(c[layer, unit, j]))
                 for kind, c in corr.items() for layer in range(c.shape[0]) for unit in range(c.shape[1])]
        if cands and not math.isnan(cands[0].r):
            out[name] = sorted(cands, key=lambda u: -abs(u.r))[:k]
    return out


def passage(ids: np.ndarray, length: int, newline: int | None) -> np.ndarray:
    """About `length` ids (0 = all) from the start of `ids`, reading well: from just after its
    first newline (if one is in the first quarter) to its last (if one is in the last fifth)."""
    ids = np.asarray(ids[: 2 * length] if length else ids, dtype=np.intp)  # never the whole of a big split
    if newline is None or not length or len(ids) <= length:
        return ids[:length] if length else ids
    head = np.flatnonzero(ids[: length // 4] == newline)
    start = int(head[0]) + 1 if head.size else 0
    while start < length // 4 and ids[start] == newline:   # and past blank lines
        start += 1
    window = ids[start: start + length]
    tail = np.flatnonzero(window[len(window) * 4 // 5:] == newline)
    return window[: len(window) * 4 // 5 + int(tail[-1]) + 1] if tail.size else window


def samples(params: dict, cfg: ModelConfig, vocab: Vocab, temperatures: Sequence[float], length: int,
            seed: int) -> list[tuple[float, str]]:
    """(temperature, text) for each temperature, each drawn as `charlm sample --seed SEED -t T` draws its
    first sample."""
    return [(t, "".join(p[0] for p in generate(params, cfg, vocab, length=length, temperature=t,
                                               rng=stream_rngs(seed))))
            for t in temperatures]


def curves(metrics: list[dict], history: list[dict]) -> dict[str, list[tuple[float, float, float]]]:
    """{"train": [(step, seconds, loss)…], "val": […]} from metrics.jsonl, else the checkpoint's history;
    validations only the history holds (the final one is not a metrics line) are added."""
    def points(rows: list[dict], key: str) -> list[tuple[float, float, float]]:
        return [(float(r.get("step", 0)), float(r.get("seconds") or 0.0), float(r[key])) for r in rows
                if isinstance(r, dict) and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    val = points(metrics, "val_loss")
    seen = {p[0] for p in val}
    val += [p for p in points(history, "val_loss") if p[0] not in seen]
    return {"train": points(metrics or history, "train_loss"), "val": sorted(val)}


def run_figures(ckpt: Checkpoint, params: dict, metrics: list[dict]) -> dict:
    """The headline numbers: size, training progress, throughput, best validation score."""
    progress = ckpt.progress
    best = ckpt.best_val_loss
    rates = [r["chars_per_sec"] for r in metrics if isinstance(r.get("chars_per_sec"), (int, float))]
    last = metrics[-1] if metrics else {}
    return {
        "parameters": int(sum(p.size for p in params.values())),
        "steps": int(last.get("step", progress.step if progress else 0)),
        "seconds": float(last.get("seconds", progress.elapsed if progress else 0.0) or 0.0),
        "chars_per_sec": statistics.median(rates) if rates else None,
        "best_val_nats": best,
        "best_val_bits": best / LN2 if best is not None else None,
        "best_val_perplexity": math.exp(best) if best is not None else None,
        "best_step": ckpt.step,
    }
