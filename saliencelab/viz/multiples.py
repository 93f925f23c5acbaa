"""Small multiples: one small panel per method on shared axes, instead of every method's line in one plot.

:func:`small_multiples` lays the panels out in rows of ``columns``, calls a
drawing function once per panel (e.g. :func:`saliencelab.viz.curves` with the
panel's axes), keeps tick labels on the outer panels only (and the x tick
labels of each column's lowest panel), and gathers the curves' names into one
legend above the panels. Text is sized for the PNG shown at its natural size:
at :data:`DPI` dots per inch, :data:`FONT_POINTS` points are 12.5 pixels.

Example
-------
>>> from saliencelab import viz
>>> figure = small_multiples(["a", "b", "c"], lambda ax, name: viz.curves([0, 1], {"mean": [0, 1]}, ax=ax), columns=2)
>>> [ax.get_title() for ax in figure.axes if ax.get_visible()]
['a', 'b', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

from saliencelab.viz.figures import offscreen_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
"""Dots per inch of a saved figure: one CSS pixel per dot when the PNG is shown at its natural size."""
FONT_POINTS = 9
"""The smallest text of the panels, in points (12.5 pixels at :data:`DPI`)."""
LEGEND_INCHES = 0.45
"""Room above the panels for the legend."""


def small_multiples(
    names: Sequence[str],
    draw: Callable[[Axes, str], object],
    path: str | Path | None = None,
    *,
    columns: int = 5,
    panel_inches: tuple[float, float] = (2.3, 1.9),
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """One panel per name, drawn by ``draw(ax, name)``, on shared axes, with one legend above them.

    Parameters
    ----------
    names:
        The panels' titles, in reading order (left to right, then down).
    draw:
        Draws one panel: called with the panel's axes and its name. Legends it
        adds are removed; the labelled lines of all panels make one legend.
    path:
        Save the figure there as a PNG at :data:`DPI`.
    columns:
        Panels per row (fewer when there are fewer panels).
    panel_inches:
        Width and height of one panel.
    xlabel, ylabel:
        Axis labels, shown once under the panels and once on their left.
    title:
        A title above the legend.

    Returns
    -------
    The off-screen figure: ``figure.axes[i]`` is panel ``i`` (spare cells of the last row are hidden).

    Example
    -------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> figure = small_multiples(list("abcdefg"), lambda ax, name: ax.plot([0, 1], label="x"), path, columns=4)
    >>> Image.open(path).size  # 4 panels of 2.3 in by 2 rows of 1.9 in plus the legend, at 100 dpi
    (920, 425)
    >>> [ax.get_visible() for ax in figure.axes][-2:]
    [True, False]
    """
    if not names:
        raise ValueError("names is empty: there is no panel to draw")
    if columns < 1:
        raise ValueError(f"columns must be at least 1; got {columns}")
    across = min(columns, len(names))
    down = math.ceil(len(names) / across)
    width, height = panel_inches
    size = (width * across, height * down + LEGEND_INCHES + (LEGEND_INCHES if title else 0.0))
    with matplotlib.rc_context(_FONTS):
        figure = offscreen_figure(figsize=size, dpi=DPI, layout="constrained")
        grid = figure.subplots(down, across, sharex=True, sharey=True, squeeze=False).ravel()
        for index, (ax, name) in enumerate(zip(grid, names, strict=False)):
            draw(ax, name)
            ax.set_title(name)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.label_outer()
            if index + across >= len(names):  # the lowest panel of its column keeps its x tick labels
                ax.xaxis.set_tick_params(labelbottom=True)
        for ax in grid[len(names) :]:
            ax.set_visible(False)
        _legend(figure, grid[: len(names)])
        if xlabel is not None:
            figure.supxlabel(xlabel)
        if ylabel is not None:
            figure.supylabel(ylabel)
        if title is not None:
            figure.suptitle(title, fontsize="large")
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=DPI, format="png")
    return figure


_FONTS = {
    "font.size": FONT_POINTS + 1,
    "axes.titlesize": FONT_POINTS + 1,
    "axes.labelsize": FONT_POINTS,
    "xtick.labelsize": FONT_POINTS,
    "ytick.labelsize": FONT_POINTS,
    "legend.fontsize": FONT_POINTS + 1,
}


def _legend(figure: Figure, panels: Sequence[Axes]) -> None:
    entries: dict[str, object] = {}
    for ax in panels:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="outside upper center", ncols=min(len(entries), 4))
