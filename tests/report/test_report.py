"""The HTML report: verdicts from the numbers beside them, a self-contained page that reads at 1280×800 in Chromium."""

from __future__ import annotations

import dataclasses
import html as html_text
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import needs_chromium, open_in_chromium, screenshot_in_chromium
from PIL import Image

import saliencelab as sl
from saliencelab.report import verdicts, write_report

INPUTS = 3
METHODS = {
    "gradient": {},
    "integrated_gradients": {"steps": 64},
    "grad_cam": {"layer": "features.3"},
    "rise": {"samples": 64},
}


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory) -> tuple[Path, sl.report.Analysis]:
    model = sl.zoo.load("digits_cnn")
    _, _, x, y = sl.zoo.dataset("digits")
    analysis = sl.report.analyse(
        model, x[:INPUTS], methods=METHODS, target=y[:INPUTS], title="Digits <test>", axioms=True, progress=False
    )
    return write_report([analysis], tmp_path_factory.mktemp("report")), analysis


def test_the_page_is_self_contained_and_every_image_is_a_file_beside_it(digits_report):
    page, _ = digits_report
    html = page.read_text()
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources, "the page shows no image"
    assert all((page.parent / source).is_file() for source in sources)
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing may be fetched from the network"
    assert "<script" not in html
    assert "Digits &lt;test&gt;" in html and "Digits <test>" not in html  # text is escaped


def test_every_map_is_its_own_png_and_opens_large_on_click(digits_report):
    page, analysis = digits_report
    html = page.read_text()
    for name in METHODS:
        for index in range(INPUTS):
            anchor = f"digits-test--{name}--{index}"
            assert f'<a href="#{anchor}"' in html  # the thumbnail links to its overlay
            overlay = re.search(rf'<div class="lightbox" id="{anchor}">.*?</figure></div>', html, re.S).group(0)
            assert f'src="images/digits-test-{name}-{index}.png"' in overlay
            assert 'class="colourbar"' in overlay
    for index in range(INPUTS):  # 8×8 inputs as 32-pixel blocks
        assert Image.open(page.parent / f"images/digits-test-input-{index}.png").size == (256, 256)


def test_the_page_shows_the_numbers_its_verdicts_come_from(digits_report):
    page, analysis = digits_report
    html = page.read_text()
    for name, result in analysis.methods.items():
        assert f"<td>{result.seconds:.3f}</td>" in html
        assert f"<td>{result.deletion.auc.mean():.3f}</td>" in html
        assert f"<td>{result.randomization['similarity'].mean():.2f}</td>" in html
        assert len(verdicts(analysis, name)) >= 3
    found = verdicts(analysis, "integrated_gradients")
    row = re.search(r"<tr><td>integrated_gradients</td>.*?</tr>", html, re.S).group(0)
    badges = re.findall(
        r'<span class="badge (\w+)" title="([^"]*)">(.) (\w+)</span><span class="interval">([^<]*)<', row
    )
    assert [(outcome, mark) for outcome, _, _, mark, _ in badges] == [
        (v.outcome, sl.report.render.MARKS[check]) for check, v in found.items()
    ]
    for (_, tooltip, _, _, interval), verdict in zip(badges, found.values(), strict=True):
        assert interval == verdict.interval
        text = html_text.unescape(tooltip)
        assert verdict.interval in text and verdict.test in text and verdict.reason[1:] in text
    assert found["completeness"].passed  # 64 midpoint steps on the digits CNN


def test_the_legend_gives_the_thresholds_and_the_random_rankings(digits_report):
    page, analysis = digits_report
    legend = re.search(r'<details class="legend".*?</details>', page.read_text(), re.S).group(0)
    limits = analysis.thresholds
    assert f"below {limits.decorrelated:g}" in legend and f"margin {limits.margin:g}" in legend
    assert f"{analysis.rankings} seeded random pixel rankings" in legend
    assert f"{limits.confidence:.0%} Student-t interval" in legend


