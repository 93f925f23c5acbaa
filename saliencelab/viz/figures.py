"""Where the plots draw: the caller's axes, a pyplot figure, or an off-screen figure that is saved.

Nothing here switches matplotlib's backend. Figures for a ``path`` are made
without pyplot (an Agg canvas of their own), so saving many of them in a loop
needs no ``plt.close`` and works headless; without a ``path`` a plot opens a
pyplot figure, which notebooks show.

Example
-------
>>> import os, tempfile
>>> ax = panel_axes(8, 8, title=None)
>>> ax.figure.canvas.get_width_height()
(256, 256)
>>> path = os.path.join(tempfile.mkdtemp(), "p.png")
>>> save_axes(ax, path=path, whole=True).exists()
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PANEL_SIDE = 256
"""A saved panel's longer side has at least this many pixels (each image pixel is an s x s block)."""
TITLE_HEIGHT = 28
"""Pixels above a saved panel for its title."""
DPI = 100


def offscreen_figure(**options: object) -> Figure:
    """Return a figure with its own Agg canvas, unknown to pyplot.

    Example
    -------
    >>> offscreen_figure(figsize=(2, 1), dpi=50).canvas.get_width_height()
    (100, 50)
    """
    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def pyplot_axes() -> Axes:
    """Return the axes of a new pyplot figure (close it with ``plt.close(ax.figure)``).

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> ax = pyplot_axes()
    >>> plt.close(ax.figure)
    """
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def panel_axes(height: int, width: int, *, title: str | None) -> Axes:
    """Return off-screen axes that fill a figure of exactly ``s*height x s*width`` pixels (plus a title band).

    ``s`` is the smallest whole number that makes the longer side at least
    :data:`PANEL_SIDE` pixels, so every image pixel is an ``s x s`` block.

    Example
    -------
    >>> panel_axes(224, 100, title="a").figure.canvas.get_width_height()
    (200, 476)
    """
    scale = max(1, math.ceil(PANEL_SIDE / max(height, width)))
    band = TITLE_HEIGHT if title else 0
    figure = offscreen_figure(figsize=(width * scale / DPI, (height * scale + band) / DPI), dpi=DPI)
    image_height = height * scale / (height * scale + band)
    return figure.add_axes((0.0, 0.0, 1.0, image_height))


def save_axes(ax: Axes, *, path: str | Path, whole: bool = False) -> Path:
    """Save ``ax`` as a PNG at ``path``: the part of its figure it covers, title and labels included.

    ``whole=True`` saves the whole figure at :data:`DPI`, pixel for pixel (for axes from :func:`panel_axes`).

    Example
    -------
    >>> import os, tempfile
    >>> figure = offscreen_figure()
    >>> save_axes(figure.add_subplot(), path=os.path.join(tempfile.mkdtemp(), "a", "b.png")).suffix
    '.png'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = ax.figure
    if whole:
        figure.savefig(path, dpi=DPI, format="png")
    else:
        box = ax.get_tightbbox().transformed(figure.dpi_scale_trans.inverted())
        figure.savefig(path, bbox_inches=box, format="png")
    return path
