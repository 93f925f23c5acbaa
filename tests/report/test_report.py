"""The HTML report: verdicts from the numbers beside them, a self-contained page, every image loading in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import image_widths_in_chromium, needs_chromium

import saliencelab as sl
from saliencelab.evaluate.faithfulness import Curve
from saliencelab.report import Analysis, MethodResult, verdicts, write_report
from saliencelab.report.checks import COMPLETE, summary

FRACTIONS = torch.linspace(0, 1, 3)


def curve(*values: float) -> Curve:
    return Curve(torch.tensor([values], dtype=torch.float64), FRACTIONS)


def randomised(*similarities: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": range(1, len(similarities) + 1),
            "layer": [f"layer{i}" for i in range(len(similarities))],
            "method": "m",
            "similarity": similarities,
            "per_sample": [[s] for s in similarities],
        }
    )


def analysis_with(**result: object) -> Analysis:
    inputs = torch.rand(1, 1, 4, 4)
    found = Analysis("t", "", inputs, torch.zeros(1, dtype=torch.long), ["x"])
    found.random_deletion, found.random_insertion = curve(1.0, 0.5, 0.0), curve(0.0, 0.5, 1.0)  # AUC 0.5 each
    found.methods["m"] = MethodResult(torch.zeros(1, 1, 4, 4), 0.1, **result)
    return found


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"randomization": randomised(0.9, 0.05)}, {"model randomisation": True}),  # mean over steps 0.475
        ({"randomization": randomised(0.9, 0.8, 0.1)}, {"model randomisation": False}),  # 0.6: top layers ignored
        ({"data_randomization": torch.tensor([0.1, 0.8])}, {"data randomisation": True}),  # mean 0.45
        ({"data_randomization": torch.tensor([0.4, 0.8])}, {"data randomisation": False}),
        ({"deletion": curve(1.0, 0.0, 0.0)}, {"deletion": True}),  # AUC 0.25 < 0.5
        ({"deletion": curve(1.0, 1.0, 0.0)}, {"deletion": False}),  # AUC 0.75
        ({"insertion": curve(0.0, 1.0, 1.0)}, {"insertion": True}),
        ({"insertion": curve(0.0, 0.0, 1.0)}, {"insertion": False}),
        ({"delta": COMPLETE}, {"completeness": True}),
        ({"delta": COMPLETE * 1.01}, {"completeness": False}),
    ],
)
def test_each_verdict_is_its_stated_comparison(result, expected):
    assert verdicts(analysis_with(**result), "m") == expected


def test_summary_lists_passes_then_failures_in_the_reports_order():
    found = {"completeness": True, "deletion": False, "model randomisation": True}
    assert summary(found) == "passes: model randomisation, completeness · fails: deletion"
    assert summary({}) == "no checks ran"


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
    assert row.count("✓ passes") + row.count("✗ fails") == len(verdicts(analysis, "integrated_gradients"))
    assert verdicts(analysis, "integrated_gradients")["completeness"]  # 64 midpoint steps on the digits CNN
    axioms = re.search(r"<h3>Axioms</h3>.*?</table>", html, re.S).group(0)
    assert axioms.count("<tr>") == 1 + len(sl.evaluate.PROPERTIES)


def test_gradient_maps_decorrelate_under_model_randomisation_in_the_report(digits_report):
    _, analysis = digits_report
    assert verdicts(analysis, "gradient")["model randomisation"]  # seed 000: the gradient passes


def test_an_empty_report_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least one Analysis"):
        write_report([], tmp_path)


@needs_chromium
def test_every_image_loads_in_headless_chromium(digits_report):
    page, _ = digits_report
    widths = image_widths_in_chromium(page)
    assert len(widths) == page.read_text().count("<img ") == 3  # grid, randomisation, deletion/insertion
    assert all(width > 100 for width in widths.values()), widths