def test_the_axiom_table_has_methods_as_rows(digits_report):
    page, _ = digits_report
    axioms = re.search(r'<h3 id="digits-test--axioms">Axioms</h3>.*?</table>', page.read_text(), re.S).group(0)
    assert axioms.count("<tr>") == 1 + len(METHODS)
    header = re.search(r"<tr>.*?</tr>", axioms, re.S).group(0)
    assert header.count("<th>") == len(sl.evaluate.PROPERTIES)  # plus the method column's <th class="method">


def test_rise_is_shown_relative_to_its_mean(digits_report):
    page, analysis = digits_report
    assert bool((analysis.methods["rise"].maps > 0).all())  # expected scores: drawn as they are, all one colour
    row = re.search(r'<tr id="digits-test--rise">.*?</tr>', page.read_text(), re.S).group(0)
    assert "relative to the mean" in row
    pixels = np.asarray(Image.open(page.parent / "images/digits-test-rise-0.png"), dtype=int)
    reddish, bluish = pixels[..., 0] > pixels[..., 2], pixels[..., 2] > pixels[..., 0]
    assert reddish.any() and bluish.any()  # above and below the mean


def test_a_constant_map_says_so_on_every_badge(digits_report, tmp_path):
    _, analysis = digits_report
    result = analysis.methods["gradient"]
    blank = dataclasses.replace(result, maps=torch.zeros_like(result.maps), degenerate=torch.ones(INPUTS, dtype=bool))
    html = write_report([dataclasses.replace(analysis, methods={"gradient": blank})], tmp_path).read_text()
    row = re.search(r'<tr id="digits-test--gradient">.*?</tr>', html, re.S).group(0)
    assert row.count("(constant map)") == len(verdicts(analysis, "gradient")) > 0
    assert row.count("constant map</span>") >= INPUTS
    assert "Degenerate map (constant) on inputs 0, 1, 2" in row  # the reason, in the tooltip


def test_sections_without_methods_render_and_repeated_titles_get_their_own_anchors(digits_report, tmp_path):
    _, analysis = digits_report
    empty = dataclasses.replace(analysis, methods={})
    html = write_report([empty, empty], tmp_path).read_text()
    assert re.findall(r'<section id="([^"]+)">', html) == ["digits-test", "digits-test-2"]
    assert "Model randomisation</h3>" not in html and "Deletion and insertion</h3>" not in html
    assert "--randomization" not in html and "--faithfulness" not in html  # nor links to them
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == sorted(
        f"digits-test{suffix}-input-{index}.png" for suffix in ("", "-2") for index in range(INPUTS)
    )


def test_an_empty_report_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one Analysis"):
        write_report([], tmp_path)


@needs_chromium
def test_the_report_reads_at_1280_by_800_in_headless_chromium(digits_report, tmp_path):
    page, _ = digits_report
    view = open_in_chromium(page, width=1280, height=800)
    assert view.scroll_width <= view.client_width <= view.inner_width == 1280  # no horizontal scrolling of the page
    thumbnails = INPUTS + 2 * len(METHODS) * INPUTS  # inputs; each map as a thumbnail and in its overlay
    assert len(view.images) == page.read_text().count("<img ") == thumbnails + 2  # + randomisation, deletion
    assert all(width > 0 for _, width, _ in view.images), view.images
    assert view.small_text == []  # no shown text under 11 px
    plots = [
        (loaded, shown)
        for source, loaded, shown in view.images
        if source.endswith(("-randomization.png", "-faithfulness.png"))
    ]
    assert plots and all(shown == loaded for loaded, shown in plots)  # at natural size: 9-pt text is 12.5 px
    assert len(view.label_sizes) >= len(METHODS) * 4 and min(view.label_sizes) >= 11
    print("screenshot:", screenshot_in_chromium(page, tmp_path / "report-1280x800.png"))


