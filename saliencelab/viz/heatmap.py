"""One attribution map: as a heatmap, or over its image.

How a map becomes colours is in :mod:`saliencelab.viz.scale` (aggregate the
channels, keep one sign, clip the colour scale at a percentile of ``|map|``);
which arrays are accepted, and how images are rescaled for display, is in
:mod:`saliencelab.viz.read`.

Example
-------
>>> import matplotlib.pyplot as plt, torch
>>> ax = heatmap(torch.tensor([[1.0, -1.0], [0.0, 0.5]]), percentile=100)
>>> ax.images[0].get_clim()
(-1.0, 1.0)
>>> plt.close(ax.figure)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize

from saliencelab.viz.figures import DPI, panel_axes, pyplot_axes, save_axes
from saliencelab.viz.read import display_image, values_sample
from saliencelab.viz.scale import colour_limit, colour_map, colour_range, to_map

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar
    from matplotlib.image import AxesImage

MODES = ("blend", "mask", "scale")
COLORBAR_BAND = 72
"""Pixels added at the right of a saved panel (``path`` without ``ax``) for its colour bar and tick labels."""


def heatmap(
    attribution: Any,
    *,
    sign: str = "all",
    aggregate: str = "sum",
    percentile: float = 99.5,
    cmap: str | Colormap | None = None,
    ax: Axes | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> Axes:
    """Draw one attribution map as a heatmap; zero is white.

    Parameters
    ----------
    attribution:
        An :class:`~saliencelab.Attribution`, a tensor ``(N, C, H, W)`` (sample 0
        is drawn), ``(C, H, W)``, ``(1, H, W)``, ``(H, W)``, or a numpy array
        ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` (see :mod:`saliencelab.viz.read`).
    sign:
        ``"all"`` (signed, diverging colours centred at zero), ``"positive"``,
        ``"negative"`` (the size of the negative part) or ``"absolute"``.
    aggregate:
        Channel reduction: ``"sum"``, ``"sum_abs"``, ``"max_abs"`` or ``"l2"``.
    percentile:
        The colour scale saturates at this percentile of ``|map|``.
    cmap:
        A matplotlib colour map or its name; by default blue-white-red for
        ``"all"`` and white-to-colour for the others.
    ax:
        Axes to draw in; by default a new pyplot figure.
    colorbar:
        Add a colour bar of the map's scale (signed: centred at zero;
        otherwise from zero); ``False`` for none.
    title:
        Axes title.

    Returns
    -------
    The axes; ``ax.images[0]`` holds the drawn map.

    Example
    -------
    >>> import matplotlib.pyplot as plt, torch
    >>> ax = heatmap(torch.tensor([[2.0, -1.0]]), sign="positive", percentile=100)
    >>> ax.images[0].get_array().tolist(), ax.images[0].get_clim()
    ([[2.0, 0.0]], (0.0, 2.0))
    >>> plt.close(ax.figure)
    """
    drawn = to_map(values_sample(attribution), sign=sign, aggregate=aggregate)[0]
    limit = colour_limit(drawn, percentile)
    ax = pyplot_axes() if ax is None else ax
    image = draw_map(ax, drawn, sign=sign, limit=limit, cmap=cmap)
    if colorbar:
        add_colorbar(ax, image, whole=False)
    finish(ax, title)
    return ax


def overlay(
    image: Any,
    attribution: Any,
    *,
    mode: str = "blend",
    sign: str = "all",
    aggregate: str = "sum",
    percentile: float = 99.5,
    alpha: float = 0.5,
    threshold: float = 0.5,
    greyscale: bool = True,
    cmap: str | Colormap | None = None,
    ax: Axes | None = None,
    colorbar: bool = True,
    path: str | Path | None = None,
    title: str | None = None,
) -> Axes:
    """Draw an attribution map over its image.

    With ``w = clip(map / limit)`` the map scaled by its colour limit (in
    ``[-1, 1]`` for ``sign="all"``, ``[0, 1]`` otherwise):

    - ``"blend"``: the heatmap's colours over the image (made grey first when
      ``greyscale``), each pixel with opacity ``alpha * |w|``: unattributed
      pixels show the image unchanged, pixels at the colour limit are ``alpha``
      heatmap.
    - ``"mask"``: only the pixels with ``|w| > threshold``, in their own
      colours; the others are transparent (white when saved).
    - ``"scale"``: every pixel multiplied by ``|w|`` (as Sundararajan et al.
      2017 show attributions: pixel intensities scaled in proportion to their
      attributions); a zero map gives black.

    Parameters
    ----------
    image:
        The input: any layout of :mod:`saliencelab.viz.read` with 1, 3 or 4
        channels (a 4-D tensor gives sample 0), rescaled for display by its rule.
    attribution:
        The map, as for :func:`heatmap`, at the image's height and width.
    mode, alpha, threshold, greyscale:
        As above; ``greyscale`` applies to ``"blend"`` only.
    sign, aggregate, percentile, cmap:
        As for :func:`heatmap`.
    ax:
        Axes to draw in; by default a new pyplot figure, or, with ``path``, an
        off-screen figure that is only the panel.
    colorbar:
        Add a colour bar of the attribution scale (``False`` for none): for
        ``"blend"`` the heatmap's colours from ``-limit`` to ``limit`` (signed)
        or from 0 to ``limit``; for ``"scale"`` and ``"mask"`` black to white
        from 0 to ``limit`` (the pixels' brightness factor; ``"mask"`` marks
        the threshold with a line).
    path:
        Save a PNG of this panel there. Without ``ax`` the PNG is the image
        alone, each pixel an ``s x s`` block (``s`` the smallest whole number
        giving a longer side of at least 256 pixels), plus a 28-pixel band
        for the title when there is one and a band of
        :data:`COLORBAR_BAND` pixels at the right for the colour bar.
    title:
        Axes title.

    Returns
    -------
    The axes; ``ax.images[0].get_array()`` is the drawn RGB (``"mask"``: RGBA) array.

    Example
    -------
    >>> import torch
    >>> image = torch.full((3, 2, 2), 0.5)
    >>> ax = overlay(image, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), mode="scale", percentile=100)
    >>> ax.images[0].get_array()[..., 0].tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    >>> import matplotlib.pyplot as plt
    >>> plt.close(ax.figure)
    """
    picture = display_image(image)
    drawn = to_map(values_sample(attribution), sign=sign, aggregate=aggregate)[0]
    if drawn.shape != picture.shape[:2]:
        raise ValueError(
            f"the map is {drawn.shape[0]}x{drawn.shape[1]} but the image is {picture.shape[0]}x{picture.shape[1]}: "
            "pass the map at the input's size (sl.explain gives CAM maps at the input's size)"
        )
    limit = colour_limit(drawn, percentile)
    composite = compose(
        picture,
        drawn,
        sign=sign,
        limit=limit,
        mode=mode,
        alpha=alpha,
        threshold=threshold,
        greyscale=greyscale,
        cmap=cmap,
    )
    whole = ax is None and path is not None
    if ax is None:
        ax = panel_axes(*drawn.shape, title=title) if whole else pyplot_axes()
    ax.imshow(composite, interpolation="nearest")
    if colorbar:
        bar = add_colorbar(ax, overlay_scale(mode, sign, limit, cmap), whole=whole)
        if mode == "mask":
            bar.ax.axhline(threshold * limit, color="red", linewidth=1.5)
    finish(ax, title)
    if path is not None:
        save_axes(ax, path=path, whole=whole)
    return ax


def overlay_scale(mode: str, sign: str, limit: float, cmap: str | Colormap | None) -> ScalarMappable:
    """The colours and range of an overlay's attribution scale, as :func:`overlay`'s ``colorbar`` describes.

    Example
    -------
    >>> overlay_scale("blend", "all", 2.0, None).get_clim(), overlay_scale("scale", "all", 2.0, None).get_clim()
    ((-2.0, 2.0), (0.0, 2.0))
    """
    if mode == "blend":
        low, high = colour_range(sign, limit)
        return ScalarMappable(Normalize(low, high), colour_map(sign, cmap))
    return ScalarMappable(Normalize(0.0, limit), matplotlib.colormaps["gray"])


def add_colorbar(ax: Axes, mappable: ScalarMappable, *, whole: bool) -> Colorbar:
    """Add a colour bar of ``mappable`` next to ``ax``.

    ``whole=True`` (a panel from :func:`~saliencelab.viz.figures.panel_axes`
    that fills its figure): the figure is widened by :data:`COLORBAR_BAND`
    pixels for the bar, so the panel keeps its size in pixels.

    Example
    -------
    >>> ax = panel_axes(8, 8, title=None)
    >>> bar = add_colorbar(ax, ScalarMappable(Normalize(0.0, 3.0)), whole=True)
    >>> ax.figure.canvas.get_width_height(), [float(end) for end in bar.ax.get_ylim()]
    ((328, 256), [0.0, 3.0])
    """
    figure = ax.figure
    if not whole:
        return figure.colorbar(mappable, ax=ax)
    width, height = figure.canvas.get_width_height()
    total = width + COLORBAR_BAND
    figure.set_size_inches(total / DPI, height / DPI)
    box = ax.get_position()
    ax.set_position((0.0, box.y0, width / total, box.height))
    cax = figure.add_axes((width / total + 8 / total, box.y0 + 0.05 * box.height, 12 / total, 0.9 * box.height))
    bar = figure.colorbar(mappable, cax=cax)
    bar.ax.tick_params(labelsize=8)
    return bar


def draw_map(ax: Axes, drawn: np.ndarray, *, sign: str, limit: float, cmap: str | Colormap | None) -> AxesImage:
    """Show a 2-D map in ``ax`` with the colour range of ``sign`` and ``limit``.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> ax = plt.figure().add_subplot()
    >>> draw_map(ax, np.zeros((2, 2)), sign="all", limit=1.0, cmap=None).get_clim()
    (-1.0, 1.0)
    >>> plt.close(ax.figure)
    """
    low, high = colour_range(sign, limit)
    return ax.imshow(drawn, cmap=colour_map(sign, cmap), vmin=low, vmax=high, interpolation="nearest")


def compose(
    picture: np.ndarray,
    drawn: np.ndarray,
    *,
    sign: str,
    limit: float,
    mode: str,
    alpha: float,
    threshold: float,
    greyscale: bool,
    cmap: str | Colormap | None,
) -> np.ndarray:
    """Return the overlay of ``drawn`` (H, W) on ``picture`` (H, W, 3) in ``[0, 1]``, as :func:`overlay` describes.

    Example
    -------
    >>> picture = np.full((1, 2, 3), 0.5)
    >>> out = compose(picture, np.array([[0.0, 1.0]]), sign="positive", limit=1.0, mode="mask",
    ...               alpha=0.5, threshold=0.5, greyscale=True, cmap=None)
    >>> out[..., 3].tolist()
    [[0.0, 1.0]]
    """
    if mode not in MODES:
        raise ValueError(f"unknown overlay mode {mode!r}; use one of {', '.join(MODES)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha is an opacity in [0, 1]; got {alpha}")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold is a fraction of the colour limit in [0, 1); got {threshold}")
    strength = np.minimum(np.abs(drawn) / limit, 1.0)
    if mode == "scale":
        return picture * strength[..., None]
    if mode == "mask":
        return np.concatenate([picture, (strength > threshold)[..., None].astype(picture.dtype)], axis=-1)
    if greyscale:
        from skimage.color import rgb2gray

        picture = np.repeat(rgb2gray(picture)[..., None], 3, axis=-1)
    low, high = colour_range(sign, limit)
    colours = colour_map(sign, cmap)((np.clip(drawn, low, high) - low) / (high - low))[..., :3]
    opacity = alpha * strength[..., None]
    return picture * (1.0 - opacity) + colours * opacity


def finish(ax: Axes, title: str | None) -> None:
    """Remove ticks and frame (labels stay), and set the title.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> ax = plt.figure().add_subplot()
    >>> finish(ax, "map")
    >>> ax.get_title(), list(ax.get_xticks())
    ('map', [])
    >>> plt.close(ax.figure)
    """
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        ax.set_title(title)
