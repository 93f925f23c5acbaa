"""The explorer in Debian's Chromium, driven by Playwright: every view, every control, no console error.

The browser, the pages and the screenshot folder are fixtures of ``conftest.py``;
screenshots are printed (run with ``-s`` to see the paths).
"""

from __future__ import annotations

import pytest
from helpers import needs_chromium

import saliencelab as sl
from saliencelab.explore.export import export
from saliencelab.explore.synthetic import synthetic_run

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytestmark = [needs_chromium, pytest.mark.slow]

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def served():
    running = sl.explore(synthetic_run(60, seed=1), quiet=True)
    yield running
    running.stop()


def test_filter_sort_and_open_a_sample(open_page, served, shots):
    page = open_page(served.url)
    page.open("#/")
    assert page.page.locator("#total").text_content().startswith("60 samples")
    page.shot(shots, "grid")
    page.page.select_option("#filter-label", "2")
    page.ready("#/?label=2")
    assert set(page.cards()) == {SCRIPT}
    page.page.select_option("#sort", "gradient.deletion_auc")
    page.ready("#/?label=2&sort=gradient.deletion_auc")
    page.page.select_option("#order", "desc")
    page.ready("#/?label=2&sort=gradient.deletion_auc&order=desc")
    values = page.sort_values()
    assert values == sorted(values, reverse=True) and len(values) == len(page.cards())
    page.page.fill("#range-low", "0.6")
    page.page.select_option("#range-column", "score")
    page.page.click("#range-apply")
    page.page.wait_for_selector('body[data-ready*="range="]', state="attached")
    page.page.wait_for_load_state("networkidle")
    shown = page.page.locator("#grid .card").count()
    assert 0 < shown < len(values)
    page.shot(shots, "grid-filtered")
    first = page.page.locator("#grid .card").first
    index = first.get_attribute("data-index")
    first.click()
    page.ready(f"#/sample/{index}")
    assert page.page.locator("#sample-label").text_content() == SCRIPT
    assert page.page.locator(".method-panel").count() == 3
    assert page.page.locator("#neighbours .card").count() == 8
    page.shot(shots, "sample")
    assert page.problems == []


def test_each_control_redraws_the_maps(open_page, served, shots):
    page = open_page(served.url)
    page.open("#/sample/4")
    assert page.controls_redraw(page.page.locator(".method-panel img.tile").first) == []
    page.shot(shots, "sample-controls")
    assert page.problems == []


def test_method_page_and_a_cluster(open_page, served, shots):
    page = open_page(served.url)
    page.open("#/methods")
    assert page.page.locator(".metric").count() == 5
    assert page.page.locator("#map-agreement td").count() == 9
    page.shot(shots, "methods")
    page.open("#/spray")
    page.page.locator("#spray-classes a").nth(2).click()
    page.ready("#/spray/2")
    assert page.page.locator("#spray-name").text_content() == SCRIPT
    page.page.locator("#clusters .cluster h3").nth(1).click()
    members = page.page.locator("#members .card")
    assert members.count() > 0
    page.shot(shots, "spray")
    members.first.click()
    page.page.wait_for_selector('body[data-ready^="#/sample/"]', state="attached")
    assert page.problems == []


def test_a_text_run_shows_token_heatmaps(open_page, shots):
    run = synthetic_run(20, text=True, seed=2)
    index = next(i for i, words in enumerate(run.table["tokens"]) if "<b>bold</b>" in words)
    running = sl.explore(run, quiet=True)
    try:
        page = open_page(running.url)
        page.open(f"#/sample/{index}")
        tokens = page.page.locator(".method-panel").first.locator(".token")
        assert tokens.all_text_contents() == run.table.at[index, "tokens"]
        before = tokens.first.evaluate("t => getComputedStyle(t).backgroundColor")
        page.page.select_option("#control-cmap", "viridis")
        page.page.wait_for_function(  # the tokens are recoloured after the control's change event
            "before => getComputedStyle(document.querySelector('.method-panel .token')).backgroundColor !== before",
            arg=before,
        )
        assert page.page.locator(".tokens b").count() == 0  # a token '<b>bold</b>' stays text
        page.shot(shots, "text-sample")
        assert page.problems == []
    finally:
        running.stop()


def test_the_static_export_opens_from_disk_and_filters_like_the_server(open_page, served, tmp_path, shots):
    folder = export(synthetic_run(60, seed=1), tmp_path / "site", limit=60)
    page = open_page(folder.as_uri() + "/index.html")
    page.open("#/?correct=false&sort=score&order=desc")
    shown = page.indices()
    live = open_page(served.url)
    live.open("#/?correct=false&sort=score&order=desc")
    expected = live.indices()
    assert shown == expected and shown
    page.open(f"#/sample/{shown[0]}")
    tile = page.page.locator(".method-panel img.tile").first
    before = tile.get_attribute("src")
    page.page.select_option("#control-sign", "absolute")
    assert tile.get_attribute("src") != before
    page.shot(shots, "static-export")
    assert page.problems == [] and live.problems == []
