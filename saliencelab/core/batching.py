"""Running many model evaluations in chunks that fit a memory budget.

Methods with an inner loop (integration steps, noise samples, references) turn
it into rows of one big batch. :func:`run_chunked` evaluates those rows in chunks
sized so that their activations and gradients stay under ``memory_budget``
bytes. What one row costs is measured once by a forward pass of one row under an
:class:`ActivationMeter`, and remembered for the same model and row shape. On a
CPU a chunk is also kept near the size that runs fastest
(:func:`fastest_rows`): the budget is an upper bound, not a target. The chunks
depend only on that measurement and on the device type, so repeated calls split
the rows the same way and give bit-identical results.

Example
-------
>>> seen = []
>>> run_chunked(10, lambda rows: seen.append((rows.start, rows.stop)), 3000, measure=lambda: 250)
>>> seen
[(0, 4), (4, 8), (8, 10)]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Default ``memory_budget``: 1 GiB for a method's activations and gradients."""

_BACKWARD_FACTOR = 3
"""Bytes needed for a forward+backward row, in units of its forward activations:
the saved activations, the gradients flowing back, and working space."""


CPU_CHUNK_BYTES = 16 << 20
"""On a CPU, forward activations per chunk beyond which larger chunks run no faster per row.

About a last-level cache: past it each layer's output leaves the cache before the next layer reads it.
Measured on the project's 2-core EPYC (ms per row of a forward+backward by chunk size; the fastest
chunk held 14 MB on the digits CNN, 17 MB on a small two-input conv net, 6 MB on a small text
transformer; see BENCHMARKS.md). A constant, not a timing, so that chunks never depend on the machine's load."""

CPU_CHUNK_MIN_ROWS = 64
"""On a CPU, the fewest rows :data:`CPU_CHUNK_BYTES` may cut a chunk to: below that, the per-pass fixed
cost and thin matrix products dominate (a ResNet-18-shaped net at 64², 2 MB a row, runs 16 rows 1.26× and
64 rows 1.0× as long per row as its fastest)."""


_BYTES_PER_ROW: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""model -> {(kind of pass, row shape, dtype, device): bytes one row allocates}."""


class ActivationMeter(TorchDispatchMode):
    """Counts the bytes of every new tensor that torch operations return while active.

    It watches the dispatcher, so it also sees the operations of TorchScript and
    exported models; views and in-place results (storage shared with an
    argument) allocate nothing and are not counted.

    Example
    -------
    >>> x = torch.ones(4, 4)
    >>> with ActivationMeter() as meter:
    ...     _ = x.relu()
    >>> meter.bytes
    64
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        shared = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for leaf in tree_leaves(result):
            if (
                isinstance(leaf, torch.Tensor)
                and leaf.layout == torch.strided
                and leaf.untyped_storage().data_ptr() not in shared
            ):
                self.bytes += leaf.numel() * leaf.element_size()
        return result


def rows_per_chunk(bytes_per_row: int, memory_budget: int, passes: float = _BACKWARD_FACTOR, own: int = 0) -> int:
    """How many rows fit the budget, at least one.

    ``passes`` is what a row needs in units of its forward activations, ``own``
    the bytes the method itself holds per row (its points, noise, masks, gradients).

    Example
    -------
    >>> rows_per_chunk(1000, 30_000), rows_per_chunk(1000, 30_000, own=2000)
    (10, 6)
    """
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes; got {memory_budget}")
    return max(1, int(memory_budget // max(1, passes * bytes_per_row + own)))


def fastest_rows(bytes_per_row: int) -> int:
    """On a CPU, the chunk size that runs about fastest per row: :data:`CPU_CHUNK_BYTES` of forward
    activations, at least :data:`CPU_CHUNK_MIN_ROWS` rows.

    Example
    -------
    >>> fastest_rows(27_000), fastest_rows(2_000_000)
    (621, 64)
    """
    return max(CPU_CHUNK_MIN_ROWS, CPU_CHUNK_BYTES // max(1, bytes_per_row))


def check_row_fits(row_bytes: int, memory_budget: int) -> None:
    """Refuse a budget smaller than what one row of a method's own tensors needs.

    Example
    -------
    >>> check_row_fits(4096, 1000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: one row of this method holds 4096 bytes of its own (...), more than memory_budget=1000 bytes; ...
    """
    if row_bytes > memory_budget:
        raise ValueError(
            f"one row of this method holds {row_bytes} bytes of its own (points, noise, masks, gradients), "
            f"more than memory_budget={memory_budget} bytes; raise memory_budget to at least {row_bytes} bytes "
            "(or pass None for the default, 1 GiB)"
        )


def run_chunked(
    total_rows: int,
    run: Callable[[slice], None],
    memory_budget: int | None,
    *,
    measure: Callable[[], int],
    owner: object = None,
    key: Hashable = None,
    passes: float = _BACKWARD_FACTOR,
    row_bytes: int = 0,
    cpu: bool = False,
) -> None:
    """Call ``run`` on consecutive slices covering ``range(total_rows)`` under the budget.

    ``measure()`` returns the forward-pass bytes of one row; it is called only
    when the value is not yet remembered for ``owner`` (usually the model) and
    ``key`` (the row's shape, dtype and device), and not at all for a single row.
    ``passes`` is what a row needs in units of its forward activations (default:
    a forward+backward pass). ``row_bytes`` is what the method holds of its own
    per row, on top of the model's activations: a budget that cannot hold one
    row of it is refused (:func:`check_row_fits`). A model whose one-row
    activations exceed the budget still runs, one row at a time. ``cpu``: the
    rows run on a CPU, where chunks are also capped at :func:`fastest_rows`.
    The chunks are as even as their number allows: a last chunk of a few rows
    would pay a whole pass's fixed cost for them.
    ``run`` must not depend on how the rows are split.
    """
    if total_rows <= 0:
        return
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    check_row_fits(row_bytes, budget)
    size = 1
    if total_rows > 1:
        known = _remembered(owner, key)
        if known is None:
            known = measure()
            _remember(owner, key, known)
        size = rows_per_chunk(known, budget, passes, row_bytes)
        if cpu:
            size = min(size, fastest_rows(known))
        size = -(-total_rows // -(-total_rows // size))  # as many chunks, evened out: 8 rows by 7 run as 4 + 4
    for first in range(0, total_rows, size):
        run(slice(first, min(first + size, total_rows)))


def _remembered(owner: object, key: Hashable) -> int | None:
    if owner is None:
        return None
    try:
        return _BYTES_PER_ROW.get(owner, {}).get(key)
    except TypeError:  # an owner that cannot be weakly referenced is measured every time
        return None


def _remember(owner: object, key: Hashable, bytes_per_row: int) -> None:
    if owner is None:
        return
    try:
        _BYTES_PER_ROW.setdefault(owner, {})[key] = bytes_per_row
    except TypeError:
        pass
