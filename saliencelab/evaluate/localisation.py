"""Localisation: does an explanation point at the object that a ground-truth mask marks?

Three measures, each one number per sample (float64 ``(N,)``, higher is better):

- :func:`pointing_game` (Zhang et al. 2018, "Top-down neural attention by
  excitation backprop"): 1 if the map's maximum lies on the object (or within
  ``tolerance`` pixels of it), else 0.
- :func:`relevance_mass_accuracy` (Arras, Osman and Samek 2022, "CLEVR-XAI: a
  benchmark dataset for the ground truth evaluation of neural network
  explanations"): the share of the relevance that falls on the object.
- :func:`relevance_rank_accuracy` (same paper): with ``K`` the object's size in
  pixels, the share of the ``K`` most relevant pixels that lie on the object.

How the maps are read, the same for all three: attributions ``(N, C, H, W)``
have their channels reduced by
:func:`~saliencelab.core.aggregate.aggregate_channels` (``aggregate="sum"``,
signed, by default); a map at a lower resolution than the masks (a CAM at its
layer's resolution) is upsampled to the masks' size (``upsample="bilinear"``,
or ``"nearest"``; ``None`` refuses). Then only the positive part of the map
counts as relevance, as in Arras et al. (``relevance="positive"``;
``"absolute"`` reads ``|map|`` instead, for methods whose sign carries no
"for or against" meaning).

Degenerate input: attributions with NaN or Inf values and empty masks raise
``ValueError``. A map whose relevance is the same at every pixel (all zero,
constant, or, with ``relevance="positive"``, nowhere positive) says nothing
about location: its score is NaN, for all three measures, so that it cannot
pass for a chance-level or perfect explanation. Average with
``torch.nanmean`` and report how many were NaN.

Example
-------
>>> import torch
>>> maps = torch.tensor([[[0.0, 3.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, -5.0]]])
>>> masks = torch.tensor([[[False, True], [False, False]], [[False, False], [True, True]]])
>>> pointing_game(maps, masks).tolist()
[1.0, 0.0]
>>> relevance_mass_accuracy(maps, masks).tolist()  # the -5 is not relevance
[0.75, 0.0]
>>> relevance_mass_accuracy(maps, masks, relevance="absolute").tolist()
[0.75, 0.7142857142857143]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from saliencelab.core.aggregate import aggregate_channels
from saliencelab.core.attribution import Attribution
from saliencelab.methods.cam.base import upsampled

__all__ = ["RELEVANCE", "pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy"]

RELEVANCE: tuple[str, ...] = ("positive", "absolute")
"""What counts as relevance: the positive part of the map (Arras et al. 2022) or its absolute value."""
_UPSAMPLE = ("bilinear", "nearest", None)


def pointing_game(
    attributions: torch.Tensor | Attribution,
    masks: torch.Tensor,
    *,
    tolerance: float = 0.0,
    relevance: str = "positive",
    aggregate: str = "sum",
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Pointing game (Zhang et al. 2018): is each map's maximum on the object? ``(N,)`` float64.

    A hit (1.0) if the most relevant pixel lies inside the mask or within
    ``tolerance`` pixels (Euclidean distance between pixel centres) of a mask
    pixel; else 0.0. Zhang et al. use a tolerance of 15 pixels on their
    photographs (about 224 pixels wide).

    Ties: if several pixels share the maximum, the score is the fraction of
    them that are hits, the chance of a hit when one of them is picked at
    random (Quantus counts a hit if any of them is on the object, so a flat
    map always hits there). A constant map scores NaN (see the module's notes).

    Parameters
    ----------
    attributions:
        ``(N, C, H, W)`` or ``(N, H, W)`` maps, a tensor or an
        :class:`~saliencelab.Attribution`; ``H, W`` may be smaller than the masks'.
    masks:
        Bool ``(N, 1, H, W)`` or ``(N, H, W)`` object masks, none empty.
    tolerance:
        Radius in pixels around the mask that still counts as a hit (>= 0).
    relevance:
        ``"positive"`` (the map's positive part) or ``"absolute"`` (``|map|``).
    aggregate:
        Channel reduction for :func:`~saliencelab.core.aggregate.aggregate_channels`.
    upsample:
        How a lower-resolution map is resized to the masks: ``"bilinear"``,
        ``"nearest"``, or ``None`` to refuse with ``ValueError``.

    Example
    -------
    >>> import torch
    >>> maps = torch.zeros(2, 5, 5)
    >>> maps[:, 0, 0] = 1.0
    >>> masks = torch.zeros(2, 5, 5, dtype=torch.bool)
    >>> masks[0, 0, 0] = True
    >>> masks[1, 2, 2] = True  # the maximum is 2.83 pixels away
    >>> pointing_game(maps, masks).tolist(), pointing_game(maps, masks, tolerance=3).tolist()
    ([1.0, 0.0], [1.0, 1.0])
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance must be a finite number of pixels >= 0; got {tolerance!r}")
    values, objects, flat = _prepared(attributions, masks, relevance, aggregate, upsample)
    if tolerance > 0:
        objects = _dilated(objects, tolerance)
    top = values == values.amax(dim=1, keepdim=True)
    hits = (top & objects.flatten(1)).sum(dim=1).double() / top.sum(dim=1)
    return _undefined_where(flat, hits)


def relevance_mass_accuracy(
    attributions: torch.Tensor | Attribution,
    masks: torch.Tensor,
    *,
    relevance: str = "positive",
    aggregate: str = "sum",
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Relevance mass accuracy (Arras et al. 2022): the share of the relevance on the object, ``(N,)`` float64.

    ``R_within / R_total``, with ``R`` the positive part of the map (or
    ``|map|`` with ``relevance="absolute"``): 1 when all relevance lies on the
    object, ``|mask| / (H W)`` for relevance spread evenly. Negative values do
    not count (Quantus, with its default ``abs=False``, sums the signed values
    instead, which can leave ``[0, 1]``). A map with no relevance, or the same
    at every pixel, scores NaN. Parameters as in :func:`pointing_game`.

    Example
    -------
    >>> import torch
    >>> maps = torch.tensor([[[4.0, 1.0], [-2.0, 0.0]]])
    >>> masks = torch.tensor([[[True, False], [True, False]]])
    >>> relevance_mass_accuracy(maps, masks).tolist()
    [0.8]
    >>> relevance_mass_accuracy(maps, masks, relevance="absolute").tolist()
    [0.8571428571428571]
    >>> relevance_mass_accuracy(torch.full((1, 2, 2), 3.0), masks).tolist()  # constant: no location information
    [nan]
    """
    values, objects, flat = _prepared(attributions, masks, relevance, aggregate, upsample)
    inside = (values * objects.flatten(1)).sum(dim=1)
    return _undefined_where(flat, inside / values.sum(dim=1))


