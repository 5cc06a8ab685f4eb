"""The view "how the text grew": which samples it shows, how it draws them, and that the full
report carries it, readable at a phone's width and a wide window's."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from charlm import defaults, rundir
from charlm.cli import app
from charlm.config import ModelConfig, OptimConfig, TrainConfig
from charlm.data import corpus
from charlm.report import growth
from charlm.training import plans
from tests.helpers import run_events
from tests.report.browser import CHROMIUM, NO_CHROMIUM, DevTools, Tab, self_contained

TEXT = "HAMLET:\nTo be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n\n" * 50


def rows(steps, text: str = "abc", prime: str = "") -> list[dict]:
    return [{"step": s, "seconds": s / 10, "val_loss": 4.0 - s / 1000, "prime": prime, "seed": 0, "temperature": 0.8,
             "length": len(text), "text": prime + text} for s in steps]


def test_pick_keeps_first_and_last_and_spaces_the_rest_in_log_step():
    few = rows(range(10, 110, 10))
    assert growth.pick(few) == few
    many = rows(range(10, 10_010, 10))                                   # 1,000 validations
    shown = [r["step"] for r in growth.pick(many)]
    assert len(shown) == defaults.GROWTH_SHOWN and shown[0] == 10 and shown[-1] == 10_000
    assert shown == sorted(set(shown))
    ratios = [b / a for a, b in zip(shown, shown[1:], strict=False)]    # even in log(step): about equal ratios
    assert max(ratios) / min(ratios) < 1.5 and shown[1] < 100


def test_the_section_escapes_marks_the_prime_and_draws_the_loss_share():
    html = growth.section(rows([100, 200], "</pre><script>x</script> & more", prime="KING:"), 60, "runs/x")
    assert "<script>" not in html and "&lt;/pre&gt;&lt;script&gt;" in html and "&amp; more" in html
    assert html.count("<b>KING:</b>") == 3                     # each sample's prime, and the one in the explanation
    assert f'style="width:{100 * 3.9 / math.log(60):.1f}%"' in html   # val 3.9 of a uniform guess's ln 60
    assert "All 2 samples, from runs/x/samples.jsonl" in html and "step 200" in html
    none = growth.section([], 60)
    assert "No samples were kept for this run" in none and "<ol" not in none


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    """A tiny run's full report (`charlm report`), with its samples.jsonl."""
    root = tmp_path_factory.mktemp("growth")
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    data = corpus.load(root / "c.txt", root / "run")
    mcfg = ModelConfig(len(data.vocab), cell="lstm", layers=1, hidden=12, embedding_dim=4)
    tcfg = TrainConfig(seq_len=16, batch_size=4, max_steps=30, eval_every=5, log_every=5, seed=0, workers=1)
    run_events(plans.decide(data, root / "run", mcfg, OptimConfig(lr=2e-2, schedule="constant"), tcfg))
    result = CliRunner().invoke(app, ["report", str(root / "run"), "--chars", "300"])
    assert result.exit_code == 0, result.stderr
    return root / "run" / rundir.REPORT


def test_the_full_report_shows_how_the_text_grew(report_page):
    page = report_page.read_text(encoding="utf-8")
    self_contained(page)
    recorded = rundir.read_samples(report_page.parent)
    assert [r["step"] for r in recorded] == [5, 10, 15, 20, 25, 30]
    section = page[page.index('<section id="growth-section">'):]
    section = section[:section.index("</section>")]
    assert section.count("<li>") == 6 and "All 6 samples" in section
    assert all(f"<b>step {s}</b>" in section for s in (5, 30))


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_growth_reads_on_a_phone_and_a_wide_window(report_page, tmp_path):
    columns = "getComputedStyle(document.querySelector('.grew li')).gridTemplateColumns.split(' ').length"
    tools = DevTools(tmp_path / "profile")
    try:
        for width, side_by_side in ((1200, True), (380, False)):
            tab = Tab(tools, width)
            tab.open(report_page)
            assert tab.errors() == [] and not tab.overflows()
            assert tab.eval(columns) == (2 if side_by_side else 1)      # the step beside its text, or above it
            tab.eval("document.getElementById('growth-section').scrollIntoView()")
            assert tab.screenshot(tmp_path / f"growth-{width}.png").stat().st_size > 10_000
    finally:
        tools.close()
