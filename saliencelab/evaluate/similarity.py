"""How alike are two attribution maps? The similarity measures of the sanity checks.

Adebayo et al. (2018, "Sanity checks for saliency maps") compare the maps of a
trained model with those of a randomised one by rank correlation (with and
without absolute values), SSIM and the correlation of HOG features.
:func:`similarity` computes each of them for every sample of a batch.

Conventions, so that no NaN leaks out:

* A **constant map** has no ordering and no contrast. Its correlation (``spearman``,
  ``spearman_abs``, ``pearson``, and ``hog`` through its features) with a
  non-constant map is 0, and with another constant map 1. Maps holding NaN or
  infinity are refused.
* **Min-max normalisation** (for ``ssim`` and ``hog``) maps a constant map to zeros.
* **Small maps and SSIM**: the Gaussian window (σ = 1.5, 11 taps) needs maps of at
  least 11×11, and scikit-image refuses smaller ones, telling its user to pass an
  odd ``win_size`` no larger than the smaller side. That is what happens here: for
  maps smaller than 11 pixels, the SSIM map is averaged over the pixels at least
  ``(w - 1) / 2`` from every border, where ``w`` is the largest odd number not above
  the smaller side (7 for the 8×8 digits); the local statistics keep their 11-tap
  Gaussian weights over the reflected border, exactly as
  ``structural_similarity(..., win_size=w)`` computes them.
* **Small maps and HOG**: scikit-image's defaults (9 orientations, 8×8-pixel cells,
  3×3-cell blocks, L2-Hys) need 24×24 maps; a smaller side uses cells of
  ``side // 3`` pixels so that one block fits (2×2-pixel cells for 8×8 maps).

Example
-------
>>> import torch
>>> a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
>>> similarity(a, -a, "spearman").item(), similarity(a, -a, "spearman_abs").item()
(-1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from saliencelab.core.aggregate import aggregate_channels

METRICS = ("spearman_abs", "spearman", "pearson", "ssim", "hog")

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
"""The 11-tap Gaussian of Wang et al. (2004): scikit-image's radius ``int(3.5 · σ + 0.5)``."""
SSIM_K1, SSIM_K2 = 0.01, 0.03
HOG_CELL = 8
HOG_BLOCK = 3


