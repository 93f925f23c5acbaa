"""A made-up run with the read side of ``sl.load_run``'s ``Run``, for trying the explorer and for its tests.

:func:`synthetic_run` draws images (or token sequences) whose class is a
pattern, maps that find the pattern more or less well, the per-sample metrics
of the run table, and a SpRAy analysis (two clusters per class). Nothing is
computed by a model: the numbers are only plausible. With ``folder`` the arrays
are written as ``.npy`` files and opened memory-mapped, so a large run reads
lazily from disk as a store does.

Example
-------
>>> run = synthetic_run(12, methods=("gradient", "occlusion"))
>>> run.n, run.methods, run.inputs["input"].shape, sorted(run.analysis)[:2]
(12, ['gradient', 'occlusion'], (12, 1, 8, 8), [0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WORDS = ("the", "film", "was", "great", "awful", "plot", "acting", "<b>bold</b>", "not", "very", "&amp;", "fine")


@dataclass
class InMemoryRun:
    """A run held in memory (or memory-mapped files), with the attributes the explorer reads.

    Example
    -------
    >>> run = InMemoryRun("r", 0, [], None, pd.DataFrame(), {}, {}, {}, None)
    >>> run.path
    'r'
    """

    path: str
    n: int
    methods: list[str]
    classes: list[str] | None
    table: pd.DataFrame
    inputs: dict[str, Any]
    maps: dict[str, dict[str, Any]]
    provenance: dict[str, Any]
    analysis: dict[Any, dict[str, Any]] | None


def synthetic_run(
    n: int = 64,
    *,
    methods: Sequence[str] = ("gradient", "integrated_gradients", "occlusion"),
    classes: Sequence[str] | None = ("circle", "bar", "<script>alert(1)</script>"),
    side: int = 8,
    text: bool = False,
    analysis: bool = True,
    folder: str | Path | None = None,
    seed: int = 0,
) -> InMemoryRun:
    """Return a made-up run of ``n`` samples (see the module's docstring).

    Parameters
    ----------
    n:
        Number of samples.
    methods, classes:
        Method names and class names (their number is the number of classes).
    side:
        Images are ``(1, side, side)``; text runs have sequences of up to ``2 * side`` tokens.
    text:
        A text run: token ids as the input, a ``tokens`` column in the table.
    analysis:
        Add a SpRAy analysis (``run.analysis``).
    folder:
        Write inputs and maps to ``.npy`` files there and memory-map them.
    seed:
        The same seed gives the same run.

    Example
    -------
    >>> run = synthetic_run(5, text=True, methods=("gradient",))
    >>> run.inputs["input"].shape, len(run.table.at[0, "tokens"]) <= 16
    ((5, 16), True)
    """
    rng = np.random.default_rng(seed)
    count = len(classes) if classes is not None else 3
    labels = rng.integers(0, count, n)
    if text:
        inputs, truth = _token_inputs(rng, labels, 2 * side)
    else:
        inputs, truth = _image_inputs(rng, labels, side)
    maps = {m: (truth * (1.0 - 0.3 * k) + rng.normal(0, 0.1 + 0.2 * k, truth.shape)).astype(np.float32)
            for k, m in enumerate(methods)}  # fmt: skip
    if text:
        maps = {m: np.where(inputs >= 0, values, 0.0).astype(np.float32) for m, values in maps.items()}
    table = _table(rng, labels, count, list(methods), maps)
    if text:
        table["tokens"] = [[WORDS[t] for t in row if t >= 0] for row in inputs]
    arrays = {"input": inputs}
    if folder is not None:
        arrays, maps = _memory_mapped(Path(folder), arrays, maps)
    return InMemoryRun(
        path=str(folder or "synthetic"),
        n=n,
        methods=list(methods),
        classes=None if classes is None else list(classes),
        table=table,
        inputs=arrays,
        maps={m: {"input": values} for m, values in maps.items()},
        provenance={"engine": "synthetic", "seed": seed, "methods": {m: {} for m in methods}},
        analysis=_analysis(rng, labels, count, maps[methods[0]], methods[0]) if analysis else None,
    )


def _image_inputs(rng: np.random.Generator, labels: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is where a bright square sits; the 'true' map is the square."""
    grid = np.arange(side)
    truth = np.zeros((len(labels), 1, side, side), np.float32)
    for label in np.unique(labels):
        rows = labels == label
        top = (label * side // 3) % max(side - 2, 1)
        truth[rows, 0, top : top + 3, top : top + 3] = 1.0
    shift = rng.integers(-1, 2, (len(labels), 2))
    if side > 2:
        truth = np.stack([np.roll(t, tuple(s), axis=(1, 2)) for t, s in zip(truth, shift, strict=True)])
    images = np.clip(truth * 0.8 + rng.uniform(0, 0.3, truth.shape) + 0.05 * grid[None, None, None, :] / side, 0, 1)
    return images.astype(np.float32), truth


def _token_inputs(rng: np.random.Generator, labels: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id sequences padded with -1; the 'true' map marks the class's word."""
    lengths = rng.integers(length // 2, length + 1, len(labels))
    ids = rng.integers(0, len(WORDS), (len(labels), length))
    ids[np.arange(length)[None, :] >= lengths[:, None]] = -1
    keyword = np.array([3, 4, 7])[labels % 3]
    ids[:, 1] = keyword
    truth = (ids == keyword[:, None]).astype(np.float32) - 0.3 * (ids == 8)
    return ids, truth


def _table(
    rng: np.random.Generator, labels: np.ndarray, count: int, methods: list[str], maps: dict[str, np.ndarray]
) -> pd.DataFrame:
    n = len(labels)
    predictions = np.where(rng.uniform(size=n) < 0.8, labels, rng.integers(0, count, n))
    table = pd.DataFrame({
        "index": np.arange(n), "label": labels, "prediction": predictions, "score": rng.uniform(0.2, 1.0, n),
        "target": predictions, "correct": labels == predictions,
    })  # fmt: skip
    for k, method in enumerate(methods):
        flat = np.abs(maps[method].reshape(n, -1))
        table[f"{method}.completeness_error"] = np.abs(rng.normal(0, 10.0 ** (-4 + 2 * k), n))
        table[f"{method}.degenerate"] = flat.max(axis=1) < 0.05
        table[f"{method}.deletion_auc"] = np.clip(rng.normal(0.2 + 0.1 * k, 0.05, n), 0, 1)
        table[f"{method}.insertion_auc"] = np.clip(rng.normal(0.7 - 0.1 * k, 0.05, n), 0, 1)
        table[f"{method}.sparseness"] = flat.max(axis=1) / (flat.mean(axis=1) + 1e-9) / flat.shape[1]
    return table


def _analysis(
    rng: np.random.Generator, labels: np.ndarray, count: int, maps: np.ndarray, method: str
) -> dict[int, dict[str, Any]]:
    """Two clusters per class, split by the map's total (a stand-in for spectral clustering)."""
    found: dict[int, dict[str, Any]] = {}
    for label in range(count):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        totals = maps[members].reshape(len(members), -1).sum(axis=1)
        cluster = (totals > np.median(totals)).astype(int)
        embedding = np.stack([cluster + rng.normal(0, 0.1, len(members)), rng.normal(0, 0.3, len(members))], axis=1)
        outlier = np.abs(totals - totals.mean()) / (totals.std() + 1e-9)
        found[label] = {
            "mean_map": {"input": maps[members].mean(axis=0)},
            "members": members,
            "cluster": cluster,
            "embedding": embedding,
            "eigenvalues": np.array([0.0, 0.02, 0.6, 0.7, 0.8]),
            "outlier_score": outlier,
            "n_clusters": 2,
            "eigengap": 0.58,
            "prototypes": {c: members[cluster == c][:3].tolist() for c in (0, 1)},
            "sizes": {c: int((cluster == c).sum()) for c in (0, 1)},
            "method": method,
            "downsample": 1,
        }
    return found


def _memory_mapped(
    folder: Path, inputs: dict[str, np.ndarray], maps: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)

    def mapped(name: str, values: np.ndarray) -> np.ndarray:
        np.save(folder / f"{name}.npy", values)
        return np.load(folder / f"{name}.npy", mmap_mode="r")

    return ({k: mapped(f"input-{k}", v) for k, v in inputs.items()},
            {m: mapped(f"map-{m}", v) for m, v in maps.items()})  # fmt: skip
