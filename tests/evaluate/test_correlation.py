"""Sensitivity-n and faithfulness correlation: closed forms on additive models, Quantus agreement, errors."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot

from saliencelab.evaluate.correlation import (
    default_sizes,
    faithfulness_correlation,
    pearson,
    sensitivity_n,
    subset_correlation,
)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quantus_reference_faithfulness.py"


class Additive(torch.nn.Module):
    """f(x) = Σ_i a_i tanh(x_i) + b_i x_i² in float64: removing features to 0 drops f by Σ_{i∈S} g_i(x_i)."""

    def __init__(self, shape: tuple[int, ...], seed: int = 0) -> None:
        super().__init__()
        draws = torch.Generator().manual_seed(seed)
        self.a = torch.nn.Parameter(torch.randn(shape, generator=draws, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(shape, generator=draws, dtype=torch.float64))

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * torch.tanh(x) + self.b * x.pow(2)

    def effects(self, x: torch.Tensor) -> torch.Tensor:
        """Each element's contribution g_i(x_i) − g_i(0): the exact attribution for a zero baseline."""
        return self.terms(x).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.terms(x).flatten(1).sum(dim=1, keepdim=True)


# Float64 models and inputs: an exact attribution's sums equal the drops up to rounding of ~50-term
# sums (~1e-15 relative), so its correlation is 1 to 1e-12.
EXACT = 1e-12


def test_exact_attribution_of_an_additive_model_correlates_one_at_every_size():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    model = Additive((3, 4, 4))
    result = sensitivity_n(model, x, model.effects(x), samples=30)
    assert result.sizes.tolist() == default_sizes(16).tolist() == [1, 2, 3, 4, 5, 7, 9, 12]
    assert result.correlation.shape == (2, 8) and result.correlation.dtype == torch.float64
    assert (result.correlation - 1).abs().max() < EXACT
    assert (result.curve - 1).abs().max() < EXACT
    rows = torch.randn(3, 7, dtype=torch.float64)
    table = Additive((7,), seed=1)
    assert (sensitivity_n(table, rows, table.effects(rows), sizes=[1, 3, 6]).correlation - 1).abs().max() < EXACT


def test_gradient_x_input_of_a_linear_model_correlates_one():
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).double()
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    result = sensitivity_n(model, x, method="gradient_x_input", sizes=[2, 8, 15], samples=25)
    assert (result.correlation - 1).abs().max() < EXACT
    assert (faithfulness_correlation(model, x, method="gradient_x_input", subset_size=5) - 1).abs().max() < EXACT


def test_reversed_shifted_scaled_and_constant_attributions():
    # Pearson is invariant to scale > 0 and to a per-feature constant at a fixed size (it adds n·c to every sum);
    # reversing the sign gives -1; a constant attribution has constant sums: undefined (NaN), as is a flat model.
    torch.manual_seed(3)
    x = torch.randn(2, 10, dtype=torch.float64)
    model = Additive((10,))
    exact = model.effects(x)
    options = {"sizes": [2, 5, 9], "samples": 40}
    assert (sensitivity_n(model, x, -exact, **options).correlation + 1).abs().max() < EXACT
    assert (sensitivity_n(model, x, 5 * exact + 3, **options).correlation - 1).abs().max() < EXACT
    assert sensitivity_n(model, x, torch.full_like(x, 0.7), **options).correlation.isnan().all()
    flat = torch.nn.Linear(10, 1, bias=True).double()
    with torch.no_grad():
        flat.weight.zero_()
    assert sensitivity_n(flat, x, exact, **options).correlation.isnan().all()
    assert sensitivity_n(flat, x, exact, **options).curve.isnan().all()


