"""Spectral relevance analysis (SpRAy, Lapuschkin et al. 2019): what a data set's maps say together.

Per class: the mean map; each map summed over its channels, average-pooled to
a small grid and scaled to unit length; a k-nearest-neighbour graph of these
(symmetrised: an edge where either is among the other's neighbours); the
smallest eigenvalues of its normalised Laplacian, whose largest gap (the
eigengap heuristic) sets the number of clusters; spectral clustering of the
graph (scikit-learn's ``SpectralClustering``, ``affinity="precomputed"``); a
2-D spectral embedding to plot; per cluster its size and prototypes (the
members nearest its mean); per sample an outlier score, the distance of its
map from the class's mean map in units of the class's spread. Maps that sit
far from their class (score at least ``outlier_threshold``) are the candidate
shortcuts, as are small clusters of maps that agree with one another but not
with the rest of their class (a watermark the model learned to look at).

:func:`spray` analyses maps in memory; :func:`analyse_run` analyses a stored
run (``sl.run``) chunk by chunk and writes the results into its store under
``analysis/`` (:func:`write_analysis`, :func:`read_analysis`). Everything is
deterministic for a given ``seed``.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> maps = rng.normal(size=(60, 1, 8, 8))
>>> maps[:, :, 2:6, 2:6] += 3.0  # every map looks at the centre
>>> maps[:20, :, 6:, 6:] += 3.0  # a third also at the bottom-right corner
>>> result = spray(maps, np.zeros(60, dtype=int))
>>> analysis = result.classes[0]
>>> analysis.n_clusters, analysis.sizes
(2, {0: 40, 1: 20})
>>> sorted(analysis.members[analysis.cluster == 1].tolist()) == list(range(20))
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GROUP",
    "ClassAnalysis",
    "SprayResult",
    "SpraySettings",
    "analyse_run",
    "downsample",
    "read_analysis",
    "spray",
    "write_analysis",
]

GROUP = "analysis"
"""The store's group that holds the analysis, beside ``inputs/``, ``maps/`` and ``table/``."""
FORMAT = 1
"""Version of the ``analysis/`` layout, in the group's attributes."""
GROUPINGS = ("target", "label", "prediction")
"""Table columns that group a run's samples: the explained class (what the maps explain), the label, the prediction."""


@dataclass(frozen=True)
class SpraySettings:
    """How the maps are compared and clustered.

    Parameters
    ----------
    grid : int, default 8
        Each spatial axis of a map is average-pooled to at most this many bins (a 224x224 map becomes 8x8).
    neighbours : int, default 10
        Neighbours per map in the similarity graph (fewer in a class with fewer maps).
    max_clusters : int, default 10
        The eigengap heuristic considers 1 to ``max_clusters`` clusters.
    n_clusters : int, optional
        Use this many clusters in every class instead of the eigengap's choice.
    prototypes : int, default 3
        Members shown per cluster: those nearest the cluster's mean.
    outlier_threshold : float, default 2.0
        A map whose distance from its class mean is at least this many times the class's spread
        (root mean square distance) is a candidate shortcut.
    min_samples : int, default 10
        Classes with fewer maps are skipped, with the reason in :attr:`SprayResult.skipped`.
    seed : int, default 0
        Seed of the clustering's k-means step.

    Example
    -------
    >>> SpraySettings(grid=4).neighbours
    10
    >>> SpraySettings(neighbours=0)
    Traceback (most recent call last):
    ...
    ValueError: neighbours must be an integer of at least 1; got 0
    """

    grid: int = 8
    neighbours: int = 10
    max_clusters: int = 10
    n_clusters: int | None = None
    prototypes: int = 3
    outlier_threshold: float = 2.0
    min_samples: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        least = {"grid": 1, "neighbours": 1, "max_clusters": 2, "prototypes": 1, "min_samples": 3, "seed": 0}
        if self.n_clusters is not None:
            least["n_clusters"] = 1
        for name, smallest in least.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
                raise ValueError(f"{name} must be an integer of at least {smallest}; got {value!r}")
        if not (isinstance(self.outlier_threshold, int | float) and self.outlier_threshold > 0):
            raise ValueError(f"outlier_threshold must be a positive number; got {self.outlier_threshold!r}")