def similarity(
    a: torch.Tensor, b: torch.Tensor, metric: str = "spearman_abs", *, aggregate: str = "sum"
) -> torch.Tensor:
    """Per-sample similarity of two batches of attribution maps.

    Parameters
    ----------
    a, b:
        Attribution maps ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``. Channels
        are reduced with :func:`~saliencelab.core.aggregate.aggregate_channels`; the
        reduced maps of ``a`` and ``b`` must have the same shape (a CAM map
        ``(N, 1, H, W)`` may be compared with an input-shaped map). The correlations
        also take one vector per sample, ``(N, D)`` (tabular attributions), as it is.
    metric:
        ``"spearman_abs"``: Spearman rank correlation of the absolute values (ties get
        their average rank); ``"spearman"``: the same on signed values; ``"pearson"``;
        ``"ssim"``: SSIM of the min-max normalised maps with Gaussian weights (σ = 1.5,
        population covariance, data range 1), equal to scikit-image's
        ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0)``; ``"hog"``: Pearson
        correlation of the scikit-image HOG features of the min-max normalised maps.
        See the module notes for constant and small maps.
    aggregate:
        How channels are reduced: ``"sum"``, ``"sum_abs"``, ``"max_abs"`` or ``"l2"``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, on the maps' device. Correlations lie in ``[-1, 1]``; identical
        maps give exactly 1 under every metric. All metrics but ``hog`` (scikit-image,
        one sample at a time on the CPU) run batched in torch.

    Example
    -------
    >>> import torch
    >>> a = torch.tensor([[[0.0, 1.0], [2.0, 2.0]]])
    >>> b = torch.tensor([[[5.0, 3.0], [1.0, 0.0]]])
    >>> round(similarity(a, b, "spearman").item(), 4)  # ranks (1, 2, 3.5, 3.5) and (4, 3, 2, 1)
    -0.9487
    >>> similarity(a, a, "ssim").item()
    1.0
    """
    if metric not in METRICS:
        raise ValueError(f"unknown similarity metric {metric!r}; use one of {', '.join(METRICS)}")
    x, y = _maps(a, "a", aggregate), _maps(b, "b", aggregate)
    if x.shape != y.shape:
        raise ValueError(
            f"the maps reduce to different shapes: a {tuple(x.shape)} and b {tuple(y.shape)}; "
            "compare maps of the same samples at the same spatial size"
        )
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.to(dtype), y.to(x.device, dtype)
    if metric == "spearman_abs":
        return pearson(ranks(x.abs().flatten(1)), ranks(y.abs().flatten(1)))
    if metric == "spearman":
        return pearson(ranks(x.flatten(1)), ranks(y.flatten(1)))
    if metric == "pearson":
        return pearson(x.flatten(1), y.flatten(1))
    if x.ndim == 2:
        raise ValueError(f"{metric} compares 2-D maps; got one vector per sample, shape {tuple(x.shape)}")
    if metric == "ssim":
        return ssim(normalize(x), normalize(y))
    return pearson(hog_features(normalize(x)), hog_features(normalize(y)))


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks (from 0) of each row of ``(N, D)`` values; tied values share their average rank.

    Example
    -------
    >>> ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]])).tolist()
    [[2.5, 0.0, 2.5, 1.0]]
    """
    ordered, order = values.sort(dim=1)
    n, d = ordered.shape
    position = torch.arange(d, device=values.device).expand(n, d)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, position, 0).cummax(dim=1).values
    last = torch.where(ends, position, d).flip(1).cummin(dim=1).values.flip(1)
    average = (first + last).to(values.dtype) / 2
    return torch.empty_like(average).scatter_(1, order, average)


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row pair of ``(N, D)`` tensors; constant rows follow the module's convention.

    The denominator is ``sqrt(Σx̃² · Σỹ²)`` (one rounding), so a row compared with
    itself gives exactly 1.

    Example
    -------
    >>> pearson(torch.tensor([[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]]), torch.tensor([[2.0, 4.0, 8.0], [0.0, 1.0, 2.0]]))
    tensor([1., 0.])
    """
    constant_x = x.amax(dim=1) == x.amin(dim=1)
    constant_y = y.amax(dim=1) == y.amin(dim=1)
    cx, cy = x - x.mean(dim=1, keepdim=True), y - y.mean(dim=1, keepdim=True)
    denominator = (cx.square().sum(dim=1) * cy.square().sum(dim=1)).sqrt()
    r = ((cx * cy).sum(dim=1) / denominator).clamp(-1.0, 1.0)
    r = torch.where(constant_x | constant_y, 0.0, r)
    return torch.where(constant_x & constant_y, 1.0, r)


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each ``(H, W)`` map of ``(N, H, W)`` to ``[0, 1]``; a constant map becomes zeros.

    Example
    -------
    >>> normalize(torch.tensor([[[2.0, 4.0], [3.0, 2.0]], [[5.0, 5.0], [5.0, 5.0]]])).flatten(1).tolist()
    [[0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    low = maps.amin(dim=(1, 2), keepdim=True)
    spread = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(spread > 0, (maps - low) / torch.where(spread > 0, spread, 1.0), 0.0)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of each pair of ``(N, H, W)`` maps with values in ``[0, 1]`` (data range 1).

    The local means, variances and covariance use the 11-tap Gaussian (σ = 1.5) over
    half-sample-reflected borders, population covariance, ``K1 = 0.01``, ``K2 = 0.03``,
    and the SSIM map is averaged where the window lies inside the map (see the module
    notes for maps smaller than 11 pixels).

    Example
    -------
    >>> x = torch.linspace(0, 1, 144).reshape(1, 12, 12)
    >>> round(ssim(x, 1 - x).item(), 4)  # same structure, inverted contrast
    -0.9317
    """
    height, width = x.shape[-2:]
    window = min(2 * SSIM_RADIUS + 1, min(height, width) - (min(height, width) + 1) % 2)
    crop = (window - 1) // 2
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    stacked = torch.stack([x, y, x * x, y * y, x * y], dim=1)
    mx, my, mxx, myy, mxy = _gaussian_filter(stacked).unbind(dim=1)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    local = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return local[:, crop : height - crop, crop : width - crop].mean(dim=(1, 2))


def hog_features(maps: torch.Tensor) -> torch.Tensor:
    """scikit-image HOG features of each ``(H, W)`` map, as ``(N, F)`` on the maps' device.

    Example
    -------
    >>> hog_features(torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))).shape  # 2x2 blocks of 3x3x9
    torch.Size([2, 324])
    """
    from skimage.feature import hog

    height, width = maps.shape[-2:]
    if min(height, width) < HOG_BLOCK:
        raise ValueError(f"HOG needs maps of at least {HOG_BLOCK}x{HOG_BLOCK} pixels; got {height}x{width}")
    cell = (min(HOG_CELL, height // HOG_BLOCK), min(HOG_CELL, width // HOG_BLOCK))
    arrays = maps.detach().cpu().double().numpy()
    features = [hog(m, pixels_per_cell=cell, cells_per_block=(HOG_BLOCK, HOG_BLOCK)) for m in arrays]
    return torch.from_numpy(np.stack(features)).to(maps.device, maps.dtype)


def _maps(values: object, name: str, how: str) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of attribution maps; got {type(values).__name__}")
    if values.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (N, C, H, W), (N, 1, H, W), (N, H, W) or (N, D); got {tuple(values.shape)}. "
            "Add the batch dimension for a single map."
        )
    if values.is_complex() or not (values.is_floating_point() or values.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers; got dtype {values.dtype}")
    if values.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(values.shape)})")
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values; similarity is undefined for them")
    return values.detach() if values.ndim == 2 else aggregate_channels(values.detach(), how)


def _gaussian_filter(stacked: torch.Tensor) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter (σ 1.5, truncate 3.5, mode "reflect") over the last two dims."""
    radius = SSIM_RADIUS
    taps = torch.arange(-radius, radius + 1, dtype=stacked.dtype, device=stacked.device)
    kernel = torch.exp(-0.5 * taps.square() / SSIM_SIGMA**2)
    kernel = kernel / kernel.sum()
    n, k, height, width = stacked.shape
    padded = stacked.index_select(2, _reflect(height, radius, stacked.device))
    padded = padded.index_select(3, _reflect(width, radius, stacked.device))
    flat = padded.reshape(n * k, 1, height + 2 * radius, width + 2 * radius)
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    return flat.reshape(n, k, height, width)


def _reflect(size: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices of ndimage's "reflect" extension (d c b a | a b c d | d c b a) by ``radius`` each side."""
    index = torch.arange(-radius, size + radius, device=device) % (2 * size)
    return torch.where(index < size, index, 2 * size - 1 - index)
