"""Write an :class:`Analysis` (or several) as a self-contained HTML report.

The report is ``index.html`` with its figures as PNG files beside it in
``images/``: no CDN, no script, nothing fetched when it is opened. The page is
rendered from a Jinja2 template (``templates/report.html.j2``, autoescaped).
See :func:`write_report` for an example.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from saliencelab import viz
from saliencelab.report.analysis import Analysis
from saliencelab.report.checks import CHECKS, Verdict, verdicts

MARKS = {
    "model randomisation": "MR",
    "data randomisation": "DR",
    "deletion": "Del",
    "insertion": "Ins",
    "completeness": "C",
}
"""Abbreviations of the checks under each map in the grid."""
GRID_COLUMNS = 8
"""The most method columns side by side in a grid image before it wraps."""


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
    >>> "Model randomisation" in page.read_text()
    True
    >>> page.name, sorted(p.name for p in (page.parent / "images").iterdir())[:2]
    ('index.html', ['digits-deletion.png', 'digits-grid.png'])
    """
    if not analyses:
        raise ValueError("write_report needs at least one Analysis (from saliencelab.report.analyse)")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    sections = [_section(analysis, out) for analysis in analyses]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("saliencelab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("report.html.j2").render(
        title=title, sections=sections, marks=MARKS, thresholds=analyses[0].thresholds
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _section(analysis: Analysis, out: Path) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "-", analysis.title.lower()).strip("-") or "section"
    found = {name: verdicts(analysis, name) for name in analysis.methods}
    images = {"grid": _grid(analysis, found, out / "images" / f"{slug}-grid.png")}
    if any(result.randomization is not None for result in analysis.methods.values()):
        images["randomization"] = _randomization(analysis, out / "images" / f"{slug}-randomization.png")
    if analysis.random_deletion is not None:
        images["deletion"] = _faithfulness(analysis, out / "images" / f"{slug}-deletion.png")
    return {
        "title": analysis.title,
        "anchor": slug,
        "description": analysis.description,
        "shuffled_accuracy": analysis.shuffled_accuracy,
        "inputs": len(analysis.inputs),
        "shape": "×".join(str(d) for d in analysis.inputs.shape[1:]),
        "images": {key: f"images/{path.name}" for key, path in images.items()},
        "rows": [_row(analysis, name, found[name]) for name in analysis.methods],
        "checks": [check for check in CHECKS if any(check in f for f in found.values())],
        "axioms": _axioms(analysis.axioms),
        "random": _random_row(analysis),
    }


def _row(analysis: Analysis, name: str, found: dict[str, Verdict]) -> dict[str, Any]:
    result = analysis.methods[name]
    randomised = result.randomization
    return {
        "method": name,
        "seconds": f"{result.seconds:.3f}",
        "verdicts": found,
        "mean_similarity": None
        if randomised is None or not len(randomised)
        else f"{randomised['similarity'].mean():.2f}",
        "data_similarity": None if result.data_randomization is None else f"{result.data_randomization.mean():.2f}",
        "deletion": None if result.deletion is None else f"{result.deletion.auc.mean():.3f}",
        "insertion": None if result.insertion is None else f"{result.insertion.auc.mean():.3f}",
        "delta": None if result.delta is None else f"{result.delta:.1e}",
    }


def _random_row(analysis: Analysis) -> dict[str, str] | None:
    if analysis.random_deletion is None:
        return None
    return {
        "deletion": f"{analysis.random_deletion.auc.mean():.3f}",
        "insertion": f"{analysis.random_insertion.auc.mean():.3f}",
    }


def _axioms(table: pd.DataFrame | None) -> dict[str, Any] | None:
    if table is None:
        return None
    cells = {prop: [None if pd.isna(value) else bool(value) for value in table.loc[prop]] for prop in table.index}
    return {"methods": [str(c) for c in table.columns], "cells": cells}


SYMBOLS = {"pass": "✓", "fail": "✗", "inconclusive": "?"}
"""How each outcome is marked under a map."""


def _grid(analysis: Analysis, found: dict[str, dict[str, Verdict]], path: Path) -> Path:
    labels = {
        name: " ".join(f"{SYMBOLS[v.outcome]}{MARKS[check]}" for check, v in found[name].items())
        for name in analysis.methods
    }
    viz.grid(
        analysis.inputs,
        {name: result.maps for name, result in analysis.methods.items()},
        path,
        row_labels=analysis.row_labels,
        labels_per_cell=labels,
        max_columns=GRID_COLUMNS,
    )
    return path


def _randomization(analysis: Analysis, path: Path) -> Path:
    columns = ("method", "layer", "per_sample")
    rows = [  # plain columns: the frames' attrs hold tensors, which pandas cannot compare when it concatenates
        pd.DataFrame({column: result.randomization[column].to_list() for column in columns})
        for result in analysis.methods.values()
        if result.randomization is not None
    ]
    long = pd.concat(rows, ignore_index=True).explode("per_sample")
    long = long.assign(similarity=long["per_sample"].astype(float))[["method", "layer", "similarity"]]
    figure = Figure(figsize=(9, 5))
    ax = figure.add_subplot()
    viz.randomization_curve(long, ax=ax, title=f"{analysis.title}: cascading model randomisation", band=None)
    ax.axhline(analysis.thresholds.decorrelated, color="grey", linestyle=":", linewidth=1)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _faithfulness(analysis: Analysis, path: Path) -> Path:
    figure = Figure(figsize=(11, 4.5))
    for index, (kind, control) in enumerate(
        (("deletion", analysis.random_deletion), ("insertion", analysis.random_insertion))
    ):
        ax = figure.add_subplot(1, 2, index + 1)
        ys = {
            name: getattr(result, kind).curve
            for name, result in analysis.methods.items()
            if getattr(result, kind) is not None
        }
        ys["random ranking"] = control.curve
        viz.curves(
            control.fractions,
            ys,
            ax=ax,
            xlabel="fraction of pixels",
            ylabel="target probability",
            title=kind,
            band=None,
        )
        ax.lines[-1].set(color="black", linestyle="--", linewidth=2)
        ax.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