@dataclass(frozen=True)
class ClassAnalysis:
    """SpRAy's findings for the maps of one class.

    Attributes
    ----------
    label : int
        The class.
    members : numpy.ndarray
        The samples' indices, ``(n,)`` int64; every other array is aligned with it.
    mean_map : dict of str to numpy.ndarray
        The mean of the members' maps at full resolution, per input name.
    eigenvalues : numpy.ndarray
        The smallest ``max_clusters + 1`` eigenvalues of the graph's normalised Laplacian (fewer in a small class).
    n_clusters : int
        Clusters found: where the largest gap between consecutive eigenvalues lies (or the setting).
    eigengap : float
        That gap, ``eigenvalues[n_clusters] - eigenvalues[n_clusters - 1]``.
    cluster : numpy.ndarray
        Each member's cluster, ``(n,)``; cluster 0 is the largest (ties: the one with the earliest member).
    embedding : numpy.ndarray
        Each member's 2-D spectral embedding (the Laplacian's second and third eigenvectors), ``(n, 2)``.
    sizes : dict of int to int
        Members per cluster.
    prototypes : dict of int to list of int
        Per cluster, the indices of the members nearest its mean, nearest first.
    outlier_score : numpy.ndarray
        Each member's distance from the class mean in units of the class's spread, ``(n,)``.
    outlier_threshold : float
        Scores from here up are candidate shortcuts (:meth:`candidates`).

    Example
    -------
    >>> import numpy as np
    >>> maps = np.random.default_rng(0).normal(size=(30, 1, 4, 4)) + 2.0
    >>> maps[7] *= -1  # a map unlike the others
    >>> analysis = spray(maps, np.ones(30, dtype=int)).classes[1]
    >>> analysis.candidates().tolist()
    [7]
    """

    label: int
    members: np.ndarray
    mean_map: dict[str, np.ndarray]
    eigenvalues: np.ndarray
    n_clusters: int
    eigengap: float
    cluster: np.ndarray
    embedding: np.ndarray
    sizes: dict[int, int]
    prototypes: dict[int, list[int]]
    outlier_score: np.ndarray
    outlier_threshold: float

    def candidates(self, top: int | None = None) -> np.ndarray:
        """Indices of the members scoring at least :attr:`outlier_threshold`, highest first (at most ``top``).

        Example
        -------
        >>> import numpy as np
        >>> maps = np.random.default_rng(0).normal(size=(30, 1, 4, 4)) + 2.0
        >>> analysis = spray(maps, np.zeros(30, dtype=int), outlier_threshold=1.0)
        >>> analysis.classes[0].candidates().size, analysis.classes[0].candidates(top=2).size
        (12, 2)
        """
        order = np.argsort(-self.outlier_score, kind="stable")
        chosen = order[self.outlier_score[order] >= self.outlier_threshold]
        return self.members[chosen[:top]]

    def record(self) -> dict[str, Any]:
        """The analysis as a plain dict (field name to value), the form :func:`read_analysis` returns.

        Example
        -------
        >>> import numpy as np
        >>> sorted(spray(np.eye(12)[None].repeat(12, 0), np.zeros(12, dtype=int)).classes[0].record())[:3]
        ['cluster', 'eigengap', 'eigenvalues']
        """
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class SprayResult:
    """SpRAy's findings for every class.

    Attributes
    ----------
    classes : dict of int to ClassAnalysis
        The analysed classes, in ascending order.
    skipped : dict of int to str
        The classes left out, each with the reason (too few maps).
    settings : SpraySettings
        The settings used.
    method : str or None
        The attribution method whose maps were analysed, when known.

    Example
    -------
    >>> import numpy as np
    >>> result = spray(np.ones((13, 2, 2)), np.array([0] * 12 + [1]))
    >>> list(result.classes), result.skipped
    ([0], {1: '1 sample, fewer than min_samples=10'})
    """

    classes: dict[int, ClassAnalysis]
    skipped: dict[int, str] = field(default_factory=dict)
    settings: SpraySettings = field(default_factory=SpraySettings)
    method: str | None = None


