"""Every method side by side: rows are inputs, columns are methods.

Example
-------
>>> import matplotlib.pyplot as plt, torch
>>> figure = grid(torch.rand(2, 1, 8, 8), {"gradient": torch.randn(2, 1, 8, 8), "lrp": torch.randn(2, 1, 8, 8)})
>>> len(figure.axes)  # 2 rows x (the input + 2 methods)
6
>>> plt.close(figure)
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from saliencelab.viz.figures import offscreen_figure
from saliencelab.viz.heatmap import MODES, compose, draw_map, finish
from saliencelab.viz.read import display_image
from saliencelab.viz.scale import colour_limit, to_map

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CELL_INCHES = 1.8
LABEL_INCHES = 0.45
LABEL_CHARACTERS = 30
DPI = 120
FRAME_GREY = "0.8"
"""Cells have a thin light frame, so a map's white (zero) edge is told from the page."""


def grid(
    images: Any,
    maps: Mapping[str, Any],
    path: str | Path | None = None,
    *,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    sign: str = "all",
    aggregate: str = "sum",
    percentile: float = 99.5,
    overlay: bool | str = False,
    labels_per_cell: Mapping[str, str | Sequence[str]] | None = None,
    max_columns: int | None = None,
) -> Figure:
    """Draw the inputs in the first column and one column per method.

    Each column has its own colour scale, clipped at ``percentile`` of the
    absolute values of all its maps, so rows of a column compare directly and
    one method's outliers do not wash out another's. With more methods than
    ``max_columns`` the grid wraps: further blocks of rows follow, each starting
    with the inputs again.

    Parameters
    ----------
    images:
        The inputs: a tensor ``(N, C, H, W)`` or a sequence of single images
        (any layout :mod:`saliencelab.viz.read` accepts, rescaled by its display rule).
    maps:
        Method name to its attributions for the ``N`` inputs: tensors ``(N, C, H, W)``
        (CAM maps ``(N, 1, H, W)``) or :class:`~saliencelab.Attribution`.
    path:
        Save the figure there as a PNG (at 120 dpi); the figure is then made
        off-screen, without pyplot, and needs no closing.
    row_labels, column_labels:
        One label per input / per method (default: the method names).
    sign, aggregate, percentile:
        As for :func:`saliencelab.viz.heatmap`.
    overlay:
        ``False`` draws heatmaps; ``True`` (= ``"blend"``), ``"blend"``, ``"mask"``
        or ``"scale"`` draws each map over its input as :func:`saliencelab.viz.overlay` does.
    labels_per_cell:
        Short text under the cells of a method: one string for every row of its
        column or one per row, e.g. ``{"gradient": "passes: randomisation"}``.
    max_columns:
        The most method columns side by side.

    Returns
    -------
    The figure; ``figure.axes`` lists, block by block and row by row, the input's
    axes followed by the methods' axes.

    Example
    -------
    >>> import matplotlib.pyplot as plt
    >>> maps = {name: torch.randn(3, 3, 8, 8) for name in "abcde"}
    >>> figure = grid(torch.rand(3, 3, 8, 8), maps, max_columns=3, labels_per_cell={"a": "passes"})
    >>> figure.axes[0].get_subplotspec().get_gridspec().get_geometry()  # 2 blocks of 3 rows; input + 3 columns
    (6, 4)
    >>> plt.close(figure)
    """
    pictures = _pictures(images)
    count = len(pictures)
    names = list(maps)
    if not names:
        raise ValueError("maps is empty: pass at least one method's attributions, e.g. {'gradient': values}")
    drawn = {name: to_map(values, sign=sign, aggregate=aggregate) for name, values in maps.items()}
    for name, column in drawn.items():
        if column.shape[0] != count:
            raise ValueError(f"{name!r} has {column.shape[0]} samples but there are {count} images; pass one per image")
    mode = _mode(overlay)
    titles = _one_each(column_labels, names, "column_labels") or [name.replace("_", " ") for name in names]
    rows = _one_each(row_labels, range(count), "row_labels")
    notes = _cell_notes(labels_per_cell, names, count)
    per_block = len(names) if max_columns is None else max_columns
    if per_block < 1:
        raise ValueError(f"max_columns must be at least 1; got {max_columns}")
    blocks = math.ceil(len(names) / per_block)
    shape = (count * blocks, 1 + min(len(names), per_block))
    size = (CELL_INCHES * shape[1], (CELL_INCHES + (LABEL_INCHES if notes else 0.0)) * shape[0])
    if path is None:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=size, layout="constrained")
    else:
        figure = offscreen_figure(figsize=size, layout="constrained")
    cells = figure.add_gridspec(*shape)
    limits = {name: colour_limit(column, percentile) for name, column in drawn.items()}
    for block in range(blocks):
        for row in range(count):
            line = block * count + row
            ax = figure.add_subplot(cells[line, 0])
            ax.imshow(pictures[row], interpolation="nearest")
            _frame(ax, "input" if row == 0 else None)
            if rows:
                ax.set_ylabel(rows[row], fontsize=8)
            for place, name in enumerate(names[block * per_block : (block + 1) * per_block], start=1):
                ax = figure.add_subplot(cells[line, place])
                cell = drawn[name][row]
                if mode is None:
                    draw_map(ax, cell, sign=sign, limit=limits[name], cmap=None)
                else:
                    if cell.shape != pictures[row].shape[:2]:
                        raise ValueError(
                            f"{name!r} maps are {cell.shape} but the images are {pictures[row].shape[:2]}: "
                            "an overlay needs maps at the input's size"
                        )
                    ax.imshow(_overlaid(pictures[row], cell, sign, limits[name], mode), interpolation="nearest")
                _frame(ax, titles[names.index(name)] if row == 0 else None)
                if notes.get(name):
                    ax.set_xlabel(textwrap.fill(notes[name][row], LABEL_CHARACTERS), fontsize=6)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI, format="png")
    return figure


