"""Incremental re-inference for occlusion: recompute only what an occluded window changes.

An occluded input differs from the clean one only inside its window, and a
convolution, a batch norm, a ReLU or a max pool changes its output only where
its receptive field meets a changed input (Krypton, Nakandala et al. 2019). A
:class:`Patched` value stands for a batch of R feature maps, each equal to the
clean map of its sample (``base``, computed once per call and kept in a memo)
except inside one box per row, whose values it carries (``patch``,
R × C × h × w; the boxes may reach past the map's edge, where nothing exists).
The model runs on it as on a tensor, under the :class:`Incremental`
interception: each supported operation computes the new
box from the old one, gathering the input region it needs (clean values
around, zero or −inf padding outside the map) and running the same operation
on that region only. Every other operation, or one whose box would cover most
of its output map, first materialises the full batch and runs normally from
there on, so results equal plain batched inference up to the rounding of
convolutions computed on a sub-region. Supported: ``conv2d`` (zero padding),
``batch_norm`` in eval mode, ``relu`` (any spelling, in place or not),
``max_pool2d`` (floor mode) and the sum of two patched maps (residual
connections). Boxes are kept inside their maps (shifted inward where they
would reach past an edge), so nothing is computed where no value exists.

Approximate mode (``threshold``, Krypton's projective-field thresholding):
a sliding-window operation whose box would be wider than ``threshold`` times
its output map along an axis keeps only that many central positions, and the
values outside the truncated box are taken as unchanged (clean). That is an
approximation: the score of an occluded image changes by what the cut-off
border would have contributed. With ``threshold=None`` (exact) or ``1`` the
boxes are never cut."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from saliencelab.engine import Call, Interception

DENSE_FRACTION = 0.75
"""A box covering at least this fraction of its map is materialised: the rest runs on full maps."""


def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def crop(maps: torch.Tensor, sample: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int):
    """Boxes ``[top, top+h) × [left, left+w)`` of ``maps[sample]`` (clamped at the edges), ``(R, C, h, w)``.

    Example
    -------
    >>> maps = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> crop(maps, torch.tensor([0]), torch.tensor([1]), torch.tensor([2]), 2, 2)[0, 0].tolist()
    [[6.0, 7.0], [10.0, 11.0]]
    """
    height, width = maps.shape[2:]
    rows = (top[:, None] + torch.arange(h, device=maps.device)).clamp(0, height - 1)
    cols = (left[:, None] + torch.arange(w, device=maps.device)).clamp(0, width - 1)
    picked = maps[sample[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (R, h, w, C)
    return picked.permute(0, 3, 1, 2)


class Patched:
    """R feature maps: the clean map of each row's sample, with one box of new values per row.

    ``base`` ``(S, C, H, W)``: clean maps; ``sample`` ``(R,)``: each row's map
    in ``base``; ``patch`` ``(R, C, h, w)``: the values inside each row's box,
    whose top-left corner is ``(top[r], left[r])`` (possibly outside the map);
    ``threshold``: the projective-field threshold of the approximate mode (see
    the module's docstring), ``None`` for exact.

    Example
    -------
    >>> base = torch.zeros(1, 1, 4, 4)
    >>> p = Patched(base, torch.tensor([0, 0]), torch.ones(2, 1, 2, 2), torch.tensor([0, 3]), torch.tensor([0, 3]))
    >>> with Incremental():
    ...     q = torch.relu(p)  # still patched: ReLU ran on the boxes only
    >>> type(q).__name__, q.patch.shape
    ('Patched', torch.Size([2, 1, 2, 2]))
    >>> p.materialize()[:, 0].sum(dim=(1, 2)).tolist()  # the second box reaches past the corner: 1 element
    [4.0, 1.0]
    """

    def __init__(
        self,
        base: torch.Tensor,
        sample: torch.Tensor,
        patch: torch.Tensor,
        top: torch.Tensor,
        left: torch.Tensor,
        memo: dict | None = None,
        threshold: float | None = None,
    ) -> None:
        self.base, self.sample, self.patch, self.top, self.left = base, sample, patch, top, left
        self.memo, self.threshold = memo, threshold
        self.dense: torch.Tensor | None = None

    def clean(self, key: tuple, pinned: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The clean maps an operation makes of ``base``, computed once per call when a ``memo`` is shared.

        ``key`` holds the ids of ``pinned`` (the base and the operation's tensors, kept alive
        by the memo so that their ids stay theirs) and the operation's other arguments.
        """
        if self.memo is None:
            return compute()
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = (pinned, compute())
        return found[1]

    def derive(self, base: torch.Tensor, patch: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> Patched:
        """A new patched value over the same rows, sharing the memo and the threshold."""
        return Patched(base, self.sample, patch, top, left, self.memo, self.threshold)

    # -- what code that inspects a tensor sees

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.sample), *self.base.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    @property
    def device(self) -> torch.device:
        return self.base.device

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def dim(self) -> int:
        return self.base.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self) -> int:
        return len(self.sample)

    def __getattr__(self, name: str):
        # any other tensor attribute or method: from here on this value is a plain tensor
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)

    # -- the values

    def region(self, top: torch.Tensor, left: torch.Tensor, h: int, w: int, fill: float) -> torch.Tensor:
        """The rows' values over boxes ``[top, top+h) × [left, left+w)``; ``fill`` outside the map.

        Row by row, each box's part inside the map is copied from the clean map
        and then from the row's own box where the two meet: slices, no gathers.
        """
        rows, channels = len(self.sample), self.shape[1]
        height, width = self.shape[2:]
        out = torch.empty((rows, channels, h, w), dtype=self.dtype, device=self.device)
        tops, lefts = top.tolist(), left.tolist()
        if self.dense is not None:
            source, which = self.dense, range(rows)
        else:
            source, which = self.base, self.sample.tolist()
        for r, (t, u, s) in enumerate(zip(tops, lefts, which, strict=True)):
            a0, a1, b0, b1 = max(t, 0), min(t + h, height), max(u, 0), min(u + w, width)
            if (a0, a1, b0, b1) != (t, t + h, u, u + w):
                out[r].fill_(fill)  # only a box reaching past the map needs the fill
            if a0 < a1 and b0 < b1:
                out[r, :, a0 - t : a1 - t, b0 - u : b1 - u] = source[s, :, a0:a1, b0:b1]
        if self.dense is None:
            ph, pw = self.patch.shape[2:]
            boxes = zip(tops, lefts, self.top.tolist(), self.left.tolist(), strict=True)
            for r, (t, u, pt, pu) in enumerate(boxes):
                a0, a1 = max(t, 0, pt), min(t + h, height, pt + ph)
                b0, b1 = max(u, 0, pu), min(u + w, width, pu + pw)
                if a0 < a1 and b0 < b1:
                    out[r, :, a0 - t : a1 - t, b0 - u : b1 - u] = self.patch[r, :, a0 - pt : a1 - pt, b0 - pu : b1 - pu]
        return out

    def materialize(self) -> torch.Tensor:
        """The R full maps, ``(R, C, H, W)``; this value stays materialised."""
        if self.dense is None:
            height, width = self.base.shape[2:]
            zero = torch.zeros_like(self.top)
            self.dense = self.region(zero, zero, height, width, 0.0)
            self.patch = self.base = None  # type: ignore[assignment]
            self.base = torch.empty((0, *self.dense.shape[1:]), dtype=self.dense.dtype, device=self.dense.device)
        return self.dense

    def _become(self, other: Patched) -> Patched:
        """Take ``other``'s values (in-place operations)."""
        self.base, self.sample, self.patch, self.top, self.left = (
            other.base,
            other.sample,
            other.patch,
            other.top,
            other.left,
        )
        self.dense, self.memo, self.threshold = other.dense, other.memo, other.threshold
        return self

    # -- operations

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """Reached where :class:`Incremental` lets a call through unchanged (``zeros_like``): the full maps."""
        return func(*_dense(args), **_dense(kwargs or {}))

    def __add__(self, other):
        return torch.add(self, other)

    def __radd__(self, other):
        return torch.add(other, self)

    def __iadd__(self, other):
        result = torch.add(self, other)
        if isinstance(result, Patched):
            return self._become(result)
        return result

    def __sub__(self, other):
        return torch.sub(self, other)

    def __mul__(self, other):
        return torch.mul(self, other)

    def __rmul__(self, other):
        return torch.mul(other, self)

    def relu(self) -> Patched:
        return torch.relu(self)

    def relu_(self) -> Patched:
        return torch.relu_(self)


