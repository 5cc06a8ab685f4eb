"""The training loop: truncated BPTT over contiguous lanes, budgets, checkpoints, exact resume.

`run` is a generator of events (plain dicts with an "event" key) that the CLI
turns into a progress bar and log lines; the library itself never prints.
Budgets (--max-steps, --epochs, --time-budget) are totals for the run, so a
resumed run continues toward the same end, on the same schedule.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charlm import __version__, batches, checkpoint, model, optim
from charlm.corpus import Corpus
from charlm.errors import CharlmError, UsageError
from charlm.evaluate import score_ids
from charlm.model import ModelConfig
from charlm.optim import OptimConfig
from charlm.sample import generate

DIVERGED = "diverged"


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 100              # T: BPTT window
    batch_size: int = 50            # B: contiguous lanes
    max_steps: int = 0              # stop after this many steps (0 = no limit)
    epochs: float = 0.0             # stop after this many passes (0 = no limit)
    time_budget: float = 0.0        # stop after this many seconds of training, validation excluded (0 = none)
    val_fraction: float = 0.1       # last fraction of the text held out for validation
    eval_every: int = 200           # validate and checkpoint every this many steps
    val_max_chars: int = 0          # score at most this many validation chars (0 = all)
    log_every: int = 10             # metrics.jsonl line every this many steps
    sample_every: int = 5           # sample preview every this many evaluations (0 = never)
    seed: int = 1337                # init, dropout masks: same seed, same run

    def __post_init__(self):
        if self.seq_len < 1 or self.batch_size < 1:
            raise UsageError("--seq-len and --batch-size must be ≥ 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_steps < 0 or self.epochs < 0 or not self.time_budget >= 0:
            raise UsageError("budgets (--max-steps, --epochs, --time-budget) must be ≥ 0")
        if self.eval_every < 1 or self.log_every < 1:
            raise UsageError("--eval-every and --log-every must be ≥ 1")


def _fraction_done(tc: TrainConfig, progress: dict, windows: int) -> float:
    """How far the run is toward whichever budget ends it first (for the cosine schedule)."""
    parts = [0.0]
    if tc.max_steps:
        parts.append(progress["step"] / tc.max_steps)
    if tc.epochs:
        parts.append((progress["epoch"] + progress["window"] / windows) / tc.epochs)
    if tc.time_budget:
        parts.append(progress["elapsed"] / tc.time_budget)
    return max(parts)


def _budget_reached(tc: TrainConfig, progress: dict, windows: int) -> str | None:
    if tc.max_steps and progress["step"] >= tc.max_steps:
        return f"reached --max-steps {tc.max_steps}"
    if tc.epochs and progress["epoch"] + progress["window"] / windows >= tc.epochs - 1e-9:
        return f"reached --epochs {tc.epochs:g}"
    if tc.time_budget and progress["elapsed"] >= tc.time_budget:
        return f"reached --time-budget {tc.time_budget:g}s"
    return None


def _payload(s: dict) -> dict:
    """Everything that defines the run at this instant, as plain data."""
    return {
        "charlm_version": __version__,
        "model_config": dataclasses.asdict(s["mcfg"]),
        "train_config": dataclasses.asdict(s["tcfg"]),
        "optim_config": dataclasses.asdict(s["ocfg"]),
        "vocab": s["corpus"].vocab.to_dict(),
        "params": s["params"],
        "optimizer": s["ostate"],
        "progress": dict(s["progress"]),
        "carried_state": s["state"],
        "rng": s["rng"].bit_generator.state,
        "best_val_loss": s["best"],
        "history": s["history"],
        "corpus": {"path": s["corpus"].path, "encoding": s["corpus"].encoding,
                   "fingerprint": s["corpus"].fingerprint},
    }


def _step_of(line: str) -> float:
    """The step a metrics.jsonl line logs; infinity for a line that is not a JSON object."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return float("inf")


def _metrics_file(run_dir: Path, resume_step: int | None):
    """Open metrics.jsonl for appending; on resume, drop lines past the checkpoint first
    (and a line torn by a crash mid-write, which would not parse)."""
    path = run_dir / "metrics.jsonl"
    if resume_step is not None and path.exists():
        kept = [line for line in path.read_text().splitlines() if _step_of(line) <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))
    elif resume_step is None:
        path.write_text("")
    return open(path, "a", buffering=1)