def downsample(maps: np.ndarray, grid: int = 8) -> np.ndarray:
    """Summarise each map as a short vector: channels summed, spatial axes average-pooled to ``grid`` bins, flattened.

    Maps ``(N, C, *spatial)`` with at least one spatial axis lose their channel
    axis (summed); each spatial axis longer than ``grid`` is then average-pooled
    to ``grid`` bins (adaptive pooling: bin ``i`` of an axis of length ``L``
    averages positions ``floor(i L / grid)`` to ``ceil((i + 1) L / grid) - 1``).
    Maps ``(N, D)`` (table rows, tokens) are kept as they are. The vectors are
    not scaled; :func:`spray` scales them to unit length.

    Parameters
    ----------
    maps : array-like
        ``(N, ...)`` maps, one per sample.
    grid : int, default 8
        Bins per spatial axis.

    Returns
    -------
    numpy.ndarray
        ``(N, F)`` float64.

    Example
    -------
    >>> import numpy as np
    >>> maps = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4)
    >>> features = downsample(maps, grid=2)
    >>> features.shape, features[0].tolist()
    ((2, 4), [55.5, 61.5, 79.5, 85.5])
    """
    values = np.asarray(maps, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"maps must be (N, ...) with one map per sample; got shape {values.shape}")
    if values.ndim >= 3:
        values = values.sum(axis=1)
        for axis in range(1, values.ndim):
            values = np.moveaxis(np.tensordot(values, _pooling(values.shape[axis], grid), axes=([axis], [1])), -1, axis)
    return values.reshape(len(values), -1)


def _pooling(length: int, grid: int) -> np.ndarray:
    """The ``(bins, length)`` matrix of adaptive average pooling of an axis to ``min(length, grid)`` bins."""
    bins = min(length, grid)
    matrix = np.zeros((bins, length))
    for i in range(bins):
        start, stop = (i * length) // bins, -((-(i + 1) * length) // bins)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def spray(
    maps: np.ndarray | Mapping[str, np.ndarray],
    labels: Sequence[int] | np.ndarray,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    method: str | None = None,
    **settings: Any,
) -> SprayResult:
    """Analyse maps class by class: mean maps, eigengap, spectral clusters, prototypes, outliers.

    Parameters
    ----------
    maps : array-like or dict of str to array-like
        ``(N, ...)`` maps, one per sample; or one such array per input name
        (a model with several inputs), whose summaries are joined.
    labels : array-like of int
        ``(N,)`` the class each map belongs to (usually the explained class).
    indices : array-like of int, optional
        ``(N,)`` the samples' indices to report (default ``0 .. N-1``).
    method : str, optional
        The attribution method, recorded in the result.
    **settings
        Fields of :class:`SpraySettings` (``grid``, ``neighbours``, ``max_clusters``, ``n_clusters``,
        ``prototypes``, ``outlier_threshold``, ``min_samples``, ``seed``).

    Returns
    -------
    SprayResult

    Raises
    ------
    ValueError
        If the lengths of the maps, labels and indices differ, a map holds NaN or
        infinity, or a setting is out of range.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.normal(size=(40, 3, 16, 16))  # channels are summed, each 16 pixels pooled to 4 bins
    >>> maps[:, :, 4:12, 4:12] += 1.0
    >>> maps[::4, :, 12:, 12:] += 2.0  # one map in four also lights up the bottom-right corner
    >>> result = spray({"input": maps}, np.zeros(40, dtype=int), grid=4, neighbours=5)
    >>> analysis = result.classes[0]
    >>> analysis.sizes, sorted(analysis.members[analysis.cluster == 1].tolist()) == list(range(0, 40, 4))
    ({0: 30, 1: 10}, True)
    >>> spray(maps, np.zeros(39, dtype=int))
    Traceback (most recent call last):
    ...
    ValueError: 40 maps but 39 labels: give one label per map
    """
    options = SpraySettings(**settings)
    named = {name: np.asarray(values) for name, values in _named(maps).items()}
    n = _length(named)
    labels_array = _labels(labels, n)
    index_array = np.arange(n) if indices is None else _indices(indices, n)
    features = np.concatenate([downsample(values, options.grid) for values in named.values()], axis=1)
    _check_finite(features, index_array)
    means = {
        int(c): {name: values[labels_array == c].mean(axis=0, dtype=np.float64) for name, values in named.items()}
        for c in np.unique(labels_array)
    }
    return _analyse(features, labels_array, index_array, means, options, method)


