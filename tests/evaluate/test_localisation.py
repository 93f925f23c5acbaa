"""Tests for saliencelab.evaluate.localisation: pointing game, relevance mass and rank accuracy.

Closed forms on hand-made maps and masks, brute-force references on random ones, the degenerate cases, the
trained ``cluttered_digits_cnn`` (gradient x input localises its digits far better than a random map), and
agreement with Quantus 0.6.0 on a stored case. The Quantus numbers come from
``PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_localisation.py`` (Quantus is not
installed in the test environment) and live in ``tests/evaluate/data/quantus_localisation.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import saliencelab as sl
from saliencelab import zoo
from saliencelab.evaluate.localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy

METRICS = (pointing_game, relevance_mass_accuracy, relevance_rank_accuracy)
QUANTUS = Path(__file__).parent / "data" / "quantus_localisation.json"


def grid(*rows: str) -> torch.Tensor:
    """A (1, H, W) bool mask from rows of '#' (object) and '.' (background)."""
    return torch.tensor([[[c == "#" for c in row] for row in rows]])


def random_masks(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, size, size) random masks, none empty."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(n, size, size, generator=g) < 0.2
    masks[:, 0, 0] = True
    return masks


# --- pointing game ---------------------------------------------------------------------------------------------


def test_pointing_game_hit_miss_and_ties() -> None:
    masks = grid("#..", "...", "..#").repeat(4, 1, 1)
    maps = torch.zeros(4, 3, 3)
    maps[0, 0, 0] = 2.0  # on the object
    maps[1, 1, 1] = 2.0  # off it
    maps[2, 0, 0] = maps[2, 0, 1] = maps[2, 1, 0] = maps[2, 2, 2] = 1.0  # four tied maxima, two on the object
    maps[3] = -1.0
    maps[3, 1, 1] = -3.0  # all negative: no positive relevance (NaN); |map| is largest off the object
    assert pointing_game(maps[:3], masks[:3]).tolist() == [1.0, 0.0, 0.5]
    assert pointing_game(maps, masks, relevance="absolute").tolist() == [1.0, 0.0, 0.5, 0.0]
    assert math.isnan(pointing_game(maps, masks)[3].item())


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 1.5, 2.9, 4.0])
def test_pointing_game_tolerance_is_the_euclidean_distance_to_the_object(tolerance: float) -> None:
    masks = random_masks(64, 9, seed=1) & (torch.rand(64, 9, 9, generator=torch.Generator().manual_seed(2)) < 0.3)
    masks[:, 0, 0] = True
    maps = torch.rand(64, 9, 9, generator=torch.Generator().manual_seed(3))
    top = maps.flatten(1).argmax(1)
    pixels = torch.cartesian_prod(torch.arange(9.0), torch.arange(9.0))  # (81, 2) row, column
    distance = torch.stack([torch.cdist(pixels[top[i]][None], pixels[masks[i].flatten()]).min() for i in range(64)])
    expected = (distance <= tolerance).double()
    assert torch.equal(pointing_game(maps, masks, tolerance=tolerance), expected)
    assert 0 < expected.mean() < 1  # both outcomes occur


# --- relevance mass accuracy -----------------------------------------------------------------------------------


def test_relevance_mass_accuracy_closed_forms() -> None:
    masks = grid("#.", ".#").repeat(3, 1, 1)
    maps = torch.tensor([[[3.0, -1.0], [1.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]], [[5.0, 0.0], [0.0, 1.0]]])
    # positive part: 3 / (3 + 1); 0 / 4; all of it on the object
    assert relevance_mass_accuracy(maps, masks).tolist() == [0.75, 0.0, 1.0]
    # |map|: 3 / (3 + 1 + 1)
    assert relevance_mass_accuracy(maps, masks, relevance="absolute").tolist() == [0.6, 0.0, 1.0]


def test_relevance_mass_accuracy_equals_the_sums_on_random_maps() -> None:
    masks = random_masks(16, 7, seed=4)
    maps = torch.randn(16, 7, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    positive = maps.clamp(min=0)
    expected = (positive * masks).sum((1, 2)) / positive.sum((1, 2))
    torch.testing.assert_close(relevance_mass_accuracy(maps, masks), expected, rtol=1e-12, atol=0)


# --- relevance rank accuracy -----------------------------------------------------------------------------------


def test_relevance_rank_accuracy_closed_forms_and_ties() -> None:
    masks = torch.cat([grid("#.#."), grid("##.."), grid("##.."), grid("#..#")])
    maps = torch.tensor([[[5.0, 4.0, 3.0, 2.0]], [[5.0, 1.0, 1.0, 0.0]], [[2.0, 1.0, 1.0, 1.0]], [[1.0, -1, -2, -3]]])
    # top 2: {5, 4} holds one object pixel; {5, one of two tied 1s}: 1 + 1/2; {2, one of three tied 1s}: 1 + 1/3;
    # positive part {1, 0, 0, 0}: 1 + one of three tied zeros, one of them on the object
    expected = [0.5, 0.75, (1 + 1 / 3) / 2, (1 + 1 / 3) / 2]
    torch.testing.assert_close(relevance_rank_accuracy(maps, masks), torch.tensor(expected).double())
    # |map|: {-3, -2} by magnitude, one of them on the object
    assert relevance_rank_accuracy(maps[3:], masks[3:], relevance="absolute").tolist() == [0.5]


def test_relevance_rank_accuracy_equals_top_k_on_random_maps() -> None:
    masks = random_masks(16, 7, seed=6)
    maps = torch.randn(16, 7, 7, generator=torch.Generator().manual_seed(7), dtype=torch.float64) + 3  # all positive
    expected = []
    for values, mask in zip(maps.flatten(1), masks.flatten(1), strict=True):
        k = int(mask.sum())
        expected.append(mask[values.topk(k).indices].double().mean().item())
    torch.testing.assert_close(relevance_rank_accuracy(maps, masks), torch.tensor(expected).double())
    on_object = masks.double() + 0.01 * maps  # every object pixel above every background pixel
    assert relevance_rank_accuracy(on_object, masks).tolist() == [1.0] * 16
    assert relevance_rank_accuracy(-on_object, masks, relevance="absolute").tolist() == [1.0] * 16


# --- shared behaviour ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_maps_without_location_information_score_nan(metric) -> None:
    masks = grid("#.", "..").repeat(5, 1, 1)
    maps = torch.stack(
        [
            torch.zeros(2, 2),  # all zero
            torch.full((2, 2), 0.7),  # constant
            -torch.arange(1.0, 5.0).reshape(2, 2),  # nowhere positive
            torch.tensor([[1.0, 0.0], [0.0, 0.0]]),  # informative, on the object
            torch.tensor([[0.0, 1.0], [0.0, 0.0]]),  # informative, off it
        ]
    )
    scores = metric(maps, masks)
    assert scores.dtype == torch.float64 and scores.shape == (5,)
    assert scores[:3].isnan().all()
    assert scores[3:].tolist() == [1.0, 0.0]
    absolute = metric(maps, masks, relevance="absolute")
    assert absolute[:2].isnan().all() and not absolute[2:].isnan().any()  # |map| of the negative one varies


@pytest.mark.parametrize("metric", METRICS)
def test_bad_input_is_refused_with_a_reason(metric) -> None:
    maps, masks = torch.rand(2, 4, 4), random_masks(2, 4, seed=8)
    bad = maps.clone()
    bad[1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        metric(bad, masks)
    bad[1, 2, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        metric(bad, masks)
    empty = masks.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r"masks \[1\] are empty"):
        metric(maps, empty)
    with pytest.raises(TypeError, match=r"masks must be a bool tensor \(use masks > 0"):
        metric(maps, masks.float())
    with pytest.raises(ValueError, match=r"one mask per map \(N = 2\); got \(3, 4, 4\)"):
        metric(maps, random_masks(3, 4, seed=9))
    with pytest.raises(ValueError, match=r"maps \(N, C, H, W\) or \(N, H, W\); got shape \(4, 4\)"):
        metric(maps[0], masks)
    with pytest.raises(TypeError, match="tensor or an Attribution; got list"):
        metric(maps.tolist(), masks)
    with pytest.raises(ValueError, match="relevance must be one of 'positive', 'absolute'; got 'signed'"):
        metric(maps, masks, relevance="signed")
    with pytest.raises(ValueError, match=r"maps are \(8, 8\) and the masks \(4, 4\)"):
        metric(torch.rand(2, 8, 8), masks)
    with pytest.raises(ValueError, match=r"maps are \(2, 2\) and the masks \(4, 4\)"):
        metric(torch.rand(2, 2, 2), masks, upsample=None)
    with pytest.raises(ValueError, match="upsample must be 'bilinear', 'nearest' or None"):
        metric(torch.rand(2, 2, 2), masks, upsample="bicubic")


def test_pointing_game_refuses_a_negative_tolerance() -> None:
    for tolerance in (-1, float("nan"), float("inf"), True, "15"):
        with pytest.raises(ValueError, match="tolerance must be a finite number of pixels >= 0"):
            pointing_game(torch.rand(1, 3, 3), grid("#..", "...", "..."), tolerance=tolerance)


@pytest.mark.parametrize("metric", METRICS)
def test_channels_masks_resolution_and_batches(metric) -> None:
    g = torch.Generator().manual_seed(10)
    values, masks = torch.randn(6, 3, 8, 8, generator=g), random_masks(6, 8, seed=11)
    scores = metric(values, masks)
    # channels reduced by aggregate_channels (signed sum by default), masks with or without a channel axis
    torch.testing.assert_close(
        scores, metric(values.double().sum(1), masks[:, None]), rtol=0, atol=1e-12, equal_nan=True
    )
    absolute = metric(values, masks, aggregate="sum_abs")
    torch.testing.assert_close(absolute, metric(values.double().abs().sum(1), masks), rtol=0, atol=1e-12)
    # per sample: a batch scores as its halves do
    halves = torch.cat([metric(values[:3], masks[:3]), metric(values[3:], masks[3:])])
    torch.testing.assert_close(scores, halves, rtol=0, atol=0, equal_nan=True)
    # a 4x4 map upsampled with nearest to 8x8 is the map with each cell repeated in a 2x2 block
    coarse = torch.randn(6, 4, 4, generator=g)
    blocks = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    torch.testing.assert_close(metric(coarse, masks, upsample="nearest"), metric(blocks, masks), rtol=0, atol=0)
    # an Attribution is read through its values
    attribution = sl.explain(
        torch.nn.Conv2d(3, 1, 1), values, "gradient_x_input", target=lambda out: out.sum((1, 2, 3))
    )
    torch.testing.assert_close(metric(attribution, masks), metric(attribution.values, masks), rtol=0, atol=0)


# --- the trained model -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluttered() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    _, _, x_test, y_test = zoo.dataset("cluttered_digits")
    return zoo.load("cluttered_digits_cnn"), x_test, y_test, zoo.object_masks("cluttered_digits")[1]


def test_gradient_x_input_localises_the_digits_and_a_random_map_does_not(cluttered) -> None:
    """On the 450 cluttered test digits (the object is 3.2 % of the canvas).

    Measured: gradient x input 0.991 (pointing game), 0.703 (mass), 0.542 (rank); a uniform random map 0.031,
    0.032, 0.031, i.e. the object's share of the canvas, as expected of a map that ignores the image. Bounds: the
    random map's pointing score is a mean of 450 Bernoulli(0.032) hits (standard deviation 0.008), so 0.06 is
    more than three standard deviations above it; the model's bounds leave 0.05-0.09 below the measurements.
    """
    model, x, y, masks = cluttered
    explained = sl.explain(model, x, "gradient_x_input", target=y)
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    for metric, floor in zip(METRICS, (0.9, 0.6, 0.45), strict=True):
        found, chance = metric(explained, masks), metric(random, masks)
        assert not found.isnan().any() and not chance.isnan().any()
        assert found.mean().item() >= floor
        assert chance.mean().item() <= 0.06


def test_cams_at_their_layer_resolution_score_as_upsampled_by_the_method(cluttered) -> None:
    """Grad-CAM's 8x8 map, upsampled here, scores as the method's own bilinear upsampling (both are ReLU'd)."""
    model, x, y, masks = cluttered
    coarse = sl.explain(model, x[:64], "grad_cam", target=y[:64], upsample=None)
    fine = sl.explain(model, x[:64], "grad_cam", target=y[:64])
    assert coarse.values.shape[-2:] == (8, 8) and fine.values.shape[-2:] == (32, 32)
    for metric in METRICS:
        torch.testing.assert_close(metric(coarse, masks[:64]), metric(fine, masks[:64]), equal_nan=True)


# --- Quantus ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quantus_case(cluttered) -> tuple[dict, dict[str, torch.Tensor], torch.Tensor]:
    model, x, y, masks = cluttered
    record = json.loads(QUANTUS.read_text())
    n = record["case"]["samples"]
    maps = {}
    for method in record["case"]["methods"]:
        maps[method] = sl.explain(model, x[:n], method, target=y[:n]).values
        flat = maps[method].double().flatten(1)
        checksum = record["case"]["attribution_checksums"][method]
        # the same attributions as when the file was written (float32 sums of 32 x 1024 values: rtol 1e-6)
        assert flat.sum().item() == pytest.approx(checksum["sum"], rel=1e-6, abs=1e-4)
        assert flat.abs().sum().item() == pytest.approx(checksum["abs_sum"], rel=1e-6)
        # a unique maximum and no tie at the K-th place, signed or absolute: Quantus's tie conventions do not matter
        k = masks[:n].flatten(1).sum(1)[:, None]
        for values in (flat, flat.abs()):
            top = values.sort(dim=1, descending=True).values
            assert (top[:, 0] > top[:, 1]).all() and (top.gather(1, k - 1) > top.gather(1, k)).all()
    return record, maps, masks[:n]


OURS = {"PointingGame": pointing_game, "RelevanceMassAccuracy": relevance_mass_accuracy}
OURS["RelevanceRankAccuracy"] = relevance_rank_accuracy


def test_quantus_agreement(quantus_case) -> None:
    """Where the conventions match, our scores equal Quantus 0.6.0's.

    - Quantus ``abs=True`` reads |map|: our ``relevance="absolute"``, for all three.
    - Quantus ``abs=False`` reads the signed map. Its pointing game and rank accuracy then rank by signed
      value, which picks the same pixels as our positive part wherever the top K pixels are positive (every
      map here has at least 332 positive pixels, and K <= 38). Its mass accuracy sums the signed values;
      on the maps' positive part it is ours.
    Tolerances: Quantus computes in float32, we in float64: 1e-5 on the mass ratios; hits and counts exact.
    """
    record, maps, masks = quantus_case
    assert record["case"]["attribution_checksums"]["gradient"]["fewest_positive"] >= max(record["case"]["mask_sizes"])
    compared = 0
    for row in record["results"]:
        if row["metric"] == "RelevanceMassAccuracy" and not row["abs"] and row["attributions"] == "signed":
            continue  # see test_quantus_signed_mass_is_not_a_share
        ours = OURS[row["metric"]](maps[row["method"]], masks, relevance="absolute" if row["abs"] else "positive")
        theirs = torch.tensor(row["scores"], dtype=torch.float64)
        tolerance = 1e-5 if row["metric"] == "RelevanceMassAccuracy" else 1e-12
        torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance)
        compared += 1
    assert compared == 12
    pointing = [row["scores"] for row in record["results"] if row["metric"] == "PointingGame"]
    assert any(0 in scores for scores in pointing)  # the case has misses as well as hits


