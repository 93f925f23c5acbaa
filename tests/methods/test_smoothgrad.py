"""SmoothGrad, SmoothGrad² and VarGrad: closed forms, noise scale, determinism."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net
from torch import nn

import saliencelab as sl


def _half_square(x):
    """f(x) = ½ Σ x²: its gradient is x itself, so the noisy gradients are the noisy inputs."""
    return 0.5 * (x**2).flatten(1).sum(1)


def test_smoothgrad_of_a_linear_model_equals_its_weight():
    model = nn.Linear(10, 4)
    x = torch.randn(5, 10)
    result = sl.explain(model, x, method="smoothgrad", target=3, samples=16, noise=0.2)
    torch.testing.assert_close(result.values, model.weight.detach()[3].expand(5, 10), rtol=1e-6, atol=1e-7)


def test_noise_is_scaled_to_each_samples_value_range():
    # VarGrad of ½Σx² is the variance of x + σ_i ε over the copies, i.e. σ_i² · var(ε): shared noise
    # makes the ratio between two samples exactly (σ_1/σ_0)² = (range_1/range_0)².
    x0 = torch.linspace(-1, 1, 64).reshape(1, 64)
    x = torch.cat([x0, 3 * x0 + 5])
    var = sl.explain(_half_square, x, method="smoothgrad", variant="var", samples=200, noise=0.1).values
    torch.testing.assert_close(var[1] / var[0], torch.full((64,), 9.0), rtol=1e-4, atol=0)
    # and var(ε) is 1 on average, so σ_0 = 0.1 × range 2 = 0.2
    assert float(var[0].mean()) == pytest.approx(0.2**2, rel=0.1)


def test_squared_variant_is_mean_of_squares():
    x = torch.randn(2, 32)
    mean = sl.explain(_half_square, x, method="smoothgrad", variant="mean", samples=100, noise=0.1).values
    squared = sl.explain(_half_square, x, method="smoothgrad", variant="squared", samples=100, noise=0.1).values
    var = sl.explain(_half_square, x, method="smoothgrad", variant="var", samples=100, noise=0.1).values
    torch.testing.assert_close(squared, var + mean**2, rtol=1e-5, atol=1e-6)


def test_same_seed_same_result_other_seed_other_result(images):
    model = conv_net("module", seed=2)
    first = sl.explain(model, images, method="smoothgrad", target=1, samples=8, seed=3).values
    again = sl.explain(model, images, method="smoothgrad", target=1, samples=8, seed=3).values
    other = sl.explain(model, images, method="smoothgrad", target=1, samples=8, seed=4).values
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_results_do_not_depend_on_the_rest_of_the_batch(images):
    model = conv_net("module", seed=2)
    whole = sl.explain(model, images, method="smoothgrad", target=1, samples=6).values
    alone = torch.cat(
        [sl.explain(model, images[i : i + 1], method="smoothgrad", target=1, samples=6).values for i in range(4)]
    )
    chunked = sl.explain(model, images, method="smoothgrad", target=1, samples=6, memory_budget=20_000).values
    torch.testing.assert_close(alone, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_wraps_other_methods_with_their_options(images):
    model = conv_net("module", seed=2)
    guided = sl.explain(model, images, method="smoothgrad", base="guided_backprop", target=0, samples=4)
    by_hand = sl.SmoothGrad(model, base="guided_backprop", samples=4)(images, target=0)
    torch.testing.assert_close(guided.values, by_hand.values, rtol=0, atol=0)
    assert guided.info["base"] == "guided_backprop"
    smooth_ig = sl.explain(
        model,
        images,
        method="smoothgrad",
        base="integrated_gradients",
        steps=8,
        baseline="zeros",
        target=0,
        samples=3,
        noise=0.0,
    )
    plain_ig = sl.explain(model, images, method="integrated_gradients", steps=8, target=0)
    torch.testing.assert_close(smooth_ig.values, plain_ig.values, rtol=1e-5, atol=1e-6)


def test_no_noise_is_the_base_method(images):
    model = conv_net("module", seed=2)
    smooth = sl.explain(model, images, method="smoothgrad", target=2, samples=3, noise=0.0).values
    plain = sl.explain(model, images, method="gradient", target=2).values
    torch.testing.assert_close(smooth, plain, rtol=1e-6, atol=1e-7)


def test_bad_options_are_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="variant"):
        sl.explain(model, torch.randn(1, 2), method="smoothgrad", variant="median")
    with pytest.raises(ValueError, match="noise"):
        sl.explain(model, torch.randn(1, 2), method="smoothgrad", noise=-0.1)
    with pytest.raises(TypeError, match="steps"):
        sl.explain(model, torch.randn(1, 2), method="smoothgrad", steps=4)
    with pytest.raises(ValueError, match="unknown method"):
        sl.explain(model, torch.randn(1, 2), method="smoothgrad", base="nope")


def test_noise_drawn_chunk_by_chunk_is_the_same_whatever_the_chunks():
    # ½Σx² has the noisy copy itself as its gradient, row by row: any change of the noise would show bit for bit
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(5))
    whole = sl.explain(_half_square, x, method="smoothgrad", variant="var", samples=9, seed=4).values
    chunked = sl.explain(_half_square, x, method="smoothgrad", variant="var", samples=9, seed=4, memory_budget=30_000)
    alone = sl.explain(_half_square, x[1:2], method="smoothgrad", variant="var", samples=9, seed=4).values
    assert torch.equal(chunked.values, whole)
    assert torch.equal(alone, whole[1:2])


def test_a_budget_below_one_noisy_copy_is_refused_with_the_size_needed():
    x = torch.zeros(1, 3, 32, 32)  # one copy of 12 KiB, held about a dozen times per copy
    with pytest.raises(ValueError, match=r"one row of this method holds \d+ bytes.*raise memory_budget to at least"):
        sl.explain(_half_square, x, method="smoothgrad", samples=4, memory_budget=12_288)