def _frame(ax: Axes, title: str | None) -> None:
    finish(ax, None)
    for spine in ax.spines.values():
        spine.set(visible=True, color=FRAME_GREY, linewidth=0.5)
    if title is not None:
        ax.set_title(title, fontsize=8)


def _overlaid(picture: np.ndarray, cell: np.ndarray, sign: str, limit: float, mode: str) -> np.ndarray:
    return compose(
        picture, cell, sign=sign, limit=limit, mode=mode, alpha=0.5, threshold=0.5, greyscale=True, cmap=None
    )


def _pictures(images: Any) -> list[np.ndarray]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"expected images of shape (N, C, H, W); got {tuple(images.shape)}. A single image needs its batch "
                "dimension (image[None])."
            )
        return [display_image(image) for image in images]
    if isinstance(images, Sequence) and not isinstance(images, str) and len(images) > 0:
        return [display_image(image) for image in images]
    raise TypeError(
        f"expected a tensor (N, C, H, W) or a non-empty sequence of images; got {type(images).__name__}. "
        "Stack a numpy batch with torch.from_numpy (it is read as (N, C, H, W))."
    )


def _mode(overlay: bool | str) -> str | None:
    if overlay is False:
        return None
    if overlay is True:
        return "blend"
    if overlay in MODES:
        return str(overlay)
    raise ValueError(f"overlay must be False, True or one of {', '.join(MODES)}; got {overlay!r}")


def _one_each(labels: Sequence[str] | None, items: Sequence[Any], what: str) -> list[str]:
    if labels is None:
        return []
    if isinstance(labels, str) or len(labels) != len(items):
        raise ValueError(f"{what} needs one label per entry ({len(items)}); got {labels!r}")
    return [str(label) for label in labels]


def _cell_notes(notes: Mapping[str, str | Sequence[str]] | None, names: list[str], count: int) -> dict[str, list[str]]:
    if not notes:
        return {}
    unknown = [name for name in notes if name not in names]
    if unknown:
        raise ValueError(f"labels_per_cell names methods that are not in maps: {unknown}; the methods are {names}")
    return {
        name: [text] * count if isinstance(text, str) else _one_each(text, range(count), f"labels_per_cell[{name!r}]")
        for name, text in notes.items()
    }
