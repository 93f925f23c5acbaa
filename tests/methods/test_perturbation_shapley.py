"""Shapley value sampling and KernelSHAP: exactness on additive models, efficiency, interactions, groups."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from helpers import conv_net

import saliencelab as sl


class Additive(torch.nn.Module):
    """f(x) = Σ_i a_i tanh(x_i) + b_i x_i²: additive, not linear; the Shapley value of i is g_i(x_i) − g_i(x'_i)."""

    def __init__(self, features: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = torch.nn.Parameter(torch.randn(features, generator=g))
        self.b = torch.nn.Parameter(torch.randn(features, generator=g))

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * torch.tanh(x) + self.b * x**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.terms(x).sum(dim=1, keepdim=True)


def exact_shapley(value, players: int) -> torch.Tensor:
    """Shapley values by enumerating every coalition; value(set of players) -> float."""
    phi = torch.zeros(players, dtype=torch.float64)
    for i in range(players):
        others = [p for p in range(players) if p != i]
        for size in range(players):
            weight = math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players)
            for coalition in itertools.combinations(others, size):
                phi[i] += weight * (value(set(coalition) | {i}) - value(set(coalition)))
    return phi


def coalition_value(model, x: torch.Tensor, baseline: torch.Tensor):
    def value(kept: set) -> float:
        point = baseline.clone()
        for i in kept:
            point[0, i] = x[0, i]
        with torch.no_grad():
            return float(model(point.double()).reshape(-1)[0])

    return value


X = torch.tensor([[0.5, -1.2, 2.0, 0.3, -0.7, 1.5]])
BASE = torch.tensor([[0.1, 0.4, -0.5, 0.0, 0.2, -1.0]])


@pytest.mark.parametrize("samples", [1, 2, 3, 10])
@pytest.mark.parametrize("antithetic", [True, False])
def test_shapley_sampling_is_exact_on_additive_models_for_any_number_of_samples(samples, antithetic):
    model = Additive(6)
    a = sl.ShapleySampling(model, samples=samples, antithetic=antithetic, seed=samples)(X, baseline=BASE)
    expected = (model.terms(X) - model.terms(BASE)).detach()
    torch.testing.assert_close(a.values, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("samples", [5, 6, 12, 40, 62])
def test_kernel_shap_is_exact_on_additive_models_for_any_number_of_samples(samples):
    # 6 groups: from the G - 1 = 5 coalitions that can determine them up to all 2^6 - 2 = 62
    model = Additive(6)
    a = sl.KernelShap(model, samples=samples, seed=samples)(X, baseline=BASE)
    expected = (model.terms(X) - model.terms(BASE)).detach()
    torch.testing.assert_close(a.values, expected, rtol=1e-5, atol=1e-5)


def test_kernel_shap_with_every_coalition_is_the_exact_shapley_value_of_any_model():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    x, baseline = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    exact = exact_shapley(coalition_value(model, x, baseline), 5)
    a = sl.KernelShap(model, samples=30)(x, baseline=baseline)  # 2^5 - 2 = 30: every coalition
    torch.testing.assert_close(a.values[0], exact, rtol=1e-9, atol=1e-10)
    # Shapley sampling converges to the same values
    b = sl.ShapleySampling(model, samples=400, seed=3)(x, baseline=baseline)
    assert float((b.values[0] - exact).abs().max()) < 0.05 * float(exact.abs().max())


def test_efficiency_holds_on_a_random_conv_net(images):
    model = conv_net("module", seed=11)
    ids = torch.arange(16).reshape(4, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)  # 16 cells of 2x2
    for method, options in (("shapley_sampling", {"samples": 4}), ("kernel_shap", {"samples": 60})):
        a = sl.explain(model, images, method=method, target=2, feature_mask=ids, baseline="blur", **options)
        with torch.no_grad():
            blurred = sl.explain(model, images, method="occlusion", target=2, window=8, baseline="blur")
            f_x = model(images)[:, 2]
        # one 8x8 window occludes everything: its value is f(x) - f(baseline) at every pixel
        difference = blurred.values[:, 0, 0, 0]
        group_sum = torch.stack([v.sum() for v in a.info["group_values"]])
        torch.testing.assert_close(group_sum.float(), difference, rtol=1e-4, atol=1e-5)
        assert float(a.delta.max()) < 1e-5 * float(f_x.abs().max() + 1)
        torch.testing.assert_close(a.delta, (group_sum - difference.double()).abs().float(), rtol=0, atol=1e-5)


def test_antithetic_pairs_make_pairwise_interactions_exact_and_plain_sampling_is_within_its_error():
    # f = x0·x1 + x2 (baseline 0): Shapley values x0 x1 / 2, x0 x1 / 2, x2
    model = lambda x: (x[:, 0] * x[:, 1] + x[:, 2])[:, None]  # noqa: E731
    x = torch.tensor([[2.0, 3.0, 5.0]], dtype=torch.float64)
    exact = torch.tensor([[3.0, 3.0, 5.0]], dtype=torch.float64)
    paired = sl.ShapleySampling(model, samples=4, seed=0)(x)
    torch.testing.assert_close(paired.values, exact, rtol=0, atol=1e-12)
    # without pairs the marginal of x0 is 6 or 0 with probability 1/2 each: σ = 3 / sqrt(P)
    samples = 100
    plain = sl.ShapleySampling(model, samples=samples, antithetic=False, seed=0)(x)
    assert float((plain.values - exact).abs().max()) < 4 * 3 / math.sqrt(samples)
    assert not torch.equal(plain.values, exact)  # it is an estimate
    torch.testing.assert_close(plain.values.sum(), torch.tensor(11.0, dtype=torch.float64))  # still efficient


def test_three_way_interaction_within_sampling_error():
    # f = x0·x1·x2 (baseline 0): each Shapley value is x0 x1 x2 / 3 = 8
    model = lambda x: (x[:, 0] * x[:, 1] * x[:, 2])[:, None]  # noqa: E731
    x = torch.tensor([[2.0, 3.0, 4.0]], dtype=torch.float64)
    samples = 200
    for method in ("shapley_sampling", "kernel_shap"):
        a = sl.explain(model, x, method=method, samples=samples, seed=5)
        # a marginal is 24 or 0 (probability 1/3): σ of the mean <= 24·sqrt(2/9) / sqrt(samples)
        assert float((a.values - 8.0).abs().max()) < 4 * 24 * math.sqrt(2 / 9) / math.sqrt(samples), method


def test_feature_groups_give_every_element_its_groups_value():
    model = Additive(6)
    ids = torch.tensor([5, 5, 9, 9, 9, 2])  # groups need not be numbered 0..G-1
    expected_groups = {}
    terms = (model.terms(X) - model.terms(BASE)).detach()[0]
    for gid in (5, 9, 2):
        expected_groups[gid] = terms[ids == gid].sum()
    expected = torch.stack([expected_groups[int(g)] for g in ids])[None]
    for method, options in (("shapley_sampling", {"samples": 3}), ("kernel_shap", {"samples": 6})):
        a = sl.explain(model, X, method=method, baseline=BASE, feature_mask=ids, **options)
        torch.testing.assert_close(a.values, expected, rtol=1e-5, atol=1e-6)
        assert a.info["groups"].tolist() == [3]
        torch.testing.assert_close(a.values[0, [5, 0, 2]].double(), a.info["group_values"][0], rtol=1e-6, atol=1e-7)


def test_per_sample_feature_masks(images):
    model = conv_net("module", seed=12)
    per_sample = torch.stack([torch.arange(64).reshape(8, 8) // (8 * (i + 1)) for i in range(4)])[:, None]
    for method, options in (("shapley_sampling", {"samples": 3}), ("kernel_shap", {"samples": 40})):
        together = sl.explain(model, images, method=method, target=1, feature_mask=per_sample, **options)
        assert together.info["groups"].tolist() == [8, 4, 3, 2]
        for i in range(4):
            alone = sl.explain(model, images[i : i + 1], method=method, target=1, feature_mask=per_sample[i], **options)
            torch.testing.assert_close(alone.values[0], together.values[i], rtol=1e-5, atol=1e-6)
            # every element of a group shares its value: a group is a band of rows here
            rows = together.values[i, 0]
            assert torch.equal(rows, rows[:, :1].expand(8, 8))


def test_grid_and_slic_presets(images):
    model = conv_net("module", seed=13)
    grid = sl.explain(model, images, method="shapley_sampling", target=0, feature_mask="grid", samples=2)
    assert grid.info["groups"].tolist() == [64] * 4  # 8x8 images: cells of one pixel, channels together
    slic = sl.explain(model, images, method="kernel_shap", target=0, feature_mask="slic", samples=100)
    counts = slic.info["groups"]
    assert bool((counts > 1).all()) and bool((counts <= 64).all())
    assert slic.info["groups"].tolist() == [int(ids.max()) + 1 for ids in sl.methods.perturbation.slic()(images)]
    assert float(slic.delta.max()) < 1e-5
    preset = sl.methods.perturbation.slic(segments=10)
    ids = preset(images)
    by_callable = sl.explain(model, images, method="kernel_shap", target=0, feature_mask=preset, samples=40)
    by_tensor = sl.explain(model, images, method="kernel_shap", target=0, feature_mask=ids, samples=40)
    torch.testing.assert_close(by_callable.values, by_tensor.values, rtol=0, atol=0)


def test_kernel_shap_needs_enough_coalitions_and_not_too_many_groups():
    with pytest.raises(ValueError, match="samples >= G - 1 = 5"):
        sl.KernelShap(Additive(6), samples=4)(X)
    with pytest.raises(ValueError, match="pass a feature_mask with fewer groups"):
        sl.KernelShap(conv_net(size=64))(torch.zeros(1, 3, 64, 64))  # 12,288 elements, each its own group


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (torch.zeros(5, dtype=torch.long), ValueError, "does not broadcast"),
        (torch.zeros(6), TypeError, "integer group ids"),
        ("superpixels", ValueError, "unknown feature_mask preset"),
        (3, TypeError, "feature_mask must be"),
    ],
)
def test_bad_feature_masks_are_clear_errors(mask, error, message):
    with pytest.raises(error, match=message):
        sl.ShapleySampling(Additive(6), feature_mask=mask)(X)
