"""A page per data-set run: what its maps say together (SpRAy, :mod:`saliencelab.runs.spray`).

Per analysed class: the mean map, the smallest eigenvalues of the maps'
similarity graph with the eigengap that set the number of clusters, each
cluster's size and prototypes (input and map thumbnails), and the candidate
shortcuts, the samples whose maps sit farthest from their class's. Written as
``index.html`` with PNGs in ``images/``, self-contained like the report of
:func:`saliencelab.report.write_report` (same style sheet, no script). It reads
only the run's public interface: ``run.analysis``, ``run.maps``,
``run.inputs``, ``run.classes`` and ``run.path``.

Example
-------
>>> import tempfile, numpy as np, pandas as pd
>>> from saliencelab.runs.spray import analyse_run
>>> class Run:  # what sl.load_run returns, as far as the page needs it
...     path, methods, classes = tempfile.mkdtemp() + "/run.zarr", ["gradient"], None
...     inputs = {"input": np.random.default_rng(0).random((24, 1, 8, 8))}
...     maps = {"gradient": {"input": np.random.default_rng(1).normal(size=(24, 1, 8, 8))}}
...     table = pd.DataFrame({"index": range(24), "target": [0] * 24})
...     @property
...     def analysis(self):
...         import zarr
...         from saliencelab.runs.spray import read_analysis
...         return read_analysis(zarr.open_group(self.path, mode="r"))
>>> _ = analyse_run(Run(), neighbours=4)
>>> page = write_run_summary(Run(), tempfile.mkdtemp())
>>> page.name, "eigengap" in page.read_text()
('index.html', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from saliencelab.viz.figures import offscreen_figure
from saliencelab.viz.tiles import save_image, save_map, scale_colours

TOP_CANDIDATES = 8
"""Candidate shortcuts shown per class."""
THUMBNAIL = 96
"""The side of a prototype's or candidate's thumbnails, in CSS pixels."""


def write_run_summary(run: Any, out: str | Path, *, top: int = TOP_CANDIDATES, title: str | None = None) -> Path:
    """Write the run's SpRAy summary as ``out/index.html`` (with ``out/images/``) and return the page's path.

    Parameters
    ----------
    run : Run
        A run whose analysis has been computed (``sl.runs.spray.analyse_run(run)``).
    out : str or Path
        The folder (created if needed); earlier summary files are overwritten.
    top : int, default 8
        Candidate shortcuts shown per class, highest outlier score first.
    title : str, optional
        The page title; by default it names the run's store.

    Raises
    ------
    ValueError
        If the run has no analysis (the message says how to compute it).

    See the module's example.
    """
    analysis = run.analysis
    if not analysis:
        raise ValueError(
            f"the run at {run.path} has no analysis; compute it with saliencelab.runs.spray.analyse_run(run) "
            "(saliencelab report --run computes it when it is missing)"
        )
    out = Path(out)
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    sections = [_section(run, c, record, folder, top) for c, record in analysis.items()]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("saliencelab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("run_summary.html.j2").render(
        title=title or f"SpRAy summary of {run.path}",
        sections=sections,
        colours=scale_colours(),
        method=next(iter(analysis.values()))["method"],
        thumbnail=THUMBNAIL,
    )
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def summarise_run(path: str | Path, out: str | Path, *, method: str | None = None, **settings: Any) -> Path:
    """Open the run stored at ``path``, compute its analysis if needed, and write its summary page to ``out``.

    The analysis already in the store is used when there is one and
    ``method`` and ``settings`` ask for nothing else; otherwise
    :func:`saliencelab.runs.spray.analyse_run` computes it (of ``method``'s
    maps, the run's first method by default) and writes it into the store.
    What ``saliencelab report --run`` does.

    Raises
    ------
    MissingFileError
        If there is no run store at ``path``.
    BadOptionError
        If ``method`` is not one of the run's methods.

    Example
    -------
    >>> summarise_run("no-such-run.zarr", "out")
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.MissingFileError: no run store at no-such-run.zarr: give the folder that sl.run wrote
    """
    from saliencelab.io.errors import BadOptionError, MissingFileError

    if not Path(path).is_dir():
        raise MissingFileError(f"no run store at {path}: give the folder that sl.run wrote")
    from saliencelab.runs.api import load_run
    from saliencelab.runs.spray import analyse_run

    run = load_run(str(path))
    if method is not None and method not in run.methods:
        raise BadOptionError(f"method {method!r} is not in the run at {path}; its methods: {', '.join(run.methods)}")
    stored = run.analysis
    if not stored or settings or (method is not None and next(iter(stored.values()))["method"] != method):
        analyse_run(run, method, **settings)
    return write_run_summary(run, out)


def _section(run: Any, c: int, record: dict[str, Any], folder: Path, top: int) -> dict[str, Any]:
    slug = f"class-{c}"
    method = record["method"]
    scores = dict(zip(record["members"].tolist(), record["outlier_score"].tolist(), strict=True))
    order = np.argsort(-record["outlier_score"], kind="stable")
    flagged = [i for i in record["members"][order].tolist() if scores[i] >= record["outlier_threshold"]][:top]
    means = {name: save_map(values, folder / f"{slug}-mean-{name}.png") for name, values in record["mean_map"].items()}
    return {
        "anchor": slug,
        "name": _class_name(run, c),
        "count": len(record["members"]),
        "n_clusters": record["n_clusters"],
        "eigengap": f"{record['eigengap']:.3g}",
        "eigenvalues": _source(_eigenvalue_plot(record, folder / f"{slug}-eigenvalues.png")),
        "means": [{"input": name, "src": _source(tile.path)} for name, tile in means.items()],
        "clusters": [
            {
                "cluster": cluster,
                "size": size,
                "share": f"{size / len(record['members']):.0%}",
                "prototypes": [_sample(run, method, i, scores[i], folder) for i in record["prototypes"][cluster]],
            }
            for cluster, size in record["sizes"].items()
        ],
        "threshold": f"{record['outlier_threshold']:g}",
        "candidates": [_sample(run, method, i, scores[i], folder) for i in flagged],
    }


def _class_name(run: Any, c: int) -> str:
    classes = run.classes
    return f"{c} ({classes[c]})" if classes and 0 <= c < len(classes) else str(c)


def _sample(run: Any, method: str, index: int, score: float, folder: Path) -> dict[str, Any]:
    """Thumbnails of one sample: its first input (if it is an image) and its map of that input."""
    name, maps = next(iter(run.maps[method].items()))
    values = np.asarray(maps[index : index + 1])[0]
    picture = save_map(values, folder / f"{method}-{index}.png")
    image = np.asarray(run.inputs[name][index : index + 1])[0] if name in run.inputs else None
    shown = image is not None and image.ndim == 3 and image.shape[0] in (1, 3, 4)
    return {
        "index": index,
        "score": f"{score:.2f}",
        "map": _source(picture.path),
        "input": _source(save_image(image, folder / f"input-{index}.png")) if shown else None,
    }


def _eigenvalue_plot(record: dict[str, Any], path: Path) -> Path:
    """The smallest eigenvalues of the normalised Laplacian, the eigengap marked between k and k + 1."""
    values = record["eigenvalues"]
    k = record["n_clusters"]
    figure = offscreen_figure(figsize=(3.2, 2.2), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    ax.plot(np.arange(1, len(values) + 1), values, "o-", color="0.3", markersize=4)
    if k < len(values):
        arrow = {"arrowstyle": "<->", "color": "C3"}
        ax.annotate("", xy=(k + 0.5, values[k]), xytext=(k + 0.5, values[k - 1]), arrowprops=arrow)
        ax.text(k + 0.7, (values[k] + values[k - 1]) / 2, f"eigengap: k = {k}", color="C3", va="center", fontsize=8)
    ax.set_xlabel("index", fontsize=8)
    ax.set_ylabel("eigenvalue", fontsize=8)
    ax.tick_params(labelsize=8)
    figure.savefig(path)
    return path


def _source(path: Path) -> str:
    return f"images/{path.name}"