def relevance_rank_accuracy(
    attributions: torch.Tensor | Attribution,
    masks: torch.Tensor,
    *,
    relevance: str = "positive",
    aggregate: str = "sum",
    upsample: str | None = "bilinear",
) -> torch.Tensor:
    """Relevance rank accuracy (Arras et al. 2022): the share of the K top pixels on the object, ``(N,)`` float64.

    ``K = |mask|``; the score is ``|top-K pixels ∩ mask| / K``, 1 when the
    object's pixels are exactly the K most relevant ones. Pixels are ranked
    by relevance (positive part, or ``|map|``), so all pixels without
    positive relevance tie at 0. Ties at the K-th place are shared: the tied
    pixels fill the remaining places in proportion, each counting with the
    fraction of them that lie on the object (the expected score when the tie
    is broken at random; Quantus breaks it by ``numpy.argsort``'s order). A
    map with the same relevance at every pixel scores NaN. Parameters as in
    :func:`pointing_game`.

    Example
    -------
    >>> import torch
    >>> maps = torch.tensor([[[5.0, 4.0, 3.0, 2.0]], [[5.0, 1.0, 1.0, 0.0]]])
    >>> masks = torch.tensor([[[True, False, True, False]], [[True, True, False, False]]])
    >>> relevance_rank_accuracy(maps, masks).tolist()  # top 2: {5, 4}; {5, one of the tied 1s}
    [0.5, 0.75]
    """
    values, objects, flat = _prepared(attributions, masks, relevance, aggregate, upsample)
    objects = objects.flatten(1)
    k = objects.sum(dim=1)
    threshold = values.sort(dim=1, descending=True).values.gather(1, (k - 1)[:, None])
    above, tied = values > threshold, values == threshold
    places_left = k - above.sum(dim=1)
    tied_on_object = (tied & objects).sum(dim=1).double() / tied.sum(dim=1)
    hits = (above & objects).sum(dim=1) + places_left * tied_on_object
    return _undefined_where(flat, hits / k)


