"""The explorer in Debian's Chromium, driven by Playwright: every view, every control, no console error.

Screenshots of each view go to a folder under pytest's tmp path (printed; run
with ``-s`` to see the paths). ``benchmarks/bench_explore.py --screenshots docs/``
writes them for the documentation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import needs_chromium

import saliencelab as sl
from saliencelab.explore.export import export
from saliencelab.explore.synthetic import synthetic_run

playwright = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytestmark = [needs_chromium, pytest.mark.slow]

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=shutil.which("chromium"))
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("explorer-screenshots")


class Page:
    """A browser page that records console errors, failed requests and dialogs (an alert would be a script run)."""

    def __init__(self, browser, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.base, self.problems = base, []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.problems.append("dialog: " + d.message), d.dismiss()))

    def open(self, route: str) -> None:
        self.page.goto(self.base + route)
        self.ready(route)

    def ready(self, route: str) -> None:
        self.page.wait_for_selector(f'body[data-ready="{route}"]', state="attached")
        self.page.wait_for_load_state("networkidle")

    def shot(self, folder: Path, name: str) -> None:
        path = folder / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        print("screenshot:", path)


@pytest.fixture(scope="module")
def served():
    running = sl.explore(synthetic_run(60, seed=1), quiet=True)
    yield running
    running.stop()


def indices(page) -> list[int]:
    return [int(i) for i in page.page.locator("#grid .card").evaluate_all("cards => cards.map(c => c.dataset.index)")]


def cards(page) -> list[str]:
    return page.page.locator("#grid .card .label-name").all_text_contents()


def test_filter_sort_and_open_a_sample(browser, served, shots):
    page = Page(browser, served.url)
    page.open("#/")
    assert page.page.locator("#total").text_content().startswith("60 samples")
    page.shot(shots, "grid")
    page.page.select_option("#filter-label", "2")
    page.ready("#/?label=2")
    assert set(cards(page)) == {SCRIPT}
    page.page.select_option("#sort", "gradient.deletion_auc")
    page.ready("#/?label=2&sort=gradient.deletion_auc")
    page.page.select_option("#order", "desc")
    page.ready("#/?label=2&sort=gradient.deletion_auc&order=desc")
    values = [float(t.split("= ")[1]) for t in page.page.locator("#grid .sort-value").all_text_contents()]
    assert values == sorted(values, reverse=True) and len(values) == len(cards(page))
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


def test_each_control_redraws_the_maps(browser, served, shots):
    page = Page(browser, served.url)
    page.open("#/sample/4")
    tile = page.page.locator(".method-panel img.tile").first
    before_url, before_pixels = tile.get_attribute("src"), tile.screenshot()
    changes = [("#control-sign", "absolute"), ("#control-clip", "percentile"), ("#control-cmap", "viridis"),
               ("#control-percentile", "80"), ("#control-opacity", "0.3")]  # fmt: skip
    for selector, value in changes:
        if selector in ("#control-percentile", "#control-opacity"):
            page.page.fill(selector, value)
            page.page.dispatch_event(selector, "change")
        else:
            page.page.select_option(selector, value)
        page.page.wait_for_load_state("networkidle")
        tile.evaluate("img => img.decode()")
        url, pixels = tile.get_attribute("src"), tile.screenshot()
        assert url != before_url and pixels != before_pixels, selector
        before_url, before_pixels = url, pixels
    page.shot(shots, "sample-controls")
    assert page.problems == []


def test_method_page_and_a_cluster(browser, served, shots):
    page = Page(browser, served.url)
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


def test_a_text_run_shows_token_heatmaps(browser, shots):
    run = synthetic_run(20, text=True, seed=2)
    index = next(i for i, words in enumerate(run.table["tokens"]) if "<b>bold</b>" in words)
    running = sl.explore(run, quiet=True)
    try:
        page = Page(browser, running.url)
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


def test_the_static_export_opens_from_disk_and_filters_like_the_server(browser, served, tmp_path, shots):
    folder = export(synthetic_run(60, seed=1), tmp_path / "site", limit=60)
    page = Page(browser, folder.as_uri() + "/index.html")
    page.base = folder.as_uri() + "/index.html"
    page.open("#/?correct=false&sort=score&order=desc")
    shown = indices(page)
    live = Page(browser, served.url)
    live.open("#/?correct=false&sort=score&order=desc")
    expected = indices(live)
    assert shown == expected and shown
    page.open(f"#/sample/{shown[0]}")
    tile = page.page.locator(".method-panel img.tile").first
    before = tile.get_attribute("src")
    page.page.select_option("#control-sign", "absolute")
    assert tile.get_attribute("src") != before
    page.shot(shots, "static-export")
    assert page.problems == [] and live.problems == []