TABLE_METHODS = {"gradient": {}, "integrated_gradients": {"steps": 32}, "occlusion": {"window": 1}}


@pytest.fixture(scope="module")
def table_report(tmp_path_factory) -> tuple[Path, sl.report.Analysis]:
    model = sl.zoo.load("breast_cancer_mlp")
    _, _, x, y = sl.zoo.dataset("breast_cancer")
    names = sl.zoo.feature_names("breast_cancer")
    analysis = sl.report.analyse(
        model,
        x[:INPUTS],
        methods=TABLE_METHODS,
        target=y[:INPUTS],
        title="Patients",
        feature_names=names,
        shuffled_model=sl.zoo.load("breast_cancer_mlp", labels="shuffled"),
        progress=False,
    )
    return write_report([analysis], tmp_path_factory.mktemp("table")), analysis


def test_a_table_row_map_is_drawn_as_bars_of_its_largest_features(table_report):
    page, analysis = table_report
    html = page.read_text()
    top = sl.report.render.TOP_FEATURES
    assert analysis.feature_names == sl.zoo.feature_names("breast_cancer")
    for name, result in analysis.methods.items():
        row = re.search(rf'<tr id="patients--{name}">.*?</tr>', html, re.S).group(0)
        charts = re.findall(r'<ol class="bars">(.*?)</ol>', row, re.S)
        assert len(charts) == INPUTS
        for index, (chart, values) in enumerate(zip(charts, result.maps, strict=True)):
            order = values.abs().argsort(descending=True, stable=True)
            shown = [html_text.unescape(n) for n in re.findall(r'<span class="feature">([^<]*)</span>', chart)]
            assert shown == [analysis.feature_names[i] for i in order[:top]]
            widths = [float(w) for w in re.findall(r'style="width: ([0-9.]+)%"', chart)]
            assert widths[0] == 50.0 and widths == sorted(widths, reverse=True)  # the largest |value| fills half
            overlay = re.search(rf'<div class="lightbox" id="patients--{name}--{index}">.*?</div>', html, re.S)
            values_shown = re.findall(r'<span class="value">([^<]*)</span>', overlay.group(0))
            assert values_shown == [f"{float(values[i]):.3g}" for i in order]  # every feature, with its value
    assert sorted(path.name for path in (page.parent / "images").iterdir()) == [
        "patients-faithfulness.png",
        "patients-randomization.png",
    ]  # no tiles: neither the rows nor the maps are images
    assert "most attributed features are deleted" in html and "random feature rankings" in html


def test_feature_names_must_fit_table_rows():
    model = sl.zoo.load("breast_cancer_mlp")
    _, _, x, _ = sl.zoo.dataset("breast_cancer")
    shared = {"methods": {}, "title": "t", "randomization": False, "faithfulness": False, "progress": False}
    with pytest.raises(ValueError, match=r"got 2 names for 30 features; give one name per feature"):
        sl.report.analyse(model, x[:2], feature_names=["a", "b"], **shared)
    with pytest.raises(ValueError, match=r"got a string for 30 features"):
        sl.report.analyse(model, x[:2], feature_names="a" * 30, **shared)
    digits = sl.zoo.load("digits_cnn")
    images = sl.zoo.dataset("digits")[2][:2]
    with pytest.raises(ValueError, match=r"feature_names name the features of table rows \(N, D\)"):
        sl.report.analyse(digits, images, feature_names=["a"] * 64, **shared)


@needs_chromium
def test_a_table_report_reads_at_1280_by_800_in_headless_chromium(table_report, tmp_path):
    page, _ = table_report
    view = open_in_chromium(page, width=1280, height=800)
    assert view.scroll_width <= view.client_width <= view.inner_width == 1280
    assert len(view.images) == 2 and all(width > 0 for _, width, _ in view.images)  # the two curve figures
    assert view.small_text == []  # the feature names included
    print("screenshot:", screenshot_in_chromium(page, tmp_path / "table-1280x800.png"))
