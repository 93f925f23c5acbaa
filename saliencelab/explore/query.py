"""The sample grid's filters, sorting and pages, applied to the run table with pandas.

A :class:`TableQuery` is read from a page's query string (:meth:`TableQuery.parse`),
checked against the run (unknown columns, methods or values are a ``ValueError``
that says what is allowed) and applied by :func:`select`. Filters: the label
(``label``), the prediction (``prediction``), right or wrong (``correct``), the
method whose metrics are shown and judged (``method``), its degenerate maps
(``degenerate``), its completeness verdict (``verdict``: ``pass`` when the
completeness error is at most ``Thresholds().complete`` of ``|score|``, as in the
HTML report) and ranges of any numeric column (``range=COLUMN:LOW:HIGH``, either
end may be empty). Sorting by any column (missing values last), pages of at most
:data:`MAX_PAGE_SIZE` rows.

Example
-------
>>> from saliencelab.explore.synthetic import synthetic_run
>>> from saliencelab.explore.view import RunView
>>> view = RunView(synthetic_run(40))
>>> query = TableQuery.parse({"correct": "true", "sort": "gradient.sparseness", "order": "desc", "size": "5"}, view)
>>> page = select(view, query)
>>> page["total"] == int(view.table["correct"].sum()), len(page["rows"])
(True, 5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from saliencelab.explore.view import BASE_COLUMNS, RunView, jsonable
from saliencelab.report.thresholds import Thresholds

MAX_PAGE_SIZE = 200
"""The most rows one page of the grid holds."""

TOKENS_SHOWN = 24
"""How many tokens of a text sample the grid shows."""


@dataclass(frozen=True)
class TableQuery:
    """One request for a page of the sample grid (see the module's docstring).

    Example
    -------
    >>> TableQuery().size
    50
    """

    label: int | None = None
    prediction: int | None = None
    correct: bool | None = None
    method: str | None = None
    degenerate: bool | None = None
    verdict: str | None = None
    ranges: tuple[tuple[str, float | None, float | None], ...] = field(default_factory=tuple)
    sort: str = "index"
    descending: bool = False
    page: int = 0
    size: int = 50

    @classmethod
    def parse(cls, params: Mapping[str, Any], view: RunView) -> TableQuery:
        """Read a query from a page's query parameters (repeated ``range`` as a list), checked against ``view``.

        Example
        -------
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> from saliencelab.explore.view import RunView
        >>> TableQuery.parse({"sort": "gradient.nope"}, RunView(synthetic_run(4)))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: sort: unknown column 'gradient.nope'; sort by one of index, label, ...
        """
        method = params.get("method") or None
        if method is not None and method not in view.methods:
            raise ValueError(f"method: the run has no method {method!r}; it has {', '.join(view.methods)}")
        if (params.get("degenerate") or params.get("verdict")) and method is None:
            raise ValueError("degenerate and verdict judge one method's maps: give method= too")
        verdict = params.get("verdict") or None
        if verdict not in (None, "pass", "fail"):
            raise ValueError(f"verdict: use pass or fail; got {verdict!r}")
        ranges = params.get("range") or []
        ranges = [ranges] if isinstance(ranges, str) else list(ranges)
        sort = params.get("sort") or "index"
        order = params.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise ValueError(f"order: use asc or desc; got {order!r}")
        return cls(
            label=_integer(params, "label"),
            prediction=_integer(params, "prediction"),
            correct=_boolean(params, "correct"),
            method=method,
            degenerate=_boolean(params, "degenerate"),
            verdict=verdict,
            ranges=tuple(_range(text, view) for text in ranges),
            sort=_column(sort, view, "sort", numeric=False),
            descending=order == "desc",
            page=_integer(params, "page", 0, low=0),
            size=_integer(params, "size", 50, low=1, high=MAX_PAGE_SIZE),
        )


def select(view: RunView, query: TableQuery) -> dict[str, Any]:
    """Return one page of the grid: ``total`` matching rows, ``page``, ``pages`` and the page's ``rows``.

    Each row has the base columns, the class names (``label_name``,
    ``prediction_name``), the shown method's metrics (``metrics``, keyed by
    metric name) and, in a text run, the start of its ``text``.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> view = RunView(synthetic_run(10))
    >>> select(view, TableQuery(size=4, page=2))["rows"][0]["index"]
    8
    """
    table = matching(view, query)
    if query.sort != "index":
        table = table.sort_values(query.sort, ascending=not query.descending, na_position="last", kind="stable")
    elif query.descending:
        table = table.iloc[::-1]
    total = len(table)
    chunk = table.iloc[query.page * query.size : (query.page + 1) * query.size]
    method = query.method or view.methods[0]
    return {
        "total": total,
        "page": query.page,
        "pages": max(1, -(-total // query.size)),
        "method": method,
        "rows": [grid_row(view, row, method) for row in chunk.to_dict("records")],
    }


def matching(view: RunView, query: TableQuery) -> pd.DataFrame:
    """The table's rows that pass every filter of ``query``, in the table's order.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> view = RunView(synthetic_run(30))
    >>> rows = matching(view, TableQuery(ranges=(("score", 0.5, None),)))
    >>> bool((rows["score"] >= 0.5).all()), len(rows) == int((view.table["score"] >= 0.5).sum())
    (True, True)
    """
    table = view.table
    keep = np.ones(len(table), dtype=bool)
    for column, value in (("label", query.label), ("prediction", query.prediction), ("correct", query.correct)):
        if value is not None:
            keep &= (table[column] == value).fillna(False).to_numpy(dtype=bool)
    if query.degenerate is not None:
        degenerate = _method_column(view, query.method, "degenerate").fillna(False).astype(bool).to_numpy()
        keep &= degenerate == query.degenerate
    if query.verdict is not None:
        keep &= completeness_passes(view, query.method).to_numpy() == (query.verdict == "pass")
    for column, low, high in query.ranges:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        inside = ~np.isnan(values)
        if low is not None:
            inside &= values >= low
        if high is not None:
            inside &= values <= high
        keep &= inside
    return table[keep]


def completeness_passes(view: RunView, method: str) -> pd.Series:
    """Per sample: does ``method``'s completeness error stay within ``Thresholds().complete`` of ``|score|``?

    A sample without a completeness error (a method without a reference) neither passes nor fails: False.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> view = RunView(synthetic_run(30, methods=("gradient", "occlusion")))
    >>> bool(completeness_passes(view, "gradient").all()), bool(completeness_passes(view, "occlusion").all())
    (True, False)
    """
    error = pd.to_numeric(_method_column(view, method, "completeness_error"), errors="coerce")
    allowed = Thresholds().complete * pd.to_numeric(view.table["score"], errors="coerce").abs()
    return (error <= allowed).fillna(False).astype(bool)


def _method_column(view: RunView, method: str | None, metric: str) -> pd.Series:
    column = f"{method}.{metric}"
    if column not in view.table.columns:
        raise ValueError(f"the run's table has no {column!r}: the run did not compute {metric} for {method}")
    return view.table[column]


def grid_row(view: RunView, row: dict[str, Any], method: str) -> dict[str, Any]:
    """One table row as the grid shows it: base columns, class names, ``method``'s metrics, a text's start.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> from saliencelab.explore.view import RunView
    >>> view = RunView(synthetic_run(4, classes=("a", "b"), methods=("gradient",)))
    >>> sorted(grid_row(view, view.table.iloc[0].to_dict(), "gradient")["metrics"])[:2]
    ['completeness_error', 'degenerate']
    """
    found = {name: row.get(name) for name in BASE_COLUMNS}
    found["label_name"] = view.class_name(row.get("label"))
    found["prediction_name"] = view.class_name(row.get("prediction"))
    prefix = method + "."
    found["metrics"] = {key[len(prefix) :]: value for key, value in row.items() if key.startswith(prefix)}
    if view.text:
        found["text"] = " ".join(map(str, list(row["tokens"])[:TOKENS_SHOWN]))
    return jsonable(found)


def _column(name: str, view: RunView, what: str, *, numeric: bool) -> str:
    columns = [str(c) for c in view.table.columns if c != "tokens"]
    if numeric:
        columns = [c for c in columns if pd.api.types.is_numeric_dtype(view.table[c])]
    if name not in columns:
        raise ValueError(f"{what}: unknown column {name!r}; {what} by one of {', '.join(columns)}")
    return name


def _range(text: str, view: RunView) -> tuple[str, float | None, float | None]:
    column, _, bounds = str(text).rpartition(":")
    column, _, low = column.rpartition(":")
    if not column:
        raise ValueError(f"range: write COLUMN:LOW:HIGH (either end may be empty), e.g. score:0.5:; got {text!r}")
    return _column(column, view, "range", numeric=True), _number(low, "range"), _number(bounds, "range")


def _number(text: str, what: str) -> float | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None


def _integer(params: Mapping[str, Any], name: str, default: int | None = None, *, low: int | None = None,
             high: int | None = None) -> int | None:  # fmt: skip
    text = params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a whole number") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: {value} is outside [{low}, {high if high is not None else 'any'}]")
    return value


def _boolean(params: Mapping[str, Any], name: str) -> bool | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    if text not in ("true", "false"):
        raise ValueError(f"{name}: use true or false; got {text!r}")
    return text == "true"

