"""Write an :class:`Analysis` (or several) as a self-contained HTML report.

The report is ``index.html`` with its figures as PNG files beside it in
``images/``: no CDN, no script, nothing fetched when it is opened. Every map is
its own small PNG laid out by the page (methods as rows, inputs as columns),
with the method's checks as badges in HTML text beside it; a click on a map
opens it large, with its colour bar, in a CSS ``:target`` overlay. A map of a
table row ``(N, D)`` is a bar chart in HTML instead (its features have no
neighbours to draw as an image): the :data:`TOP_FEATURES` features with the
largest ``|value|``, named by the analysis' ``feature_names``; its large view
lists every feature with its value. The page is
rendered from a Jinja2 template (``templates/report.html.j2``, autoescaped) and
reads on a 1280-pixel-wide screen: wide tables scroll inside their own box.
See :func:`write_report` for an example.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pandas as pd
import torch

from saliencelab.report.analysis import Analysis, MethodResult
from saliencelab.report.checks import CHECKS, Verdict, verdicts
from saliencelab.report.images import (
    PERCENTILE,
    centred,
    faithfulness_figure,
    input_tiles,
    map_tiles,
    randomization_figure,
    unit,
)
from saliencelab.viz.tiles import scale_colours
from saliencelab.viz.tokens import token_heatmap_html

MARKS = {
    "model randomisation": "MR",
    "data randomisation": "DR",
    "deletion": "Del",
    "insertion": "Ins",
    "completeness": "C",
}
"""Abbreviations of the checks on the badges."""
SYMBOLS = {"pass": "✓", "fail": "✗", "inconclusive": "?"}
"""How each outcome is marked on a badge."""
WORDS = {"pass": "passes", "fail": "fails", "inconclusive": "inconclusive"}
"""Each outcome in words."""
MAPS_WIDTH = 880
"""CSS pixels for the map columns beside the method column on a 1280-pixel screen."""
THUMBNAIL = (96, 176)
"""The smallest and largest side of a map in the table, in CSS pixels: fewer inputs, larger maps."""
BARS_THUMBNAIL = 250
"""The width of a bar chart (a table row's map) in the table, in CSS pixels: room for the feature names (the table
scrolls sideways, the method column staying in view, when the inputs need more room)."""
TOP_FEATURES = 8
"""Features in a table row's bar chart in the table; its large view lists all of them."""


