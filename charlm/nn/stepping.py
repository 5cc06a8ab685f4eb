"""The model one character at a time: a prepared run of N streams, advanced in place.

What sampling, beam search, the interactive session and the report's activation view use. `prepare` builds a
run once (like llama2.c's RunState: prepared weights, layer 0's input table, the
decoder's Wᵀ, step buffers and the streams' state); `advance` feeds one id per stream
and returns the next logits; `step` wraps them for callers that hold the state
themselves. Same numbers as `model.forward`, column by column (tests/test_forward.py).

Letters: N streams, V vocabulary, H hidden units, G gates, L layers.
"""

from __future__ import annotations

import numpy as np

from charlm.config import ModelConfig
from charlm.nn import model, recurrent


def prepare(params: dict, cfg: ModelConfig, state: dict, fast: bool = True) -> dict:
    """A sampling run's working set, like llama2.c's RunState: the prepared weights,
    layer 0's (V, GH) input table, the decoder's Wᵀ, the step buffers and the
    current state of its N streams (copied from `state`). `advance` moves it one
    character on in place; `read_state` reads the state back out. Rebuild it
    if params change. fast=False skips the one-time preparation (weight copies,
    input table), which only pays off over many steps."""
    dtype = params["decoder.bias"].dtype
    lws = model.prepare_layers(params, cfg, scaled=fast)
    layers = []
    for lw in lws:
        b = recurrent.buffers(lw, 1, state["h"].shape[1], dtype)           # T = 1 step
        b["w_ih_t"] = np.ascontiguousarray(lw["w_ih"].T) if fast else lw["w_ih"].T  # (D, GH)
        b["b"] = lw["b"]                                                    # (GH,)
        flip = dict(b)  # the same arrays with the two state slots swapped: no copies per step
        flip["h"] = b["h"][::-1]                                            # (2, N, H)
        if "c" in b:
            flip["c"] = b["c"][::-1]                                        # (2, N, H)
        layers.append((b, flip))
    run = {"layers": layers, "parity": 0, "cell": cfg.cell,
           "table": model.input_table(params, cfg, lws[0], cfg.vocab_size) if fast else None,  # (V, GH)
           "embedding": params.get("embedding.weight") if cfg.embedding_dim else None,  # (V, E)
           "w_dec_t": model.decoder_weight(params, cfg).T,                       # (H, V)
           "b_dec": params["decoder.bias"]}
    if fast:
        run["w_dec_t"] = np.ascontiguousarray(run["w_dec_t"])
    load_state(run, state)
    return run


def load_state(run: dict, state: dict) -> None:
    """Copy `state` ({"h": (L, N, H)} (+ "c")) into a `prepare` run."""
    for k, pair in enumerate(run["layers"]):
        b = pair[run["parity"]]
        for name, s in state.items():
            b[name][0] = s[k]


def advance(run: dict, ids: np.ndarray) -> np.ndarray:
    """One character for each stream of a `prepare` run: ids (N,) -> logits (N, V),
    advancing the run's state in place.

    Slot h[0] of each layer holds the current state and the step writes h[1];
    the run then flips which buffer dict it uses, so the roles swap. On odd
    steps the recurrent products of layers ≥ 1 (which need only the previous
    state) go first: alternating the order in which the weight matrices are read
    keeps the most recently read ones in cache when they do not all fit.
    """
    p = run["parity"]
    bs = [pair[p] for pair in run["layers"]]
    step = recurrent.CELLS[run["cell"]].step
    early = p == 1
    if early:
        for b in reversed(bs[1:]):
            np.matmul(b["h"][0], b["w_hh_t"], out=b["hh"])                  # (N, GH)
    x = None
    for k, b in enumerate(bs):
        gates = b["gates"][0]                                               # (N, GH)
        if k == 0 and run["table"] is not None:
            np.take(run["table"], ids, axis=0, out=gates)
        elif k == 0 and run["embedding"] is None:  # one-hot: x·W_ihᵀ is row x_id of W_ihᵀ
            np.take(b["w_ih_t"], ids, axis=0, out=gates)
            gates += b["b"]
        else:
            if k == 0:
                x = np.take(run["embedding"], ids, axis=0)                  # (N, E)
            np.matmul(x, b["w_ih_t"], out=gates)
            gates += b["b"]
        if k == 0 or not early:
            np.matmul(b["h"][0], b["w_hh_t"], out=b["hh"])                  # (N, GH)
        step(0, b["hh"], b)
        x = b["h"][1]                                                       # (N, H)
    run["parity"] = 1 - p
    logits = x @ run["w_dec_t"]                                             # (N, V)
    logits += run["b_dec"]
    return logits


def read_state(run: dict) -> dict:
    """A copy of a `prepare` run's current state, {"h": (L, N, H)} (+ "c")."""
    bs = [pair[run["parity"]] for pair in run["layers"]]
    state = {"h": np.stack([b["h"][0] for b in bs])}                        # (L, N, H)
    if "c" in bs[0]:
        state["c"] = np.stack([b["c"][0] for b in bs])                      # (L, N, H)
    return state


def plan(params: dict, cfg: ModelConfig, n: int = 1) -> dict:
    """A `prepare` run for n streams, to pass to `step` as its plan."""
    return prepare(params, cfg, model.init_state(cfg, n, params["decoder.bias"].dtype))


def step(params: dict, cfg: ModelConfig, ids: np.ndarray, state: dict,
         plan: dict | None = None) -> tuple[np.ndarray, dict]:
    """One character for each of N streams: ids (N,) -> logits (N, V), next state.

    `state` is not modified. plan: a `plan` reused across calls (several
    times faster); without one nothing is prepared, which suits a single step.
    Fastest for many steps: `prepare` once, then `advance` (no state copies).
    """
    if plan is None:
        run = prepare(params, cfg, state, fast=False)
    else:
        run = plan
        load_state(run, state)
    return advance(run, ids), read_state(run)
