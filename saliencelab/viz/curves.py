"""Curves of evaluation results: deletion / insertion curves and model-randomisation curves.

Each curve is the mean over samples, with a shaded band of one standard
deviation (``numpy.std``, ``ddof=0``) on each side when ``band="std"``.

Example
-------
>>> import matplotlib.pyplot as plt, torch
>>> ax = curves([0.0, 0.5, 1.0], {"gradient": torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.25, 0.0]])})
>>> ax.lines[0].get_ydata().tolist()
[1.0, 0.375, 0.0]
>>> plt.close(ax.figure)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from saliencelab.viz.figures import pyplot_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

BANDS = ("std", None)
ORIGINAL = "original"
"""The name of the leftmost point of a randomisation curve: the unrandomised model."""


def curves(
    x: Any,
    ys: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    band: str | None = "std",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    legend: bool = True,
) -> Axes:
    """Draw one mean curve per method over ``x``, e.g. the model's score as pixels are deleted or inserted.

    Parameters
    ----------
    x:
        The ``K`` positions (a sequence, numpy array or tensor).
    ys:
        Method name to its values: ``(N, K)`` for ``N`` samples (the mean is
        drawn, with a band) or ``(K,)`` for one curve.
    ax:
        Axes to draw in; by default a new pyplot figure.
    xlabel, ylabel, title:
        Axis labels and title.
    band:
        ``"std"`` shades mean ± one standard deviation over samples; ``None`` draws no band.
    styles:
        Line properties of some curves by name, e.g. ``{"random": {"color": "grey", "linestyle": "--"}}``
        (a control drawn apart from the methods); their bands take the line's colour.
    legend:
        Add a legend of the curves' names.

    Returns
    -------
    The axes: ``ax.lines[i]`` is method ``i``'s mean curve, ``ax.collections`` its bands.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> ax = curves(np.arange(3), {"a": np.array([[0.0, 1, 2], [2.0, 1, 0]])}, band="std")
    >>> float(ax.collections[0].get_paths()[0].get_extents().ymax)  # the band's top: mean 1 + std 1
    2.0
    >>> ax = curves([0, 1], {"random": [0.5, 0.5]}, styles={"random": {"color": "grey"}}, legend=False)
    >>> ax.lines[0].get_color(), ax.get_legend()
    ('grey', None)
    >>> plt.close(ax.figure)
    """
    if band not in BANDS:
        raise ValueError(f"band must be 'std' or None; got {band!r}")
    positions = _finite(x, "x")
    if positions.ndim != 1:
        raise ValueError(f"x must be one-dimensional (K positions); got shape {positions.shape}")
    if not ys:
        raise ValueError("ys is empty: pass at least one method's curve, e.g. {'gradient': scores}")
    ax = pyplot_axes() if ax is None else ax
    for name, values in ys.items():
        samples = _finite(values, f"ys[{name!r}]")
        samples = samples[None] if samples.ndim == 1 else samples
        if samples.ndim != 2 or samples.shape[1] != positions.size:
            raise ValueError(
                f"ys[{name!r}] has shape {samples.shape}; expected (N, {positions.size}) or ({positions.size},) "
                "to match x"
            )
        spread = samples.std(axis=0) if band else None
        _draw(ax, positions, samples.mean(axis=0), spread, name, _style(styles, name))
    _label(ax, xlabel, ylabel, title, legend)
    return ax


def randomization_curve(
    df: Any,
    *,
    ax: Axes | None = None,
    xlabel: str | None = "randomised layer",
    ylabel: str | None = "similarity to the original map",
    title: str | None = None,
    band: str | None = "std",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    legend: bool = True,
) -> Axes:
    """Draw how similar the maps stay as the model's layers are randomised (the model-randomisation sanity check).

    The leftmost point, labelled ``"original"``, is the unrandomised model,
    whose map is identical to itself (similarity 1), unless ``df`` has rows for
    a layer named ``"original"``, which are used instead. The other points
    follow the layers in the order they first appear in ``df``; several rows for
    one layer (samples) are averaged, with a band of one standard deviation.

    Parameters
    ----------
    df:
        A pandas DataFrame with columns ``layer`` and ``similarity``, and
        optionally ``method`` (one curve per method).
    ax:
        Axes to draw in; by default a new pyplot figure.
    xlabel, ylabel, title:
        Axis labels and title.
    band, styles, legend:
        As for :func:`curves` (``styles`` by method).

    Returns
    -------
    The axes; the x tick labels are ``"original"`` and the layer names.

    Example
    -------
    >>> import matplotlib.pyplot as plt, pandas as pd
    >>> df = pd.DataFrame({"layer": ["fc", "conv"], "similarity": [0.6, 0.1]})
    >>> ax = randomization_curve(df)
    >>> [label.get_text() for label in ax.get_xticklabels()], ax.lines[0].get_ydata().tolist()
    (['original', 'fc', 'conv'], [1.0, 0.6, 0.1])
    >>> plt.close(ax.figure)
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame with columns layer and similarity; got {type(df).__name__}")
    missing = {"layer", "similarity"} - set(df.columns)
    if missing:
        raise ValueError(f"the DataFrame lacks the column(s) {sorted(missing)}; it has {list(df.columns)}")
    if df.empty:
        raise ValueError("the DataFrame has no rows: there is nothing to draw")
    if band not in BANDS:
        raise ValueError(f"band must be 'std' or None; got {band!r}")
    _finite(df["similarity"].to_numpy(dtype=float), "the similarity column")
    layers = [ORIGINAL] + [layer for layer in pd.unique(df["layer"]) if layer != ORIGINAL]
    ax = pyplot_axes() if ax is None else ax
    groups = df.groupby("method", sort=False) if "method" in df.columns else [(None, df)]
    for method, rows in groups:
        statistics = rows.groupby("layer", sort=False)["similarity"].agg(["mean", lambda s: s.std(ddof=0)])
        statistics.columns = ["mean", "std"]
        if ORIGINAL not in statistics.index:
            statistics.loc[ORIGINAL] = (1.0, 0.0)
        statistics = statistics.reindex(layers)
        if statistics["mean"].isna().any():
            absent = list(statistics.index[statistics["mean"].isna()])
            raise ValueError(f"method {method!r} has no rows for the layer(s) {absent}; every method needs every layer")
        positions = np.arange(len(layers), dtype=float)
        spread = statistics["std"].to_numpy() if band else None
        name = None if method is None else str(method)
        _draw(ax, positions, statistics["mean"].to_numpy(), spread, name, _style(styles, name))
    ax.set_xticks(np.arange(len(layers)), [str(layer) for layer in layers], rotation=45, ha="right")
    _label(ax, xlabel, ylabel, title, legend)
    return ax


def _finite(values: Any, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds NaN or infinite values; a curve cannot be drawn through them")
    return array


def _style(styles: Mapping[str, Mapping[str, Any]] | None, name: str | None) -> dict[str, Any]:
    return dict((styles or {}).get(name, {})) if name is not None else {}


def _draw(
    ax: Axes, x: np.ndarray, mean: np.ndarray, spread: np.ndarray | None, name: str | None, style: dict[str, Any]
) -> None:
    (line,) = ax.plot(x, mean, **{"marker": "o", "markersize": 3, "label": name, **style})
    if spread is not None and spread.any():
        ax.fill_between(x, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, linewidth=0)


def _label(ax: Axes, xlabel: str | None, ylabel: str | None, title: str | None, legend: bool) -> None:
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if legend and any(line.get_label() and not line.get_label().startswith("_") for line in ax.lines):
        ax.legend(fontsize=8)
