"""Every method side by side (seed 004_b8d7fc1aaa554234.txt): layout, per-column scales, overlays, labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2gray

import saliencelab as sl
from saliencelab import viz

GENERATOR = torch.Generator().manual_seed(3)
IMAGES = torch.rand(2, 3, 6, 7, generator=GENERATOR)


def random_maps(*names: str, channels: int = 3) -> dict[str, torch.Tensor]:
    return {name: torch.randn(2, channels, 6, 7, generator=GENERATOR) for name in names}


def cell(figure, row: int, column: int):
    """The axes at a grid position (row, column)."""
    for ax in figure.axes:
        spec = ax.get_subplotspec()
        if (spec.rowspan.start, spec.colspan.start) == (row, column):
            return ax
    raise AssertionError(f"no axes at {(row, column)}")


def test_rows_are_inputs_and_columns_are_methods():
    figure = viz.grid(IMAGES, random_maps("a", "b", "c"))
    assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 4)
    assert len(figure.axes) == 2 * 4
    assert [cell(figure, 0, column).get_title() for column in range(4)] == ["input", "a", "b", "c"]
    np.testing.assert_allclose(cell(figure, 1, 0).images[0].get_array(), IMAGES[1].double().numpy().transpose(1, 2, 0))


def test_wrapping_at_max_columns():
    maps = random_maps("a", "b", "c", "d", "e")
    figure = viz.grid(IMAGES, maps, max_columns=3)
    # 5 methods in blocks of 3: 2 blocks of 2 rows; each block starts with the inputs; the last block has 2 methods
    assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == (4, 4)
    assert len(figure.axes) == 2 * 2 + 2 * 5
    assert [cell(figure, 2, column).get_title() for column in range(3)] == ["input", "d", "e"]
    drawn = cell(figure, 3, 2).images[0].get_array()
    np.testing.assert_allclose(drawn, maps["e"][1].double().sum(0).numpy(), rtol=1e-12)


def test_each_column_has_its_own_percentile_scale():
    maps = random_maps("small", "large")
    maps["large"] = maps["large"] * 1000.0
    figure = viz.grid(IMAGES, maps, percentile=90.0)
    for column, name in enumerate(maps, start=1):
        sums = maps[name].double().sum(1).numpy()
        limit = np.percentile(np.abs(sums), 90.0)  # over both rows of the column
        for row in range(2):
            assert cell(figure, row, column).images[0].get_clim() == pytest.approx((-limit, limit), rel=1e-12)


def test_cam_maps_with_one_channel_and_a_sign():
    cam = torch.relu(torch.randn(2, 1, 6, 7, generator=GENERATOR))
    figure = viz.grid(IMAGES, {"grad_cam": cam}, sign="positive", percentile=100)
    top = float(cam.max())
    assert cell(figure, 0, 1).images[0].get_clim() == pytest.approx((0.0, top))
    assert cell(figure, 0, 1).get_title() == "grad cam"


def test_overlay_cells_blend_onto_the_grey_input():
    figure = viz.grid(IMAGES, {"zero": torch.zeros(2, 1, 6, 7)}, overlay=True)
    grey = rgb2gray(IMAGES[1].double().numpy().transpose(1, 2, 0))
    np.testing.assert_allclose(cell(figure, 1, 1).images[0].get_array(), np.repeat(grey[..., None], 3, -1), atol=1e-15)
    scaled = viz.grid(IMAGES, {"zero": torch.zeros(2, 1, 6, 7)}, overlay="scale")
    assert not cell(scaled, 0, 1).images[0].get_array().any()


def test_labels():
    figure = viz.grid(
        IMAGES,
        random_maps("gradient", "lrp"),
        row_labels=["cat", "dog"],
        column_labels=["Gradient", "LRP"],
        labels_per_cell={"gradient": "passes: randomisation", "lrp": ["fails: x", "fails: y"]},
    )
    assert [cell(figure, row, 0).get_ylabel() for row in range(2)] == ["cat", "dog"]
    assert [cell(figure, 0, column).get_title() for column in (1, 2)] == ["Gradient", "LRP"]
    assert cell(figure, 1, 1).get_xlabel() == "passes: randomisation"
    assert [cell(figure, row, 2).get_xlabel() for row in range(2)] == ["fails: x", "fails: y"]


def test_saved_png_has_the_figure_size(tmp_path):
    path = tmp_path / "grid.png"
    figure = viz.grid(IMAGES, random_maps("a", "b", "c"), path)
    assert path.exists()
    assert Image.open(path).size == (round(1.8 * 4 * 120), round(1.8 * 2 * 120))  # 4 columns, 2 rows of 1.8 in
    assert figure.canvas.manager is None  # drawn off-screen, unknown to pyplot


def test_attributions_as_columns():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 7, 2))
    result = sl.explain(model, IMAGES, method="gradient", target=0)
    figure = viz.grid(IMAGES, {"gradient": result})
    np.testing.assert_allclose(
        cell(figure, 0, 1).images[0].get_array(), result.values[0].double().sum(0).numpy(), rtol=1e-12
    )


def test_grid_errors():
    with pytest.raises(ValueError, match="has 1 samples but there are 2 images"):
        viz.grid(IMAGES, {"a": torch.zeros(1, 1, 6, 7)})
    with pytest.raises(ValueError, match="maps is empty"):
        viz.grid(IMAGES, {})
    with pytest.raises(ValueError, match="row_labels needs one label per entry"):
        viz.grid(IMAGES, random_maps("a"), row_labels=["only one"])
    with pytest.raises(ValueError, match="not in maps"):
        viz.grid(IMAGES, random_maps("a"), labels_per_cell={"b": "x"})
    with pytest.raises(ValueError, match="overlay must be"):
        viz.grid(IMAGES, random_maps("a"), overlay="heat")
    with pytest.raises(ValueError, match="max_columns must be at least 1"):
        viz.grid(IMAGES, random_maps("a"), max_columns=0)
    with pytest.raises(ValueError, match="an overlay needs maps at the input's size"):
        viz.grid(IMAGES, {"a": torch.zeros(2, 1, 3, 3)}, overlay=True)
    with pytest.raises(ValueError, match=r"image\[None\]"):
        viz.grid(IMAGES[0], random_maps("a"))
