"""From attributions to the 2-D maps that are drawn, their colour limit and their colour maps.

A map is drawn in three steps: the channels are aggregated
(:func:`saliencelab.core.aggregate.aggregate_channels`, e.g. the sum of
magnitudes of Sundararajan et al. 2017 or the largest magnitude of Simonyan et
al. 2014), one sign is kept, and the colour scale is
clipped at a percentile of the absolute values so one outlier does not wash out
the rest. Zero is white in every default colour map.

Example
-------
>>> import torch
>>> values = torch.tensor([[[[1.0, -2.0, 0.0]]]])
>>> to_map(values, sign="negative").tolist()
[[[0.0, 2.0, 0.0]]]
>>> colour_limit(np.zeros((2, 2)), 99.5)
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import Colormap, LinearSegmentedColormap

from saliencelab.core.aggregate import AGGREGATIONS, aggregate_channels
from saliencelab.viz.read import values_batch

SIGNS = ("all", "positive", "negative", "absolute")
SIGNED_AGGREGATIONS = ("sum",)

_COLOURS = {
    "all": ("#2166ac", "#ffffff", "#b2182b"),
    "positive": ("#ffffff", "#b2182b"),
    "negative": ("#ffffff", "#2166ac"),
    "absolute": ("#ffffff", "#3f007d"),
}


def to_map(values: Any, *, sign: str = "all", aggregate: str = "sum") -> np.ndarray:
    """Return the drawn maps ``(N, H, W)``: channels aggregated, then one sign kept.

    Parameters
    ----------
    values:
        Attributions in any layout :mod:`saliencelab.viz.read` accepts (a 3-D
        tensor is one sample ``(C, H, W)``; a batch is ``(N, C, H, W)``).
    sign:
        ``"all"`` keeps the signed map, ``"positive"`` its positive part
        ``max(m, 0)``, ``"negative"`` the size of its negative part ``max(-m, 0)``,
        ``"absolute"`` ``|m|``.
    aggregate:
        ``"sum"``, ``"sum_abs"``, ``"max_abs"`` or ``"l2"`` over channels. Only
        ``"sum"`` keeps signs, so ``sign="negative"`` needs it.

    Example
    -------
    >>> import torch
    >>> to_map(torch.ones(2, 3, 4, 5)).shape
    (2, 4, 5)
    """
    check_options(sign, aggregate)
    maps = aggregate_channels(values_batch(values), aggregate).numpy()
    if sign == "positive":
        return np.maximum(maps, 0.0)
    if sign == "negative":
        return np.maximum(-maps, 0.0)
    if sign == "absolute":
        return np.abs(maps)
    return maps


def check_options(sign: str, aggregate: str) -> None:
    """Refuse unknown or contradictory sign and aggregation names.

    Example
    -------
    >>> check_options("negative", "sum_abs")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: sign='negative' with aggregate='sum_abs' is zero everywhere: ...
    """
    if sign not in SIGNS:
        raise ValueError(f"unknown sign {sign!r}; use one of {', '.join(SIGNS)}")
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"unknown channel aggregation {aggregate!r}; use one of {', '.join(AGGREGATIONS)}")
    if sign == "negative" and aggregate not in SIGNED_AGGREGATIONS:
        raise ValueError(
            f"sign='negative' with aggregate={aggregate!r} is zero everywhere: that aggregation drops the signs. "
            "Use aggregate='sum' to see negative evidence."
        )


def colour_limit(maps: np.ndarray, percentile: float) -> float:
    """Return the value where the colour scale saturates: ``percentile`` of ``|maps|``.

    Where that percentile is 0 but the map is not (a sparse map), the largest
    ``|value|`` is used instead; an all-zero map gets 1, so it draws as zero.

    Example
    -------
    >>> colour_limit(np.arange(101.0), 90.0)
    90.0
    >>> colour_limit(np.array([0.0, 0.0, 0.0, -4.0]), 50.0)
    4.0
    """
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100]; got {percentile}")
    magnitude = np.abs(maps)
    limit = float(np.percentile(magnitude, percentile))
    if limit == 0.0:
        limit = float(magnitude.max(initial=0.0))
    return limit if limit > 0.0 else 1.0


def colour_range(sign: str, limit: float) -> tuple[float, float]:
    """Return ``(vmin, vmax)``: symmetric about zero for ``sign="all"``, from zero otherwise.

    Example
    -------
    >>> colour_range("all", 2.0), colour_range("absolute", 2.0)
    ((-2.0, 2.0), (0.0, 2.0))
    """
    return (-limit, limit) if sign == "all" else (0.0, limit)


def colour_map(sign: str, cmap: str | Colormap | None = None) -> Colormap:
    """Return ``cmap`` or the default for ``sign``: blue-white-red for ``"all"``, white-to-colour otherwise.

    The defaults have an odd number of entries, so zero is exactly white.

    Example
    -------
    >>> colour_map("all")(0.5)
    (np.float64(1.0), np.float64(1.0), np.float64(1.0), np.float64(1.0))
    """
    if cmap is None:
        return LinearSegmentedColormap.from_list(f"saliencelab_{sign}", _COLOURS[sign], N=255)
    if isinstance(cmap, Colormap):
        return cmap
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colour map {cmap!r}; pass a matplotlib colour map or its name, e.g. 'viridis'")
    return matplotlib.colormaps[cmap]
