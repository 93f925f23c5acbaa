"""Overlays: blend, mask and scale on the drawn pixels, and the saved panel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from matplotlib.collections import QuadMesh
from PIL import Image
from skimage.color import rgb2gray

from saliencelab import viz
from saliencelab.viz.heatmap import COLORBAR_BAND
from saliencelab.viz.scale import colour_map

GENERATOR = torch.Generator().manual_seed(0)
IMAGE = torch.rand(3, 4, 5, generator=GENERATOR, dtype=torch.float64)
PICTURE = IMAGE.numpy().transpose(1, 2, 0)
GREY = np.repeat(rgb2gray(PICTURE)[..., None], 3, axis=-1)
RED = np.array([0xB2, 0x18, 0x2B]) / 255.0
BLUE = np.array([0x21, 0x66, 0xAC]) / 255.0


def one_hot_map(*points: tuple[int, int, float]) -> torch.Tensor:
    values = torch.zeros(1, 4, 5, dtype=torch.float64)
    for row, column, value in points:
        values[0, row, column] = value
    return values


def test_blend_of_a_zero_map_is_the_image_unchanged_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grey = viz.overlay(IMAGE, torch.zeros(3, 4, 5)).images[0].get_array()
        colour = viz.overlay(IMAGE, torch.zeros(3, 4, 5), greyscale=False).images[0].get_array()
    np.testing.assert_allclose(grey, GREY, rtol=0, atol=1e-15)  # skimage's luminance: the reference
    np.testing.assert_allclose(colour, PICTURE, rtol=0, atol=1e-15)


def test_blend_opacity_is_alpha_times_the_scaled_attribution():
    values = one_hot_map((0, 0, 2.0), (1, 1, -2.0), (2, 2, 1.0))
    drawn = viz.overlay(IMAGE, values, alpha=0.6, percentile=100).images[0].get_array()
    np.testing.assert_allclose(drawn[0, 0], 0.4 * GREY[0, 0] + 0.6 * RED, atol=1e-12)
    np.testing.assert_allclose(drawn[1, 1], 0.4 * GREY[1, 1] + 0.6 * BLUE, atol=1e-12)
    # half the limit: opacity 0.3; the colour is entry int(0.75 * 255) = 191 of the 255-entry map,
    # (191 - 127) / 127 of the way from white (entry 127) to red (entry 254)
    halfway = (np.array([255, 255, 255]) + (np.array([0xB2, 0x18, 0x2B]) - 255) * 64 / 127) / 255.0
    np.testing.assert_allclose(drawn[2, 2], 0.7 * GREY[2, 2] + 0.3 * halfway, atol=1e-12)
    np.testing.assert_allclose(drawn[3, 4], GREY[3, 4], atol=1e-15)


@pytest.mark.parametrize(("sign", "kept"), [("all", [0, 1, 1, 1]), ("positive", [0, 1, 1, 0])])
def test_mask_shows_only_the_pixels_above_the_threshold(sign, kept):
    values = one_hot_map((0, 0, 0.4), (0, 1, 0.6), (0, 2, 1.0), (0, 3, -0.9))
    drawn = viz.overlay(IMAGE, values, mode="mask", sign=sign, threshold=0.5, percentile=100).images[0].get_array()
    assert drawn[0, :4, 3].tolist() == kept
    assert not drawn[1:, :, 3].any()
    np.testing.assert_array_equal(drawn[..., :3], PICTURE)


def test_scale_multiplies_the_pixels_by_the_scaled_attribution():
    # seed 002_7d5c35c1670a97af.txt: "scale the intensities of pixels ... in proportion to their attributions"
    values = one_hot_map((0, 0, 4.0), (0, 1, -2.0), (0, 2, 1.0))
    drawn = viz.overlay(IMAGE, values, mode="scale", percentile=100).images[0].get_array()
    weights = np.zeros((4, 5))
    weights[0, :3] = [1.0, 0.5, 0.25]
    np.testing.assert_allclose(drawn, PICTURE * weights[..., None], atol=1e-15)
    zero = viz.overlay(IMAGE, torch.zeros(1, 4, 5), mode="scale").images[0].get_array()
    assert not zero.any()


@pytest.mark.parametrize(("channels", "colorbar"), [(3, True), (1, True), (3, False)])
def test_path_saves_the_panel_pixel_for_pixel(tmp_path, channels, colorbar):
    # the call the command line makes: overlay(image (C, H, W), values (C, H, W) or (1, H, W), path=png_path)
    image = torch.rand(3, 20, 30, generator=GENERATOR)
    values = torch.randn(channels, 20, 30, generator=GENERATOR)
    path = tmp_path / "sub" / "panel.png"
    drawn = viz.overlay(image, values, path=path, colorbar=colorbar).images[0].get_array()
    saved = np.asarray(Image.open(path))
    scale = 9  # the smallest whole number taking the longer side (30) to at least 256 pixels
    band = COLORBAR_BAND if colorbar else 0  # the colour bar's band at the right
    assert saved.shape == (20 * scale, 30 * scale + band, 4)
    blocks = np.repeat(np.repeat(np.round(drawn * 255), scale, axis=0), scale, axis=1)
    assert np.abs(saved[:, : 30 * scale, :3] - blocks).max() <= 1  # within one 8-bit step of the drawn array
    if colorbar:
        assert saved[:, 30 * scale :, :3].std() > 10  # the bar and its labels, not a blank band


def test_saved_title_and_saved_axes_of_a_larger_figure(tmp_path):
    import matplotlib.pyplot as plt

    viz.overlay(IMAGE, torch.zeros(1, 4, 5), path=tmp_path / "t.png", title="gradient")
    assert Image.open(tmp_path / "t.png").size == (5 * 52 + COLORBAR_BAND, 4 * 52 + 28)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    viz.overlay(IMAGE, torch.zeros(1, 4, 5), ax=right, path=tmp_path / "right.png")
    width, height = Image.open(tmp_path / "right.png").size
    assert 0 < width < 400 and 0 < height < 400  # only the right panel, not the 800x400 figure


def test_overlay_errors():
    with pytest.raises(ValueError, match="map is 4x4 but the image is 4x5"):
        viz.overlay(IMAGE, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="unknown overlay mode"):
        viz.overlay(IMAGE, torch.zeros(1, 4, 5), mode="multiply")
    with pytest.raises(ValueError, match="alpha"):
        viz.overlay(IMAGE, torch.zeros(1, 4, 5), alpha=1.5)
    with pytest.raises(ValueError, match="threshold"):
        viz.overlay(IMAGE, torch.zeros(1, 4, 5), mode="mask", threshold=1.0)
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        viz.overlay(torch.rand(2, 4, 5), torch.zeros(1, 4, 5))


def colour_bar_axes(ax):
    """The axes of ``ax``'s figure other than ``ax``: its colour bar's."""
    return [other for other in ax.figure.axes if other is not ax]


@pytest.mark.parametrize(
    ("sign", "mode", "expected"),
    [("all", "blend", (-2.0, 2.0)), ("absolute", "blend", (0.0, 2.0)), ("all", "scale", (0.0, 2.0))],
)
def test_the_colour_bar_shows_the_scale_used(sign, mode, expected):
    values = one_hot_map((0, 0, 2.0), (1, 1, -1.0))
    ax = viz.overlay(IMAGE, values, sign=sign, mode=mode, percentile=100)  # limit: max |map| = 2
    (bar,) = colour_bar_axes(ax)
    assert bar.get_ylim() == pytest.approx(expected)
    (solids,) = [artist for artist in bar.collections if isinstance(artist, QuadMesh)]
    # the top of the bar: the heatmap's colour at the limit (red when signed), or full brightness for "scale"
    top = colour_map(sign)(1.0)[:3] if mode == "blend" else (1.0, 1.0, 1.0)
    np.testing.assert_allclose(solids.cmap(1.0)[:3], top, atol=1e-12)
    if (sign, mode) == ("all", "blend"):
        np.testing.assert_allclose(top, RED, atol=1e-12)
    drawn = viz.overlay(IMAGE, values, sign=sign, mode=mode, percentile=100, colorbar=False)
    assert colour_bar_axes(drawn) == []


def test_the_mask_colour_bar_marks_the_threshold():
    ax = viz.overlay(IMAGE, one_hot_map((0, 0, 4.0)), mode="mask", threshold=0.25, percentile=100)
    (bar,) = colour_bar_axes(ax)
    assert bar.get_ylim() == pytest.approx((0.0, 4.0))
    assert [line.get_ydata()[0] for line in bar.lines] == [pytest.approx(1.0)]  # 0.25 of the limit 4