def _prepared(
    attributions: torch.Tensor | Attribution, masks: torch.Tensor, relevance: str, aggregate: str, upsample: str | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Relevance ``(N, H*W)`` float64, masks ``(N, H, W)`` bool, and which maps are flat ``(N,)``, all checked."""
    if relevance not in RELEVANCE:
        raise ValueError(f"relevance must be one of {', '.join(map(repr, RELEVANCE))}; got {relevance!r}")
    if upsample not in _UPSAMPLE:
        raise ValueError(f"upsample must be 'bilinear', 'nearest' or None; got {upsample!r}")
    maps = _maps(attributions, aggregate)
    objects = _masks(masks, len(maps)).to(maps.device)
    maps = _resized(maps, tuple(objects.shape[1:]), upsample)
    values = maps.clamp(min=0) if relevance == "positive" else maps.abs()
    values = values.flatten(1)
    flat = values.amax(dim=1) == values.amin(dim=1)
    return values, objects, flat


def _maps(attributions: torch.Tensor | Attribution, aggregate: str) -> torch.Tensor:
    """``(N, h, w)`` float64 maps from the attributions, checked to be finite."""
    if isinstance(attributions, Attribution):
        attributions = attributions.values
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor or an Attribution; got {type(attributions).__name__}")
    if attributions.ndim not in (3, 4) or attributions.numel() == 0:
        raise ValueError(
            f"attributions must be maps (N, C, H, W) or (N, H, W); got shape {tuple(attributions.shape)}. "
            "A single map needs attributions.unsqueeze(0)"
        )
    if not torch.isfinite(attributions).all():
        raise ValueError("the attributions contain NaN or Inf values; localisation is undefined for them")
    return aggregate_channels(attributions.detach().double(), aggregate)


def _masks(masks: torch.Tensor, n: int) -> torch.Tensor:
    """``(N, H, W)`` bool masks, checked: one per map, none empty."""
    if not isinstance(masks, torch.Tensor) or masks.dtype != torch.bool:
        what = masks.dtype if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise TypeError(f"masks must be a bool tensor (use masks > 0 or masks.bool()); got {what}")
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3 or len(masks) != n:
        raise ValueError(
            f"masks must be (N, 1, H, W) or (N, H, W) with one mask per map (N = {n}); got {tuple(masks.shape)}"
        )
    empty = (~masks.flatten(1).any(dim=1)).nonzero().flatten()
    if len(empty) > 0:
        raise ValueError(f"masks {empty.tolist()} are empty; localisation needs an object: leave those samples out")
    return masks


def _resized(maps: torch.Tensor, size: tuple[int, int], upsample: str | None) -> torch.Tensor:
    """The maps at the masks' size ``(H, W)``: as they are, upsampled, or refused."""
    if tuple(maps.shape[1:]) == size:
        return maps
    if upsample is None or any(m > s for m, s in zip(maps.shape[1:], size, strict=True)):
        raise ValueError(
            f"the maps are {tuple(maps.shape[1:])} and the masks {size}: maps must be the masks' size or smaller "
            "(smaller ones are upsampled with upsample='bilinear' or 'nearest')"
        )
    return upsampled(maps[:, None], size, upsample)[:, 0]


def _dilated(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """``masks`` grown by every pixel within Euclidean distance ``radius`` of a mask pixel."""
    reach = int(radius)
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float64, device=masks.device)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).double()
    grown = F.conv2d(masks[:, None].double(), disk[None, None], padding=reach)
    return grown[:, 0] > 0


def _undefined_where(flat: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``scores`` with NaN for the flat maps."""
    return torch.where(flat, torch.full_like(scores, float("nan")), scores)
