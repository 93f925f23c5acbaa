"""What the explorer reads from a run: its table once, its arrays one sample at a time.

A :class:`RunView` wraps any object with the read side of ``sl.load_run``'s
``Run`` (``path``, ``n``, ``methods``, ``classes``, ``table``, ``inputs``,
``maps``, ``provenance``, ``analysis``) and answers the explorer's questions:
which kind each attributed input is (an image, a token sequence, a feature
vector; inputs passed on unattributed, such as an ``attention_mask``, have no
maps and are not shown), which per-sample metrics the table has, and the class
names. It keeps the table (one
row per sample) and nothing of the arrays: inputs and maps are read by sample
index when a page asks for them, so memory does not grow with the maps.

Example
-------
>>> from saliencelab.explore.synthetic import synthetic_run
>>> view = RunView(synthetic_run(4, methods=("gradient",), classes=("cat", "dog")))
>>> view.kinds, view.metrics[:2], view.class_name(1)
({'input': 'image'}, ['completeness_error', 'degenerate'], 'dog')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

RUN_ATTRIBUTES = ("path", "n", "methods", "classes", "table", "inputs", "maps", "provenance", "analysis")
"""What the explorer reads from a run (the read side of ``sl.load_run``)."""

BASE_COLUMNS = ("index", "label", "prediction", "score", "target", "correct")
"""The table's columns that every run has, before the per-method metrics."""


