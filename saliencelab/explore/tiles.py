"""PNG tiles of a run's inputs and maps, rendered on request under the page's controls.

A tile is the picture at the sample's own resolution (the page enlarges it
without smoothing). A map is drawn the way :mod:`saliencelab.viz.scale` draws
one: channels summed, then under the :class:`Controls`:

- ``sign``: ``signed`` keeps the map, ``absolute`` draws ``|map|``;
- ``clip``: ``symmetric`` saturates at the ``percentile`` of ``|map|`` (zero is
  the colour map's centre for a signed map, its low end for an absolute one);
  ``percentile`` stretches the colours between the ``100 - percentile`` and
  ``percentile`` percentiles of the drawn values (zero is then not white);
- ``cmap``: ``default`` (blue-white-red, or white-to-purple for ``absolute``) or
  one of :data:`COLOUR_MAPS`;
- ``opacity``: the map's weight over the grey input image (an image input of the
  same size); 1 draws the map alone.

Token maps give one colour per token (:func:`token_colours`), feature vectors a
one-row strip.

Example
-------
>>> import numpy as np
>>> png = map_png(np.array([[[0.0, 1.0], [-1.0, 0.5]]], np.float32), Controls())
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from saliencelab.viz.read import display_image
from saliencelab.viz.scale import colour_limit, colour_map, colour_range

COLOUR_MAPS = ("default", "RdBu_r", "coolwarm", "seismic", "bwr", "PiYG", "viridis", "magma", "inferno", "gray", "hot")
"""The colour maps a page may ask for (matplotlib's names; ``default`` is saliencelab's)."""

SIGNS = ("signed", "absolute")
CLIPS = ("symmetric", "percentile")


@dataclass(frozen=True)
class Controls:
    """How a map is drawn (see the module's docstring); :meth:`parse` reads them from a query string.

    Example
    -------
    >>> Controls.parse({"sign": "absolute", "cmap": "viridis", "opacity": "0.5"})
    Controls(sign='absolute', clip='symmetric', percentile=99.5, cmap='viridis', opacity=0.5)
    """

    sign: str = "signed"
    clip: str = "symmetric"
    percentile: float = 99.5
    cmap: str = "default"
    opacity: float = 1.0

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Controls:
        """Read and check the controls; an unknown value is a ``ValueError`` listing the allowed ones.

        Example
        -------
        >>> Controls.parse({"cmap": "jet"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: cmap: 'jet' is not offered; use one of default, RdBu_r, ...
        """
        sign = _choice(params, "sign", SIGNS)
        clip = _choice(params, "clip", CLIPS)
        cmap = _choice(params, "cmap", COLOUR_MAPS)
        percentile = _fraction(params, "percentile", cls.percentile, 50.0, 100.0)
        opacity = _fraction(params, "opacity", cls.opacity, 0.0, 1.0)
        return cls(sign, clip, percentile, cmap, opacity)


def map_colours(drawn: np.ndarray, controls: Controls) -> np.ndarray:
    """Colour a 2-D (or 1-D) map under ``controls``: RGB values in [0, 1], one more axis of 3.

    Example
    -------
    >>> map_colours(np.array([-1.0, 0.0, 1.0]), Controls(percentile=100)).round(2).tolist()[1]
    [1.0, 1.0, 1.0]
    """
    values = np.abs(drawn) if controls.sign == "absolute" else drawn
    scale = "absolute" if controls.sign == "absolute" else "all"
    if controls.clip == "symmetric":
        low, high = colour_range(scale, colour_limit(values, controls.percentile))
    else:
        low, high = np.percentile(values, [100.0 - controls.percentile, controls.percentile]).tolist()
        high = high if high > low else low + 1.0  # a constant map draws in the low colour
    cmap = colour_map(scale, None if controls.cmap == "default" else controls.cmap)
    return cmap((np.clip(values, low, high) - low) / (high - low))[..., :3]


def map_png(values: np.ndarray, controls: Controls, image: np.ndarray | None = None) -> bytes:
    """A map's tile: ``values`` ``(C, H, W)``, ``(H, W)`` or ``(L,)``, over ``image`` (same size) if given.

    Example
    -------
    >>> png = map_png(np.ones((1, 2, 2), np.float32), Controls(opacity=0.5), image=np.zeros((1, 2, 2)))
    >>> Image.open(io.BytesIO(png)).getpixel((0, 0))  # half saliencelab red over black
    (89, 12, 22)
    """
    drawn = planar(values)
    colours = map_colours(drawn, controls)
    if image is not None and controls.opacity < 1.0:
        grey = image_pixels(image).mean(axis=2, keepdims=True)
        if grey.shape[:2] != colours.shape[:2]:
            raise ValueError(f"the map ({drawn.shape}) and its input ({grey.shape[:2]}) differ in size: no overlay")
        colours = (1.0 - controls.opacity) * grey + controls.opacity * colours
    return png_bytes(colours)


def input_png(image: np.ndarray) -> bytes:
    """An input image's tile (``(C, H, W)`` or ``(H, W)``), shown by :func:`saliencelab.viz.read.display_image`.

    Example
    -------
    >>> Image.open(io.BytesIO(input_png(np.zeros((3, 4, 5))))).size
    (5, 4)
    """
    return png_bytes(image_pixels(image))


def token_colours(values: np.ndarray, controls: Controls) -> list[str]:
    """One ``#rrggbb`` colour per token of a token map ``(L,)``.

    Example
    -------
    >>> token_colours(np.array([0.0, 2.0]), Controls())
    ['#ffffff', '#b2182b']
    """
    rgb = np.round(map_colours(np.asarray(values, dtype=np.float64), controls) * 255).astype(int)
    return ["#" + "".join(f"{c:02x}" for c in colour) for colour in rgb]


def planar(values: np.ndarray) -> np.ndarray:
    """The drawn 2-D map: channels of a ``(C, H, W)`` map summed, a ``(L,)`` vector as one row.

    Example
    -------
    >>> planar(np.ones((3, 2, 2))).tolist()
    [[3.0, 3.0], [3.0, 3.0]]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        return values.sum(axis=0)
    if values.ndim == 1:
        return values[None, :]
    if values.ndim != 2:
        raise ValueError(f"a map to draw is (C, H, W), (H, W) or (L,); got shape {values.shape}")
    return values


def image_pixels(image: np.ndarray) -> np.ndarray:
    """An input as ``(H, W, 3)`` in [0, 1]; more than 4 channels are averaged into grey.

    Example
    -------
    >>> image_pixels(np.ones((6, 2, 2))).shape
    (2, 2, 3)
    """
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy())
    if pixels.ndim == 3 and pixels.shape[0] not in (1, 3, 4):
        pixels = pixels.mean(dim=0, keepdim=True)
    return display_image(pixels)


def png_bytes(colours: np.ndarray) -> bytes:
    """Encode ``(H, W, 3)`` colours in [0, 1] as PNG.

    Example
    -------
    >>> len(png_bytes(np.zeros((2, 2, 3)))) > 0
    True
    """
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(colours, 0.0, 1.0) * 255).astype(np.uint8)).save(buffer, format="png")
    return buffer.getvalue()


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name) or allowed[0]
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not offered; use one of {', '.join(allowed)}")
    return value


def _fraction(params: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    text = params.get(name)
    if text in (None, ""):
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside [{low:g}, {high:g}]")
    return value
