"""The data behind each page of the explorer, as JSON-ready dicts and PNG bytes.

:class:`ExplorerData` answers what the web app serves (:mod:`saliencelab.explore.app`)
and what the static export writes (:mod:`saliencelab.explore.export`), so both
show the same numbers. Samples, methods, inputs and SpRAy classes are addressed
by index and name and checked against the run; no request names a file.

Example
-------
>>> from saliencelab.explore.synthetic import synthetic_run
>>> data = ExplorerData(synthetic_run(20))
>>> data.run_info()["methods"], data.sample(3)["index"]
(['gradient', 'integrated_gradients', 'occlusion'], 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from saliencelab.explore import tiles
from saliencelab.explore.query import TableQuery, completeness_passes, select
from saliencelab.explore.similarity import MapIndex, map_agreement, metric_agreement
from saliencelab.explore.view import RunView, jsonable

BINS = 30
"""Bars of each metric's histogram on the method page."""


class ExplorerData:
    """Every page's data for one run (see the module's docstring).

    Parameters
    ----------
    run:
        A ``Run`` from ``sl.load_run(path)`` (or any object with its attributes).
    cache_size:
        How many methods' shrunk maps the nearest-sample search keeps (:class:`MapIndex`).

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> ExplorerData(synthetic_run(8)).table({"size": "2"})["pages"]
    4
    """

    def __init__(self, run: Any, cache_size: int = 2) -> None:
        self.view = RunView(run)
        self.index = MapIndex(self.view, cache_size)

    def run_info(self) -> dict[str, Any]:
        """The run's overview: path, size, methods, classes, inputs, metrics, columns, provenance.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> ExplorerData(synthetic_run(8, text=True)).run_info()["inputs"]
        [{'name': 'input', 'kind': 'text', 'shape': [16]}]
        """
        view = self.view
        numeric = [str(c) for c in view.table.columns if c != "tokens" and pd.api.types.is_numeric_dtype(view.table[c])]
        return jsonable({
            "path": view.path, "n": view.n, "methods": view.methods, "classes": view.classes, "text": view.text,
            "inputs": [{"name": name, "kind": kind, "shape": list(view.run.inputs[name].shape[1:])}
                       for name, kind in view.kinds.items()],
            "metrics": view.metrics, "columns": numeric, "analysis": bool(view.run.analysis),
            "colour_maps": list(tiles.COLOUR_MAPS), "provenance": view.run.provenance,
        })  # fmt: skip

    def table(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of the sample grid (:func:`saliencelab.explore.query.select`).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> ExplorerData(synthetic_run(8)).table({"sort": "score", "order": "desc"})["total"]
        8
        """
        return select(self.view, TableQuery.parse(params, self.view))

    def sample(self, index: int) -> dict[str, Any]:
        """One sample: its table row, class names, inputs, and each method's checks with their numbers.

        A check's verdict is ``pass``/``fail`` for completeness (see
        :func:`saliencelab.explore.query.completeness_passes`) and for
        degenerate maps (``fail`` when degenerate); other metrics carry numbers only.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> checks = ExplorerData(synthetic_run(8)).sample(0)["methods"][0]["checks"]
        >>> [c["metric"] for c in checks][:2], checks[0]["verdict"]
        (['completeness_error', 'degenerate'], 'pass')
        """
        view = self.view
        row = view.table.iloc[view.check_index(index)]
        methods = []
        for method in view.methods:
            checks = []
            for metric in view.metrics:
                column = f"{method}.{metric}"
                if column not in view.table.columns:
                    continue
                checks.append({"metric": metric, "value": row[column], "verdict": self._verdict(method, metric, index)})
            methods.append({"name": method, "checks": checks})
        return jsonable({
            "index": index, "row": {k: v for k, v in row.items() if k != "tokens"},
            "label_name": view.class_name(row["label"]), "prediction_name": view.class_name(row["prediction"]),
            "target_name": view.class_name(row["target"]), "tokens": view.tokens(index),
            "inputs": [{"name": name, "kind": kind} for name, kind in view.kinds.items()], "methods": methods,
        })  # fmt: skip

    def neighbours(self, index: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """The samples whose maps (of ``method`` and ``input``) are most like sample ``index``'s.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> len(ExplorerData(synthetic_run(8)).neighbours(0, {"method": "gradient", "count": "3"})["neighbours"])
        3
        """
        method, name = self._method_input(params)
        count = int(params.get("count") or 8)
        found = self.index.nearest(index, method, name, count)
        for neighbour in found:
            row = self.view.table.iloc[neighbour["index"]]
            neighbour["label_name"] = self.view.class_name(row["label"])
        return jsonable({"index": index, "method": method, "input": name, "neighbours": found})

    def tokens(self, index: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """A text sample's tokens with one method's value and colour per token, under the controls.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> found = ExplorerData(synthetic_run(4, text=True)).tokens(0, {"method": "gradient"})
        >>> len(found["tokens"]) == len(found["values"]) == len(found["colours"])
        True
        """
        method, name = self._method_input(params)
        words = self.view.tokens(index)
        values = self.view.token_values(method, name, index)
        colours = tiles.token_colours(values, tiles.Controls.parse(params)) if len(words) else []
        return jsonable({"index": index, "method": method, "tokens": words, "values": values, "colours": colours})

    def distributions(self) -> dict[str, Any]:
        """Each metric's histogram per method on shared bins, with count, missing, mean and median.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> found = ExplorerData(synthetic_run(8, methods=("gradient",))).distributions()["metrics"][2]
        >>> found["metric"], sum(found["methods"][0]["counts"])
        ('deletion_auc', 8)
        """
        found = []
        for metric in self.view.metrics:
            columns = {m: f"{m}.{metric}" for m in self.view.methods if f"{m}.{metric}" in self.view.table.columns}
            values = {m: pd.to_numeric(self.view.table[c], errors="coerce").astype(float).to_numpy()
                      for m, c in columns.items()}  # fmt: skip
            finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
            edges = np.histogram_bin_edges(finite if len(finite) else [0.0, 1.0], bins=BINS)
            methods = []
            for method, column in values.items():
                kept = column[np.isfinite(column)]
                methods.append({
                    "method": method, "counts": np.histogram(kept, bins=edges)[0], "count": len(kept),
                    "missing": int(len(column) - len(kept)), "mean": kept.mean() if len(kept) else None,
                    "median": np.median(kept) if len(kept) else None,
                })  # fmt: skip
            found.append({"metric": metric, "edges": edges, "methods": methods})
        return jsonable({"metrics": found})

    def agreement(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Rank agreement between methods: per metric across samples, and between maps of ``input``.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> sorted(ExplorerData(synthetic_run(8)).agreement({}))
        ['maps', 'metrics']
        """
        name = self.view.check_input(params.get("input") or next(iter(self.view.kinds)))
        return {"metrics": metric_agreement(self.view), "maps": map_agreement(self.view, name)}

    def spray(self) -> dict[str, Any]:
        """The classes with a SpRAy analysis: members, clusters, eigengap and method of each.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> ExplorerData(synthetic_run(30)).spray()["classes"][0]["n_clusters"]
        2
        """
        found = []
        for key, entry in (self.view.run.analysis or {}).items():
            found.append({
                "key": str(key), "name": self.view.class_name(key) if _is_int(key) else str(key),
                "members": len(entry["members"]), "n_clusters": _attrs(entry).get("n_clusters"),
                "eigengap": _attrs(entry).get("eigengap"), "method": _attrs(entry).get("method"),
                "sizes": _attrs(entry).get("sizes"),
            })  # fmt: skip
        return jsonable({"classes": found})

    def spray_class(self, key: str) -> dict[str, Any]:
        """One class's SpRAy analysis: the embedded members with cluster and outlier score, clusters, eigenvalues.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> found = ExplorerData(synthetic_run(30)).spray_class("0")
        >>> len(found["points"]) == sum(c["size"] for c in found["clusters"])
        True
        """
        entry, name = self._spray_entry(key)
        attrs = _attrs(entry)
        members = np.asarray(entry["members"]).astype(int)
        embedding = np.asarray(entry["embedding"], dtype=float)
        cluster = np.asarray(entry["cluster"]).astype(int)
        outlier = np.asarray(entry.get("outlier_score", np.zeros(len(members))), dtype=float)
        prototypes = {str(k): [int(i) for i in v] for k, v in (attrs.get("prototypes") or {}).items()}
        clusters = [{"cluster": int(c), "size": int((cluster == c).sum()), "prototypes": prototypes.get(str(c), [])}
                    for c in np.unique(cluster)]  # fmt: skip
        points = [{"index": int(i), "x": float(x), "y": float(y), "cluster": int(c), "outlier": float(o)}
                  for i, (x, y), c, o in zip(members, embedding[:, :2], cluster, outlier, strict=True)]  # fmt: skip
        return jsonable({
            "key": key, "name": name, "method": attrs.get("method"), "n_clusters": attrs.get("n_clusters"),
            "eigengap": attrs.get("eigengap"), "eigenvalues": entry.get("eigenvalues"), "clusters": clusters,
            "points": points, "inputs": list(entry.get("mean_map", {})),
        })  # fmt: skip

    def input_tile(self, index: int, params: Mapping[str, Any]) -> bytes:
        """PNG of sample ``index``'s input ``input`` (an image or feature-vector input).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> ExplorerData(synthetic_run(4)).input_tile(0, {})[:4]
        b'\\x89PNG'
        """
        name = self._input(params)
        if self.view.kinds[name] not in ("image", "sequence"):
            raise ValueError(f"input {name!r} is {self.view.kinds[name]}: it has no picture")
        values = self.view.input_sample(name, index)
        if self.view.kinds[name] == "sequence":
            return tiles.map_png(values, tiles.Controls())
        return tiles.input_png(values)

    def map_tile(self, index: int, params: Mapping[str, Any]) -> bytes:
        """PNG of one method's map of sample ``index`` under the controls (over the input where opacity < 1).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> data = ExplorerData(synthetic_run(4))
        >>> data.map_tile(0, {"method": "gradient"}) != data.map_tile(0, {"method": "gradient", "sign": "absolute"})
        True
        """
        method, name = self._method_input(params)
        controls = tiles.Controls.parse(params)
        image = self.view.input_sample(name, index) if self.view.kinds[name] == "image" else None
        return tiles.map_png(self.view.map_sample(method, name, index), controls, image)

    def spray_tile(self, key: str, params: Mapping[str, Any]) -> bytes:
        """PNG of a SpRAy class's mean map of input ``input`` under the controls.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> ExplorerData(synthetic_run(30)).spray_tile("1", {})[:4]
        b'\\x89PNG'
        """
        entry, _ = self._spray_entry(key)
        name = self._input(params)
        means = entry.get("mean_map") or {}
        if name not in means:
            raise KeyError(f"class {key}'s analysis has no mean map of input {name!r}")
        return tiles.map_png(np.asarray(means[name]), tiles.Controls.parse(params))

    def _verdict(self, method: str, metric: str, index: int) -> str | None:
        if metric == "completeness_error":
            return "pass" if completeness_passes(self.view, method).iloc[index] else "fail"
        if metric == "degenerate":
            return "fail" if bool(self.view.table.at[index, f"{method}.degenerate"]) else "pass"
        return None

    def _input(self, params: Mapping[str, Any]) -> str:
        return self.view.check_input(params.get("input") or next(iter(self.view.kinds)))

    def _method_input(self, params: Mapping[str, Any]) -> tuple[str, str]:
        return self.view.check_method(params.get("method") or self.view.methods[0]), self._input(params)

    def _spray_entry(self, key: str) -> tuple[dict[str, Any], str]:
        for found, entry in (self.view.run.analysis or {}).items():
            if str(found) == key:
                return entry, self.view.class_name(found) if _is_int(found) else str(found)
        raise KeyError(f"the run has no SpRAy analysis of class {key!r}")


def _attrs(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """A class's analysis attributes: nested under ``attrs`` or beside the arrays."""
    return entry.get("attrs", entry)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer))