def test_every_subset_of_a_size_gives_the_correlation_of_attributions_with_effects_across_features():
    # Over all C(U, n) subsets, cov(Σ_S a, Σ_S b) = n(U − n)/(U(U − 1)) Σ_i (a_i − ā)(b_i − b̄), the same factor
    # in both variances: the correlation is the plain Pearson correlation of a and b across the U features.
    torch.manual_seed(4)
    x = torch.randn(2, 6, dtype=torch.float64)
    model = Additive((6,), seed=3)
    attributions = torch.randn(2, 6, dtype=torch.float64)
    expected = pearson(attributions, model.effects(x))
    for size in (1, 2, 3, 5):
        every = torch.tensor([[i in chosen for i in range(6)] for chosen in itertools.combinations(range(6), size)])
        torch.testing.assert_close(
            subset_correlation(model, x, attributions, subsets=every), expected, rtol=0, atol=EXACT
        )


def test_random_subsets_estimate_the_feature_correlation():
    # The sample correlation over K subsets has standard error ≈ (1 − ρ²)/√K ≤ 1/√2000 ≈ 0.022; 0.09 is 4 of them.
    torch.manual_seed(5)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    model = Additive((1, 4, 4), seed=5)
    attributions = model.effects(x) + 0.5 * torch.randn_like(x)
    expected = pearson(attributions.flatten(1), model.effects(x).flatten(1))
    result = sensitivity_n(model, x, attributions, sizes=[2, 8, 14], samples=2000, seed=1)
    torch.testing.assert_close(result.correlation, expected[:, None].expand(2, 3), rtol=0, atol=0.09)