def _named(maps: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, Any]:
    if isinstance(maps, Mapping):
        if not maps:
            raise ValueError("maps is an empty dict: give at least one input's maps")
        return dict(maps)
    return {"input": maps}


def _length(named: Mapping[str, np.ndarray]) -> int:
    lengths = {name: len(values) if np.ndim(values) else 0 for name, values in named.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the inputs' maps hold different numbers of samples: {lengths}")
    return next(iter(lengths.values()))


def _labels(labels: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != n:
        count = array.size if array.ndim == 1 else array.shape
        raise ValueError(f"{n} maps but {count} labels: give one label per map")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices); got dtype {array.dtype}")
    return array.astype(np.int64)


def _indices(indices: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    array = np.asarray(indices)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"indices must be {n} integers, one per map; got shape {array.shape}, dtype {array.dtype}")
    return array.astype(np.int64)


def _check_finite(features: np.ndarray, indices: np.ndarray) -> None:
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        shown = ", ".join(str(i) for i in indices[bad][:10].tolist())
        raise ValueError(
            f"{int(bad.sum())} maps hold NaN or infinity (samples {shown}{', ...' if bad.sum() > 10 else ''}); "
            "recompute or drop them before the analysis"
        )


def _analyse(
    features: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    means: Mapping[int, dict[str, np.ndarray]],
    settings: SpraySettings,
    method: str | None,
) -> SprayResult:
    """The per-class analysis of the maps' summaries ``features`` (N, F), for :func:`spray` and :func:`analyse_run`."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)
    classes: dict[int, ClassAnalysis] = {}
    skipped: dict[int, str] = {}
    for c in np.unique(labels).tolist():
        rows = np.flatnonzero(labels == c)
        if len(rows) < settings.min_samples:
            noun = "sample" if len(rows) == 1 else "samples"
            skipped[c] = f"{len(rows)} {noun}, fewer than min_samples={settings.min_samples}"
            continue
        classes[c] = _analyse_class(c, unit[rows], indices[rows], means[c], settings)
    return SprayResult(classes, skipped, settings, method)


def _analyse_class(
    label: int, unit: np.ndarray, members: np.ndarray, mean_map: dict[str, np.ndarray], settings: SpraySettings
) -> ClassAnalysis:
    n = len(unit)
    affinity = _knn_graph(unit, min(settings.neighbours, n - 1))
    eigenvalues, vectors = _spectrum(affinity, min(settings.max_clusters + 1, n))
    gaps = np.diff(eigenvalues)
    k = settings.n_clusters or int(np.argmax(gaps)) + 1
    if k > n:
        raise ValueError(f"n_clusters={k} but class {label} has only {n} maps")
    eigengap = float(gaps[k - 1]) if k - 1 < len(gaps) else math.nan
    cluster = _ordered(_cluster(affinity, k, settings.seed))
    sizes = {int(c): int(s) for c, s in zip(*np.unique(cluster, return_counts=True), strict=True)}
    prototypes = {c: members[cluster == c][_nearest(unit[cluster == c], settings.prototypes)].tolist() for c in sizes}
    return ClassAnalysis(
        label=label,
        members=members,
        mean_map=mean_map,
        eigenvalues=eigenvalues,
        n_clusters=len(sizes),
        eigengap=eigengap,
        cluster=cluster,
        embedding=vectors[:, 1:3],
        sizes=sizes,
        prototypes=prototypes,
        outlier_score=_outlier_scores(unit),
        outlier_threshold=float(settings.outlier_threshold),
    )


def _knn_graph(unit: np.ndarray, neighbours: int) -> Any:
    """The symmetrised k-nearest-neighbour connectivity graph (sparse, 0/1) of the rows of ``unit``."""
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(unit, n_neighbors=neighbours, mode="connectivity", include_self=False)
    return graph.maximum(graph.T).tocsr()


def _spectrum(affinity: Any, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues of the normalised Laplacian and their eigenvectors (sign-fixed)."""
    from scipy.linalg import eigh
    from scipy.sparse.csgraph import laplacian

    values, vectors = eigh(laplacian(affinity.toarray(), normed=True), subset_by_index=[0, count - 1])
    largest = np.argmax(np.abs(vectors), axis=0)
    vectors = vectors * np.sign(vectors[largest, np.arange(count)])  # the same embedding whatever LAPACK's signs
    return np.clip(values, 0.0, None), vectors


def _cluster(affinity: Any, k: int, seed: int) -> np.ndarray:
    if k == 1:
        return np.zeros(affinity.shape[0], dtype=np.int64)
    from sklearn.cluster import SpectralClustering

    clustering = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed)
    with warnings.catch_warnings():
        # a graph in several pieces is what well separated clusters give; its pieces are the clusters sought
        warnings.filterwarnings("ignore", message="Graph is not fully connected", category=UserWarning)
        return clustering.fit_predict(affinity).astype(np.int64)


