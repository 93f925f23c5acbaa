"""Infidelity (Yeh et al. 2019): closed forms on linear and quadratic models, Captum and Quantus agreement, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from captum.metrics import infidelity as captum_infidelity
from helpers import assert_unchanged, conv_net, snapshot

from saliencelab.evaluate.infidelity import infidelity, infidelity_perturbations

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quantus_reference_faithfulness.py"


def linear(weights: torch.Tensor, bias: float = 0.5) -> torch.nn.Module:
    """f(x) = w · flatten(x) + b in float64: its gradient w predicts every drop w · I exactly."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weights.numel(), 1)).double()
    with torch.no_grad():
        model[1].weight.copy_(weights.reshape(1, -1))
        model[1].bias.fill_(bias)
    return model.eval()


class Quadratic(torch.nn.Module):
    """f(x) = Σ x², gradient 2x: f(x) − f(x − I) = 2xᵀI − ‖I‖², so the gradient's error is exactly ‖I‖²."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(2).flatten(1).sum(dim=1)


def test_gradient_of_a_linear_model_has_zero_infidelity_under_every_perturbation():
    # Float64 model and inputs: the only error is rounding of sums of ~50 terms of size ~1, far below 1e-20.
    torch.manual_seed(0)
    weights = torch.randn(2, 4, 4, dtype=torch.float64)
    model = linear(weights)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    gradient = weights.expand_as(x)
    explicit = torch.randn(7, 2, 4, 4, dtype=torch.float64)
    for perturbation in ("gaussian", "square", explicit):
        values = infidelity(model, x, gradient, perturbation=perturbation, samples=20, region=2, noise=0.3)
        assert values.shape == (3,) and values.dtype == torch.float64
        assert values.abs().max() < 1e-20, perturbation if isinstance(perturbation, str) else "explicit"


def test_a_wrong_attribution_on_a_linear_model_costs_the_mean_squared_projection_of_its_error():
    # Φ = w + δ: the drop is wᵀI, the prediction (w + δ)ᵀI, so infidelity = mean_k (δᵀI_k)²;
    # under normalize the best β·Φ is fitted instead, which for Φ = 3w is exact (β = 1/3).
    torch.manual_seed(1)
    weights = torch.randn(1, 3, 3, dtype=torch.float64)
    model = linear(weights)
    x = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    delta = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    perturbations = infidelity_perturbations(x, samples=50, noise=0.2, seed=4)
    expected = ((perturbations * delta[:, None]).flatten(2).sum(dim=2)).pow(2).mean(dim=1)
    got = infidelity(model, x, weights + delta, samples=50, noise=0.2, seed=4)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    scaled = 3 * weights.expand_as(x)
    unscaled_error = ((2 * perturbations * weights).flatten(2).sum(dim=2)).pow(2).mean(dim=1)
    torch.testing.assert_close(infidelity(model, x, scaled, samples=50, noise=0.2, seed=4), unscaled_error)
    assert infidelity(model, x, scaled, samples=50, noise=0.2, seed=4, normalize=True).abs().max() < 1e-20


def test_gradient_of_a_quadratic_misses_the_curvature_term():
    # f(x) = Σx², Φ = 2x: error ‖I_k‖², infidelity = mean_k ‖I_k‖⁴; in expectation σ⁴(D² + 2D) for Gaussian I.
    torch.manual_seed(1)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    perturbations = infidelity_perturbations(x, samples=400, noise=0.1, seed=2)
    expected = perturbations.flatten(2).pow(2).sum(dim=2).pow(2).mean(dim=1)
    got = infidelity(Quadratic(), x, 2 * x, samples=400, noise=0.1, seed=2)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)
    # The sample mean of ‖I‖⁴ over 400 draws is within 10 % of σ⁴(D² + 2D) (its relative sd is ~1.2 % here).
    torch.testing.assert_close(got, torch.full((2,), 0.1**4 * (16**2 + 2 * 16), dtype=torch.float64), rtol=0.1, atol=0)


def test_square_perturbations_remove_one_square_to_the_baseline():
    torch.manual_seed(2)
    x = torch.rand(2, 3, 6, 5)
    squares = infidelity_perturbations(x, "square", samples=30, region=3, baseline=0.25, seed=1)
    moved = squares != 0
    assert squares.shape == (2, 30, 3, 6, 5)
    assert moved.all(dim=2).eq(moved.any(dim=2)).all()  # every channel of a pixel together
    assert moved[:, :, 0].sum(dim=(2, 3)).eq(9).all()  # x ≠ 0.25 almost surely: 3 × 3 pixels each
    torch.testing.assert_close((x[:, None] - squares)[moved], torch.full((int(moved.sum()),), 0.25))


def test_captum_agrees_on_the_same_perturbations_with_and_without_normalize():
    """Captum's ``perturb_func`` returns exactly the perturbations ours draws (``infidelity_perturbations``).

    Captum sums ``Iᵀ Φ`` and the squared errors in float32, ours in float64; the model's
    float32 outputs are shared. Relative 1e-5 covers float32 accumulation over ~200
    products and 20 perturbations (we measured at most 1.9e-7).
    """
    model = conv_net()
    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 8)
    attributions = torch.randn(3, 3, 8, 8) * 0.1
    target = torch.tensor([0, 3, 1])
    for kind in ("gaussian", "square"):
        perturbations = infidelity_perturbations(x, kind, samples=20, noise=0.05, region=3, seed=7)

        def perturb(expanded: torch.Tensor, perturbations=perturbations) -> tuple[torch.Tensor, torch.Tensor]:
            flat = perturbations.reshape(-1, *x.shape[1:])  # sample-major, as Captum repeats the inputs
            return flat, expanded - flat

        for normalize in (False, True):
            theirs = captum_infidelity(
                model, perturb, x, attributions, target=target, n_perturb_samples=20, normalize=normalize
            )
            ours = infidelity(
                model, x, attributions, target=target, perturbation=kind, samples=20, noise=0.05, region=3,
                seed=7, normalize=normalize,
            )  # fmt: skip
            torch.testing.assert_close(ours, theirs.double(), rtol=1e-5, atol=0)


def test_quantus_infidelity_on_its_cumulative_square_removal():
    """Quantus' ``Infidelity`` on the case stored by the reference script.

    Regenerate the JSON with ``PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_faithfulness.py``.
    Quantus is deterministic here: for each patch size it removes the squares of a
    row-major grid cumulatively to the sample's minimum (``perturb_baseline="black"``),
    i.e. explicit perturbations ``I_j = (x − min x) ⊙ M_j`` with ``M_j`` the first j + 1
    squares. Quantus works in float32 (relative 1e-5 covers its accumulation; we measured 1.3e-7).
    """
    record, (model, x, target, attributions) = reference_case()
    minimum = x.amin(dim=(1, 2, 3), keepdim=True)
    for patch, expected in record["infidelity"]["quantus_by_patch_size"].items():
        side = x.shape[-1] // int(patch)
        block = (torch.arange(x.shape[-2])[:, None] // int(patch)) * side + torch.arange(x.shape[-1]) // int(patch)
        cumulative = (block <= torch.arange(side * side)[:, None, None]).to(x.dtype)
        perturbations = (x - minimum)[:, None] * cumulative[None, :, None]
        ours = infidelity(model, x, attributions, target=target, perturbation=perturbations)
        torch.testing.assert_close(ours, torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=0)


def reference_case() -> tuple[dict, tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The stored Quantus record with its case, from the reference script."""
    spec = importlib.util.spec_from_file_location("quantus_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_case()


def test_method_option_maps_and_tabular_inputs():
    torch.manual_seed(3)
    weights = torch.randn(1, 4, 4, dtype=torch.float64)
    model = linear(weights)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert infidelity(model, x, method="gradient", samples=10).abs().max() < 1e-20
    # an (N, H, W) map is used for every channel, like an (N, 1, H, W) one
    torch.testing.assert_close(
        infidelity(model, x, weights.expand(2, 4, 4), samples=10),
        infidelity(model, x, weights.expand(2, 1, 4, 4), samples=10),
    )
    table = torch.nn.Linear(5, 1).double()
    rows = torch.randn(3, 5, dtype=torch.float64)
    assert infidelity(table, rows, table.weight.detach().expand(3, 5), samples=10).abs().max() < 1e-20


def test_seeded_batch_independent_chunk_independent_and_model_left_alone():
    torch.manual_seed(4)
    model = conv_net()
    before = snapshot(model)
    x = torch.randn(4, 3, 8, 8)
    attributions = torch.randn(4, 3, 8, 8)
    target = torch.tensor([1, 2, 3, 4])
    full = infidelity(model, x, attributions, target=target, samples=12, seed=3)
    assert torch.equal(full, infidelity(model, x, attributions, target=target, samples=12, seed=3))
    assert not torch.equal(full, infidelity(model, x, attributions, target=target, samples=12, seed=4))
    alone = infidelity(model, x[2:3], attributions[2:3], target=target[2:3], samples=12, seed=3)
    torch.testing.assert_close(alone, full[2:3], rtol=1e-5, atol=1e-7)  # batch size may change conv rounding
    chunked = infidelity(model, x, attributions, target=target, samples=12, seed=3, memory_budget=40_000)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-7)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"perturbation": "uniform"}, ValueError, "unknown perturbation"),
        ({"perturbation": torch.zeros(3, 1, 4)}, ValueError, "explicit perturbations do not fit"),
        ({"perturbation": torch.zeros(2, 0, 1, 4, 4)}, ValueError, "K >= 1"),
        ({"perturbation": torch.full((2, 1, 4, 4), float("nan"))}, ValueError, "finite"),
        ({"samples": 0}, ValueError, "samples must be a positive int"),
        ({"noise": 0.0}, ValueError, "noise must be a positive"),
        ({"perturbation": "square", "region": 5}, ValueError, "region must be an int from 1"),
        ({"normalize": 1}, TypeError, "normalize must be True or False"),
        ({"score": "rank"}, ValueError, "unknown score"),
    ],
)
def test_bad_options_are_refused_with_a_reason(options, error, message):
    model = linear(torch.ones(16, dtype=torch.float64))
    x = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(error, match=message):
        infidelity(model, x, torch.ones_like(x), **options)


def test_bad_attributions_and_inputs_are_refused():
    model = linear(torch.ones(16, dtype=torch.float64))
    x = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="do not fit inputs"):
        infidelity(model, x, torch.ones(2, 1, 4, 3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        infidelity(model, x, torch.full_like(x, float("nan")))
    with pytest.raises(TypeError, match="either attributions"):
        infidelity(model, x)
    with pytest.raises(ValueError, match="needs images"):
        infidelity(torch.nn.Linear(3, 1), torch.ones(2, 3), torch.ones(2, 3), perturbation="square")