def write_report(analyses: Sequence[Analysis], out: str | Path, *, title: str = "saliencelab report") -> Path:
    """Write ``index.html`` and its images to ``out`` and return the page's path.

    Parameters
    ----------
    analyses:
        One :class:`Analysis` per model and data set, shown in this order.
    out:
        The folder (created if needed); existing report files are overwritten.
    title:
        The page title.

    Example
    -------
    >>> import tempfile, saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:2], methods={"gradient": {}}, title="digits", progress=False)
    >>> page = write_report([result], tempfile.mkdtemp())
    >>> "model randomisation" in page.read_text()
    True
    >>> page.name, sorted(p.name for p in (page.parent / "images").iterdir())[:3]
    ('index.html', ['digits-faithfulness.png', 'digits-gradient-0.png', 'digits-gradient-1.png'])
    """
    if not analyses:
        raise ValueError("write_report needs at least one Analysis (from saliencelab.report.analyse)")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    slugs = _slugs([analysis.title for analysis in analyses])
    sections = [_section(analysis, slug, out / "images") for analysis, slug in zip(analyses, slugs, strict=True)]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("saliencelab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("report.html.j2").render(
        title=title, sections=sections, marks=MARKS, colours=scale_colours(), percentile=PERCENTILE
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _slugs(titles: list[str]) -> list[str]:
    """One anchor and file prefix per title, unique across the page.

    Example
    -------
    >>> _slugs(["Digits", "digits", "Faces <1>", ""])
    ['digits', 'digits-2', 'faces-1', 'section']
    """
    slugs: list[str] = []
    for title in titles:
        base = slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        number = 2
        while slug in slugs:
            slug, number = f"{base}-{number}", number + 1
        slugs.append(slug)
    return slugs


def _section(analysis: Analysis, slug: str, folder: Path) -> dict[str, Any]:
    found = {name: verdicts(analysis, name) for name in analysis.methods}
    text = analysis.tokens is not None
    tabular = analysis.inputs.ndim == 2 and not text
    if text:
        pictures = _heatmaps(analysis)
    else:
        pictures = _bars(analysis) if tabular else _tiles(analysis, folder, slug)
    drawn = text or tabular  # in HTML: no image of the inputs
    sources = [None] * len(analysis.inputs) if drawn else [_source(p) for p in input_tiles(analysis, folder, slug)]
    plots = {
        "randomization": randomization_figure(analysis, folder / f"{slug}-randomization.png"),
        "faithfulness": faithfulness_figure(analysis, folder / f"{slug}-faithfulness.png"),
    }
    return {
        "title": analysis.title,
        "anchor": slug,
        "description": analysis.description,
        "shuffled_accuracy": analysis.shuffled_accuracy,
        "count": len(analysis.inputs),
        "tabular": tabular,
        "text": text,
        "score_name": analysis.score_name,
        "top": min(TOP_FEATURES, analysis.inputs.shape[-1]),
        "features": analysis.inputs.shape[-1],
        "thumbnail": BARS_THUMBNAIL if drawn else _thumbnail(len(analysis.inputs)),
        "shape": "×".join(str(d) for d in analysis.inputs.shape[1:]),
        "unit": unit(analysis),
        "inputs": [{"src": source, "label": label} for source, label in zip(sources, analysis.row_labels, strict=True)],
        "methods": [_method(analysis, slug, name, found[name], pictures[name]) for name in analysis.methods],
        "checks": [check for check in CHECKS if any(check in f for f in found.values())],
        "legend": _legend(analysis),
        "thresholds": analysis.thresholds,
        "plots": {key: _source(path) for key, path in plots.items() if path is not None},
        "random": _random_row(analysis),
        "axioms": _axioms(analysis.axioms),
    }


def _thumbnail(inputs: int) -> int:
    """The side of each map in the table: as large as fits beside the method column, within :data:`THUMBNAIL`.

    Example
    -------
    >>> _thumbnail(3), _thumbnail(6), _thumbnail(31)
    (176, 136, 96)
    """
    smallest, largest = THUMBNAIL
    return max(smallest, min(largest, MAPS_WIDTH // inputs - 10))


def _tiles(analysis: Analysis, folder: Path, slug: str) -> dict[str, list[dict[str, str]]]:
    """Each map as a heatmap tile, shown large as it is, with the values at its colour scale's ends and centre."""
    return {
        name: [
            {
                "src": _source(tile.path),
                "large": _source(tile.path),
                "low": f"{tile.low:.3g}",
                "centre": f"{tile.centre:.3g}",
                "high": f"{tile.high:.3g}",
            }
            for tile in tiles
        ]
        for name, tiles in map_tiles(analysis, folder, slug).items()
    }


def _bars(analysis: Analysis) -> dict[str, list[dict[str, Any]]]:
    """Each map of a table row as its features' bars (:func:`_feature_bars`), named by ``analysis.feature_names``."""
    count = analysis.inputs.shape[1]
    names = analysis.feature_names or [f"feature {index}" for index in range(count)]
    return {
        name: [{"bars": _feature_bars(values, names)} for values in result.maps]
        for name, result in analysis.methods.items()
    }


def _heatmaps(analysis: Analysis) -> dict[str, list[dict[str, markupsafe.Markup]]]:
    """Each map of a text as its tokens' heatmap in HTML (:func:`saliencelab.viz.tokens.token_heatmap_html`).

    A text's map holds its tokens' scores first (then padding); the heatmap
    escapes every token, so the page takes it as it is.

    Example
    -------
    >>> import torch
    >>> from saliencelab.report.analysis import MethodResult
    >>> tokens = [["[CLS]", "<i>", "[SEP]"]]
    >>> analysis = Analysis("t", "", torch.tensor([[1, 7, 2, 0]]), torch.tensor([-1]), ["a"], tokens=tokens)
    >>> analysis.methods["m"] = MethodResult(torch.tensor([[0.0, 1.0, 0.0, 0.0]]), 0.1, torch.tensor([False]))
    >>> "&lt;i&gt;" in _heatmaps(analysis)["m"][0]["heatmap"]
    True
    """
    tokens, special = analysis.tokens or [], analysis.special_tokens
    return {
        name: [
            {"heatmap": markupsafe.Markup(token_heatmap_html(text, values[: len(text)], special=special))}
            for text, values in zip(tokens, result.maps.cpu(), strict=True)
        ]
        for name, result in analysis.methods.items()
    }


def _feature_bars(values: torch.Tensor, names: Sequence[str]) -> list[dict[str, str]]:
    """One row's features, largest ``|value|`` first (ties by index): name, value and the bar's side and length.

    The length is a percentage of the track, whose middle is zero: the largest ``|value|`` reaches its end.

    Example
    -------
    >>> bars = _feature_bars(torch.tensor([0.5, -2.0, 0.0]), ["a", "b", "c"])
    >>> [(bar["name"], bar["value"], bar["sign"], bar["length"]) for bar in bars]
    [('b', '-2', 'negative', '50.0%'), ('a', '0.5', 'positive', '12.5%'), ('c', '0', 'positive', '0.0%')]
    """
    row = values.detach().double().cpu()
    largest = float(row.abs().max())
    return [
        {
            "name": names[index],
            "value": f"{float(row[index]):.3g}",
            "sign": "negative" if row[index] < 0 else "positive",
            "length": f"{50 * abs(float(row[index])) / largest if largest > 0 else 0.0:.1f}%",
        }
        for index in torch.argsort(-row.abs(), stable=True).tolist()
    ]


def _method(
    analysis: Analysis, slug: str, name: str, found: dict[str, Verdict], pictures: list[dict[str, str]]
) -> dict[str, Any]:
    result = analysis.methods[name]
    anchor = f"{slug}--{name}"
    flags = result.degenerate.tolist()
    return {
        "name": name,
        "anchor": anchor,
        "centred": centred(name),
        "degenerate": any(flags),
        "badges": {check: _badge(verdict) for check, verdict in found.items()},
        "maps": [
            {**picture, "id": f"{anchor}--{index}", "label": label, "constant": flag}
            for index, (picture, label, flag) in enumerate(zip(pictures, analysis.row_labels, flags, strict=True))
        ],
        "numbers": _numbers(result),
    }


def _badge(verdict: Verdict) -> dict[str, str]:
    """A check's outcome for the page: mark, symbol, interval and a tooltip with the test and the reason."""
    better = "lower" if verdict.better == "below" else "higher"
    tooltip = (
        f"{verdict.check}: {WORDS[verdict.outcome]}. {verdict.interval} ({better} is better; threshold "
        f"{verdict.threshold:g}). {verdict.reason[0].upper()}{verdict.reason[1:]}. Test: {verdict.test}"
    )
    if verdict.p_value is not None:
        tooltip += f"; one-sided p = {verdict.p_value:.2g}"
    return {
        "outcome": verdict.outcome,
        "symbol": SYMBOLS[verdict.outcome],
        "mark": MARKS[verdict.check],
        "check": verdict.check,
        "interval": verdict.interval,
        "tooltip": tooltip,
        "degenerate": verdict.reason.startswith("degenerate map"),
    }


def _numbers(result: MethodResult) -> dict[str, str | None]:
    randomised = result.randomization
    return {
        "seconds": f"{result.seconds:.3f}",
        "mean_similarity": None
        if randomised is None or not len(randomised)
        else f"{randomised['similarity'].mean():.2f}",
        "data_similarity": None if result.data_randomization is None else f"{result.data_randomization.mean():.2f}",
        "deletion": None if result.deletion is None else f"{result.deletion.auc.mean():.3f}",
        "insertion": None if result.insertion is None else f"{result.insertion.auc.mean():.3f}",
        "delta": None if result.delta is None else f"{result.delta:.1e}",
    }


def _legend(analysis: Analysis) -> list[dict[str, str]]:
    """One line per check: what is measured, which side is better, when it passes and fails."""
    limits = analysis.thresholds
    level = f"{limits.confidence:.0%} Student-t interval of the mean over the {len(analysis.inputs)} inputs"
    similarity = {
        "better": "lower",
        "passes": f"the interval lies below {limits.decorrelated:g}",
        "fails": f"the interval lies above {limits.decorrelated:g}",
        "test": level,
    }
    gain = {
        "better": "higher",
        "passes": f"the interval lies above the margin {limits.margin:g}",
        "fails": f"the interval lies below {limits.margin:g}",
        "test": f"{level} (paired t-test against the margin)",
    }
    rankings = f"{analysis.rankings} seeded random {unit(analysis)} rankings of the same input"
    lines = {
        "model randomisation": {
            "number": "Spearman rank correlation of the map's absolute values with those of the model with its "
            "layers re-initialised (cascading from the output), averaged over the steps",
            **similarity,
        },
        "data randomisation": {
            "number": "the same, with the map of the same network trained on shuffled labels",
            **similarity,
        },
        "deletion": {"number": f"how much lower the deletion AUC is than the mean AUC of {rankings}", **gain},
        "insertion": {"number": f"how much higher the insertion AUC is than the mean AUC of {rankings}", **gain},
        "completeness": {
            "number": "largest |sum of the map − (f(x) − f(baseline))|, as a fraction of the largest |score|",
            "better": "lower",
            "passes": f"it is at most {limits.complete:g}",
            "fails": f"it is above {limits.complete:g}",
            "test": "exact (no interval)",
        },
    }
    return [{"check": check, "mark": MARKS[check], **lines[check]} for check in CHECKS]


def _random_row(analysis: Analysis) -> dict[str, str] | None:
    if analysis.random_deletion is None:
        return None
    return {
        "deletion": f"{analysis.random_deletion.auc.mean():.3f}",
        "insertion": f"{analysis.random_insertion.auc.mean():.3f}",
    }


def _axioms(table: pd.DataFrame | None) -> dict[str, Any] | None:
    """The property × method table turned round: one row per method, one column per property."""
    if table is None:
        return None
    rows = [
        {"method": str(method), "cells": [None if pd.isna(value) else bool(value) for value in table[method]]}
        for method in table.columns
    ]
    return {"properties": [str(prop).replace("_", " ") for prop in table.index], "rows": rows}


def _source(path: Path) -> str:
    return f"images/{path.name}"
