"""One PNG per map or image, for pages that lay maps out themselves (the HTML report).

A tile is the picture alone, with no axes or text: each image pixel is an
``s x s`` block, ``s`` the smallest whole number that makes the longer side at
least ``side`` pixels, so a browser can show it small or large without blur.
A map is coloured as :func:`saliencelab.viz.heatmap` colours it (blue-white-red,
white at the centre, saturating at a percentile of the distance from the centre),
on its own scale; ``centred=True`` puts the centre at the map's mean instead of
zero, for maps whose level carries no meaning (RISE's expected scores).

Example
-------
>>> import os, tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> tile = save_map(torch.tensor([[[1.0, 3.0]]]), os.path.join(folder, "m.png"), centred=True, percentile=100)
>>> tile.centre, tile.low, tile.high
(2.0, 1.0, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from saliencelab.viz.read import display_image, values_sample
from saliencelab.viz.scale import colour_limit, colour_map, colour_range, to_map

TILE_SIDE = 256
"""A tile's longer side has at least this many pixels."""


@dataclass(frozen=True)
class Tile:
    """A saved map and the values at its colour scale's ends and centre.

    Attributes
    ----------
    path:
        The PNG.
    low, high:
        The values drawn in full blue and full red (values beyond are clipped).
    centre:
        The value drawn white: 0, or the map's mean when it was centred.
    """

    path: Path
    low: float
    high: float
    centre: float


def save_map(
    values: Any,
    path: str | Path,
    *,
    centred: bool = False,
    aggregate: str = "sum",
    percentile: float = 99.5,
    side: int = TILE_SIDE,
) -> Tile:
    """Save one signed map as a PNG tile on its own colour scale and return where its colours sit.

    Parameters
    ----------
    values:
        One map in any layout :func:`saliencelab.viz.heatmap` accepts (a 4-D tensor gives sample 0).
    path:
        Where to write the PNG (folders are created).
    centred:
        Colour the difference from the map's mean (white at the mean) instead of the map itself.
    aggregate, percentile:
        As for :func:`saliencelab.viz.heatmap`: the channel reduction, and the
        percentile of ``|map - centre|`` where the colours saturate.
    side:
        The least number of pixels of the tile's longer side.

    Example
    -------
    >>> import os, tempfile, torch
    >>> from PIL import Image
    >>> tile = save_map(torch.tensor([[0.0, -2.0], [2.0, 1.0]]), os.path.join(tempfile.mkdtemp(), "m.png"), side=4)
    >>> Image.open(tile.path).size, (tile.low, tile.centre, tile.high)
    ((4, 4), (-2.0, 0.0, 2.0))
    >>> Image.open(tile.path).getpixel((0, 0))  # zero is white
    (255, 255, 255)
    """
    drawn = to_map(values_sample(values), sign="all", aggregate=aggregate)[0]
    centre = float(drawn.mean()) if centred else 0.0
    limit = colour_limit(drawn - centre, percentile)
    low, high = colour_range("all", limit)
    colours = colour_map("all")((np.clip(drawn - centre, low, high) - low) / (high - low))[..., :3]
    return Tile(_save(colours, path, side), centre + low, centre + high, centre)


def save_image(image: Any, path: str | Path, *, side: int = TILE_SIDE) -> Path:
    """Save an input image as a PNG tile (shown by the display rule of :mod:`saliencelab.viz.read`).

    Example
    -------
    >>> import os, tempfile, torch
    >>> from PIL import Image
    >>> path = save_image(torch.ones(1, 8, 5), os.path.join(tempfile.mkdtemp(), "x.png"))
    >>> Image.open(path).size  # 8 x 5 pixels as 32 x 32 blocks
    (160, 256)
    """
    return _save(display_image(image), path, side)


def scale_colours(count: int = 3) -> list[str]:
    """``count`` colours of the map's scale from its low end to its high end, as ``#rrggbb`` (for a CSS colour bar).

    Example
    -------
    >>> scale_colours()
    ['#2166ac', '#ffffff', '#b2182b']
    """
    scale = colour_map("all")
    return ["#" + "".join(f"{round(c * 255):02x}" for c in scale(i / (count - 1))[:3]) for i in range(count)]


def _save(picture: np.ndarray, path: str | Path, side: int) -> Path:
    if side < 1:
        raise ValueError(f"side is a number of pixels and must be at least 1; got {side}")
    block = max(1, math.ceil(side / max(picture.shape[:2])))
    pixels = np.repeat(np.repeat(picture, block, axis=0), block, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)).save(path, format="png")
    return path
