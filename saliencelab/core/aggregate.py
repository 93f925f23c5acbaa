"""Reduce an attribution's channels to one 2-D map per sample.

The usual reductions: the plain channel sum, the sum of absolute values
(Sundararajan et al. 2017), the largest absolute value (Simonyan et al. 2014)
and the Euclidean norm. Evaluation measures and plots both read maps through here.

Example
-------
>>> import torch
>>> values = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]]]])  # (N=1, C=2, H=1, W=2)
>>> aggregate_channels(values, "sum").tolist()
[[[-2.0, -1.5]]]
>>> aggregate_channels(values, "max_abs").tolist()
[[[3.0, 2.0]]]
"""

from __future__ import annotations

import torch

AGGREGATIONS = ("sum", "sum_abs", "max_abs", "l2")


def aggregate_channels(values: torch.Tensor, how: str = "sum") -> torch.Tensor:
    """Return ``(N, H, W)`` maps from ``(N, C, H, W)`` attributions (``(N, H, W)`` passes through).

    Parameters
    ----------
    values:
        Attributions with a batch dimension: ``(N, C, H, W)`` or already ``(N, H, W)``.
    how:
        ``"sum"`` (signed), ``"sum_abs"``, ``"max_abs"`` or ``"l2"``.

    Example
    -------
    >>> aggregate_channels(torch.ones(2, 3, 4, 5), "l2").shape
    torch.Size([2, 4, 5])
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown channel aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")
    if values.ndim == 3:
        return values.abs() if how in ("sum_abs", "max_abs", "l2") else values
    if values.ndim != 4:
        raise ValueError(
            f"expected attributions of shape (N, C, H, W) or (N, H, W); got {tuple(values.shape)}. "
            "Add the batch dimension for a single sample."
        )
    if how == "sum":
        return values.sum(dim=1)
    if how == "sum_abs":
        return values.abs().sum(dim=1)
    if how == "max_abs":
        return values.abs().amax(dim=1)
    return values.pow(2).sum(dim=1).sqrt()
