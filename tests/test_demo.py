"""The demo: every method on digits, faces and a table, the report it writes, opened in headless Chromium."""

from __future__ import annotations

import re

import pytest
from helpers import needs_chromium, open_in_chromium, screenshot_in_chromium

import saliencelab as sl
from saliencelab.demo import TEXT_METHODS, _text_available, run_demo

PLOTS = ("-randomization.png", "-faithfulness.png")
"""The small-multiple figures of each section."""
SECTIONS = ("Digits", "Faces", "Breast cancer")
SPATIAL = {name for name in sl.available_methods() if "cam" in name} | {
    "meaningful_perturbation",
    "rise",
    "visual_backprop",
}
"""The methods that need spatial inputs (images): the library refuses table rows for them."""
TEXT = int(_text_available())
"""Whether the demo has its text section (transformers installed)."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, inputs=3, progress=False)


def outcomes(checks: str) -> dict[str, list[str]]:
    """The demo's checks text, e.g. 'passes: deletion · fails: model randomisation', as outcome -> checks."""
    parts = checks.split(" (constant map")[0].split(" · ")
    return {label: names.split(", ") for label, names in (part.split(": ", 1) for part in parts)}


@pytest.mark.slow
def test_every_method_runs_on_every_data_set_with_its_checks(demo):
    _, all_rows = demo
    rows = [row for row in all_rows if row["data set"] in SECTIONS]
    assert [(row["data set"], row["method"]) for row in rows] == [
        (data, method) for data in SECTIONS for method in sl.available_methods()
    ]
    text = {row["method"]: row["checks"] for row in all_rows if row["data set"] not in SECTIONS}
    if TEXT:  # MiniLM: the methods at the embeddings and over tokens, DeepLIFT and LRP through the cosine too
        assert sorted(text) == sorted(TEXT_METHODS)
        assert [name for name, checks in text.items() if checks.startswith("not run: ")] == []
    by_method = {(row["data set"], row["method"]): row for row in rows}
    not_run = {row["method"] for row in rows if row["checks"].startswith("not run: ")}
    assert not_run == SPATIAL
    refused = by_method["Breast cancer", "grad_cam"]["checks"]
    assert refused == "not run: CAM methods explain inputs with spatial dimensions (N, C, H, W)"
    # on the table, the gradient depends on the weights too; every method that ran got a map with a deletion AUC
    assert "model randomisation" not in outcomes(by_method["Breast cancer", "gradient"]["checks"]).get("fails", [])
    for name in set(sl.available_methods()) - SPATIAL:
        assert 0.0 <= by_method["Breast cancer", name]["deletion AUC"] <= 1.0
    for data in ("Digits", "Faces"):  # Adebayo et al.: the gradient and Grad-CAM depend on the model's weights
        for method in ("gradient", "grad_cam"):
            assert "model randomisation" not in outcomes(by_method[data, method]["checks"]).get("fails", [])
    # Adebayo et al.: Guided Backprop's maps barely change as the top layers are randomised
    assert "model randomisation" not in outcomes(by_method["Digits", "guided_backprop"]["checks"]).get("passes", [])
    # Meaningful Perturbation's mask moves on every digit, the confident ones included (it optimises the log-odds)
    assert by_method["Digits", "meaningful_perturbation"]["degenerate maps"] == 0
    for row in rows:  # a constant map passes nothing
        if row["checks"].startswith("not run: "):
            continue
        if row["degenerate maps"]:
            assert "passes" not in row["checks"] and "constant map on" in row["checks"], row


@pytest.mark.slow
@needs_chromium
def test_the_report_opens_in_chromium_with_every_image_loaded(demo, tmp_path):
    out, _ = demo
    page = out / "index.html"
    view = open_in_chromium(page, width=1280, height=800)
    assert view.scroll_width <= view.client_width <= view.inner_width == 1280  # no sideways scrolling, every method
    methods, inputs = len(sl.available_methods()), 3
    per_section = inputs + 2 * methods * inputs + 2  # inputs, maps (thumbnail and overlay), two small-multiple plots
    html = page.read_text()
    # the table: its two plots, bars in HTML; the text section: its faithfulness plot, heatmaps in HTML
    assert len(view.images) == html.count("<img ") == 2 * per_section + 2 + TEXT
    ran = methods - len(SPATIAL)
    assert html.count('<ol class="bars">') == html.count('<ol class="bars large">') == ran * inputs
    description = re.search(r'<section id="breast-cancer">.*?<p class="note">', html, re.S).group(0)
    assert all(name in description for name in SPATIAL)  # the methods left out are listed
    assert all(width > 0 for _, width, _ in view.images), [image for image in view.images if not image[1]]
    assert view.small_text == []  # no shown text under 11 px
    plots = [(loaded, shown) for source, loaded, shown in view.images if source.endswith(PLOTS)]
    assert plots and all(shown == loaded for loaded, shown in plots)  # at natural size: 9-pt text is 12.5 px
    assert len(view.label_sizes) >= 2 * methods and min(view.label_sizes) >= 11
    print("screenshot:", screenshot_in_chromium(page, tmp_path / "demo-1280x800.png"))


def test_the_text_section_explains_sentence_pairs_with_escaped_heatmaps_and_verdicts(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from saliencelab import demo as module

    monkeypatch.setattr(module, "DATA", ())  # the text section alone
    monkeypatch.setattr(module, "PAIRS", (("Tom & Jerry <3 cheese.", "A cat chases a mouse."), module.PAIRS[1]))
    monkeypatch.setitem(module.TEXT_METHODS, "guided_backprop", {})  # MiniLM's GELU: refused, and listed so
    rows = run_demo(tmp_path, inputs=2, methods=["gradient", "feature_ablation", "guided_backprop"], progress=False)
    assert [(row["data set"], row["method"]) for row in rows] == [
        (module.TEXT_TITLE, name) for name in ("gradient", "feature_ablation", "guided_backprop")  # in the order asked
    ]
    by_method = {row["method"]: row for row in rows}
    assert by_method["guided_backprop"]["checks"].startswith("not run: guided_backprop has no rule for the operation")
    for name in ("gradient", "feature_ablation"):
        found = outcomes(by_method[name]["checks"])
        assert sorted(sum(found.values(), [])) == ["deletion", "insertion"]  # text: no randomisation checks
        assert -1.0 <= by_method[name]["deletion AUC"] <= 1.0  # a cosine similarity
    html = (tmp_path / "index.html").read_text()
    assert html.count('<span class="sl-tokens"') == 2 * 2  # two methods, two pairs
    assert "&amp;" in html and "&lt;" in html and "<3" not in html  # the tokens '&' and '<' are escaped
    assert (tmp_path / "images" / "sentence-similarity-minilm-faithfulness.png").is_file()


def test_without_transformers_the_text_section_is_skipped_with_one_line(tmp_path, monkeypatch, capsys):
    import sys

    from saliencelab import demo as module

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers raises ImportError
    monkeypatch.setattr(module, "DATA", module.DATA[2:])  # the table section alone: quick
    rows = run_demo(tmp_path, inputs=2, methods=["gradient"], progress=False)
    assert [row["data set"] for row in rows] == ["Breast cancer"]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "The text section (Sentence similarity (MiniLM)) was skipped: it needs transformers; install it with "
        'pip install "saliencelab[transformers]"'
    ]
