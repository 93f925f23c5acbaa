"""Max-sensitivity and local Lipschitz estimates: closed forms on linear and quadratic models."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot

from saliencelab.evaluate.robustness import local_lipschitz, max_sensitivity


class Quadratic(torch.nn.Module):
    """f(x) = ½ Σ c ⊙ x²: its gradient is c ⊙ x."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.c * x.pow(2)).flatten(1).sum(dim=1)


def deltas(shape: tuple[int, ...], radius: float, samples: int, seed: int) -> torch.Tensor:
    """The documented draws: δ_s = radius · (2 U_s − 1), U = torch.rand((samples, *shape)) from the seed."""
    uniform = torch.rand((samples, *shape), generator=torch.Generator().manual_seed(seed))
    return (radius * (2 * uniform - 1)).double()


def test_the_gradient_of_a_linear_model_does_not_move():
    model = torch.nn.Linear(6, 3)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    assert max_sensitivity(model, x, method="gradient", radius=0.5).tolist() == [0.0] * 4
    assert local_lipschitz(model, x, method="gradient", radius=0.5).tolist() == [0.0] * 4


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_max_sensitivity_of_a_quadratic_model_in_closed_form(norm):
    # Φ(x) = c ⊙ x, so ‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖ = ‖c ⊙ δ‖ / ‖c ⊙ x‖ for the documented δ
    g = torch.Generator().manual_seed(1)
    c = torch.rand(5, generator=g) + 0.5
    x = torch.randn(3, 5, generator=g)
    result = max_sensitivity(Quadratic(c), x, method="gradient", radius=0.1, samples=20, norm=norm, seed=4)
    d = deltas((5,), 0.1, 20, 4)
    c64, x64 = c.double(), x.double()
    if norm == "l2":
        expected = (c64 * d).norm(dim=1).max() / (c64 * x64).norm(dim=1)
    else:
        expected = (c64 * d).abs().amax(dim=1).max() / (c64 * x64).abs().amax(dim=1)
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=0)
    absolute = max_sensitivity(Quadratic(c), x, method="gradient", radius=0.1, samples=20, relative=False, seed=4)
    torch.testing.assert_close(absolute, (c64 * d).norm(dim=1).max().expand(3), rtol=1e-5, atol=0)


def test_local_lipschitz_of_a_quadratic_model_in_closed_form():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 4, generator=g)
    # a scalar curvature: every ratio ‖3δ‖/‖δ‖ is 3
    scalar = local_lipschitz(Quadratic(torch.tensor(3.0)), x, method="gradient", radius=0.2, samples=7)
    torch.testing.assert_close(scalar, torch.full((3,), 3.0, dtype=torch.float64), rtol=1e-5, atol=0)
    # per-feature curvature: max over the draws of ‖c ⊙ δ‖ / ‖δ‖, below max|c|
    c = torch.rand(2, 4, generator=g) * 4
    result = local_lipschitz(Quadratic(c), x, method="gradient", radius=0.2, samples=7, seed=9)
    d = deltas((2, 4), 0.2, 7, 9).flatten(1)
    expected = ((c.double().flatten() * d).norm(dim=1) / d.norm(dim=1)).max()
    torch.testing.assert_close(result, expected.expand(3), rtol=1e-5, atol=0)
    assert (result <= c.max()).all()


def test_the_target_stays_the_one_resolved_at_the_input():
    # f(x) = x: near x0 = x1 the argmax flips under noise; with the target fixed the gradient stays e_argmax
    model = torch.nn.Identity()
    x = torch.tensor([[1.0, 1.0 - 1e-4], [0.0, 2.0]])
    assert max_sensitivity(model, x, method="gradient", radius=0.1, samples=30).tolist() == [0.0, 0.0]


def test_an_all_zero_explanation_is_inf_or_zero_never_nan():
    x = torch.zeros(1, 3)
    moving = max_sensitivity(Quadratic(torch.tensor(1.0)), x, method="gradient")  # Φ(0) = 0, Φ(δ) = δ
    still = max_sensitivity(torch.nn.Linear(3, 1, bias=False).requires_grad_(False), x, method=lambda m, v, t: 0 * v)
    assert moving.tolist() == [float("inf")] and still.tolist() == [0.0]


def test_seeds_batches_and_a_custom_method(images):
    model = conv_net(seed=30)
    a = max_sensitivity(model, images, method="gradient", samples=6, seed=1)
    assert torch.equal(a, max_sensitivity(model, images, method="gradient", samples=6, seed=1))
    assert not torch.equal(a, max_sensitivity(model, images, method="gradient", samples=6, seed=2))
    chunked = max_sensitivity(model, images, method="gradient", samples=6, seed=1, memory_budget=5_000)
    alone = torch.cat([max_sensitivity(model, x[None], method="gradient", samples=6, seed=1) for x in images])
    torch.testing.assert_close(chunked, a, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(alone, a, rtol=1e-5, atol=1e-7)
    # a callable explainer: Φ(x) = x has local Lipschitz constant exactly 1
    identity = local_lipschitz(model, images, method=lambda m, x, t: x, radius=0.3)
    torch.testing.assert_close(identity, torch.ones(4, dtype=torch.float64), rtol=1e-5, atol=0)


def test_the_model_is_left_untouched_and_bad_arguments_are_rejected(images):
    model = conv_net(seed=31)
    before = snapshot(model)
    local_lipschitz(model, images, method="integrated_gradients", method_options={"steps": 4}, samples=2)
    for kwargs, error, words in [
        ({"radius": 0.0}, ValueError, "radius"),
        ({"samples": 0}, ValueError, "samples"),
        ({"norm": "l1"}, ValueError, "unknown norm"),
        ({"method": None}, TypeError, "method= is required"),
        ({"method": "no_such_method"}, ValueError, "no_such_method"),
    ]:
        with pytest.raises(error, match=words):
            max_sensitivity(model, images, **{"method": "gradient", **kwargs})
    assert_unchanged(model, before)
