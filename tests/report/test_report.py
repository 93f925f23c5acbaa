"""The HTML report: verdicts from the numbers beside them, a self-contained page, every image loading in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import image_widths_in_chromium, needs_chromium

import saliencelab as sl
from saliencelab.report import verdicts, write_report


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory) -> tuple[Path, sl.report.Analysis]:
    model = sl.zoo.load("digits_cnn")
    _, _, x, y = sl.zoo.dataset("digits")
    methods = {"gradient": {}, "integrated_gradients": {"steps": 64}, "grad_cam": {"layer": "features.3"}}
    analysis = sl.report.analyse(
        model, x[:3], methods=methods, target=y[:3], title="Digits <test>", axioms=True, progress=False
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


def test_the_page_shows_the_numbers_its_verdicts_come_from(digits_report):
    page, analysis = digits_report
    html = page.read_text()
    for name, result in analysis.methods.items():
        assert f"<td>{result.seconds:.3f}</td>" in html
        assert f"<td>{result.deletion.auc.mean():.3f}</td>" in html
        assert f"<td>{result.randomization['similarity'].mean():.2f}</td>" in html
        passed = verdicts(analysis, name)
        assert len(passed) >= 3
    row = re.search(r"<tr><td>integrated_gradients</td>.*?</tr>", html, re.S).group(0)
    shown = row.count("✓ passes") + row.count("✗ fails") + row.count("? inconclusive")
    assert shown == len(verdicts(analysis, "integrated_gradients"))
    assert verdicts(analysis, "integrated_gradients")["completeness"].passed  # 64 midpoint steps on the digits CNN
    axioms = re.search(r"<h3>Axioms</h3>.*?</table>", html, re.S).group(0)
    assert axioms.count("<tr>") == 1 + len(sl.evaluate.PROPERTIES)


def test_gradient_maps_decorrelate_under_model_randomisation_in_the_report(digits_report):
    _, analysis = digits_report
    assert verdicts(analysis, "gradient")["model randomisation"].passed  # Adebayo et al.: the gradient passes


def test_an_empty_report_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one Analysis"):
        write_report([], tmp_path)


@needs_chromium
def test_every_image_loads_in_headless_chromium(digits_report):
    page, _ = digits_report
    widths = image_widths_in_chromium(page)
    assert len(widths) == page.read_text().count("<img ") == 3  # grid, randomisation, deletion/insertion
    assert all(width > 100 for width in widths.values()), widths
