"""Heatmaps: signs, aggregations, percentile clipping, colours of zero, and the all-zero map."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from saliencelab import viz

SIGNED = torch.tensor([[1.0, -2.0], [0.0, 3.0]])


@pytest.mark.parametrize(
    ("sign", "expected"),
    [
        ("all", [[1.0, -2.0], [0.0, 3.0]]),
        ("positive", [[1.0, 0.0], [0.0, 3.0]]),
        ("negative", [[0.0, 2.0], [0.0, 0.0]]),
        ("absolute", [[1.0, 2.0], [0.0, 3.0]]),
    ],
)
def test_each_sign_keeps_exactly_its_pixels(sign, expected):
    image = viz.heatmap(SIGNED, sign=sign, percentile=100).images[0]
    assert image.get_array().tolist() == expected
    top = float(np.abs(expected).max())
    assert image.get_clim() == ((-top, top) if sign == "all" else (0.0, top))


def test_each_aggregation_equals_its_closed_form():
    # seed 002_7d5c35c1670a97af.txt: max-abs (Simonyan et al.) and sum-abs (Sundararajan et al.) over channels
    values = np.random.default_rng(1).normal(size=(3, 6, 7))
    forms = {
        "sum": values.sum(0),
        "sum_abs": np.abs(values).sum(0),
        "max_abs": np.abs(values).max(0),
        "l2": np.sqrt((values**2).sum(0)),
    }
    for how, expected in forms.items():
        drawn = viz.heatmap(values, aggregate=how).images[0].get_array()
        np.testing.assert_allclose(drawn, expected, rtol=1e-12, atol=0)


def test_negative_sign_needs_a_signed_aggregation():
    with pytest.raises(ValueError, match="aggregate='sum'"):
        viz.heatmap(SIGNED, sign="negative", aggregate="max_abs")
    with pytest.raises(ValueError, match="unknown sign"):
        viz.heatmap(SIGNED, sign="pos")
    with pytest.raises(ValueError, match="unknown channel aggregation"):
        viz.heatmap(SIGNED, aggregate="mean")
    with pytest.raises(ValueError, match=r"percentile must be in \(0, 100\]"):
        viz.heatmap(SIGNED, percentile=0)


@pytest.mark.parametrize("sign", ["all", "positive", "absolute"])
@pytest.mark.parametrize("percentile", [50.0, 99.0, 99.5])
def test_the_colour_scale_saturates_at_numpys_percentile(sign, percentile):
    values = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2)).double()
    values[0, 0, 0] = 1000.0  # an outlier
    image = viz.heatmap(values, sign=sign, percentile=percentile).images[0]
    drawn = np.asarray(image.get_array())
    limit = np.percentile(np.abs(drawn), percentile)
    low, high = image.get_clim()
    assert high == pytest.approx(limit, rel=1e-12)
    assert low == (-high if sign == "all" else 0.0)
    colours = image.to_rgba(drawn, bytes=True)
    at_limit = image.to_rgba(np.array([[limit]]), bytes=True)[0, 0]
    np.testing.assert_array_equal(colours[0, 0], at_limit)  # the outlier gets the colour of the limit


def test_a_sparse_map_is_scaled_by_its_largest_value():
    values = torch.zeros(40, 40)
    values[3, 4] = -5.0  # 1 pixel in 1600: the 99.5th percentile is 0
    assert viz.heatmap(values).images[0].get_clim() == (-5.0, 5.0)


def test_default_colours_zero_white_signed_blue_to_red():
    image = viz.heatmap(torch.tensor([[-1.0, 0.0, 1.0]]), percentile=100).images[0]
    colours = image.to_rgba(image.get_array(), bytes=True)[0, :, :3].tolist()
    assert colours == [[0x21, 0x66, 0xAC], [255, 255, 255], [0xB2, 0x18, 0x2B]]


COMBINATIONS = [
    (sign, how)
    for sign in ("all", "positive", "negative", "absolute")
    for how in ("sum", "sum_abs", "max_abs", "l2")
    if sign != "negative" or how == "sum"
]


@pytest.mark.parametrize(("sign", "aggregate"), COMBINATIONS)
def test_an_all_zero_map_draws_white_without_warnings(sign, aggregate):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = viz.heatmap(torch.zeros(3, 5, 6), sign=sign, aggregate=aggregate, colorbar=True)
        image = ax.images[0]
        assert np.all(image.to_rgba(image.get_array(), bytes=True) == 255)
        ax.figure.canvas.draw()
    assert ax.images[0].get_clim() == ((-1.0, 1.0) if sign == "all" else (0.0, 1.0))


def test_the_whole_rendered_zero_map_is_white():
    ax = viz.heatmap(np.zeros((6, 9)), colorbar=False)
    ax.figure.canvas.draw()
    assert np.all(np.asarray(ax.figure.canvas.buffer_rgba()) == 255)  # no ticks, no frame, white image


def test_options_given_to_the_axes():
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2)
    ax = viz.heatmap(SIGNED, ax=right, cmap="viridis", colorbar=True, title="m")
    assert ax is right and ax.get_title() == "m" and ax.images[0].get_cmap().name == "viridis"
    assert len(figure.axes) == 3  # two panels and the colour bar
    with pytest.raises(ValueError, match="unknown colour map"):
        viz.heatmap(SIGNED, cmap="no_such_map")


@pytest.mark.parametrize(("sign", "expected"), [("all", (-3.0, 3.0)), ("absolute", (0.0, 3.0))])
def test_the_colour_bar_is_on_by_default_and_spans_the_colour_limits(sign, expected):
    values = torch.tensor([[3.0, -1.0], [0.5, 0.0]])
    ax = viz.heatmap(values, sign=sign, percentile=100)
    (bar,) = [other for other in ax.figure.axes if other is not ax]
    assert bar.get_ylim() == pytest.approx(expected) == ax.images[0].get_clim()
    assert len(viz.heatmap(values, colorbar=False).figure.axes) == 1
