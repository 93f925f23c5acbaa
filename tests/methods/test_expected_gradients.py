"""Expected Gradients and GradientSHAP: closed forms, convergence, determinism."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net
from torch import nn

import saliencelab as sl


@pytest.mark.parametrize("method", ["expected_gradients", "gradient_shap"])
def test_linear_model_gives_input_minus_drawn_references_times_weight(method):
    model = nn.Linear(6, 3)
    x, refs = torch.randn(4, 6), torch.randn(30, 6)
    result = sl.explain(model, x, method=method, target=1, baseline=refs, samples=40, seed=5)
    drawn = refs[result.info["references"]].mean(0)
    torch.testing.assert_close(result.values, (x - drawn) * model.weight.detach()[1], rtol=1e-5, atol=1e-6)
    assert float(result.delta.max()) < 1e-5


def test_converges_to_integrated_gradients_averaged_over_the_references():
    model = conv_net("functional", seed=1)
    generator = torch.Generator().manual_seed(0)
    x, refs = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(4, 3, 8, 8, generator=generator)
    exact = sl.explain(model, x, method="integrated_gradients", target=0, baseline=sl.references(refs), steps=64)
    errors = []
    for samples in (16, 1024):
        eg = sl.explain(model, x, method="expected_gradients", target=0, baseline=refs, samples=samples)
        errors.append(float((eg.values - exact.values).norm() / exact.values.norm()))
    assert errors[1] < errors[0] / 3  # Monte-Carlo error falls like 1/sqrt(samples): /8 expected
    assert errors[1] < 0.15


def test_completeness_error_falls_with_samples():
    model = conv_net("functional", seed=2)
    generator = torch.Generator().manual_seed(1)
    x, refs = torch.randn(3, 3, 8, 8, generator=generator), torch.randn(8, 3, 8, 8, generator=generator)
    few = sl.explain(model, x, method="expected_gradients", target=2, baseline=refs, samples=8)
    many = sl.explain(model, x, method="expected_gradients", target=2, baseline=refs, samples=512)
    assert float(many.delta.mean()) < float(few.delta.mean())


def test_seeded_and_independent_of_the_batch(images):
    model = conv_net("module", seed=3)
    refs = torch.randn(10, 3, 8, 8)
    first = sl.explain(model, images, method="gradient_shap", target=0, baseline=refs, samples=8, noise=0.1, seed=1)
    again = sl.explain(model, images, method="gradient_shap", target=0, baseline=refs, samples=8, noise=0.1, seed=1)
    assert torch.equal(first.values, again.values)
    alone = sl.explain(
        model, images[2:3], method="gradient_shap", target=0, baseline=refs, samples=8, noise=0.1, seed=1
    )
    torch.testing.assert_close(alone.values, first.values[2:3], rtol=1e-5, atol=1e-6)
    options = {"target": 0, "baseline": refs, "samples": 8, "noise": 0.1, "seed": 1, "memory_budget": 20_000}
    chunked = sl.explain(model, images, method="gradient_shap", **options)
    torch.testing.assert_close(chunked.values, first.values, rtol=1e-5, atol=1e-6)


def test_agrees_with_captum_gradient_shap_for_one_reference():
    captum_attr = pytest.importorskip("captum.attr")
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    x, ref = torch.randn(3, 5), torch.randn(1, 5)
    # one reference, many draws: both estimate IG from ref; compare both with the exact IG
    exact = sl.explain(model, x, method="integrated_gradients", target=1, baseline=ref, steps=64).values
    ours = sl.explain(model, x, method="gradient_shap", target=1, baseline=ref, samples=4000).values
    torch.manual_seed(0)
    theirs = captum_attr.GradientShap(model).attribute(x, baselines=ref, target=1, n_samples=4000)
    torch.testing.assert_close(ours, exact, rtol=0, atol=2e-2)
    torch.testing.assert_close(theirs, exact, rtol=0, atol=2e-2)


def test_needs_references():
    with pytest.raises(ValueError, match="reference"):
        sl.explain(nn.Linear(3, 1), torch.randn(2, 3), method="expected_gradients")


def test_input_noise_drawn_chunk_by_chunk_is_the_same_whatever_the_chunks():
    # a linear model's gradient is its weight whatever the row: the values depend on the draws alone, bit for bit
    model = nn.Linear(48, 1)
    x = torch.randn(3, 48, generator=torch.Generator().manual_seed(5))
    refs = torch.randn(5, 48, generator=torch.Generator().manual_seed(6))
    options = {"method": "gradient_shap", "target": 0, "baseline": refs, "samples": 9, "noise": 0.2, "seed": 2}
    whole = sl.explain(model, x, **options).values
    chunked = sl.explain(model, x, **options, memory_budget=5_000).values
    alone = sl.explain(model, x[2:], **options).values
    assert torch.equal(chunked, whole)
    assert torch.equal(alone, whole[2:])
