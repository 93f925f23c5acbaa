"""The demo: every method on digits and faces, the report it writes, opened in headless Chromium."""

from __future__ import annotations

import pytest
from helpers import image_widths_in_chromium, needs_chromium

import saliencelab as sl
from saliencelab.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, inputs=3, progress=False)


@pytest.mark.slow
def test_every_method_runs_on_both_data_sets_with_its_checks(demo):
    _, rows = demo
    assert [(row["data set"], row["method"]) for row in rows] == [
        (data, method) for data in ("Digits", "Faces") for method in sl.available_methods()
    ]
    by_method = {(row["data set"], row["method"]): row for row in rows}
    for data in ("Digits", "Faces"):  # Adebayo et al.: the gradient and Grad-CAM depend on the model's weights
        for method in ("gradient", "grad_cam"):
            assert "model randomisation" not in by_method[data, method]["checks"].split("fails:")[-1]
    # Adebayo et al.: Guided Backprop's maps barely change as the top layers are randomised
    assert "passes: model randomisation" not in by_method["Digits", "guided_backprop"]["checks"]
    # Meaningful Perturbation's mask moves on every digit, the confident ones included (it optimises the log-odds)
    assert by_method["Digits", "meaningful_perturbation"]["degenerate maps"] == 0
    for row in rows:  # a constant map passes nothing
        if row["degenerate maps"]:
            assert "passes" not in row["checks"] and "constant map on" in row["checks"], row


@pytest.mark.slow
@needs_chromium
def test_the_report_opens_in_chromium_with_every_image_loaded(demo):
    out, _ = demo
    page = out / "index.html"
    widths = image_widths_in_chromium(page)
    assert len(widths) == page.read_text().count("<img ") == 6  # per data set: grid, randomisation, curves
    assert all(width > 100 for width in widths.values()), widths
