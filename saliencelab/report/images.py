"""The report's PNGs: one tile per input and per map, and the checks' curves as small multiples.

Maps are saved one per file (:mod:`saliencelab.viz.tiles`), each on its own
colour scale, so the page lays them out in HTML, with its own text beside them.
Maps of table rows ``(N, D)`` and of texts have no tiles: the page draws them in HTML (bars, token heatmaps).
A method whose maps are expected scores (``centred_display``, e.g. RISE) is
shown relative to each map's mean. The randomisation and deletion/insertion
curves are drawn one small panel per method
(:func:`saliencelab.viz.multiples.small_multiples`) with the threshold and the
random-ranking control in grey in every panel.

Example
-------
>>> import tempfile, saliencelab as sl
>>> from saliencelab.report.analysis import analyse
>>> model = sl.zoo.load("digits_cnn")
>>> _, _, x, _ = sl.zoo.dataset("digits")
>>> result = analyse(model, x[:2], methods={"rise": {"samples": 50}}, title="digits", progress=False)
>>> tiles = map_tiles(result, tempfile.mkdtemp(), "digits")
>>> tile = tiles["rise"][0]
>>> tile.low < tile.centre < tile.high, tile.path.name  # RISE is shown relative to its mean
(True, 'digits-rise-0.png')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from saliencelab import viz
from saliencelab.core import registry
from saliencelab.report.analysis import Analysis
from saliencelab.viz.curves import ORIGINAL
from saliencelab.viz.multiples import small_multiples
from saliencelab.viz.tiles import Tile, save_image, save_map

GREY = "0.45"
"""The colour of what every panel shares: the threshold and the random-ranking control."""
PERCENTILE = 99.5
"""Each map's colours saturate at this percentile of its distance from white (zero, or its mean)."""
PANEL_COLUMNS = 5
"""Panels per row of the curve figures: five 230-pixel panels fit a 1180-pixel page."""


def centred(method: str) -> bool:
    """Whether ``method``'s maps are shown relative to their mean (its ``centred_display``; unknown names: no).

    Example
    -------
    >>> centred("rise"), centred("gradient")
    (True, False)
    """
    return method in registry.available_methods() and registry.get(method).centred_display


def input_tiles(analysis: Analysis, folder: str | Path, slug: str) -> list[Path]:
    """Save each input as ``{slug}-input-{i}.png`` in ``folder`` and return the paths.

    Example
    -------
    >>> import tempfile, torch
    >>> from saliencelab.report.analysis import Analysis
    >>> analysis = Analysis("t", "", torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), ["a", "b"])
    >>> [path.name for path in input_tiles(analysis, tempfile.mkdtemp(), "t")]
    ['t-input-0.png', 't-input-1.png']
    """
    return [
        save_image(image, Path(folder) / f"{slug}-input-{index}.png") for index, image in enumerate(analysis.inputs)
    ]


def map_tiles(analysis: Analysis, folder: str | Path, slug: str) -> dict[str, list[Tile]]:
    """Save every map as ``{slug}-{method}-{i}.png`` in ``folder``, each on its own scale; the tiles by method.

    See the module's example.
    """
    return {
        name: [
            save_map(values, Path(folder) / f"{slug}-{name}-{index}.png", centred=centred(name), percentile=PERCENTILE)
            for index, values in enumerate(result.maps)
        ]
        for name, result in analysis.methods.items()
    }


def randomization_figure(analysis: Analysis, path: str | Path) -> Path | None:
    """Small multiples of each method's model-randomisation curve, with the threshold; ``None`` when none ran.

    Example
    -------
    >>> import tempfile, saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:2], methods={"gradient": {}}, title="d", faithfulness=False, progress=False)
    >>> randomization_figure(result, tempfile.mkdtemp() + "/r.png").name
    'r.png'
    """
    ran = {name: result.randomization for name, result in analysis.methods.items() if _has_rows(result.randomization)}
    if not ran:
        return None
    threshold = analysis.thresholds.decorrelated
    layers = [ORIGINAL, *next(iter(ran.values()))["layer"].to_list()]

    def draw(ax, name: str) -> None:
        steps = np.array(ran[name]["per_sample"].to_list(), dtype=float).T  # (N, steps)
        defined = steps[np.isfinite(steps).all(axis=1)]  # a constant map on a randomised model has no similarity
        if len(defined):
            ys = {"mean over inputs (band: ±1 sd)": np.hstack([np.ones((len(defined), 1)), defined])}
            viz.curves(np.arange(len(layers)), ys, ax=ax, band="std", legend=False)
        else:
            ax.text(0.5, 0.5, "undefined:\nconstant maps", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(threshold, color=GREY, linestyle=":", linewidth=1.5, label=f"threshold {threshold:g}")
        ax.set_xticks(np.arange(len(layers)), layers, rotation=45, ha="right")

    small_multiples(
        list(ran),
        draw,
        path,
        columns=PANEL_COLUMNS,
        panel_inches=(2.3, 2.2),
        xlabel="layers re-initialised, from the output down (cascading)",
        ylabel="Spearman of |map| with the trained model's",
    )
    return Path(path)


def faithfulness_figure(analysis: Analysis, path: str | Path) -> Path | None:
    """Small multiples of each method's deletion and insertion curves over the random rankings' (grey).

    ``None`` when the faithfulness checks did not run or there is no method.

    Example
    -------
    >>> import tempfile, saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:2], methods={"gradient": {}}, title="d", randomization=False, progress=False)
    >>> faithfulness_figure(result, tempfile.mkdtemp() + "/f.png").name
    'f.png'
    """
    ran = [name for name, result in analysis.methods.items() if result.deletion is not None]
    if analysis.random_deletion is None or not ran:
        return None
    control = f"mean of {analysis.rankings} random rankings"
    shared = {
        f"deletion, {control}": (analysis.random_deletion.curve, {"color": GREY, "linestyle": "--", "marker": ""}),
        f"insertion, {control}": (analysis.random_insertion.curve, {"color": GREY, "linestyle": ":", "marker": ""}),
    }

    def draw(ax, name: str) -> None:
        result = analysis.methods[name]
        ys = {"deletion": result.deletion.curve, "insertion": result.insertion.curve}
        ys |= {label: values for label, (values, _) in shared.items()}
        styles = {label: style for label, (_, style) in shared.items()}
        viz.curves(analysis.random_deletion.fractions, ys, ax=ax, band=None, styles=styles, legend=False)

    small_multiples(
        ran,
        draw,
        path,
        columns=PANEL_COLUMNS,
        xlabel=f"fraction of {unit(analysis)}s deleted (insertion: inserted), most attributed first",
        ylabel=analysis.score_name,
    )
    return Path(path)


def unit(analysis: Analysis) -> str:
    """What a map ranks: ``"token"`` of texts, ``"feature"`` of table rows, ``"pixel"`` of images.

    Example
    -------
    >>> import torch
    >>> unit(Analysis("t", "", torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), ["a", "b"]))
    'feature'
    """
    if analysis.tokens is not None:
        return "token"
    return "feature" if analysis.inputs.ndim == 2 else "pixel"


def _has_rows(frame: pd.DataFrame | None) -> bool:
    return frame is not None and len(frame) > 0
