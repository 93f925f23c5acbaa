"""ROAD: the imputation solves the paper's neighbour equations; every batch, RGB and grey, batch-independent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot

from saliencelab.evaluate.road import noisy_linear_imputation, road

WEIGHTS = {(-1, -1): 1 / 12, (-1, 0): 1 / 6, (-1, 1): 1 / 12, (0, -1): 1 / 6, (0, 1): 1 / 6, (1, -1): 1 / 12}
WEIGHTS |= {(1, 0): 1 / 6, (1, 1): 1 / 12}  # Rong et al. 2022: direct neighbours 1/6, diagonal 1/12


def neighbour_mean(image: np.ndarray, i: int, j: int) -> np.ndarray:
    """Σ w x_j / Σ w over the in-image neighbours of pixel (i, j), for every channel (written out by loop)."""
    total, weight = np.zeros(image.shape[0]), 0.0
    for (di, dj), w in WEIGHTS.items():
        if 0 <= i + di < image.shape[1] and 0 <= j + dj < image.shape[2]:
            total += w * image[:, i + di, j + dj]
            weight += w
    return total / weight


def dense_reference(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The same equations assembled densely pixel by pixel and solved with numpy.linalg.solve."""
    height, width = removed.shape
    unknown = [(i, j) for i in range(height) for j in range(width) if removed[i, j]]
    number = {pixel: k for k, pixel in enumerate(unknown)}
    matrix = np.zeros((len(unknown), len(unknown)))
    rhs = np.zeros((len(unknown), image.shape[0]))
    for k, (i, j) in enumerate(unknown):
        for (di, dj), w in WEIGHTS.items():
            n = (i + di, j + dj)
            if 0 <= n[0] < height and 0 <= n[1] < width:
                matrix[k, k] += w
                if n in number:
                    matrix[k, number[n]] -= w
                else:
                    rhs[k] += w * image[:, n[0], n[1]]
    out = image.copy()
    for (i, j), values in zip(unknown, np.linalg.solve(matrix, rhs), strict=True):
        out[:, i, j] = values
    return out


@pytest.mark.parametrize("channels", [1, 3])
def test_imputed_pixels_satisfy_the_neighbour_equations(channels):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, channels, 9, 7, generator=g, dtype=torch.float64)
    removed = torch.rand(2, 9, 7, generator=g) < 0.6
    filled = noisy_linear_imputation(images, removed, noise=0.0).numpy()
    for n in range(2):
        assert np.array_equal(filled[n][:, ~removed[n].numpy()], images[n].numpy()[:, ~removed[n].numpy()])
        for i, j in zip(*np.nonzero(removed[n].numpy()), strict=True):
            np.testing.assert_allclose(filled[n][:, i, j], neighbour_mean(filled[n], i, j), rtol=0, atol=1e-6)
        np.testing.assert_allclose(filled[n], dense_reference(images[n].numpy(), removed[n].numpy()), atol=1e-10)


def test_noise_is_a_seeded_field_added_to_the_removed_pixels_only():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 6, 6, generator=g, dtype=torch.float64)
    removed = torch.rand(3, 6, 6, generator=g) < 0.5
    clean = noisy_linear_imputation(images, removed, noise=0.0)
    noisy = noisy_linear_imputation(images, removed, noise=0.05, seed=7)
    field = torch.randn((3, 6, 6), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = clean + 0.05 * field * removed.unsqueeze(1)
    torch.testing.assert_close(noisy, expected, rtol=0, atol=1e-12)
    assert torch.equal(noisy, noisy_linear_imputation(images, removed, noise=0.05, seed=7))


def test_road_on_grey_equals_the_reference_pipeline():
    model = conv_net(seed=20, channels=1)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 8, 8, generator=g)
    attributions = torch.randn(5, 1, 8, 8, generator=g)
    result = road(model, x, attributions, percentages=(0.0, 0.25, 0.5), noise=0.01, seed=3, score="logit")
    with torch.no_grad():
        classes = model(x).argmax(dim=1)
        order = attributions.flatten(1).argsort(dim=1, descending=True, stable=True)
        expected = []
        for count in (0, 16, 32):
            removed = torch.zeros(5, 64, dtype=torch.bool).scatter_(1, order[:, :count], True).view(5, 8, 8)
            filled = noisy_linear_imputation(x.double(), removed, noise=0.01, seed=3).float()
            expected.append(model(filled)[torch.arange(5), classes])
    torch.testing.assert_close(result.curve, torch.stack(expected, dim=1).double(), rtol=0, atol=1e-5)
    torch.testing.assert_close(result.scores, result.curve.mean(dim=1))
    assert result.percentages.tolist() == [0.0, 0.25, 0.5]


def test_road_evaluates_every_rgb_sample_independently_of_batching(images):
    model = conv_net(seed=21)
    attributions = torch.randn(images.shape, generator=torch.Generator().manual_seed(4))
    whole = road(model, images, attributions)
    chunked = road(model, images, attributions, memory_budget=20_000)
    alone = torch.cat([road(model, images[i : i + 1], attributions[i : i + 1]).curve for i in range(4)])
    assert whole.curve.shape == (4, 9)
    torch.testing.assert_close(chunked.curve, whole.curve, rtol=0, atol=1e-6)
    torch.testing.assert_close(alone, whole.curve, rtol=0, atol=1e-6)


def test_lerf_keeps_and_morf_removes_the_evidence_of_a_pixel_sum():
    # f = sum of pixels; a bright 2x2 blob in the lower right of a zero background. LeRF removes background
    # pixels (ties: the first rows), whose neighbours are all zero: the sum stays 4 exactly. MoRF removes
    # the blob first: with 1/16 of the 64 pixels gone, the blob is imputed from zeros and the sum is 0.
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1, bias=False))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 5:7, 5:7] = 1.0
    lerf = road(model, x, x, percentages=(0.25, 0.5), order="lerf", noise=0.0, score="logit")
    morf = road(model, x, x, percentages=(0.0625,), order="morf", noise=0.0, score="logit")
    assert lerf.curve.tolist() == [[4.0, 4.0]]
    assert morf.curve.tolist() == [[0.0]]


def test_the_model_is_left_untouched_and_bad_arguments_are_rejected(images):
    model = conv_net(seed=22)
    before = snapshot(model)
    road(model, images, method="gradient", percentages=(0.5,))
    for kwargs, words in [
        ({"percentages": (1.0,)}, "percentages"),
        ({"percentages": ()}, "percentages"),
        ({"noise": -1.0}, "noise"),
        ({"order": "best"}, "unknown order"),
    ]:
        with pytest.raises(ValueError, match=words):
            road(model, images, images, **kwargs)
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match="every pixel removed"):
        noisy_linear_imputation(images, torch.ones(4, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean removal mask"):
        noisy_linear_imputation(images, torch.ones(4, 8, 8))
