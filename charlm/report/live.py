"""The live page: RUN/report.html of a run trained with `charlm train --report`, rewritten after
its validations while it goes.

It is the light page: the loss curves, how the text grew, the headline figures and the
configuration, all read from the run's records (metrics.jsonl, samples.jsonl) and its plan,
which costs milliseconds; the full report's probes (surprisal, cell activations, gradient flow)
take seconds, so `charlm report RUN` draws those. While the run goes the page carries
`<meta http-equiv="refresh">`, which reloads it from file:// with no server and no script,
and rundir.LIVE_MARK, by which `charlm report` knows not to overwrite it; the page written
when the run ends has neither, and says how it ended. Every write is atomic
(charlm/fileio.py): a browser reloading mid-write still reads the whole previous page.

Who writes it, and when, is the CLI's (charlm/cli/train_view.py, on the loop's events): the
training package never imports the report.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from charlm import defaults, rundir
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.report import growth, probes
from charlm.report.parts import charts, config_groups, config_tables, figure_cards, footer, shell
from charlm.report.svg import esc


@dataclass(frozen=True)
class Run:
    """What the page says about the run that does not change while it goes."""
    run_dir: Path
    model: ModelConfig
    optim: OptimConfig
    train: TrainConfig
    corpus: str                     # the corpus's path (or its files, in words)
    vocab_size: int
    params: int                     # parameters in the model


@dataclass(frozen=True)
class Status:
    """Where the run stands when the page is written."""
    step: int
    fraction: float = 0.0           # of the budget done (0 when no budget measures it)
    ended: str = ""                 # "" while the run goes; else how it ended, a headline ("Finished at …")
    bad: bool = False               # it ended badly (diverged, an error)
    written: str = ""               # when the page was written, as the reader's clock shows it


def page(run: Run, status: Status, metrics: list[dict], history: list[dict], samples: list[dict],
         refresh: int = defaults.LIVE_REFRESH) -> str:
    """The page for the run as it stands (`metrics`, `samples`: its records' rows; `history`: its
    validations, for the ones no metrics row holds)."""
    name = run.run_dir.name or "run"
    vals = [h for h in history if isinstance(h.get("val_loss"), (int, float))]
    best = min(vals, key=lambda h: h["val_loss"]) if vals else None
    rates = [r["chars_per_sec"] for r in metrics if isinstance(r.get("chars_per_sec"), (int, float))]
    seconds = next((r.get("seconds") or 0.0 for r in reversed(metrics)), 0.0)
    cfg = run.model
    data = {"corpus": run.corpus, "vocabulary": f"{run.vocab_size} characters", "run directory": str(run.run_dir)}
    head = f'\n<meta http-equiv="refresh" content="{refresh}">\n{rundir.LIVE_MARK}' if not status.ended else ""
    body = f"""<header>
<h1>charlm live <span class="run">{esc(name)}</span></h1>
<p class="lede">A character-level {esc(cfg.cell.upper())} language model ({esc(cfg.describe())}) learning
{esc(Path(run.corpus).name)}, one validation at a time.</p>
</header>
<main>
{_banner(run, status, refresh, best)}
<section id="summary">
<h2>At a glance</h2>
{figure_cards(best and best["val_loss"], run.params, cfg, status.step, seconds,
              statistics.median(rates) if rates else None)}
</section>
<section id="curves">
<h2>Loss curves</h2>
<p class="explain">Training loss is measured on the batch being learned; validation loss on held-out text.
When validation stops falling while training keeps falling, the model has started to memorise.</p>
{charts(probes.curves(metrics, history), run.vocab_size)}
</section>
{growth.section(samples, run.vocab_size, str(run.run_dir))}
<section id="config-section">
<h2>Configuration</h2>
{config_tables([*config_groups(cfg, run.train, run.optim), ("data", data)])}
</section>
</main>
{footer()}"""
    return shell(f"charlm live — {name} (step {status.step:,})", body, head=head)


def _banner(run: Run, status: Status, refresh: int, best: dict | None) -> str:
    full = f"charlm report {rundir.quote(run.run_dir)}"
    light = ("This is the light page, cheap enough to rewrite at every validation; <code>"
             f"{esc(full)}</code> writes the full report (surprisal, cell activations, gradient flow).")
    so_far = (f" Best validation loss{'' if status.ended else ' so far'}: {best['val_loss']:.4f} nats/char "
              f"({best['val_loss'] / math.log(2):.3f} bits/char) at step {best['step']:,}." if best else "")
    written = f" Written {esc(status.written)}." if status.written else ""
    if not status.ended:
        share = f" ({100 * status.fraction:.0f}% of the budget)" if status.fraction else ""
        return (f'<section class="live" id="live"><p class="state"><span class="dot"></span>Training: step '
                f"{status.step:,}{share}</p>\n<p class=\"explain\">This page reloads itself every {refresh} s while "
                f"the run goes, and is rewritten after its validations.{written}{so_far} {light}</p></section>")
    cls = "live ended bad" if status.bad else "live ended"
    return (f'<section class="{cls}" id="live"><p class="state">{esc(status.ended)}</p>\n'
            '<p class="explain">The run has ended, and this page no longer reloads.'
            f"{written}{so_far} {light}</p></section>")
