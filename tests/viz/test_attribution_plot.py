"""Attribution.plot: a heatmap of one sample, an overlay when given the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import saliencelab as sl


@pytest.fixture
def explained():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 2))
    inputs = torch.rand(3, 3, 4, 5, generator=torch.Generator().manual_seed(5))
    return inputs, sl.explain(model, inputs, method="gradient_x_input", target=1)


def test_plot_draws_the_chosen_sample(explained):
    _, result = explained
    ax = result.plot(2, sign="absolute", percentile=100)
    expected = result.values[2].double().sum(0).abs().numpy()
    np.testing.assert_allclose(ax.images[0].get_array(), expected, rtol=1e-12)
    assert ax.images[0].get_clim() == pytest.approx((0.0, expected.max()))
    assert ax.get_title() == "gradient_x_input"
    assert result.plot(title="mine").get_title() == "mine"


def test_plot_with_the_input_batch_overlays_the_same_sample(explained):
    inputs, result = explained
    drawn = result.plot(1, image=inputs, mode="scale", percentile=100).images[0].get_array()
    weight = result.values[1].double().sum(0).abs().numpy()
    expected = inputs[1].double().numpy().transpose(1, 2, 0) * (weight / weight.max())[..., None]
    np.testing.assert_allclose(drawn, expected, rtol=1e-12)


def test_plot_errors(explained):
    inputs, result = explained
    with pytest.raises(ValueError, match="index 3 is outside the batch of 3"):
        result.plot(3)
    with pytest.raises(ValueError, match="image is a batch of 2"):
        result.plot(0, image=inputs[:2])


def test_plot_of_tabular_attributions_draws_bars_not_a_heatmap():
    model = torch.nn.Linear(4, 2)
    result = sl.explain(model, torch.ones(3, 4), method="gradient", target=0)
    ax = result.plot(1, feature_names=["a", "b", "c", "d"])
    assert len(ax.images) == 0 and len(ax.containers[0]) == 4
    weights = model.weight[0].detach()
    assert [label.get_text() for label in ax.get_yticklabels()][0] == "abcd"[int(weights.abs().argmax())]
