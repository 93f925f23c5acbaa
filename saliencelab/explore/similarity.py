"""Which samples have similar maps, and how far the methods agree, on small copies of the maps.

Each map is shrunk to at most :data:`SIDE` x :data:`SIDE` block means (a token
or feature map to at most ``SIDE * SIDE`` values), centred and scaled to unit
length, so the dot product of two is their Pearson correlation. The shrunk maps
of one method and input are computed the first time a page asks, reading the
store :data:`CHUNK` samples at a time, and kept in a cache of at most
``cache_size`` entries (least recently used goes first): a cached entry takes
``4 * SIDE**2`` bytes per sample (1 KiB; 10 MB for 10,000 samples), whatever the
maps' size.

Rank agreement between methods: the Spearman correlation of each per-sample
metric across samples (from the table), and the mean per-sample Spearman
correlation of the shrunk maps over at most :data:`AGREEMENT_SAMPLES` evenly
spaced samples.

Example
-------
>>> from saliencelab.explore.synthetic import synthetic_run
>>> from saliencelab.explore.view import RunView
>>> view = RunView(synthetic_run(30))
>>> index = MapIndex(view)
>>> neighbours = index.nearest(0, "gradient", "input", 3)
>>> len(neighbours), all(n["similarity"] <= 1.0 + 1e-6 for n in neighbours), 0 in [n["index"] for n in neighbours]
(3, True, False)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from saliencelab.explore.view import RunView, jsonable

SIDE = 16
"""Shrunk maps have at most SIDE x SIDE values."""

CHUNK = 256
"""Samples read from the store at a time."""

AGREEMENT_SAMPLES = 500
"""The most samples the map agreement reads."""


class MapIndex:
    """Nearest samples by map similarity, with a bounded cache of shrunk maps (see the module's docstring).

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> MapIndex(RunView(synthetic_run(4)), cache_size=0)
    Traceback (most recent call last):
    ValueError: cache_size must be at least 1; got 0
    """

    def __init__(self, view: RunView, cache_size: int = 2) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1; got {cache_size}")
        self.view = view
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def shrunk(self, method: str, name: str) -> np.ndarray:
        """The unit-length shrunk maps ``(N, D)`` of one method and input (cached).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> from saliencelab.explore.view import RunView
        >>> MapIndex(RunView(synthetic_run(5, side=32))).shrunk("gradient", "input").shape
        (5, 256)
        """
        key = (self.view.check_method(method), self.view.check_input(name))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            maps = self.view.run.maps[method][name]
            found = np.concatenate(
                [unit_rows(shrink(np.asarray(maps[start : start + CHUNK]))) for start in range(0, self.view.n, CHUNK)]
            )
            self._cache[key] = found
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return found

    def nearest(self, index: int, method: str, name: str, count: int = 8) -> list[dict[str, Any]]:
        """The ``count`` samples whose maps correlate most with sample ``index``'s, most similar first.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> from saliencelab.explore.view import RunView
        >>> MapIndex(RunView(synthetic_run(6))).nearest(0, "gradient", "input", 10)[-1]["index"] in range(1, 6)
        True
        """
        self.view.check_index(index)
        if not 1 <= count <= 100:
            raise ValueError(f"count: ask for 1 to 100 neighbours; got {count}")
        maps = self.shrunk(method, name)
        similarity = maps @ maps[index]
        similarity[index] = -np.inf
        order = np.argsort(-similarity, kind="stable")[: min(count, self.view.n - 1)]
        return [{"index": int(i), "similarity": float(similarity[i])} for i in order]


def shrink(maps: np.ndarray) -> np.ndarray:
    """Block means of a batch of maps ``(B, ...)``: at most ``SIDE x SIDE`` (images) or ``SIDE**2`` values, flat.

    Example
    -------
    >>> shrink(np.arange(16.0).reshape(1, 1, 4, 4)).shape, shrink(np.ones((2, 1000))).shape
    ((1, 16), (2, 250))
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4:
        maps = maps.sum(axis=1)
    if maps.ndim == 2:
        maps = maps[:, None, :]
        rows, columns = 1, _blocks(maps.shape[2], SIDE * SIDE)
    elif maps.ndim == 3:
        rows, columns = _blocks(maps.shape[1], SIDE), _blocks(maps.shape[2], SIDE)
    else:
        raise ValueError(f"maps to compare are (N, C, H, W), (N, H, W) or (N, L); got shape {maps.shape}")
    batch, height, width = maps.shape
    cut = maps[:, : height // rows * rows, : width // columns * columns]
    return cut.reshape(batch, height // rows, rows, width // columns, columns).mean(axis=(2, 4)).reshape(batch, -1)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to length 1 (a constant row stays all zero).

    Example
    -------
    >>> unit_rows(np.array([[1.0, 3.0], [2.0, 2.0]])).astype(float).round(3).tolist()
    [[-0.707, 0.707], [0.0, 0.0]]
    """
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return (centred / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def metric_agreement(view: RunView) -> dict[str, Any]:
    """For each metric: the methods' pairwise Spearman correlation across samples (NaN pairs left out).

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> found = metric_agreement(RunView(synthetic_run(20, methods=("gradient", "occlusion"))))
    >>> found["deletion_auc"]["matrix"][0][0]
    1.0
    """
    found: dict[str, Any] = {}
    for metric in view.metrics:
        methods = [m for m in view.methods if f"{m}.{metric}" in view.table.columns]
        columns = view.table[[f"{m}.{metric}" for m in methods]].apply(pd.to_numeric, errors="coerce").astype(float)
        matrix = columns.corr(method="spearman").to_numpy()
        found[metric] = {"methods": methods, "matrix": jsonable(matrix)}
    return found


def map_agreement(view: RunView, name: str, samples: int = AGREEMENT_SAMPLES) -> dict[str, Any]:
    """The methods' mean per-sample Spearman correlation between their shrunk maps of input ``name``.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> found = map_agreement(RunView(synthetic_run(20, methods=("gradient", "occlusion"))), "input")
    >>> found["samples"], found["matrix"][1][1]
    (20, 1.0)
    """
    step = max(1, -(-view.n // samples))
    ranks = {m: _row_ranks(shrink(np.asarray(view.run.maps[m][view.check_input(name)][0 : view.n : step])))
             for m in view.methods}  # fmt: skip
    matrix = [[float(np.mean(np.sum(ranks[a] * ranks[b], axis=1))) for b in view.methods] for a in view.methods]
    return {"methods": view.methods, "samples": len(range(0, view.n, step)), "matrix": jsonable(np.round(matrix, 6))}


def _row_ranks(rows: np.ndarray) -> np.ndarray:
    return unit_rows(rankdata(rows, axis=1))


def _blocks(length: int, most: int) -> int:
    return max(1, -(-length // most))
