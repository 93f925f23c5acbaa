"""Running many model evaluations in chunks that fit a memory budget.

Methods with an inner loop (integration steps, noise samples, references) turn
it into rows of one big batch. :func:`run_chunked` evaluates those rows: the
first row alone while an :class:`ActivationMeter` counts what one row's forward
pass allocates, then the rest in chunks sized so that their activations and
gradients stay under ``memory_budget`` bytes.

Example
-------
>>> seen = []
>>> run_chunked(10, lambda rows: seen.append((rows.start, rows.stop)), memory_budget=1 << 20)
>>> seen[0], seen[-1][1]
((0, 1), 10)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Default ``memory_budget``: 1 GiB for a method's activations and gradients."""

_BACKWARD_FACTOR = 3
"""Bytes needed for a forward+backward row, in units of its forward activations:
the saved activations, the gradients flowing back, and working space."""


class ActivationMeter(TorchFunctionMode):
    """Counts the bytes of every tensor that torch operations return while active.

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

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(result):
            if isinstance(leaf, torch.Tensor) and leaf.layout == torch.strided:
                self.bytes += leaf.numel() * leaf.element_size()
        return result


def rows_per_chunk(bytes_per_row: int, memory_budget: int) -> int:
    """How many rows fit the budget, at least one.

    Example
    -------
    >>> rows_per_chunk(1000, 30_000)
    10
    """
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes; got {memory_budget}")
    return max(1, int(memory_budget // max(1, _BACKWARD_FACTOR * bytes_per_row)))


def run_chunked(total_rows: int, run: Callable[[slice], None], memory_budget: int | None) -> None:
    """Call ``run`` on consecutive slices covering ``range(total_rows)`` under the budget.

    The first slice is a single row, measured; later slices take as many rows as
    the budget allows. ``run`` must not depend on how the rows are split.
    """
    if total_rows <= 0:
        return
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
    with ActivationMeter() as meter:
        run(slice(0, 1))
    size = rows_per_chunk(meter.bytes, budget)
    for start in range(1, total_rows, size):
        run(slice(start, min(start + size, total_rows)))
