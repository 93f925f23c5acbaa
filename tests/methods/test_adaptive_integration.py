"""The adaptive trapezoid rule of Integrated Gradients: exact local errors, fewer points, the same contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import conv_net

import saliencelab as sl
from saliencelab.methods.adaptive import adaptive_trapezoid


def _kinked(x: torch.Tensor) -> torch.Tensor:
    """f(x) = ReLU(x − 0.3) + 2·ReLU(x − 0.71): along 0 → 1 the slope jumps at 0.3 and 0.71."""
    return (F.relu(x - 0.3) + 2 * F.relu(x - 0.71)).reshape(-1, 1)


def test_local_errors_are_exact_and_bisection_finds_the_kinks():
    # IG from 0 to 1 is f(1) − f(0) = 0.7 + 0.58 = 1.28; only the intervals holding a kink have an error,
    # and bisecting them halves it each time, so 1e-9 takes a few dozen points (a uniform trapezoid rule
    # needs about 1e5 for the same error).
    x = torch.ones(1, 1, dtype=torch.float64)
    ig = sl.IntegratedGradients(_kinked, integration="adaptive", tolerance=1e-9, max_steps=200)
    a = ig(x, target=0, baseline=0.0)
    assert float(a.values) == pytest.approx(1.28, abs=1.28e-9)
    assert int(a.info["steps"]) <= 80
    # the kinks' errors have either sign (a jump left or right of its interval's midpoint): the bound holds
    assert float(a.info["error_bound"]) >= float(a.delta) / 1.28
    uniform = sl.explain(
        _kinked, x, method="integrated_gradients", baseline=0.0, steps=80, integration="riemann_trapezoid"
    )
    assert float(uniform.delta) > 1e3 * float(a.delta)


def test_the_rule_integrates_what_it_is_given():
    # a cubic along the path: the slope 3α² curves evenly, so the rule refines nearly evenly and its error
    # stays near the uniform trapezoid rule's h²/12 · ∫ s'' = h²/2 with h = 1/64 (1.2e-4)
    def evaluate(sample, alphas):
        return (3 * alphas**2)[:, None], alphas**3

    result = adaptive_trapezoid(evaluate, torch.ones(2, 1, dtype=torch.float64), limit=65)
    assert result.points.tolist() == [65, 65]
    assert torch.allclose(result.integrals, torch.ones(2, 1, dtype=torch.float64), atol=1.3e-4)
    assert (result.error_bound >= (result.integrals.squeeze(1) - 1).abs() - 1e-15).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tolerance_is_reached_with_far_fewer_points_than_a_nested_fixed_rule(seed):
    # The same random ReLU nets and random baselines as the fixed rules' completeness test; the error is
    # checked against the model's own outputs.
    model = conv_net("functional", seed=seed)
    generator = torch.Generator().manual_seed(seed + 10)
    x, baseline = torch.randn(3, 3, 8, 8, generator=generator), torch.randn(3, 3, 8, 8, generator=generator)
    options = dict(method="integrated_gradients", target=1, baseline=baseline, tolerance=1e-3, max_steps=4096)
    adaptive = sl.explain(model, x, **options)
    fixed = sl.explain(model, x, **options, steps=16, integration="riemann_trapezoid")
    difference = (model(x)[:, 1] - model(baseline)[:, 1]).detach()
    error = (adaptive.values.flatten(1).sum(1) - difference).abs()
    assert float((error / difference.abs()).max()) <= 1e-3 + 1e-5
    torch.testing.assert_close(adaptive.delta, error, rtol=0, atol=1e-5)
    assert int(adaptive.info["steps"].sum()) * 2 <= int(fixed.info["steps"].sum())
    assert (adaptive.info["error_bound"] >= adaptive.delta / difference.abs() - 1e-5).all()


def test_without_tolerance_steps_is_the_number_of_points_and_each_is_evaluated_once():
    model = conv_net("functional", seed=4)
    generator = torch.Generator().manual_seed(1)
    x, baseline = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)
    rows = []
    handle = model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    a = sl.explain(
        model, x, method="integrated_gradients", baseline=baseline, target=0, steps=24, integration="adaptive"
    )
    handle.remove()
    assert a.info["steps"].tolist() == [24, 24]
    # 24 points per sample, f(x) and f(x') for completeness (2 rows each), one row measured to size chunks
    assert sum(rows) == 2 * 24 + 2 + 2 + 1
    # placing the 24 points adaptively beats spreading them evenly on every sample
    even = sl.explain(
        model, x, method="integrated_gradients", baseline=baseline, target=0, steps=24, integration="riemann_trapezoid"
    )
    assert (a.delta < even.delta).all()


def test_samples_are_independent_of_the_batch():
    # in float64, where batching does not move the marking through rounding
    model = conv_net("functional", seed=2).double()
    generator = torch.Generator().manual_seed(2)
    x, baseline = (torch.randn(3, 3, 8, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    options = dict(method="integrated_gradients", target=2, tolerance=1e-3, max_steps=1024)
    together = sl.explain(model, x, baseline=baseline, **options)
    for i in range(3):
        alone = sl.explain(model, x[i : i + 1], baseline=baseline[i : i + 1], **options)
        assert alone.info["steps"].tolist() == together.info["steps"][i : i + 1].tolist()
        torch.testing.assert_close(alone.values, together.values[i : i + 1], rtol=1e-5, atol=1e-6)


def test_tolerance_defaults_to_the_adaptive_rule_and_fixed_steps_to_gauss_legendre():
    model = conv_net(seed=0)
    assert sl.IntegratedGradients(model, tolerance=1e-3).integration == "adaptive"
    assert sl.IntegratedGradients(model).integration == "gauss_legendre"
    assert sl.IntegratedGradients(model, tolerance=1e-3, integration="riemann_middle").integration == "riemann_middle"


def test_clear_errors():
    model = conv_net(seed=0)
    x, refs = torch.randn(2, 3, 8, 8), torch.randn(3, 3, 8, 8)
    with pytest.raises(ValueError, match="one path per sample; got 3 references"):
        sl.explain(model, x, method="integrated_gradients", baseline=sl.references(refs), integration="adaptive")
    with pytest.raises(ValueError, match="choose one of .*adaptive"):
        sl.IntegratedGradients(model, integration="simpson")
    with pytest.raises(ValueError, match="at least 2 steps"):
        sl.IntegratedGradients(model, integration="adaptive", steps=1)


def test_max_steps_warns_with_the_samples_that_missed():
    x = torch.ones(1, 1, dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"max_steps=7 .* samples \[0\]"):
        a = sl.IntegratedGradients(_kinked, tolerance=1e-12, max_steps=7)(x, target=0, baseline=0.0)
    assert int(a.info["steps"]) == 7
