"""Integrated Gradients: the seeds' worked examples, exactness, completeness, Captum, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import conv_net
from torch import nn

import saliencelab as sl
from saliencelab.methods.noise import ROW_COPIES as SMOOTHGRAD_ROW_COPIES
from saliencelab.methods.path import PATH_ROW_COPIES
from saliencelab.methods.quadrature import INTEGRATIONS, quadrature, refinement


def test_sensitivity_example_of_seed_001():
    # f(x) = 1 - ReLU(1 - x), baseline 0, input 2: the gradient is 0, IG gives the whole change f(2) - f(0) = 1.
    def f(x):
        return 1 - F.relu(1 - x)

    x = torch.tensor([[2.0]])
    assert sl.explain(f, x, method="gradient").values.item() == 0.0
    assert sl.explain(f, x, method="gradient_x_input").values.item() == 0.0
    ig = sl.explain(f, x, method="integrated_gradients", baseline=0.0)
    assert ig.values.item() == pytest.approx(1.0, abs=1e-6)
    assert ig.delta.item() == pytest.approx(0.0, abs=1e-6)


class _NetworkF(nn.Module):
    """f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))."""

    def forward(self, x):
        return F.relu(F.relu(x[:, 0]) - 1 - F.relu(x[:, 1]))


class _NetworkG(nn.Module):
    """g(x1, x2) = ReLU(ReLU(x1 - 1) - ReLU(x2)): the same function, another implementation."""

    def forward(self, x):
        return F.relu(F.relu(x[:, 0] - 1) - F.relu(x[:, 1]))


def test_implementation_invariance_example_of_seed_001():
    x = torch.tensor([[3.0, 1.0]])
    grid = torch.randn(1000, 2) * 3
    torch.testing.assert_close(_NetworkF()(grid), _NetworkG()(grid))
    for network in (_NetworkF(), _NetworkG()):
        ig = sl.explain(network, x, method="integrated_gradients", baseline="zeros", steps=64)
        torch.testing.assert_close(ig.values, torch.tensor([[1.5, -0.5]]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_quadrature_weights_sum_to_one_and_points_lie_on_the_path(integration):
    for steps in (2, 7, 50):
        alphas, weights = quadrature(steps, integration)
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
        assert float(alphas.min()) >= 0 and float(alphas.max()) <= 1


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_exact_on_a_linear_model_for_every_quadrature(integration):
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, baseline = torch.randn(4, 6), torch.randn(4, 6)
    ig = sl.explain(
        model, x, method="integrated_gradients", target=2, baseline=baseline, steps=3, integration=integration
    )
    torch.testing.assert_close(ig.values, (x - baseline) * model.weight.detach()[2], rtol=1e-6, atol=1e-6)
    assert float(ig.delta.max()) < 1e-5


def test_gauss_legendre_is_exact_on_polynomial_paths():
    # f(x) = sum(x^3): the path integrand is a polynomial of degree 2 in alpha; 2 Gauss points are exact.
    x, baseline = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    ig = sl.explain(lambda t: (t**3).sum(dim=1), x, method="integrated_gradients", baseline=baseline, steps=2)
    torch.testing.assert_close(ig.values, x**3 - baseline**3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completeness_on_random_relu_conv_nets_with_random_baselines(seed):
    # Along the path the gradient of a ReLU net is piecewise constant, so every quadrature converges like
    # 1/steps, and f(x) - f(x') is small against the attributions it sums (0.013 here): thousands of steps.
    # tolerance=1e-3 must deliver a relative completeness error of at most 1e-3, checked here against
    # the model's own outputs, not against the method's delta.
    model = conv_net("functional", seed=seed)
    generator = torch.Generator().manual_seed(seed + 10)
    x, baseline = torch.randn(3, 3, 8, 8, generator=generator), torch.randn(3, 3, 8, 8, generator=generator)
    ig = sl.explain(
        model,
        x,
        method="integrated_gradients",
        target=1,
        baseline=baseline,
        steps=16,
        tolerance=1e-3,
        integration="riemann_middle",
        max_steps=4096,
    )
    difference = (model(x)[:, 1] - model(baseline)[:, 1]).detach()
    error = (ig.values.flatten(1).sum(1) - difference).abs()
    assert float((error / difference.abs()).max()) <= 1e-3 + 1e-5
    torch.testing.assert_close(ig.delta, error, rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_completeness_on_smooth_random_conv_nets_is_fast(seed):
    # A smooth net has a smooth path integrand: 32 Gauss-Legendre points leave only float32 rounding (1e-5).
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.Softplus(), nn.Conv2d(6, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(64, 5)
    ).eval()
    x, baseline = torch.randn(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    ig = sl.explain(model, x, method="integrated_gradients", target=4, baseline=baseline, steps=32)
    difference = (model(x)[:, 4] - model(baseline)[:, 4]).detach()
    assert float((ig.delta / difference.abs()).max()) < 1e-4


def test_tolerance_adds_steps_until_the_relative_error_is_reached():
    model = conv_net("functional", seed=4)
    generator = torch.Generator().manual_seed(0)
    x, baseline = torch.randn(3, 3, 8, 8, generator=generator), torch.randn(3, 3, 8, 8, generator=generator)
    loose = sl.explain(model, x, method="integrated_gradients", target=0, baseline=baseline, steps=4)
    tight = sl.explain(
        model,
        x,
        method="integrated_gradients",
        target=0,
        baseline=baseline,
        steps=4,
        tolerance=1e-3,
        integration="riemann_middle",
        max_steps=4096,
    )
    difference = (model(x)[:, 0] - model(baseline)[:, 0]).detach().abs()
    assert float((loose.delta / difference).max()) > 1e-3
    assert float((tight.delta / difference).max()) <= 1e-3
    assert int(tight.info["steps"].max()) > 4
    for i, steps in enumerate(tight.info["steps"].tolist()):  # refinement reuses, yet equals the rule at `steps`
        direct = sl.explain(
            model,
            x[i : i + 1],
            method="integrated_gradients",
            target=0,
            baseline=baseline[i : i + 1],
            steps=steps,
            integration="riemann_middle",
            max_steps=steps,
        )
        torch.testing.assert_close(tight.values[i : i + 1], direct.values, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_refinement_equals_the_rule_with_more_points(integration):
    # keep · Q_steps(g) + Σ_added w g == Q_new_steps(g) for any integrand g: checked on a kinked, wiggly one
    def g(alpha):
        return torch.sin(7 * alpha) + (alpha > 0.3).double() + alpha**5

    steps = 6
    new_steps, keep, alphas, weights = refinement(steps, integration)
    old_alphas, old_weights = quadrature(steps, integration)
    direct_alphas, direct_weights = quadrature(new_steps, integration)
    refined = keep * (old_weights * g(old_alphas)).sum() + (weights * g(alphas)).sum()
    assert float(refined) == pytest.approx(float((direct_weights * g(direct_alphas)).sum()), abs=1e-12)
    if integration != "gauss_legendre":
        assert len(alphas) == new_steps - steps  # only the new points are evaluated


def test_tolerance_evaluates_each_point_once_with_nested_rules():
    model = conv_net("functional", seed=4)
    x, baseline = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    rows = []
    model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    result = sl.explain(
        model,
        x,
        method="integrated_gradients",
        target=0,
        baseline=baseline,
        steps=5,
        integration="riemann_trapezoid",
        tolerance=1e-3,
        max_steps=4096,
    )
    steps = int(result.info["steps"][0])
    assert steps > 5
    # each path point once, f(x) and f(x') for the completeness check, and one row measured once per model
    # and input shape to size the chunks
    assert sum(rows) == steps + 2 + 1


def test_several_references_are_averaged():
    model = conv_net("functional", seed=5)
    generator = torch.Generator().manual_seed(3)
    x, refs = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(3, 3, 8, 8, generator=generator)
    averaged = sl.explain(model, x, method="integrated_gradients", target=2, baseline=sl.references(refs), steps=16)
    separate = [
        sl.explain(model, x, method="integrated_gradients", target=2, baseline=refs[k], steps=16).values
        for k in range(3)
    ]
    torch.testing.assert_close(averaged.values, torch.stack(separate).mean(0), rtol=1e-5, atol=1e-6)
    expected_difference = model(x)[:, 2] - model(refs)[:, 2].mean()
    torch.testing.assert_close(averaged.delta, (averaged.values.flatten(1).sum(1) - expected_difference).abs().detach())


@pytest.mark.parametrize(
    "integration, captum_method",
    [
        ("gauss_legendre", "gausslegendre"),
        ("riemann_left", "riemann_left"),
        ("riemann_middle", "riemann_middle"),
        ("riemann_right", "riemann_right"),
    ],
)
def test_agrees_with_captum(integration, captum_method, images):
    captum_attr = pytest.importorskip("captum.attr")
    model = conv_net("module", seed=6)
    baseline = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    ours = sl.explain(
        model, images, method="integrated_gradients", target=3, baseline=baseline, steps=20, integration=integration
    )
    theirs = captum_attr.IntegratedGradients(model).attribute(
        images, baselines=baseline, target=3, n_steps=20, method=captum_method
    )
    torch.testing.assert_close(ours.values, theirs, rtol=1e-4, atol=1e-6)


def test_captum_trapezoid_weights_sum_to_less_than_one(images):
    # Captum's riemann_trapezoid uses the points k/(n-1) with weights 1/n (halved at the ends), which sum
    # to (n-1)/n: its attributions are ours scaled by (n-1)/n and miss completeness by 1/n.
    captum_attr = pytest.importorskip("captum.attr")
    model = conv_net("module", seed=6)
    ours = sl.explain(model, images, method="integrated_gradients", target=3, steps=20, integration="riemann_trapezoid")
    theirs = captum_attr.IntegratedGradients(model).attribute(
        images, baselines=torch.zeros_like(images), target=3, n_steps=20, method="riemann_trapezoid"
    )
    torch.testing.assert_close(theirs, ours.values * 19 / 20, rtol=1e-4, atol=1e-6)


def test_results_do_not_depend_on_chunking_or_the_rest_of_the_batch(images):
    model = conv_net("reused", seed=7)
    whole = sl.explain(model, images, method="integrated_gradients", target=1, steps=12)
    chunked = sl.explain(model, images, method="integrated_gradients", target=1, steps=12, memory_budget=50_000)
    alone = [sl.explain(model, images[i : i + 1], method="integrated_gradients", target=1, steps=12) for i in range(4)]
    torch.testing.assert_close(chunked.values, whole.values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.cat([a.values for a in alone]), whole.values, rtol=1e-5, atol=1e-6)


def test_baseline_presets(images):
    model = conv_net("module", seed=8)
    for preset in ("zeros", "min", "mean", "blur", "uniform"):
        ig = sl.explain(model, images, method="integrated_gradients", target=0, baseline=preset, steps=128)
        assert float(ig.delta.max()) < 5e-3, preset
    numbered = sl.explain(model, images, method="integrated_gradients", target=0, baseline=0.5, steps=8)
    tensor = sl.explain(
        model, images, method="integrated_gradients", target=0, baseline=torch.full((3, 1, 1), 0.5), steps=8
    )
    called = sl.explain(
        model, images, method="integrated_gradients", target=0, baseline=lambda x: torch.full_like(x, 0.5), steps=8
    )
    torch.testing.assert_close(numbered.values, tensor.values, rtol=0, atol=0)
    torch.testing.assert_close(numbered.values, called.values, rtol=0, atol=0)


@pytest.mark.parametrize(
    "method, options, own",
    [
        ("integrated_gradients", {"steps": 20}, PATH_ROW_COPIES),
        ("smoothgrad", {"samples": 20}, SMOOTHGRAD_ROW_COPIES),
        ("expected_gradients", {"samples": 20, "baseline": torch.zeros(3, 3, 8, 8)}, PATH_ROW_COPIES),
    ],
)
def test_inner_loops_run_in_chunks_that_fit_the_memory_budget(method, options, own, images):
    from saliencelab.core.batching import ActivationMeter

    model = conv_net("module", seed=9)
    with ActivationMeter() as meter, torch.no_grad():
        model(images[:1])
    row = images[0].numel() * images.element_size()
    # room for seven rows' forward activations, gradients and working space, and the method's own tensors
    budget = (3 * meter.bytes + own * row) * 7
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    sl.explain(model, images, method=method, target=0, memory_budget=budget, **options)
    assert max(seen) == 7
    assert sum(seen) >= 4 * 20  # every (sample, step or draw) row was evaluated


@pytest.mark.parametrize("n", [1, 2, 3, 7, 30, 64, 129, 500, 2000])
def test_gauss_legendre_nodes_match_the_eigenvalue_method(n):
    from scipy.special import roots_legendre

    from saliencelab.methods.quadrature import gauss_legendre

    nodes, weights = gauss_legendre(n)
    expected_nodes, expected_weights = roots_legendre(n)
    np.testing.assert_allclose(nodes, expected_nodes, rtol=0, atol=1e-13)
    np.testing.assert_allclose(weights, expected_weights, rtol=0, atol=1e-12)
    assert abs(math.fsum(weights) - 2) < 1e-13


def test_many_gauss_legendre_steps_are_quick_and_exact_on_polynomials():
    import time

    from saliencelab.methods.quadrature import _rule

    _rule.cache_clear()
    start = time.perf_counter()
    sl.IntegratedGradients(nn.Linear(2, 1), steps=100_000)  # the O(steps²) eigenvalue method took minutes
    assert time.perf_counter() - start < 5
    alphas, weights = quadrature(100_000, "gauss_legendre")
    # exact for polynomials of degree < 2 steps: ∫₀¹ α^k dα = 1 / (k + 1)
    for k in (0, 1, 7, 40):
        assert float((weights * alphas**k).sum()) == pytest.approx(1 / (k + 1), rel=1e-12)


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, 10**7])
def test_steps_must_be_a_reasonable_positive_int(steps):
    with pytest.raises(ValueError, match="steps"):
        sl.IntegratedGradients(nn.Linear(2, 1), steps=steps)
