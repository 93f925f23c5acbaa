"""Deletion / insertion curves and the model-randomisation curve: the drawn numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from saliencelab import viz


def test_curves_draw_the_mean_with_a_one_std_band():
    x = np.linspace(0.0, 1.0, 5)
    scores = np.random.default_rng(4).uniform(size=(6, 5))
    ax = viz.curves(x, {"gradient": torch.from_numpy(scores), "single": scores[0]}, xlabel="removed", ylabel="p")
    mean, std = scores.mean(0), scores.std(0)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), x)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean, rtol=1e-12)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), scores[0])
    assert len(ax.collections) == 1  # one band: a single curve has none
    vertices = ax.collections[0].get_paths()[0].vertices
    for position, low, high in zip(x, mean - std, mean + std, strict=True):
        at = np.sort(vertices[np.isclose(vertices[:, 0], position), 1])
        assert at.min() == pytest.approx(low) and at.max() == pytest.approx(high)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["gradient", "single"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("removed", "p")


def test_curves_without_band_and_errors():
    ax = viz.curves([0, 1, 2], {"a": np.ones((3, 3))}, band=None)
    assert len(ax.collections) == 0
    with pytest.raises(ValueError, match=r"expected \(N, 3\) or \(3,\)"):
        viz.curves([0, 1, 2], {"a": np.ones((3, 4))})
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.curves([0, 1, 2], {"a": np.array([1.0, np.nan, 0.0])})
    with pytest.raises(ValueError, match="band must be"):
        viz.curves([0, 1, 2], {"a": np.ones(3)}, band="sem")
    with pytest.raises(ValueError, match="ys is empty"):
        viz.curves([0, 1, 2], {})


def test_randomization_curve_starts_at_the_original_and_averages_samples():
    df = pd.DataFrame(
        {
            "method": ["gradient"] * 4 + ["lrp"] * 4,
            "layer": ["fc", "fc", "conv", "conv"] * 2,
            "similarity": [0.8, 0.6, 0.2, 0.0, 0.9, 0.9, 0.9, 0.7],
        }
    )
    ax = viz.randomization_curve(df, title="cascading")
    assert [label.get_text() for label in ax.get_xticklabels()] == ["original", "fc", "conv"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.7, 0.1])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.9, 0.8])
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 1, 2])
    vertices = ax.collections[0].get_paths()[0].vertices  # the band: mean +- std (ddof=0) per layer
    for position, spread in ((0, [1.0, 1.0]), (1, [0.6, 0.8]), (2, [0.0, 0.2])):
        at = vertices[np.isclose(vertices[:, 0], position), 1]
        assert [at.min(), at.max()] == pytest.approx(spread)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["gradient", "lrp"]


def test_randomization_curve_uses_given_original_rows():
    df = pd.DataFrame({"layer": ["original", "fc"], "similarity": [0.95, 0.3]})
    ax = viz.randomization_curve(df, band=None)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.95, 0.3])
    assert ax.get_legend() is None


def test_randomization_curve_errors():
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['similarity'\]"):
        viz.randomization_curve(pd.DataFrame({"layer": ["fc"]}))
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.randomization_curve(pd.DataFrame({"layer": ["fc"], "similarity": [np.nan]}))
    with pytest.raises(ValueError, match=r"'lrp' has no rows for the layer\(s\) \['conv'\]"):
        viz.randomization_curve(
            pd.DataFrame({"method": ["g", "g", "lrp"], "layer": ["fc", "conv", "fc"], "similarity": [0.5, 0.2, 0.4]})
        )
    with pytest.raises(TypeError, match="pandas DataFrame"):
        viz.randomization_curve({"layer": ["fc"], "similarity": [0.5]})


def test_styled_curves_keep_their_properties_and_no_legend_is_drawn_when_asked():
    ax = viz.curves(
        [0.0, 1.0],
        {"method": [1.0, 0.0], "random": np.array([[1.0, 0.5], [1.0, 0.7]])},
        styles={"random": {"color": "0.45", "linestyle": "--", "marker": ""}},
        legend=False,
    )
    assert ax.get_legend() is None
    assert ax.lines[1].get_color() == "0.45" and ax.lines[1].get_linestyle() == "--"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.6])
    assert ax.collections[0].get_facecolor()[0][:3] == pytest.approx((0.45, 0.45, 0.45))  # the band takes the style


def test_small_multiples_one_panel_per_name_with_one_legend(tmp_path):
    from PIL import Image

    from saliencelab.viz.multiples import small_multiples

    def draw(ax, name):
        viz.curves([0, 1], {"curve": [0.0, float(len(name))]}, ax=ax)
        ax.axhline(0.5, label="threshold")

    figure = small_multiples(["a", "bb", "ccc"], draw, tmp_path / "m.png", columns=2, panel_inches=(2.0, 1.5))
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["a", "bb", "ccc"]
    assert [ax.lines[0].get_ydata()[-1] for ax in panels] == [1.0, 2.0, 3.0]
    assert all(ax.get_legend() is None for ax in panels)
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["curve", "threshold"]
    assert panels[0].get_shared_y_axes().joined(panels[0], panels[2])
    figure.canvas.draw()
    ticked = [any(label.get_visible() and label.get_text() for label in ax.get_xticklabels()) for ax in panels]
    assert ticked == [False, True, True]  # the lowest panel of each column: "bb" has no panel under it
    assert Image.open(tmp_path / "m.png").size == (400, 345)  # 2 × 2.0 in; 2 × 1.5 in + 0.45 in legend; at 100 dpi
    with pytest.raises(ValueError, match="names is empty"):
        small_multiples([], draw)