def test_faithfulness_correlation_is_sensitivity_n_at_one_size():
    torch.manual_seed(6)
    model = conv_net()
    x = torch.randn(3, 3, 8, 8)
    attributions = torch.randn(3, 3, 8, 8)
    for size in (None, 7):
        ours = faithfulness_correlation(model, x, attributions, subset_size=size, samples=20, seed=2)
        same = sensitivity_n(model, x, attributions, sizes=[size or 64 // 10], samples=20, seed=2)
        assert torch.equal(ours, same.correlation[:, 0])
    probability = faithfulness_correlation(model, x, attributions, score="probability", samples=20)
    assert probability.shape == (3,) and (probability.abs() <= 1).all()


def test_patches_and_feature_masks_group_pixels():
    torch.manual_seed(7)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    model = Additive((2, 6, 6), seed=2)
    noisy = model.effects(x) + torch.randn_like(x)
    by_region = sensitivity_n(model, x, noisy, region=3, sizes=[1, 2, 3], samples=10)
    labels = (torch.arange(6)[:, None] // 3) * 10 + torch.arange(6)[None, :] // 3  # the same 4 squares, other labels
    by_mask = sensitivity_n(model, x, noisy, feature_mask=labels, sizes=[1, 2, 3], samples=10)
    assert torch.equal(by_region.correlation, by_mask.correlation)
    # the exact attribution summed over a group is the group's exact effect: correlation 1
    exact = sensitivity_n(model, x, model.effects(x), feature_mask=labels, sizes=[1, 2, 3], samples=10)
    assert (exact.correlation - 1).abs().max() < EXACT
    rows = torch.randn(2, 6, dtype=torch.float64)
    table = Additive((6,), seed=4)
    pairs = torch.tensor([0, 0, 1, 1, 2, 2])
    grouped = faithfulness_correlation(table, rows, table.effects(rows), feature_mask=pairs, subset_size=1, samples=9)
    assert (grouped - 1).abs().max() < EXACT


def test_seeded_batch_independent_chunk_independent_and_model_left_alone():
    torch.manual_seed(8)
    model = conv_net()
    before = snapshot(model)
    x = torch.randn(4, 3, 8, 8)
    attributions = torch.randn(4, 3, 8, 8)
    target = torch.tensor([1, 2, 3, 4])
    options = {"target": target, "sizes": [3, 20], "samples": 10}
    full = sensitivity_n(model, x, attributions, seed=3, **options).correlation
    assert torch.equal(full, sensitivity_n(model, x, attributions, seed=3, **options).correlation)
    assert not torch.equal(full, sensitivity_n(model, x, attributions, seed=4, **options).correlation)
    alone = sensitivity_n(model, x[1:2], attributions[1:2], seed=3, **{**options, "target": target[1:2]})
    torch.testing.assert_close(alone.correlation, full[1:2], rtol=0, atol=1e-5)  # conv rounding may follow batch size
    chunked = sensitivity_n(model, x, attributions, seed=3, memory_budget=40_000, **options).correlation
    torch.testing.assert_close(chunked, full, rtol=0, atol=1e-5)
    assert_unchanged(model, before)


def test_quantus_faithfulness_correlation_on_its_own_subsets():
    """Quantus' ``FaithfulnessCorrelation`` on the case stored by the reference script.

    Regenerate the JSON with ``PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_faithfulness.py``.
    Quantus draws each sample's subsets with the global ``np.random.choice``; the
    script recorded them, and :func:`subset_correlation` reruns ours on them with
    Quantus' ``"black"`` baseline (each sample's minimum) and logits. With one input
    channel Quantus' features (input values) are our pixels. Quantus computes the
    correlation in float32 (scipy on float32 arrays): 1e-6 absolute (we measured 5e-8).
    Our own :func:`faithfulness_correlation` draws its subsets from a torch generator
    shared by the batch, which Quantus cannot be made to use.
    """
    spec = importlib.util.spec_from_file_location("quantus_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    record, (model, x, target, attributions) = module.reference_case()
    reference = record["faithfulness_correlation"]
    indices = torch.tensor(reference["subsets"])
    subsets = torch.zeros(*indices.shape[:2], x[0].numel(), dtype=torch.bool).scatter_(2, indices, True)
    minimum = x.amin(dim=(1, 2, 3), keepdim=True)
    ours = subset_correlation(model, x, attributions, subsets=subsets, target=target, baseline=minimum)
    torch.testing.assert_close(ours, torch.tensor(reference["quantus"], dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"sizes": [0]}, ValueError, "sizes must be a non-empty sequence of ints from 1 to 15"),
        ({"sizes": [16]}, ValueError, "sizes must be"),
        ({"sizes": []}, ValueError, "sizes must be"),
        ({"sizes": [2.5]}, ValueError, "sizes must be"),
        ({"samples": 1}, ValueError, "samples must be an int of at least 2"),
        ({"region": 0}, ValueError, "region must be a positive int"),
        ({"region": 2, "feature_mask": torch.zeros(4, 4, dtype=torch.long)}, ValueError, "not both"),
        ({"feature_mask": torch.zeros(4, 4)}, TypeError, "integer tensor"),
        ({"feature_mask": torch.zeros(4, 3, dtype=torch.long)}, ValueError, "shape \\(4, 4\\)"),
        ({"feature_mask": torch.zeros(4, 4, dtype=torch.long)}, ValueError, "at least 2 features"),
        ({"score": "rank"}, ValueError, "unknown score"),
    ],
)
def test_bad_options_are_refused_with_a_reason(options, error, message):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    x = torch.ones(2, 1, 4, 4)
    if "sizes" not in options:
        options = {"sizes": None, **options}
    with pytest.raises(error, match=message):
        sensitivity_n(model, x, torch.ones_like(x), **options)


def test_bad_inputs_attributions_and_subsets_are_refused():
    model = torch.nn.Linear(4, 1)
    rows = torch.ones(2, 4)
    with pytest.raises(ValueError, match="images \\(N, C, H, W\\) or tabular rows"):
        sensitivity_n(model, torch.ones(2, 3, 4), torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="do not fit tabular inputs"):
        sensitivity_n(model, rows, torch.ones(2, 3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        sensitivity_n(model, rows, torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="region is for images"):
        sensitivity_n(model, rows, rows, region=2)
    with pytest.raises(TypeError, match="boolean tensor"):
        subset_correlation(model, rows, rows, subsets=torch.ones(3, 4))
    with pytest.raises(ValueError, match="do not fit 2 samples of 4 features"):
        subset_correlation(model, rows, rows, subsets=torch.ones(3, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2 subsets"):
        subset_correlation(model, rows, rows, subsets=torch.ones(1, 4, dtype=torch.bool))