def _ordered(cluster: np.ndarray) -> np.ndarray:
    """Relabel clusters by size, largest first; ties by their earliest member."""
    found, first, counts = np.unique(cluster, return_index=True, return_counts=True)
    order = sorted(range(len(found)), key=lambda i: (-counts[i], first[i]))
    mapping = {int(found[i]): rank for rank, i in enumerate(order)}
    return np.array([mapping[int(c)] for c in cluster], dtype=np.int64)


def _nearest(unit: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` rows nearest the rows' mean, nearest first."""
    distance = np.linalg.norm(unit - unit.mean(axis=0), axis=1)
    return np.argsort(distance, kind="stable")[:count]


def _outlier_scores(unit: np.ndarray) -> np.ndarray:
    """Each row's distance from the mean row, divided by the root mean square of these distances (0 if all equal)."""
    distance = np.linalg.norm(unit - unit.mean(axis=0), axis=1)
    spread = math.sqrt(float(np.mean(distance**2)))
    return distance / spread if spread > 0 else np.zeros_like(distance)


def analyse_run(
    run: Any, method: str | None = None, *, by: str = "target", write: bool = True, **settings: Any
) -> SprayResult:
    """Analyse a stored run's maps of one method (:func:`spray`) and write the results into its store.

    The maps are read a chunk of samples at a time: only their summaries
    (``grid`` bins per spatial axis) and the per-class sums for the mean maps
    stay in memory. The results go to the store's ``analysis/`` group
    (:func:`write_analysis`), replacing an earlier analysis; ``run.analysis``
    then reads them back.

    Parameters
    ----------
    run : Run
        A run from ``sl.run`` or ``sl.load_run``: ``run.path``, ``run.methods``,
        ``run.maps[method][input]`` (``(N, ...)`` arrays), ``run.table``.
    method : str, optional
        Whose maps to analyse; the run's first method by default.
    by : {"target", "label", "prediction"}, default "target"
        The table column that groups the samples into classes: the explained
        class (whose maps explain the same output), the label or the prediction.
        Samples where it is missing are left out.
    write : bool, default True
        Write the results into the run's store.
    **settings
        Fields of :class:`SpraySettings`.

    Raises
    ------
    ValueError
        If ``method`` is not one of the run's methods, ``by`` is not a grouping
        column, or a map holds NaN or infinity.

    Example
    -------
    >>> import tempfile, numpy as np, pandas as pd, zarr
    >>> class Run:  # what sl.load_run returns, as far as the analysis needs it
    ...     path = tempfile.mkdtemp() + "/run.zarr"
    ...     methods = ["gradient"]
    ...     maps = {"gradient": {"input": np.random.default_rng(0).normal(size=(24, 1, 4, 4))}}
    ...     table = pd.DataFrame({"index": range(24), "target": [0, 1] * 12})
    >>> result = analyse_run(Run(), neighbours=4)
    >>> sorted(result.classes), sorted(read_analysis(zarr.open_group(Run.path, mode="r")))
    ([0, 1], [0, 1])
    """
    options = SpraySettings(**settings)
    chosen = method if method is not None else run.methods[0]
    if chosen not in run.methods:
        raise ValueError(f"method {chosen!r} is not in this run; its methods: {', '.join(run.methods)}")
    if by not in GROUPINGS:
        raise ValueError(f"by={by!r} is not a grouping column; use one of: {', '.join(GROUPINGS)}")
    table = run.table
    present = ~table[by].isna().to_numpy()
    indices = table["index"].to_numpy()[present].astype(np.int64)
    labels = table[by].to_numpy()[present].astype(np.int64)
    features, means = _summaries(run.maps[chosen], indices, labels, options.grid)
    _check_finite(features, indices)
    result = _analyse(features, labels, indices, means, options, chosen)
    if write:
        import zarr

        write_analysis(zarr.open_group(run.path, mode="a"), result, by=by)
    return result


def _summaries(
    arrays: Mapping[str, Any], indices: np.ndarray, labels: np.ndarray, grid: int
) -> tuple[np.ndarray, dict[int, dict[str, np.ndarray]]]:
    """Summaries (N, F) of the maps of samples ``indices`` and the class means, one block of stored rows at a time."""
    classes = np.unique(labels).tolist()
    parts, means = [], {c: {} for c in classes}
    for name, array in arrays.items():
        stored = array.shape[0]
        if len(indices) and (indices.min() < 0 or indices.max() >= stored):
            raise ValueError(f"the table's indices run beyond the {stored} stored maps of input {name!r}")
        block = _block_rows(array)
        summary: np.ndarray | None = None
        sums = {c: np.zeros(array.shape[1:]) for c in classes}
        for start in range(0, stored, block):
            wanted = np.flatnonzero((indices >= start) & (indices < start + block))
            if not len(wanted):
                continue
            values = np.asarray(array[start : start + block], dtype=np.float64)[indices[wanted] - start]
            features = downsample(values, grid)
            if summary is None:
                summary = np.empty((len(indices), features.shape[1]))
            summary[wanted] = features
            for c in classes:
                sums[c] += values[labels[wanted] == c].sum(axis=0)
        parts.append(summary if summary is not None else np.empty((0, 0)))
        for c in classes:
            means[c][name] = sums[c] / np.count_nonzero(labels == c)
    return np.concatenate(parts, axis=1), means


def _block_rows(array: Any) -> int:
    """Rows read at once: the store's chunk along the samples (at least 64)."""
    chunks = getattr(array, "chunks", None)
    return max(64, int(chunks[0])) if chunks else 256


def write_analysis(group: Any, result: SprayResult, *, by: str = "target") -> Any:
    """Write ``result`` into the ``analysis/`` group of a run's store (Zarr v3), replacing any earlier analysis.

    Layout: per analysed class ``c`` a group ``analysis/class-<c>`` with arrays
    ``members``, ``cluster``, ``embedding``, ``eigenvalues``, ``outlier_score``,
    a group ``mean_map`` with one array per input name, and attributes
    ``label``, ``n_clusters``, ``eigengap``, ``prototypes``, ``sizes``,
    ``method``, ``downsample`` (the grid) and ``outlier_threshold``. The
    ``analysis`` group's attributes hold the format, the method, the grouping
    column, the settings and the skipped classes with their reasons.

    Parameters
    ----------
    group : zarr.Group
        The store's root group, open for writing.
    result : SprayResult
    by : str, default "target"
        The column the samples were grouped by, recorded.

    Returns
    -------
    zarr.Group
        The ``analysis`` group.

    Example
    -------
    >>> import numpy as np, zarr
    >>> root = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> result = spray(np.random.default_rng(0).normal(size=(20, 3, 3)), np.zeros(20, dtype=int))
    >>> sorted(write_analysis(root, result).group_keys())
    ['class-0']
    >>> read_analysis(root)[0]["sizes"] == result.classes[0].sizes
    True
    """
    analysis = group.create_group(GROUP, overwrite=True)
    analysis.attrs.update(
        {
            "format": FORMAT,
            "method": result.method,
            "by": by,
            "settings": asdict(result.settings),
            "skipped": {str(c): reason for c, reason in result.skipped.items()},
        }
    )
    for c, found in result.classes.items():
        node = analysis.create_group(f"class-{c}")
        for name in ("members", "cluster", "embedding", "eigenvalues", "outlier_score"):
            node.create_array(name, data=np.ascontiguousarray(getattr(found, name)))
        maps = node.create_group("mean_map")
        for name, values in found.mean_map.items():
            maps.create_array(name, data=np.ascontiguousarray(values, dtype=np.float32))
        node.attrs.update(
            {
                "label": found.label,
                "n_clusters": found.n_clusters,
                "eigengap": None if math.isnan(found.eigengap) else found.eigengap,
                "prototypes": {str(k): v for k, v in found.prototypes.items()},
                "sizes": {str(k): v for k, v in found.sizes.items()},
                "method": result.method,
                "downsample": result.settings.grid,
                "outlier_threshold": found.outlier_threshold,
            }
        )
    return analysis


def read_analysis(group: Any) -> dict[int, dict[str, Any]] | None:
    """Read what :func:`write_analysis` wrote: per class a dict of :class:`ClassAnalysis`' fields; None if absent.

    Arrays come back as numpy arrays, ``sizes`` and ``prototypes`` with int
    keys, ``mean_map`` as a dict of input name to array, plus the ``method``
    and ``downsample`` attributes. See :func:`write_analysis` for an example.
    """
    if GROUP not in group:
        return None
    analysis = group[GROUP]
    classes: dict[int, dict[str, Any]] = {}
    for key, node in analysis.groups():
        attrs = dict(node.attrs)
        record: dict[str, Any] = {name: node[name][...] for name in ("members", "cluster", "embedding")}
        record.update({name: node[name][...] for name in ("eigenvalues", "outlier_score")})
        record["mean_map"] = {name: array[...] for name, array in node["mean_map"].arrays()}
        record.update(
            label=int(attrs["label"]),
            n_clusters=int(attrs["n_clusters"]),
            eigengap=math.nan if attrs["eigengap"] is None else float(attrs["eigengap"]),
            sizes={int(k): int(v) for k, v in attrs["sizes"].items()},
            prototypes={int(k): [int(i) for i in v] for k, v in attrs["prototypes"].items()},
            outlier_threshold=float(attrs["outlier_threshold"]),
            method=attrs["method"],
            downsample=attrs["downsample"],
        )
        classes[int(key.removeprefix("class-"))] = record
    return dict(sorted(classes.items()))
