"""Tabular attributions: one sample's features as horizontal bars, largest ``|attribution|`` first.

A heatmap of a table row means nothing (its features have no neighbours), so
``(N, D)`` attributions are drawn as bars: positive ones in the red, negative
ones in the blue of the heatmaps' diverging colour map, each labelled with its
value and its feature's name.

Example
-------
>>> import matplotlib.pyplot as plt, torch
>>> ax = bars(torch.tensor([0.5, -2.0, 1.0]), feature_names=["age", "income", "debt"])
>>> [label.get_text() for label in ax.get_yticklabels()]
['income', 'debt', 'age']
>>> plt.close(ax.figure)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from saliencelab.core.attribution import Attribution
from saliencelab.viz.figures import pyplot_axes
from saliencelab.viz.scale import colour_map

if TYPE_CHECKING:
    from matplotlib.axes import Axes

BAR_HEIGHT_INCHES = 0.3
"""A new figure is this much taller per bar (plus room for the title and the axis)."""


def bars(
    attribution: Any,
    *,
    feature_names: Sequence[str] | None = None,
    top: int | None = None,
    value_labels: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw one sample's feature attributions as horizontal bars sorted by ``|value|``.

    Parameters
    ----------
    attribution:
        An :class:`~saliencelab.Attribution` with values ``(N, D)`` or a tensor
        or array ``(N, D)`` (sample 0 is drawn; :meth:`Attribution.plot` picks
        another) or ``(D,)``.
    feature_names:
        The ``D`` feature names (default ``feature 0`` ... ``feature D-1``).
    top:
        Draw only the ``top`` features with the largest ``|value|`` (default: all).
    value_labels:
        Write each bar's value (three significant digits) at its end.
    ax:
        Axes to draw in; by default a new pyplot figure, its height growing with the bars.
    title:
        Axes title.

    Returns
    -------
    The axes; ``ax.containers[0]`` holds the bars, the largest ``|value|`` at the top.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> ax = bars(np.array([[0.1, -0.3, 0.2]]), top=2)
    >>> [label.get_text() for label in ax.get_yticklabels()], [float(bar.get_width()) for bar in ax.containers[0]]
    (['feature 1', 'feature 2'], [-0.3, 0.2])
    >>> plt.close(ax.figure)
    """
    values = _row(attribution)
    names = _names(feature_names, values.size)
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise ValueError(f"top must be a positive int (how many features to draw) or None for all; got {top!r}")
    order = np.argsort(-np.abs(values), kind="stable")[:top]
    shown = values[order]
    if ax is None:
        ax = pyplot_axes()
        ax.figure.set_size_inches(6.4, 1.2 + BAR_HEIGHT_INCHES * len(order))
    positive, negative = colour_map("all")(1.0), colour_map("all")(0.0)
    rows = np.arange(len(order))
    container = ax.barh(rows, shown, color=[positive if v > 0 else negative for v in shown])
    ax.set_yticks(rows, [names[i] for i in order])
    ax.invert_yaxis()  # the largest |value| on top
    ax.axvline(0.0, color="black", linewidth=0.8)
    if value_labels:
        ax.bar_label(container, labels=[f"{v:.3g}" for v in shown], padding=3)
        ax.margins(x=0.15)  # room for the labels at the bars' ends
    shown_of = f"top {len(order)} of {values.size} features" if len(order) < values.size else "features"
    ax.set_xlabel(f"attribution ({shown_of}, sorted by |value|)")
    if title is not None:
        ax.set_title(title)
    return ax


def _row(attribution: Any) -> np.ndarray:
    """One sample's ``D`` attributions as float64: sample 0 of an ``(N, D)`` batch, or a ``(D,)`` row."""
    values = attribution.values if isinstance(attribution, Attribution) else attribution
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[0]
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"bars draws tabular attributions of shape (N, D) or (D,); got {values.shape}. "
            "Image attributions: use viz.heatmap or viz.overlay"
        )
    if not np.isfinite(values).all():
        raise ValueError("the attributions contain NaN or infinite values; there is nothing sound to draw")
    return values


def _names(feature_names: Sequence[str] | None, count: int) -> list[str]:
    """``feature_names`` as ``count`` strings, or ``feature 0`` ... ``feature count-1``."""
    if feature_names is None:
        return [f"feature {i}" for i in range(count)]
    names = [str(name) for name in feature_names]
    if len(names) != count:
        raise ValueError(f"got {len(names)} feature_names for {count} features; give one name per feature")
    return names