class RunView:
    """The explorer's read-only view of a run (see the module's docstring).

    Parameters
    ----------
    run:
        A ``Run`` from ``sl.load_run(path)``, or any object with the same attributes.

    Example
    -------
    >>> RunView(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: the explorer needs a run from sl.load_run(path); <object object at ...> has no attribute 'path' ...
    """

    def __init__(self, run: Any) -> None:
        for name in RUN_ATTRIBUTES:
            if not hasattr(run, name):
                raise TypeError(
                    f"the explorer needs a run from sl.load_run(path); {run!r} has no attribute {name!r} "
                    f"(a run has {', '.join(RUN_ATTRIBUTES)})"
                )
        self.run = run
        self.path = str(run.path)
        self.n = int(run.n)
        self.methods: list[str] = [str(m) for m in run.methods]
        self.classes: list[str] | None = None if run.classes is None else [str(c) for c in run.classes]
        self.table: pd.DataFrame = run.table.reset_index(drop=True)
        missing = [c for c in BASE_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(
                f"the run's table lacks the columns {', '.join(missing)} (a run has {', '.join(BASE_COLUMNS)}); "
                "recompute the run with sl.run"
            )
        if len(self.table) != self.n:
            raise ValueError(
                f"the run is not finished: its table has {len(self.table)} of its {self.n} samples. Finish it by "
                "calling sl.run (or saliencelab run) again with the same arguments: it computes only the missing chunks"
            )
        mapped = run.maps[self.methods[0]] if self.methods else {}
        self.kinds = {name: input_kind(array.shape[1:], "tokens" in self.table)
                      for name, array in run.inputs.items() if name in mapped}  # fmt: skip
        self.metrics = _metric_names(self.table.columns, self.methods)
        self.text = "tokens" in self.table.columns

    def class_name(self, index: Any) -> str | None:
        """The name of class ``index`` (its number as text where the run has no names; None for a missing label).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> view = RunView(synthetic_run(4, classes=None))
        >>> view.class_name(2), view.class_name(float("nan"))
        ('2', None)
        """
        if index is None or (isinstance(index, float) and math.isnan(index)) or index is pd.NA:
            return None
        index = int(index)
        if self.classes is not None and 0 <= index < len(self.classes):
            return self.classes[index]
        return str(index)

    def check_index(self, index: int) -> int:
        """Return ``index`` if the run has that sample, else raise ``KeyError`` saying the valid range.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4)).check_index(4)
        Traceback (most recent call last):
        KeyError: 'sample 4 is not in the run: indices go from 0 to 3'
        """
        if not 0 <= index < self.n:
            raise KeyError(f"sample {index} is not in the run: indices go from 0 to {self.n - 1}")
        return index

    def check_method(self, method: str) -> str:
        """Return ``method`` if the run has maps of it, else raise ``KeyError`` naming the run's methods.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4, methods=("gradient",))).check_method("lime")
        Traceback (most recent call last):
        KeyError: "the run has no method 'lime'; it has gradient"
        """
        if method not in self.methods:
            raise KeyError(f"the run has no method {method!r}; it has {', '.join(self.methods)}")
        return method

    def check_input(self, name: str) -> str:
        """Return ``name`` if the run has that input, else raise ``KeyError`` naming the run's inputs.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4)).check_input("../x")
        Traceback (most recent call last):
        KeyError: "the run has no input '../x'; it has input"
        """
        if name not in self.kinds:
            raise KeyError(f"the run has no input {name!r}; it has {', '.join(self.kinds)}")
        return name

    def input_sample(self, name: str, index: int) -> np.ndarray:
        """Read one sample of one input (lazily, from the run's store).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4)).input_sample("input", 3).shape
        (1, 8, 8)
        """
        return np.asarray(self.run.inputs[self.check_input(name)][self.check_index(index)])

    def map_sample(self, method: str, name: str, index: int) -> np.ndarray:
        """Read one sample's map of one method and input (lazily, from the run's store).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4)).map_sample("occlusion", "input", 0).dtype
        dtype('float32')
        """
        maps = self.run.maps[self.check_method(method)]
        return np.asarray(maps[self.check_input(name)][self.check_index(index)], dtype=np.float32)

    def token_values(self, method: str, name: str, index: int) -> np.ndarray:
        """One value per token of :meth:`tokens`: the map at the positions where ``attention_mask`` is not 0.

        ``sl.run(..., tokenizer=)`` stores the real tokens only while the map
        keeps every position; without an ``attention_mask`` input the tokens
        are the map's first positions.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> view = RunView(synthetic_run(4, text=True))
        >>> len(view.token_values("gradient", "input", 0)) == len(view.tokens(0))
        True
        """
        values = self.map_sample(method, name, index)
        mask = self.run.inputs.get("attention_mask")
        if mask is not None and tuple(mask.shape) == (self.n, *values.shape):
            values = values[np.asarray(mask[index]) != 0]
        return values[: len(self.tokens(index))]

    def tokens(self, index: int) -> list[str]:
        """The tokens of sample ``index`` of a text run (empty for other runs).

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> RunView(synthetic_run(4, text=True)).tokens(0)[1]
        '<b>bold</b>'
        """
        if not self.text:
            return []
        return [str(token) for token in self.table.at[self.check_index(index), "tokens"]]


def input_kind(shape: tuple[int, ...], text: bool) -> str:
    """How one input's sample of ``shape`` is shown: ``"text"``, ``"sequence"``, ``"image"`` or ``"array"``.

    A 1-D sample is a token sequence in a text run (a table with ``tokens``)
    and a feature vector otherwise; a 2-D or 3-D one (``(H, W)``, ``(C, H, W)``)
    is an image; anything else has no picture.

    Example
    -------
    >>> input_kind((3, 8, 8), False), input_kind((12,), True), input_kind((12,), False), input_kind((2, 3, 4, 5), False)
    ('image', 'text', 'sequence', 'array')
    """
    if len(shape) == 1:
        return "text" if text else "sequence"
    return "image" if len(shape) in (2, 3) else "array"


def _metric_names(columns: pd.Index, methods: list[str]) -> list[str]:
    """The metric suffixes ``m.<metric>`` found in the table for any method, in the table's order."""
    names: list[str] = []
    for column in map(str, columns):
        for method in methods:
            if column.startswith(method + ".") and column[len(method) + 1 :] not in names:
                names.append(column[len(method) + 1 :])
    return names


def jsonable(value: Any) -> Any:
    """Return ``value`` with numpy and pandas scalars as Python ones, NaN and NA as None (for JSON).

    Example
    -------
    >>> jsonable({"a": np.float32(1.5), "b": [np.nan, np.int64(2)], "c": pd.NA, "d": np.array([True])})
    {'a': 1.5, 'b': [None, 2], 'c': None, 'd': [True]}
    """
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
