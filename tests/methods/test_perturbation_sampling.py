"""Prediction Difference Analysis, RISE and Meaningful Perturbation: closed forms and their options."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net

import saliencelab as sl
from saliencelab.methods.perturbation.rise import RiseMasks


def test_prediction_difference_with_one_reference_is_occlusion_by_that_reference(images):
    model = conv_net("module", seed=41)
    reference = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    pda = sl.explain(
        model,
        images,
        method="prediction_difference",
        target=2,
        window=3,
        stride=1,
        baseline=reference.repeat(4, 1, 1, 1),
    )
    occlusion = sl.explain(model, images, method="occlusion", target=2, window=3, stride=1, baseline=reference)
    assert pda.info["weight_of_evidence"] is False  # logits: the plain difference
    torch.testing.assert_close(pda.values, occlusion.values, rtol=1e-5, atol=1e-7)


def test_weight_of_evidence_for_probabilities():
    torch.manual_seed(0)
    logits = torch.nn.Linear(4, 3)
    model = lambda x: logits(x).softmax(dim=1)  # noqa: E731
    x, reference = torch.randn(2, 4), torch.randn(1, 4)
    a = sl.explain(model, x, method="prediction_difference", target=1, window=1, baseline=reference.repeat(3, 1))
    assert a.info["weight_of_evidence"] is True
    with torch.no_grad():
        p = model(x)[:, 1].double()
        expected = torch.empty(2, 4, dtype=torch.float64)
        for i in range(4):
            without = x.clone()
            without[:, i] = reference[0, i]
            q = model(without)[:, 1].double()
            expected[:, i] = torch.log2(p / (1 - p)) - torch.log2(q / (1 - q))
    torch.testing.assert_close(a.values.double(), expected, rtol=1e-5, atol=1e-6)
    plain = sl.explain(
        model,
        x,
        method="prediction_difference",
        target=1,
        window=1,
        baseline=reference.repeat(3, 1),
        probabilities=False,
    )
    assert plain.info["weight_of_evidence"] is False
    with pytest.raises(ValueError, match="outputs in \\[0, 1\\]"):
        sl.explain(logits, x, method="prediction_difference", target=1, baseline=x, probabilities=True)


def test_marginal_sampling_averages_over_the_references():
    # f = Σ w_i x_i: the expected difference is w_i (x_i − mean of feature i over the references)
    model = torch.nn.Linear(3, 1)
    references = torch.tensor([[0.0, 1.0, -1.0], [2.0, 1.0, 1.0]])
    a = sl.explain(model, torch.ones(1, 3), method="prediction_difference", window=1, samples=4000, baseline=references)
    expected = model.weight.detach() * (1 - references.mean(0))
    torch.testing.assert_close(a.values, expected, rtol=0, atol=0.05 * float(model.weight.detach().abs().max()))


def test_conditional_sampling_uses_the_neighbourhood():
    # flat images of random brightness: the ring around a window tells its values exactly, the marginal does not
    g = torch.Generator().manual_seed(0)
    references = torch.rand(40, 1, 1, 1, generator=g).expand(40, 1, 8, 8).contiguous()
    x = torch.full((1, 1, 8, 8), 0.3)
    model = lambda x: (x**2).sum(dim=(1, 2, 3))[:, None]  # noqa: E731
    options = {"method": "prediction_difference", "window": 2, "stride": 2, "samples": 20, "baseline": references}
    conditional = sl.explain(model, x, sampling="conditional", padding=1, **options).values
    marginal = sl.explain(model, x, sampling="marginal", **options).values
    assert float(conditional.abs().max()) < 1e-3
    assert float(marginal.abs().mean()) > 0.05


def test_conditional_sampling_needs_images_and_room_for_the_ring(images):
    model = conv_net()
    with pytest.raises(ValueError, match="larger than the images"):
        sl.explain(
            model, images, method="prediction_difference", window=4, padding=3, sampling="conditional", baseline=images
        )
    with pytest.raises(ValueError, match="images"):
        sl.explain(
            torch.nn.Linear(6, 2),
            torch.randn(2, 6),
            method="prediction_difference",
            target=0,
            sampling="conditional",
            baseline=torch.randn(5, 6),
        )


def test_rise_is_the_mask_weighted_mean_score():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 5, 3))
    x, baseline = torch.randn(2, 2, 6, 5), torch.randn(1, 2, 6, 5)
    a = sl.explain(model, x, method="rise", target=[0, 2], samples=50, grid=3, keep=0.4, seed=3, baseline=baseline)
    masks = RiseMasks((6, 5), samples=50, grid=3, keep=0.4, seed=3).at(torch.arange(50))  # (50, 1, 6, 5)
    expected = torch.zeros(2, 1, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        for i, target in enumerate([0, 2]):
            scores = model(masks * x[i] + (1 - masks) * baseline)[:, target].double()
            expected[i] = (scores[:, None, None, None] * masks.double()).sum(0) / (50 * 0.4)
    torch.testing.assert_close(a.values.double(), expected.expand(2, 2, 6, 5), rtol=1e-5, atol=1e-6)


def test_rise_masks_are_smooth_shifted_and_keep_the_chosen_fraction():
    masks = RiseMasks((32, 32), samples=400, grid=4, keep=0.3, seed=0).at(torch.arange(400))
    assert bool(((masks >= 0) & (masks <= 1)).all())
    assert abs(float(masks.mean()) - 0.3) < 0.03
    assert len({tuple(m.shape) for m in masks}) == 1 and len(torch.unique(masks)) > 2  # soft, not binary
    # shifted: the cells do not all start at the image corner
    shifts = RiseMasks((32, 32), samples=400, grid=4, keep=0.3, seed=0).shifts
    assert shifts.min() == 0 and shifts.max() == 7


def test_meaningful_perturbation_deletes_evidence_and_reports_its_mask():
    def model(x):
        r = x[:, :, 2:6, 2:6].mean(dim=(1, 2, 3))
        return torch.stack([6 * r - 3, 3 - 6 * r], dim=1)

    x = torch.ones(2, 1, 8, 8)
    a = sl.explain(model, x, method="meaningful_perturbation", target=0, resolution=8, steps=150, baseline=0.0)
    start = model(x)[:, 0] - model(x)[:, 1]  # the log-odds of a two-class model: the logit difference
    assert a.info["score"] == "log_odds"
    assert bool((a.info["scores"] < 0.5 * start.double()).all())  # the deletion removed most of the evidence
    assert a.info["mask"].shape == (2, 1, 8, 8)
    torch.testing.assert_close(a.values[:, :1], 1 - a.info["mask"])  # full-resolution mask: values are 1 − m
    assert bool(((a.values >= 0) & (a.values <= 1)).all())
    raw = sl.explain(
        model, x, method="meaningful_perturbation", target=lambda out: out[:, 0], steps=5, resolution=2, baseline=0.0
    )
    assert raw.info["score"] == "logit"
    with pytest.raises(ValueError, match="score='probability' needs a class target"):
        sl.explain(
            model, x, method="meaningful_perturbation", target=lambda out: out[:, 0], score="probability", steps=2
        )


def test_meaningful_perturbation_default_mask_resolves_small_images():
    """On 8×8 inputs the default mask is per pixel (an eighth of the side, one cell, gave a constant map)."""

    def model(x):
        r = x[:, :, :3, 5:].mean(dim=(1, 2, 3))
        return torch.stack([6 * r - 3, 3 - 6 * r], dim=1)

    a = sl.explain(model, torch.ones(1, 1, 8, 8), method="meaningful_perturbation", target=0, steps=150, baseline=0.0)
    assert a.info["mask"].shape == (1, 1, 8, 8)
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[:3, 5:] = True  # the evidence: the top-right 3×3 corner
    deleted = a.values[0, 0]
    assert deleted[region].min() > 0.99  # deleted in full
    assert deleted[~region].max() < 0.8 * deleted[region].min()  # the smoothness term spreads the rest, less


def test_meaningful_perturbation_noise_is_seeded():
    model = conv_net("module", seed=42)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    options = {"method": "meaningful_perturbation", "steps": 20, "resolution": 4, "baseline": 0.0, "noise": 0.1}
    first = sl.explain(model, x, seed=1, **options)
    again = sl.explain(model, x, seed=1, **options)
    other = sl.explain(model, x, seed=2, **options)
    assert first.values.abs().sum() > 0
    assert torch.equal(first.values, again.values) and not torch.equal(first.values, other.values)
