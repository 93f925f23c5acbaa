"""A stand-in for the run store's read side (``sl.load_run``), for tests of what reads runs.

It writes its inputs and maps into a Zarr v3 group laid out as the run store
lays them out (``inputs/<name>``, ``maps/<method>/<name>``, chunked along the
samples) and offers the attributes of ``Run`` that the analysis and the
report read: ``path``, ``n``, ``methods``, ``classes``, ``table``, ``inputs``,
``maps``, ``provenance`` and ``analysis``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class FakeRun:
    """A run of ``methods`` over ``inputs`` (N, ...) with one map array per method, stored at ``path``."""

    def __init__(
        self,
        path: str | Path,
        inputs: np.ndarray,
        maps: dict[str, np.ndarray],
        table: pd.DataFrame,
        classes: list[str] | None = None,
        chunk: int = 16,
    ) -> None:
        import zarr

        self.path = str(path)
        root = zarr.open_group(self.path, mode="w")
        root.attrs["saliencelab"] = {"format": 1, "n": len(inputs), "methods": list(maps), "input_names": ["input"]}
        chunks = (chunk, *inputs.shape[1:])
        root.create_array("inputs/input", data=np.ascontiguousarray(inputs, dtype=np.float32), chunks=chunks)
        for method, values in maps.items():
            root.create_array(
                f"maps/{method}/input", data=np.ascontiguousarray(values, dtype=np.float32), chunks=chunks
            )
        self._root = root
        self.n = len(inputs)
        self.methods = list(maps)
        self.classes = classes
        self.table = table.sort_values("index").reset_index(drop=True)
        self.provenance: dict[str, Any] = {"engine": "fake"}

    @property
    def inputs(self) -> dict[str, Any]:
        return {"input": self._root["inputs/input"]}

    @property
    def maps(self) -> dict[str, dict[str, Any]]:
        return {method: {"input": self._root[f"maps/{method}/input"]} for method in self.methods}

    @property
    def analysis(self) -> dict[int, dict[str, Any]] | None:
        import zarr

        from saliencelab.runs.spray import read_analysis

        return read_analysis(zarr.open_group(self.path, mode="r"))


def digits_table(labels: np.ndarray, predictions: np.ndarray | None = None) -> pd.DataFrame:
    """A run table for a classifier: index, label, prediction, target (the prediction), correct."""
    predictions = labels if predictions is None else predictions
    return pd.DataFrame(
        {
            "index": np.arange(len(labels)),
            "label": pd.array(labels, dtype="Int64"),
            "prediction": predictions,
            "score": np.zeros(len(labels)),
            "target": predictions,
            "correct": pd.array(labels == predictions, dtype="boolean"),
        }
    )
