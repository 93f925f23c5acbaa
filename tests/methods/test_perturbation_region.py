"""Every perturbation method finds the only region a model looks at (RISE: shows the contrast)."""

from __future__ import annotations

import pytest
import torch

import saliencelab as sl

REGION = (slice(4, 8), slice(8, 12))


class RegionNet(torch.nn.Module):
    """A random tanh network that reads only rows 4-7, columns 8-11 of a 16x16 image."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.hidden = torch.nn.Parameter(torch.randn(12, 16, generator=g) / 2)
        self.out = torch.nn.Parameter(torch.randn(3, 12, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x[:, :, REGION[0], REGION[1]].flatten(1) @ self.hidden.T) @ self.out.T


def region_mask() -> torch.Tensor:
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[REGION] = True
    return mask


@pytest.fixture(scope="module")
def scene():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 16, 16, generator=g)
    references = torch.rand(20, 1, 16, 16, generator=g)
    model = RegionNet()
    with torch.no_grad():
        target = (model(x) - model(torch.zeros_like(x))).argmax(dim=1)  # a class that deleting the region lowers
    return model, x, references, target


CASES = {
    "occlusion": {"window": 2, "stride": 2},
    "shapley_sampling": {"samples": 4},
    "kernel_shap": {"feature_mask": "grid"},  # 64 cells of 2x2, the default 2·64 + 2048 coalitions
    "lime": {"feature_mask": "grid", "samples": 4000},
    "prediction_difference": {"window": 2, "stride": 2},
    "prediction_difference/conditional": {"window": 2, "stride": 2, "sampling": "conditional"},
    "meaningful_perturbation": {"resolution": 16, "area": 0.05, "smoothness": 0.02, "baseline": 0.0},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_at_least_80_percent_of_the_mass_is_on_the_region(case, scene):
    model, x, references, target = scene
    method = case.split("/")[0]
    options = dict(CASES[case])
    if method == "prediction_difference":
        options["baseline"] = references
    values = sl.explain(model, x, method=method, target=target, **options).values[:, 0].abs()
    mass = values[:, region_mask()].sum(dim=1) / values.flatten(1).sum(dim=1)
    assert bool((mass >= 0.8).all()), mass.tolist()


def test_pixel_features_put_no_mass_outside_the_region_for_shapley_sampling(scene):
    model, x, _, target = scene
    values = sl.explain(model, x, method="shapley_sampling", target=target, samples=2).values[:, 0]
    # dummy features: every marginal compares two equal inputs (up to how the model's rows round in a batch)
    assert values[:, ~region_mask()].abs().max() < 1e-6
    assert values[:, region_mask()].abs().min() > 0


def test_rise_shows_the_contrast(scene):
    model, x, _, target = scene
    values = sl.explain(model, x, method="rise", target=target, samples=2000, grid=4).values[:, 0]
    inside, outside = values[:, region_mask()], values[:, ~region_mask()]
    peak = values.flatten(1).argmax(dim=1)
    assert bool(region_mask().flatten()[peak].all())  # the maximum lies in the region
    contrast = (inside.mean(dim=1) - outside.mean(dim=1)) / outside.std(dim=1)
    assert bool((contrast > 2).all()), contrast.tolist()
