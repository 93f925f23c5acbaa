"""The explorer on a real run store (``sl.run`` + SpRAy on watermarked digits) in Debian's Chromium.

The store is the ``digits_run`` fixture of ``conftest.py``: the watermark CNN's
45 test 7s (18 of them watermarked) and 8 samples of every other digit,
``gradient_x_input`` and ``integrated_gradients`` with the deletion, insertion
and sparseness checks, and a SpRAy analysis. Screenshots are printed (``-s``).
"""

from __future__ import annotations

import pytest
from helpers import needs_chromium

import saliencelab as sl

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(digits_run):
    running = sl.explore(digits_run.run.path, quiet=True)
    yield running
    running.stop()


def test_grid_filter_sort_and_a_sample_whose_controls_redraw_its_maps(open_page, served, digits_run, shots):
    run = digits_run.run
    page = open_page(served.url)
    page.open("#/")
    assert page.page.locator("#total").text_content().startswith(f"{run.n} samples")
    page.shot(shots, "real-grid")
    page.page.select_option("#filter-label", "7")
    page.ready("#/?label=7")
    assert set(page.cards()) == {"7"} and len(page.cards()) == int((run.table["label"] == 7).sum())
    page.page.select_option("#sort", "integrated_gradients.deletion_auc")
    page.ready("#/?label=7&sort=integrated_gradients.deletion_auc")
    page.page.select_option("#filter-method", "integrated_gradients")
    page.ready("#/?label=7&sort=integrated_gradients.deletion_auc&method=integrated_gradients")
    sevens = run.table[run.table["label"] == 7].sort_values("integrated_gradients.deletion_auc", kind="stable")
    assert page.indices() == sevens["index"].tolist()
    assert page.sort_values() == pytest.approx(sevens["integrated_gradients.deletion_auc"].tolist(), abs=5e-4)
    page.shot(shots, "real-grid-sevens-by-deletion")
    first = page.page.locator("#grid .card").first
    index = int(first.get_attribute("data-index"))
    first.click()
    page.ready(f"#/sample/{index}")
    assert page.page.locator("#sample-label").text_content() == "7"
    panels = page.page.locator(".method-panel")
    assert [panels.nth(k).get_attribute("data-method") for k in range(panels.count())] == run.methods
    shown = page.page.locator(".method-panel").nth(1).locator("table.checks td").all_text_contents()
    assert shown[shown.index("deletion_auc") + 1] == f"{run.table.at[index, 'integrated_gradients.deletion_auc']:.3f}"
    page.shot(shots, "real-sample")
    assert page.controls_redraw(panels.first.locator("img.tile")) == []
    page.shot(shots, "real-sample-controls")
    assert page.problems == []


def test_the_spray_view_of_the_sevens_shows_the_watermark_cluster(open_page, served, digits_run, shots):
    page = open_page(served.url)
    page.open("#/spray")
    page.page.locator('#spray-classes a[data-key="7"]').click()
    page.ready("#/spray/7")
    assert page.page.locator("#spray-name").text_content() == "7"
    sizes = digits_run.run.analysis[7]["sizes"]
    clusters = page.page.locator("#clusters .cluster")
    assert clusters.count() == len(sizes) >= 2
    marked = next(c for c, size in sizes.items() if size == len(digits_run.watermarked))
    page.page.locator(f'#clusters .cluster[data-cluster="{marked}"] h3').click()
    members = page.page.locator("#members .card")
    shown = {int(i) for i in members.evaluate_all("cards => cards.map(c => c.dataset.index)")}
    assert shown == digits_run.watermarked
    page.page.wait_for_load_state("networkidle")
    assert page.page.locator("#mean-map").evaluate("img => img.complete && img.naturalWidth > 0")
    page.shot(shots, "real-spray-sevens")
    members.first.click()
    page.page.wait_for_selector('body[data-ready^="#/sample/"]', state="attached")
    assert page.problems == []


def test_a_text_run_shows_the_heatmap_of_its_real_tokens_as_text(open_page, text_run, shots):
    run = text_run.run
    index = next(i for i, tokens in enumerate(run.table["tokens"]) if text_run.nasty_token in list(tokens))
    running = sl.explore(run, quiet=True)
    try:
        page = open_page(running.url)
        page.open("#/")
        shown = page.page.locator("#grid .card .text").nth(index).text_content()
        assert shown == " ".join(run.table.at[index, "tokens"])
        page.open(f"#/sample/{index}")
        tokens = page.page.locator(".method-panel").first.locator(".token")
        assert tokens.all_text_contents() == list(run.table.at[index, "tokens"])
        colours = tokens.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)")
        assert len(set(colours)) > 1  # a heatmap, not one colour
        page.page.select_option("#control-cmap", "viridis")
        page.page.wait_for_function(  # the tokens are recoloured after the control's change event
            "before => getComputedStyle(document.querySelector('.method-panel .token')).backgroundColor !== before",
            arg=colours[0],
        )
        assert page.page.locator(".tokens img").count() == 0  # the token '<img src=x onerror=...>' stays text
        page.shot(shots, "real-text-sample")
        assert page.problems == []
    finally:
        running.stop()
