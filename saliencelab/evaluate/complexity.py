"""Complexity: is an explanation concentrated on few features or spread over all of them?

Both measures read the absolute attribution ``|a|`` of each sample, over all of
its values or, with ``aggregate``, over its channel-aggregated pixel map. An
all-zero map is treated as a constant one (every feature equally, i.e. not at
all, important): Gini index 0 and entropy ``log n``, so no NaN appears.

Example
-------
>>> import torch
>>> maps = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 5.0, 0.0]])
>>> sparseness(maps).tolist(), entropy(maps).tolist()
([0.0, 0.75], [1.3862943611198906, 0.0])
"""

from __future__ import annotations

import torch

from saliencelab.core.aggregate import aggregate_channels
from saliencelab.core.attribution import Attribution

__all__ = ["entropy", "sparseness"]


def sparseness(attributions: torch.Tensor | Attribution, aggregate: str | None = None) -> torch.Tensor:
    """Gini index of each sample's ``|attribution|`` (Chalasani et al. 2020), shape ``(N,)`` float64.

    With the values sorted ascending, ``G = Σ_i (2i − n − 1)·a_(i) / (n·Σ a)``: 0 when
    all are equal, ``1 − 1/n`` when one of ``n`` carries everything. Higher is sparser.

    Parameters
    ----------
    attributions:
        A tensor ``(N, ...)`` or an :class:`~saliencelab.Attribution`.
    aggregate:
        None: every value of a sample; or a channel reduction of
        :func:`~saliencelab.core.aggregate.aggregate_channels` (``"sum_abs"``, ...)
        to measure ``(N, H, W)`` pixel maps.

    Example
    -------
    >>> import torch
    >>> sparseness(torch.tensor([[0.0, 0.0, 0.0, -2.0], [1.0, 2.0, 3.0, 4.0]])).tolist()
    [0.75, 0.25]
    """
    values = _magnitudes(attributions, aggregate).sort(dim=1).values
    n = values.shape[1]
    weights = 2 * torch.arange(1, n + 1, dtype=values.dtype, device=values.device) - n - 1
    total = values.sum(dim=1)
    gini = (values * weights).sum(dim=1) / (n * total)
    return torch.where(total > 0, gini, torch.zeros_like(gini))


def entropy(attributions: torch.Tensor | Attribution, aggregate: str | None = None) -> torch.Tensor:
    """Shannon entropy (nats) of each sample's normalised ``|attribution|`` (Bhatt et al. 2020), ``(N,)`` float64.

    ``H = −Σ_i p_i log p_i`` with ``p = |a| / Σ|a|`` and ``0 log 0 = 0``: ``log n`` for a
    uniform map of ``n`` values, 0 for a one-hot map. Lower is simpler. Parameters as
    in :func:`sparseness`.

    Example
    -------
    >>> import math, torch
    >>> value = entropy(torch.ones(1, 3, 4, 4), aggregate="sum_abs").item()  # uniform over 16 pixels
    >>> math.isclose(value, math.log(16))
    True
    """
    values = _magnitudes(attributions, aggregate)
    total = values.sum(dim=1, keepdim=True)
    p = torch.where(total > 0, values / total, torch.full_like(values, 1 / values.shape[1]))
    return torch.special.entr(p).sum(dim=1)


def _magnitudes(attributions: torch.Tensor | Attribution, aggregate: str | None) -> torch.Tensor:
    """``|a|`` as ``(N, n)`` float64, checked to be finite."""
    if isinstance(attributions, Attribution):
        attributions = attributions.values
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor or an Attribution; got {type(attributions).__name__}")
    if attributions.ndim < 2 or attributions[0].numel() == 0:
        raise ValueError(
            f"attributions need a batch dimension and at least one value per sample, (N, ...); got shape "
            f"{tuple(attributions.shape)}. A single map needs attributions.unsqueeze(0)"
        )
    if not torch.isfinite(attributions).all():
        raise ValueError("the attributions contain NaN or Inf values; their complexity is undefined")
    if aggregate is not None:
        attributions = aggregate_channels(attributions, aggregate)
    return attributions.detach().double().abs().flatten(1)
