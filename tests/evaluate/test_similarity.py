"""Similarity measures of the sanity checks (Adebayo et al. 2018; seeds 000 and 003).

References: scipy.stats for the correlations, scikit-image for SSIM and HOG.
Tolerances: 1e-12 where we compute in float64 (the same formulas, only the order
of summation differs), 1e-5 for float32 maps (about 50 roundings of 6e-8 each).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity

from saliencelab.evaluate.similarity import METRICS, normalize, ranks, similarity


def _pair(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*shape, generator=g, dtype=dtype)
    b = a + torch.randn(*shape, generator=g, dtype=dtype)
    b[0] = b[0].round()  # many ties
    a[-1] = (a[-1] * 2).round()
    return a, b


def _skimage_ssim(x: np.ndarray, y: np.ndarray, **kwargs) -> float:
    nx = (x - x.min()) / (x.max() - x.min())
    ny = (y - y.min()) / (y.max() - y.min())
    return structural_similarity(
        nx, ny, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, **kwargs
    )


def test_ranks_average_ties():
    values = torch.tensor([[3.0, 1.0, 3.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert ranks(values).tolist() == [[3.0, 0.0, 3.0, 1.0, 3.0], [2.0] * 5]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_correlations_equal_scipy(dtype, tol):
    a, b = _pair((4, 3, 9, 7), dtype)
    x, y = a.sum(1).flatten(1).double().numpy(), b.sum(1).flatten(1).double().numpy()
    expected = {
        "spearman": [spearmanr(x[i], y[i])[0] for i in range(4)],
        "spearman_abs": [spearmanr(abs(x[i]), abs(y[i]))[0] for i in range(4)],
        "pearson": [pearsonr(x[i], y[i])[0] for i in range(4)],
    }
    for metric, values in expected.items():
        got = similarity(a, b, metric)
        assert got.dtype == dtype
        np.testing.assert_allclose(got.double().numpy(), values, atol=tol, rtol=0)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_ssim_equals_skimage(dtype, tol):
    a, b = _pair((3, 16, 20), dtype)
    x, y = a.double().numpy(), b.double().numpy()
    expected = [_skimage_ssim(x[i], y[i]) for i in range(3)]
    np.testing.assert_allclose(similarity(a, b, "ssim").double().numpy(), expected, atol=tol, rtol=0)


@pytest.mark.parametrize("size, window", [((8, 8), 7), ((9, 13), 9), ((10, 30), 9), ((2, 5), 1)])
def test_ssim_on_maps_smaller_than_the_window_uses_skimages_own_fix(size, window):
    """scikit-image refuses maps under 11x11 and says to pass an odd win_size up to the smaller side."""
    a, b = _pair((3, *size))
    x, y = a.numpy(), b.numpy()
    with pytest.raises(ValueError, match="win_size exceeds image extent"):
        _skimage_ssim(x[0], y[0])
    expected = [_skimage_ssim(x[i], y[i], win_size=window) for i in range(3)]
    np.testing.assert_allclose(similarity(a, b, "ssim").numpy(), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("size, cell", [((8, 8), (2, 2)), ((24, 30), (8, 8)), ((9, 40), (3, 8))])
def test_hog_is_pearson_of_skimage_features(size, cell):
    a, b = _pair((2, *size))
    na, nb = normalize(a).numpy(), normalize(b).numpy()
    expected = [
        pearsonr(hog(na[i], pixels_per_cell=cell, cells_per_block=(3, 3)), hog(nb[i], pixels_per_cell=cell))[0]
        for i in range(2)
    ]
    np.testing.assert_allclose(similarity(a, b, "hog").numpy(), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("metric", METRICS)
def test_identical_maps_give_exactly_one(metric):
    a, _ = _pair((3, 2, 12, 12), torch.float32)
    assert similarity(a, a.clone(), metric).tolist() == [1.0, 1.0, 1.0]


def test_closed_forms():
    assert similarity(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 4.0, 9.0]]), "spearman").item() == 1.0
    a = torch.arange(16.0).reshape(1, 4, 4)
    assert similarity(a, -a, "spearman").item() == -1.0
    assert similarity(a, -a, "pearson").item() == -1.0
    assert similarity(a, 3 * a + 1, "pearson").item() == pytest.approx(1.0, abs=1e-7)
    assert similarity(a, a.exp(), "spearman").item() == 1.0  # ranks only
    assert similarity(a - 7.5, 7.5 - a, "spearman_abs").item() == 1.0  # |x| ignores the sign
    # ranks (0, 1, 2.5, 2.5) and (3, 2, 1, 0): rho = -4.5 / sqrt(4.5 * 5)
    x, y = torch.tensor([[[0.0, 1.0, 2.0, 2.0]]]), torch.tensor([[[5.0, 3.0, 1.0, 0.0]]])
    assert similarity(x, y, "spearman").item() == pytest.approx(-4.5 / 22.5**0.5, abs=1e-7)
    # min-max normalisation makes SSIM invariant to positive affine maps; 1 - x inverts the contrast
    image = torch.rand(2, 12, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert similarity(image, 5 * image - 2, "ssim").tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert (similarity(image, 1 - image, "ssim") < -0.9).all()


@pytest.mark.parametrize("metric", METRICS)
def test_constant_maps_follow_the_documented_convention(metric):
    varying = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    constant, other = torch.full((1, 12, 12), 2.0), torch.zeros(1, 12, 12)
    assert similarity(constant, other, metric).item() == 1.0
    value = similarity(constant, varying, metric).item()
    if metric == "ssim":  # zeros against the normalised map: C1 / (mean(y^2) + C1) * C2 / (var(y) + C2), locally
        assert 0.0 < value < 0.01
    else:
        assert value == 0.0


def test_channels_are_reduced_and_cam_maps_compare_with_input_maps():
    a, b = _pair((2, 3, 8, 8))
    assert torch.equal(similarity(a, b, "spearman"), similarity(a.sum(1), b.sum(1), "spearman"))
    assert torch.equal(similarity(a, b, aggregate="l2"), similarity(a.norm(dim=1), b.norm(dim=1)))
    assert torch.equal(similarity(a[:, :1], b[:, :1], "ssim"), similarity(a[:, 0], b[:, 0], "ssim"))
    assert torch.equal(similarity(a[:, :1], b, "pearson"), similarity(a[:, 0], b.sum(1), "pearson"))


def test_one_samples_result_does_not_depend_on_the_batch():
    a, b = _pair((5, 11, 13))
    for metric in METRICS:
        together = similarity(a, b, metric)
        alone = torch.cat([similarity(a[i : i + 1], b[i : i + 1], metric) for i in range(5)])
        torch.testing.assert_close(together, alone, atol=1e-12, rtol=0)


def test_bad_input():
    a = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown similarity metric 'ssmi'"):
        similarity(a, a, "ssmi")
    with pytest.raises(ValueError, match="unknown channel aggregation"):
        similarity(a, a, aggregate="mean")
    with pytest.raises(ValueError, match="Add the batch dimension"):
        similarity(a[0, 0, 0], a[0, 0, 0])
    with pytest.raises(ValueError, match="ssim compares 2-D maps"):
        similarity(a[:, 0, 0], a[:, 0, 0], "ssim")
    with pytest.raises(ValueError, match=r"must have shape \(N, C, H, W\)"):
        similarity(a[None], a[None])
    with pytest.raises(ValueError, match="reduce to different shapes"):
        similarity(a, a[:1])
    with pytest.raises(ValueError, match="reduce to different shapes"):
        similarity(a, a[..., :7])
    with pytest.raises(TypeError, match="must be a tensor"):
        similarity(a.numpy(), a)
    with pytest.raises(ValueError, match="NaN or infinite"):
        similarity(a, torch.where(a > 0.5, float("nan"), a))
    with pytest.raises(ValueError, match="HOG needs maps of at least 3x3"):
        similarity(a[..., :2], a[..., :2], "hog")