def _dense(value):
    if isinstance(value, Patched):
        return value.materialize()
    if isinstance(value, (list, tuple)):
        return type(value)(_dense(v) for v in value)
    if isinstance(value, dict):
        return {k: _dense(v) for k, v in value.items()}
    return value


def _live(value: object) -> bool:
    """A patched value that has not been materialised."""
    return isinstance(value, Patched) and value.dense is None


def _conv2d(call: Call) -> Patched:
    x, weight, bias, groups = (
        call.args[0],
        call.argument(1, "weight"),
        call.argument(2, "bias"),
        call.argument(6, "groups", 1),
    )
    stride = _pair(call.argument(3, "stride", 1))
    padding, dilation = _pair(call.argument(4, "padding", 0)), _pair(call.argument(5, "dilation", 1))
    if not _live(x) or isinstance(weight, Patched) or None in (stride, padding, dilation) or weight.ndim != 4:
        return NotImplemented
    kernel = tuple(weight.shape[2:])

    def op(t: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
        return F.conv2d(t, weight, bias, stride, pad, dilation, groups)

    key = ("conv2d", id(x.base), id(weight), id(bias), stride, padding, dilation, groups)
    return _local(x, kernel, stride, padding, dilation, 0.0, op, key, (x.base, weight, bias))


def _max_pool2d(call: Call) -> Patched:
    x, kernel, stride = call.args[0], _pair(call.argument(1, "kernel_size")), call.argument(2, "stride")
    padding, dilation = call.argument(3, "padding", 0), call.argument(4, "dilation", 1)
    ceil_mode, indices = call.argument(5, "ceil_mode", False), call.argument(6, "return_indices", False)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    if not _live(x) or ceil_mode or indices or None in (kernel, stride, padding, dilation):
        return NotImplemented

    def op(t: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
        return F.max_pool2d(t, kernel, stride, pad, dilation)

    key = ("max_pool2d", id(x.base), kernel, stride, padding, dilation)
    return _local(x, kernel, stride, padding, dilation, float("-inf"), op, key, (x.base,))


def _local(x: Patched, kernel, stride, padding, dilation, fill: float, op, key: tuple, pinned: tuple) -> Patched:
    """A sliding-window operation ``op(tensor, padding)`` on the boxes.

    The new boxes cover every output whose window meets an old box (cut to
    ``x.threshold`` of the map in approximate mode); they are computed from
    the input regions they read, without padding (``fill`` stands for the
    padding outside the map).
    """
    height, width = x.base.shape[2:]
    out_size = [
        (extent + 2 * p - d * (k - 1) - 1) // s + 1
        for extent, k, s, p, d in zip((height, width), kernel, stride, padding, dilation, strict=True)
    ]
    tops, sizes, in_tops, in_sizes = [], [], [], []
    for axis, start in enumerate((x.top, x.left)):
        k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
        reach = d * (k - 1)
        size = (reach + x.patch.shape[2 + axis] - 1 + s - 1) // s + 1
        first = torch.div(start + p - reach, s, rounding_mode="floor")
        first, size = inside(first, size, out_size[axis], x.threshold)
        tops.append(first)
        sizes.append(size)
        in_tops.append(first * s - p)
        in_sizes.append((size - 1) * s + reach + 1)
    if sizes[0] * sizes[1] >= DENSE_FRACTION * out_size[0] * out_size[1]:
        return NotImplemented
    region = x.region(in_tops[0], in_tops[1], in_sizes[0], in_sizes[1], fill)
    base = x.clean(key, pinned, lambda: op(x.base, padding))
    return x.derive(base, op(region, (0, 0)), tops[0], tops[1])


def inside(first: torch.Tensor, size: int, extent: int, threshold: float | None = None) -> tuple[torch.Tensor, int]:
    """Boxes ``[first, first + size)`` along one axis of ``extent`` positions, moved inside ``[0, extent)``.

    A box reaching past an edge is shifted inward (it still covers every
    position of the old box that exists); with a ``threshold`` it is first cut
    to its ``ceil(threshold * extent)`` central positions (approximate mode).

    Example
    -------
    >>> first, size = inside(torch.tensor([-2, 3, 6]), 4, 8)
    >>> first.tolist(), size
    ([0, 3, 4], 4)
    >>> first, size = inside(torch.tensor([-2, 3, 6]), 4, 8, threshold=0.25)  # keep 2 central positions
    >>> first.tolist(), size
    ([0, 4, 6], 2)
    """
    if threshold is not None:
        kept = min(size, max(1, math.ceil(threshold * extent)))
        first, size = first + (size - kept) // 2, kept
    size = min(size, extent)
    return first.clamp(0, extent - size), size


def _batch_norm(call: Call) -> Patched:
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    defaults = (None, None, None, None, None, False, 0.1, 1e-5)
    values = [call.argument(i, name, default) for i, (name, default) in enumerate(zip(names, defaults, strict=True))]
    x, mean, var, weight, bias, training, momentum, eps = values
    if not _live(x) or training or mean is None or any(isinstance(v, Patched) for v in values[1:5]):
        return NotImplemented

    def norm(t: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(t, mean, var, weight, bias, False, momentum, eps)

    key = ("batch_norm", id(x.base), id(mean), id(var), id(weight), id(bias), eps)
    base = x.clean(key, (x.base, mean, var, weight, bias), lambda: norm(x.base))
    return x.derive(base, norm(x.patch), x.top, x.left)


def _relu(call: Call) -> Patched:
    x = call.args[0]
    if not _live(x):
        return NotImplemented
    base = x.clean(("relu", id(x.base)), (x.base,), lambda: torch.relu(x.base))
    result = x.derive(base, torch.relu(x.patch), x.top, x.left)
    return x._become(result) if call.inplace else result


def _add(call: Call) -> Patched:
    if len(call.args) != 2 or set(call.kwargs) - {"alpha"} or call.kwargs.get("alpha", 1) != 1:
        return NotImplemented
    a, b = call.args
    if not (_live(a) and _live(b)) or a.base.shape != b.base.shape or not torch.equal(a.sample, b.sample):
        return NotImplemented
    top, left = torch.minimum(a.top, b.top), torch.minimum(a.left, b.left)
    h = int(torch.maximum(a.top + a.patch.shape[2], b.top + b.patch.shape[2]).sub(top).max())
    w = int(torch.maximum(a.left + a.patch.shape[3], b.left + b.patch.shape[3]).sub(left).max())
    height, width = a.base.shape[2:]
    (top, h), (left, w) = inside(top, h, height), inside(left, w, width)
    if h * w >= DENSE_FRACTION * height * width:
        return NotImplemented
    patch = a.region(top, left, h, w, 0.0) + b.region(top, left, h, w, 0.0)
    base = a.clean(("add", id(a.base), id(b.base)), (a.base, b.base), lambda: a.base + b.base)
    result = a.derive(base, patch, top, left)
    return a._become(result) if call.inplace else result


INCREMENTAL_RULES = {
    "conv2d": _conv2d,
    "max_pool2d": _max_pool2d,
    "batch_norm": _batch_norm,
    "relu": _relu,
    "add": _add,
}
"""The operations that compute only what the window changed; each may still decline (NotImplemented)."""


class Incremental(Interception):
    """The interception under which a model runs on :class:`Patched` values.

    A patched value is what depends on the input here. An operation in
    :data:`INCREMENTAL_RULES` recomputes the boxes only; any other operation,
    or one whose rule declines, materialises its patched arguments and runs on
    full maps, so the result is always the plain batched one.

    Example
    -------
    >>> base = torch.zeros(1, 1, 4, 4)
    >>> p = Patched(base, torch.tensor([0]), torch.ones(1, 1, 2, 2), torch.tensor([1]), torch.tensor([1]))
    >>> with Incremental():
    ...     q = torch.relu(p)
    ...     total = torch.sum(p)  # no rule: materialised
    >>> type(q).__name__, total.item()
    ('Patched', 4.0)
    """

    sight_reason = "runs the model on patched activations that compute only what changed"

    def __init__(self) -> None:
        super().__init__(INCREMENTAL_RULES, method="occlusion")

    def depends_any(self, tree: Any) -> bool:
        return any(_live(value) for value in _patched_in(tree))

    def mark_result(self, call: Call, result: Any) -> None:
        """Nothing to mark: patched values are known by their type."""

    def dispatch(self, call: Call) -> Any:
        rule = self.rules.get(call.name)
        result = NotImplemented if rule is None else rule(call)
        if result is NotImplemented:
            return call.func(*_dense(call.args), **_dense(call.kwargs))
        return result


def _patched_in(tree: Any) -> list:
    if isinstance(tree, Patched):
        return [tree]
    if isinstance(tree, (list, tuple)):
        return [found for item in tree for found in _patched_in(item)]
    if isinstance(tree, dict):
        return [found for item in tree.values() for found in _patched_in(item)]
    return []
