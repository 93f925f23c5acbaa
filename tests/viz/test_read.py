"""Which arrays the plots accept, how numpy CHW and HWC are told apart, and how images are rescaled."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from saliencelab import viz
from saliencelab.viz.read import display_image, values_batch

RNG = np.random.default_rng(0)


def test_numpy_chw_and_hwc_are_read_by_their_channel_axis():
    # 5x7 is not square: reading CHW as HWC (or the reverse) would give a different map shape.
    chw = RNG.normal(size=(3, 5, 7))
    hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
    for array in (chw, hwc):
        batch = values_batch(array)
        assert tuple(batch.shape) == (1, 3, 5, 7)
        np.testing.assert_array_equal(batch[0].numpy(), chw)
        drawn = viz.heatmap(array).images[0].get_array()
        np.testing.assert_allclose(drawn, chw.sum(axis=0), rtol=0, atol=1e-12)
        plt.close("all")


def test_single_channel_layouts_agree():
    plane = RNG.normal(size=(5, 6))
    for layout in (plane, plane[None], plane[..., None], torch.from_numpy(plane), torch.from_numpy(plane)[None]):
        np.testing.assert_array_equal(viz.to_map(layout)[0], plane)


def test_a_tensor_batch_draws_its_first_sample():
    batch = torch.randn(3, 2, 4, 5, generator=torch.Generator().manual_seed(0))
    drawn = viz.heatmap(batch).images[0].get_array()
    np.testing.assert_allclose(drawn, batch[0].double().sum(0).numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 5, 4), (1, 6, 3), (8, 8, 8), (5, 6, 7)])
def test_ambiguous_numpy_arrays_are_refused_with_the_fix(shape):
    with pytest.raises(ValueError, match=r"cannot tell.*torch.from_numpy\(a\).permute\(2, 0, 1\)"):
        viz.heatmap(np.zeros(shape))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="numpy.asarray"):
        viz.heatmap([[1.0, 2.0]])
    with pytest.raises(ValueError, match="batch as a torch tensor"):
        viz.heatmap(np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match="real numbers"):
        viz.heatmap(np.zeros((4, 4), dtype=complex))
    with pytest.raises(ValueError, match="non-image inputs"):
        viz.heatmap(torch.zeros(5))
    with pytest.raises(ValueError, match="batch is empty"):
        viz.heatmap(torch.zeros(0, 1, 4, 4))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_maps_are_refused(bad):
    values = torch.zeros(1, 4, 4)
    values[0, 1, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.heatmap(values)
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.overlay(torch.rand(3, 4, 4), values)
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.grid(torch.rand(1, 3, 4, 4), {"m": values[None]})


def test_display_rule_rescales_images():
    # uint8: /255
    raw = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_allclose(display_image(raw)[0, :, 0], [0.0, 0.2, 1.0])
    # floats in [0, 1]: unchanged
    unit = RNG.uniform(size=(3, 4, 5))
    np.testing.assert_array_equal(display_image(unit), unit.transpose(1, 2, 0))
    # floats in [0, 255]: /255
    np.testing.assert_allclose(display_image(unit * 255.0), unit.transpose(1, 2, 0), rtol=1e-12)
    # normalised (negative values): min-max over the whole image, all channels together
    normalised = torch.tensor([[[-2.0, 0.0]], [[2.0, 1.0]], [[-1.0, -2.0]]])
    np.testing.assert_allclose(display_image(normalised)[0], [[0.0, 1.0, 0.25], [0.5, 0.75, 0.0]])
    # a constant normalised image is black; one grey channel is repeated into RGB; alpha is dropped
    np.testing.assert_array_equal(display_image(torch.full((3, 2, 2), -1.0)), np.zeros((2, 2, 3)))
    np.testing.assert_array_equal(display_image(torch.tensor([[0.25]])), [[[0.25, 0.25, 0.25]]])
    rgba = np.concatenate([unit, np.full((1, 4, 5), 0.5)])
    np.testing.assert_array_equal(display_image(rgba), unit.transpose(1, 2, 0))


def test_images_need_one_three_or_four_channels():
    with pytest.raises(ValueError, match=r"permute\(2, 0, 1\)"):
        display_image(torch.rand(8, 8, 3))  # a torch tensor in HWC