def run(corpus: Corpus, run_dir: Path, mcfg: ModelConfig, ocfg: OptimConfig, tcfg: TrainConfig,
        resume: dict | None = None, should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
    """Train, yielding events. `resume` is a loaded checkpoint to continue exactly."""
    run_dir.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = corpus.split(tcfg.val_fraction)
    if tcfg.val_max_chars:
        val_ids = val_ids[: tcfg.val_max_chars]
    B = batches.fit_batch(len(train_ids), tcfg.batch_size, tcfg.seq_len)
    if B != tcfg.batch_size:
        yield {"event": "note", "text": f"the training text ({len(train_ids)} chars) is too short for "
               f"--batch-size {tcfg.batch_size} at --seq-len {tcfg.seq_len}; using --batch-size {B}"}
        tcfg = dataclasses.replace(tcfg, batch_size=B)
    if len(val_ids) < 2 and tcfg.val_fraction > 0:
        raise CharlmError(f"the validation split has {len(val_ids)} characters; use a larger "
                          "--val-fraction or more text (or --val-fraction 0 for no validation)")
    lane_ids = batches.lanes(train_ids, B)
    windows = batches.windows_per_epoch(len(train_ids), B, tcfg.seq_len)
    log_ln_v = math.log(len(corpus.vocab))

    s = {"mcfg": mcfg, "ocfg": ocfg, "tcfg": tcfg, "corpus": corpus}
    if resume is None:
        s["rng"] = np.random.default_rng(tcfg.seed)
        s["params"] = model.init_params(mcfg, s["rng"])
        s["ostate"] = optim.init_state(ocfg, s["params"])
        s["state"] = model.init_state(mcfg, B)
        s["progress"] = {"step": 0, "epoch": 0, "window": 0, "chars": 0, "elapsed": 0.0}
        s["best"], s["history"] = None, []
    else:
        s["rng"] = np.random.default_rng()
        s["rng"].bit_generator.state = resume["rng"]
        s["params"], s["ostate"] = resume["params"], resume["optimizer"]
        s["state"], s["progress"] = resume["carried_state"], dict(resume["progress"])
        s["best"], s["history"] = resume["best_val_loss"], list(resume["history"])
        if s["state"]["h"].shape[1] != B:
            raise CharlmError(f"the checkpoint carries state for batch {s['state']['h'].shape[1]}, "
                              f"not {B}; resume with the same --batch-size")
    progress = s["progress"]
    metrics = _metrics_file(run_dir, None if resume is None else progress["step"])
    n_params = sum(p.size for p in s["params"].values())
    yield {"event": "start", "params": n_params, "batch": B, "windows_per_epoch": windows,
           "train_chars": len(train_ids), "val_chars": len(val_ids), "progress": dict(progress)}

    def validate_and_save(final: bool) -> dict:
        val = None
        if len(val_ids) >= 2:
            val = score_ids(s["params"], mcfg, val_ids, batch=B, seq_len=tcfg.seq_len).nats_per_char
        improved = val is not None and (s["best"] is None or val < s["best"])
        if improved or (val is None and final):
            s["best"] = val if val is not None else s["best"]
        s["history"].append({"step": progress["step"], "seconds": round(progress["elapsed"], 3),
                             "train_loss": smoothed, "val_loss": val})
        payload = _payload(s)
        checkpoint.save(run_dir / "last.pkl", payload)
        if improved or val is None:
            checkpoint.save(run_dir / "best.pkl", payload)
        return {"event": "eval", "step": progress["step"], "val_loss": val, "best": s["best"],
                "improved": improved, "final": final}

    smoothed = None
    evals = 0
    t0 = time.perf_counter() - progress["elapsed"]
    t_last, chars_last = time.perf_counter(), progress["chars"]
    reason = None
    while True:
        progress["elapsed"] = time.perf_counter() - t0
        reason = _budget_reached(tcfg, progress, windows)
        if reason:  # only when resuming a run that had already ended
            break
        x, y = batches.window(lane_ids, progress["window"], tcfg.seq_len)
        lr = optim.learning_rate(ocfg, _fraction_done(tcfg, progress, windows), progress["step"])
        loss, _, new_state, cache = model.forward(s["params"], mcfg, x, y, s["state"], rng=s["rng"])
        grads, _ = model.backward(s["params"], mcfg, cache) if math.isfinite(loss) else ({}, None)
        norm = optim.clip_grads(grads, ocfg.clip) if grads else float("nan")
        if not (math.isfinite(loss) and math.isfinite(norm)) or loss > 3 * log_ln_v:
            metrics.close()
            yield {"event": DIVERGED, "step": progress["step"] + 1, "loss": loss, "lr": lr}
            return
        optim.update(s["params"], grads, s["ostate"], ocfg, lr)
        s["state"] = new_state
        progress["window"] += 1
        if progress["window"] == windows:  # epoch boundary: the carried state resets
            progress["epoch"] += 1
            progress["window"] = 0
            s["state"] = model.init_state(mcfg, B)
        progress["step"] += 1
        progress["chars"] += x.size
        progress["elapsed"] = time.perf_counter() - t0
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        now = time.perf_counter()
        rate = (progress["chars"] - chars_last) / max(now - t_last, 1e-9)
        step_event = {"event": "step", "step": progress["step"], "epoch": progress["epoch"],
                      "loss": loss, "smoothed": smoothed, "lr": lr, "grad_norm": norm,
                      "chars_per_sec": rate, "elapsed": progress["elapsed"],
                      "fraction": _fraction_done(tcfg, progress, windows)}
        if progress["step"] % tcfg.log_every == 0:
            t_last, chars_last = now, progress["chars"]
        reason = _budget_reached(tcfg, progress, windows)
        val_event = None
        if progress["step"] % tcfg.eval_every == 0 or reason:  # the last step is always validated
            t_eval = time.perf_counter()
            val_event = validate_and_save(final=bool(reason))
            t0 += time.perf_counter() - t_eval  # budgets count training time, not validation
            t_last += time.perf_counter() - t_eval
            evals += 1
        if progress["step"] % tcfg.log_every == 0 or val_event:
            metrics.write(json.dumps({
                "step": progress["step"], "seconds": round(progress["elapsed"], 3), "epoch": progress["epoch"],
                "train_loss": round(loss, 5), "val_loss": val_event and val_event["val_loss"],
                "lr": lr, "grad_norm": round(norm, 5), "chars_per_sec": round(rate, 1)}) + "\n")
        yield step_event
        if val_event:
            yield val_event
            if tcfg.sample_every and evals % tcfg.sample_every == 0:
                t_sample = time.perf_counter()
                text = "".join(c[0] for c in generate(s["params"], mcfg, corpus.vocab, length=200,
                                                       temperature=0.8, rng=np.random.default_rng(0)))
                t0 += time.perf_counter() - t_sample
                yield {"event": "sample", "step": progress["step"], "text": text}
        if reason:
            break
        if should_stop():
            reason = "interrupted"
            break
    if reason == "interrupted":  # save now; a full validation pass can wait for the resume
        checkpoint.save(run_dir / "last.pkl", _payload(s))
    elif not s["history"] or s["history"][-1]["step"] != progress["step"]:  # resumed after the end
        yield validate_and_save(final=True)
    metrics.close()
    yield {"event": "done", "reason": reason, "step": progress["step"], "best": s["best"],
           "elapsed": progress["elapsed"], "history": s["history"]}


def configs_from_checkpoint(ckpt: dict) -> tuple[OptimConfig, TrainConfig]:
    """The optimizer and training configs stored in a checkpoint (unknown keys ignored)."""
    try:
        return (checkpoint.build_config(OptimConfig, ckpt.get("optim_config")),
                checkpoint.build_config(TrainConfig, ckpt.get("train_config")))
    except (TypeError, CharlmError) as e:
        raise CharlmError(f"{ckpt.get('path', 'checkpoint')} has an invalid configuration: {e}") from None