def test_quantus_signed_mass_is_not_a_share(quantus_case) -> None:
    """Quantus's default ``RelevanceMassAccuracy(abs=False)`` divides signed sums (Arras et al. count only
    positive relevance): on gradients it leaves [0, 1], where ours, a share of the positive relevance, stays."""
    record, maps, masks = quantus_case
    for row in record["results"]:
        if row["metric"] == "RelevanceMassAccuracy" and not row["abs"] and row["attributions"] == "signed":
            theirs = torch.tensor(row["scores"])
            assert ((theirs < 0) | (theirs > 1)).any()
            ours = relevance_mass_accuracy(maps[row["method"]], masks)
            assert ((ours >= 0) & (ours <= 1)).all()


def test_quantus_counts_any_tied_maximum_as_a_hit(quantus_case) -> None:
    """Two maxima, one on the object: Quantus scores a hit, we score 1/2; a constant map: Quantus hits, we say NaN.

    The maps are those of the reference script's ``tie_maps``: the first object pixel and the first background
    pixel (row-major) set to 1 on the first mask; ones everywhere on the second.
    """
    record, _, masks = quantus_case
    flat = masks[:2].flatten(1)
    maps = torch.zeros(2, flat.shape[1])
    maps[0, flat[0].double().argmax()] = maps[0, (~flat[0]).double().argmax()] = 1.0
    maps[1] = 1.0
    assert record["pointing_game_ties"]["scores"] == [1.0, 1.0]
    ours = pointing_game(maps.reshape(masks[:2].shape), masks[:2])
    assert ours[0].item() == 0.5 and ours[1].isnan()
