"""Sliding windows over the feature dimensions: parsing, positions, masks and coverage.

A window is a hyperrectangle over the features of one sample. ``window`` and
``stride`` are ints (the same for every spatial dimension) or tuples: one entry
per spatial dimension (channels are then covered whole), or one per feature
dimension including the channels. For inputs ``(N, C, *spatial)`` the spatial
dimensions are those after the channel; for ``(N, D)`` the one feature
dimension is spatial. The first window starts at index 0 of every dimension,
the next ones ``stride`` further on, until the last one reaches the end; the
last window is cut off at the edge where the stride does not fit (as in
Captum). Windows never wrap around the edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Size = int | tuple[int, ...]


def check_size_spec(value: object, what: str, allow_none: bool = True) -> None:
    """Reject a ``window`` or ``stride`` that is not an int or tuple of positive ints.

    Example
    -------
    >>> check_size_spec((2, 0), "window")
    Traceback (most recent call last):
    ...
    ValueError: window must be a positive int or a tuple of positive ints; got (2, 0)
    """
    if value is None and allow_none:
        return
    items = value if isinstance(value, tuple) else (value,)
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
        raise ValueError(f"{what} must be a positive int or a tuple of positive ints; got {value!r}")


def spatial_dims(feature_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The feature dimensions that windows slide over by default (all but the channel).

    Example
    -------
    >>> spatial_dims((3, 32, 32)), spatial_dims((10,))
    ((1, 2), (0,))
    """
    return tuple(range(1, len(feature_shape))) if len(feature_shape) >= 2 else (0,)


def expand_size(value: Size, feature_shape: tuple[int, ...], what: str, whole: int | None = None) -> tuple[int, ...]:
    """``window``/``stride`` as one int per feature dimension.

    Dimensions that ``value`` does not name get ``whole`` (default: their full size).

    Example
    -------
    >>> expand_size(4, (3, 8, 8), "window")
    (3, 4, 4)
    >>> expand_size((1, 2, 2), (3, 8, 8), "stride")
    (1, 2, 2)
    """
    check_size_spec(value, what, allow_none=False)
    spatial = spatial_dims(feature_shape)
    items = value if isinstance(value, tuple) else (value,) * len(spatial)
    if len(items) == len(feature_shape):
        return tuple(items)
    if len(items) != len(spatial):
        raise ValueError(
            f"{what}={value!r} has {len(items)} entries; inputs with features of shape {feature_shape} need "
            f"one per spatial dimension ({len(spatial)}) or one per feature dimension ({len(feature_shape)})"
        )
    full = list(feature_shape) if whole is None else [whole] * len(feature_shape)
    for dim, item in zip(spatial, items, strict=True):
        full[dim] = item
    return tuple(full)


@dataclass(frozen=True)
class Windows:
    """The windows of size ``size`` and step ``stride`` over features of shape ``feature_shape``.

    Example
    -------
    >>> w = Windows((1, 5), (1, 2), (1, 2))
    >>> w.counts, w.starts(torch.arange(w.total)).tolist()
    ((1, 3), [[0, 0], [0, 2], [0, 4]])
    >>> w.masks(torch.tensor([2])).int().tolist()  # the last window is cut off at the edge
    [[[0, 0, 0, 0, 1]]]
    """

    feature_shape: tuple[int, ...]
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @classmethod
    def build(cls, feature_shape: tuple[int, ...], window: Size, stride: Size, method: str) -> Windows:
        """Check ``window`` and ``stride`` against the features and build the windows."""
        size = expand_size(window, feature_shape, "window")
        step = expand_size(stride, feature_shape, "stride", whole=1)
        for dim, (extent, w, s) in enumerate(zip(feature_shape, size, step, strict=True)):
            if w > extent:
                raise ValueError(
                    f"{method}: the window {size} is larger than the input's features {feature_shape} "
                    f"in feature dimension {dim} ({w} > {extent}); choose a smaller window"
                )
            if s > w and w < extent:
                raise ValueError(
                    f"{method}: the stride {step} is larger than the window {size} in feature dimension "
                    f"{dim} ({s} > {w}), which would leave elements that no window covers; use stride <= window"
                )
        return cls(tuple(feature_shape), size, step)

    @property
    def counts(self) -> tuple[int, ...]:
        """Number of window positions along each feature dimension."""
        return tuple(
            math.ceil((d - w) / s) + 1 for d, w, s in zip(self.feature_shape, self.size, self.stride, strict=True)
        )

    @property
    def total(self) -> int:
        return math.prod(self.counts)

    def starts(self, index: torch.Tensor) -> torch.Tensor:
        """The first element of windows ``index`` (flat, row-major over :attr:`counts`), shape ``(rows, dims)``."""
        coords = []
        remaining = index
        for count, step in zip(reversed(self.counts), reversed(self.stride), strict=True):
            coords.append((remaining % count) * step)
            remaining = remaining // count
        return torch.stack(coords[::-1], dim=1)

    def masks(self, index: torch.Tensor) -> torch.Tensor:
        """Boolean masks of windows ``index``, shape ``(rows, *feature_shape)``, True inside."""
        starts = self.starts(index)
        mask = torch.ones((len(index),) + (1,) * len(self.feature_shape), dtype=torch.bool, device=index.device)
        for dim, (extent, w) in enumerate(zip(self.feature_shape, self.size, strict=True)):
            position = torch.arange(extent, device=index.device)
            inside = (position >= starts[:, dim : dim + 1]) & (position < starts[:, dim : dim + 1] + w)
            shape = [len(index)] + [1] * len(self.feature_shape)
            shape[dim + 1] = extent
            mask = mask & inside.view(shape)
        return mask

    def indicators(self, dim: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """``M[j, e] = 1`` where window position ``j`` along ``dim`` covers element ``e``."""
        extent, w, step = self.feature_shape[dim], self.size[dim], self.stride[dim]
        start = torch.arange(self.counts[dim], device=device)[:, None] * step
        position = torch.arange(extent, device=device)[None, :]
        return ((position >= start) & (position < start + w)).to(dtype)

    def spread(self, per_window: torch.Tensor) -> torch.Tensor:
        """Each element's mean over the windows covering it.

        ``per_window`` has shape ``(N, total)``; the result ``(N, *feature_shape)``.
        Sums run per dimension (windows are products of intervals), in float64.

        Example
        -------
        >>> w = Windows((4,), (2,), (1,))
        >>> w.spread(torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)).tolist()
        [[1.0, 1.5, 3.0, 4.0]]
        """
        n = per_window.shape[0]
        values = per_window.to(torch.float64).reshape(n, *self.counts)
        coverage = torch.ones((), dtype=torch.float64, device=per_window.device)
        for dim in range(len(self.feature_shape)):
            m = self.indicators(dim, device=per_window.device)
            values = (values.movedim(dim + 1, -1) @ m).movedim(-1, dim + 1)
            shape = [1] * len(self.feature_shape)
            shape[dim] = self.feature_shape[dim]
            coverage = coverage * m.sum(0).view(shape)
        return values / coverage
