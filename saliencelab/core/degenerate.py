"""Maps that carry no attribution: all zero, constant, or not finite.

A constant map ranks no feature above another, so every check that compares
rankings (deletion, insertion, the randomisation checks) would measure noise
or, worse, reward it: a constant map's rank correlation with anything is
undefined, and reading it as 0 passes a randomisation check. Such maps are
flagged per sample (``Attribution.info["degenerate"]``) and fail every check.

Example
-------
>>> import torch
>>> maps = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 3.0), torch.eye(2)[None]])
>>> degenerate_maps(maps).tolist()
[True, True, False]
>>> describe_degenerate(degenerate_maps(maps))
'inputs 0, 1 (2 of 3)'
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch

_CHECKED_BY_CALLER: ContextVar[bool] = ContextVar("degenerate_maps_checked_by_caller", default=False)

ROUNDING = 4.0
"""A spread of at most this many units in the last place of the map's largest value counts as constant."""


def degenerate_maps(values: torch.Tensor) -> torch.Tensor:
    """Per sample, whether its map is constant (all zero included) or holds NaN or Inf; shape ``(N,)``.

    A map counts as constant when ``max - min`` is at most :data:`ROUNDING` units in
    the last place of its largest magnitude: a spread that small is rounding, not
    a ranking. Integer and boolean maps are compared exactly.

    Example
    -------
    >>> degenerate_maps(torch.tensor([[1.0, 1.0 + 1e-9], [1.0, 1.1], [float("nan"), 1.0]])).tolist()
    [True, False, True]
    """
    return as_flags(degenerate_rows(values), values.device)


def degenerate_rows(values: torch.Tensor) -> list[bool]:
    """:func:`degenerate_maps` as a list: read without a tensor operation per answer.

    Example
    -------
    >>> degenerate_rows(torch.tensor([[2.0, 2.0], [0.0, 1.0]]))
    [True, False]
    """
    if values.ndim == 0:
        raise ValueError("degenerate_maps needs a batch of maps, (N, ...); got a scalar")
    flat = values.detach().reshape(values.shape[0], -1)
    if flat.shape[1] == 0:
        return [True] * flat.shape[0]
    if not flat.is_floating_point():
        return (flat.amax(dim=1) == flat.amin(dim=1)).tolist()
    lows, highs = torch.aminmax(flat, dim=1)  # NaN in a row makes both NaN, Inf makes one of them infinite
    tolerance = ROUNDING * torch.finfo(flat.dtype).eps
    return [  # per row in Python: one reduction over the maps, then no tensor operation per row-sized result
        not (math.isfinite(low) and math.isfinite(high)) or high - low <= tolerance * max(abs(high), abs(low))
        for low, high in zip(lows.tolist(), highs.tolist(), strict=True)
    ]


def as_flags(rows: list[bool], device: torch.device) -> torch.Tensor:
    """``rows`` as a bool tensor on ``device``.

    Example
    -------
    >>> as_flags([True, False], torch.device("cpu"))
    tensor([ True, False])
    """
    return torch.from_numpy(np.array(rows, dtype=bool)).to(device)  # torch.tensor(list) is 6× slower


def describe_degenerate(flags: torch.Tensor) -> str:
    """The flagged inputs in words, e.g. ``'inputs 0, 3 (2 of 6)'``; ``''`` when none is flagged.

    Example
    -------
    >>> describe_degenerate(torch.tensor([False, True])), describe_degenerate(torch.tensor([False]))
    ('input 1 (1 of 2)', '')
    """
    where = flags.nonzero()[:, 0].tolist()
    if not where:
        return ""
    shown = ", ".join(str(i) for i in where[:8]) + (", ..." if len(where) > 8 else "")
    return f"input{'s' if len(where) > 1 else ''} {shown} ({len(where)} of {flags.numel()})"


@contextmanager
def checked_by_caller() -> Iterator[None]:
    """Within the block, in this thread, methods flag constant maps without warning: the caller judges them.

    The checks use it: a randomised model's blank map is a finding of the check,
    not a surprise to warn about.

    Example
    -------
    >>> with checked_by_caller():
    ...     warns_about_degenerate_maps()
    False
    >>> warns_about_degenerate_maps()
    True
    """
    token = _CHECKED_BY_CALLER.set(True)
    try:
        yield
    finally:
        _CHECKED_BY_CALLER.reset(token)


def warns_about_degenerate_maps() -> bool:
    """Whether a method should warn about the constant maps it returns (see :func:`checked_by_caller`).

    Example
    -------
    >>> warns_about_degenerate_maps()
    True
    """
    return not _CHECKED_BY_CALLER.get()
