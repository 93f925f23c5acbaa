"""An exact rule for maxima: max pooling, ``amax``/``amin``, ``max``/``min``, ``maximum``/``minimum``.

The change of a maximum, ``max(x) − max(x′)``, is shared among the elements of its
window by following the straight line from the reference window to the input
window: element i gets ``Δxᵢ`` times the fraction of the line on which it is the
maximum. The maximum of linear functions of t is piecewise linear, so the
fractions are exact and the shares add up to the change. When one element is the
maximum at both ends it is the maximum all along (the maximum is convex), so it
takes the whole change: the gradient routing of max pooling, made exact for the
windows whose winner changes. Minima are maxima of the negated values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from saliencelab.engine.difference.call import DifferenceCall
from saliencelab.engine.difference.difference import Difference, attach, difference_of


def max_fractions(values: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """The fraction of the path from ``refs`` to ``values`` on which each element is the maximum.

    Both have shape ``(..., k)``; elements that are ``-inf`` (padding) get zero.

    Example
    -------
    >>> max_fractions(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    tensor([[0.3333, 0.6667]])
    """
    winner = values.argmax(dim=-1, keepdim=True)
    fractions = torch.zeros_like(values).scatter_(-1, winner, 1.0)
    changed = (refs.gather(-1, winner) < refs.amax(dim=-1, keepdim=True)).squeeze(-1)
    if changed.any():
        rows = changed.nonzero(as_tuple=True)
        fractions[rows] = envelope(values[rows], refs[rows])
    return fractions


def envelope(values: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Exact fractions for windows ``(m, k)`` from the upper envelope of the lines.

    Line i runs from ``refs[i]`` at t = 0 to ``values[i]`` at t = 1. Most windows
    have two pieces: the reference's winner until it crosses the input's winner,
    which holds when no other line is above them at the crossing. The others are
    walked: from the top line, jump to the first steeper line that crosses it, at
    most k − 1 times, vectorised over the windows still walking.
    """
    valid = torch.isfinite(refs) & torch.isfinite(values)
    start = torch.where(valid, refs, torch.zeros_like(refs))
    slope = torch.where(valid, values - start, torch.zeros_like(values))
    first = _top(valid, start, slope)
    last = _top(valid, start + slope, -slope)
    first_start, first_slope = start.gather(1, first), slope.gather(1, first)
    run = slope.gather(1, last) - first_slope
    crossing = ((first_start - start.gather(1, last)) / torch.where(run > 0, run, torch.ones_like(run))).clamp(0, 1)
    height = first_start + crossing * first_slope
    others = torch.where(valid, start + crossing * slope, -torch.inf).amax(dim=1, keepdim=True)
    fractions = torch.zeros_like(values).scatter_(1, first, crossing).scatter_add_(1, last, 1 - crossing)
    walk = ((others > height) & (first != last)).squeeze(1)
    if walk.any():
        fractions[walk] = _walk(valid[walk], start[walk], slope[walk], first[walk].squeeze(1))
    return fractions


def _top(valid: torch.Tensor, height: torch.Tensor, tie_break: torch.Tensor) -> torch.Tensor:
    """Index ``(m, 1)`` of the highest valid line, ties going to the largest ``tie_break``."""
    top = torch.where(valid, height, -torch.inf).amax(dim=1, keepdim=True)
    return torch.where(valid & (height == top), tie_break, -torch.inf).argmax(dim=1, keepdim=True)


def _walk(valid: torch.Tensor, start: torch.Tensor, slope: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Fractions by walking the envelope from line ``current`` at t = 0."""
    fractions = torch.zeros_like(start)
    time = torch.zeros(start.shape[0], dtype=start.dtype, device=start.device)
    active = torch.arange(start.shape[0], device=start.device)
    while len(active):
        line = current[active]
        now = time[active].unsqueeze(1)
        own_slope, own_start = slope[active, line].unsqueeze(1), start[active, line].unsqueeze(1)
        steeper = valid[active] & (slope[active] > own_slope)
        run = torch.where(steeper, slope[active] - own_slope, torch.ones_like(now))
        crossing = torch.where(steeper, ((own_start - start[active]) / run).clamp(min=now), torch.inf)
        next_time, next_line = crossing.min(dim=-1)
        end = next_time.clamp(max=1)
        fractions[active, line] += end - now.squeeze(1)
        time[active] = end
        current[active] = next_line
        active = active[next_time < 1]
    return fractions


def _reduce(windows: list[torch.Tensor], value: torch.Tensor, sign: float) -> torch.Tensor:
    """Attach the difference of a maximum (``sign=1``) or minimum (``-1``) over the last axis of ``windows``.

    ``windows`` holds the input's values, the reference and the parts, each ``(..., k)``.
    """
    values, refs, *parts = windows
    fractions = max_fractions(sign * values, sign * refs)
    ref = sign * (sign * refs).amax(dim=-1)
    new_parts = [(fractions * part).sum(dim=-1).reshape(value.shape) for part in parts]
    return attach(value, Difference(ref.reshape(value.shape), *new_parts))


def _sign(call: DifferenceCall) -> float:
    return -1.0 if call.name in ("amin", "min", "minimum", "fmin") else 1.0


def reduction(call: DifferenceCall) -> object:
    """``amax``/``amin`` and ``max``/``min`` over dimensions (``max(a, b)`` goes to :func:`pairwise`)."""
    if isinstance(call.argument(1, "other"), torch.Tensor):
        return pairwise(call)
    x = call.only_operand()
    dims = call.argument(1, "dim")
    if dims is None:
        raise call.unsupported("a maximum over the whole tensor mixes the samples; give dim=")
    dims = [d % x.value.ndim for d in ([dims] if isinstance(dims, int) else dims)]
    if 0 in dims:
        raise call.unsupported("a maximum over the batch dimension mixes the samples")
    result = call.genuine()
    kept = [d for d in range(x.value.ndim) if d not in dims]
    windows = [
        t.permute(*kept, *dims).reshape(*[t.shape[d] for d in kept], -1) for t in (x.value, x.diff.ref, *x.diff.parts)
    ]
    _reduce(windows, result if isinstance(result, torch.Tensor) else result[0], _sign(call))
    return result


def pairwise(call: DifferenceCall) -> torch.Tensor:
    """``maximum(a, b)``, ``minimum(a, b)``, ``max(a, b)``: maxima over windows of two."""
    first, second = call.args[0], call.argument(1, "other")
    value = call.genuine()

    def component(tensor: torch.Tensor, which: str | int) -> torch.Tensor:
        diff = difference_of(tensor)
        if which == "value":
            return tensor
        if diff is None:
            return tensor if which == "ref" else torch.zeros_like(tensor)
        return diff.ref if which == "ref" else diff.parts[which]

    count = 2 if call.settings.reveal_cancel else 1
    windows = [
        torch.stack(torch.broadcast_tensors(component(first, which), component(second, which)), dim=-1)
        for which in ("value", "ref", *range(count))
    ]
    return _reduce(windows, value, _sign(call))


def _tuple(value: int | Sequence[int], nd: int) -> list[int]:
    return [value] * nd if isinstance(value, int) else list(value)


def _window_members(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
    device: torch.device,
) -> torch.Tensor:
    """Flat input index of every member of every pooling window, ``(windows, k)``; -1 for padding."""
    nd = len(kernel)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    index = torch.arange(math.prod(spatial), device=device, dtype=torch.float64).reshape(1, 1, *spatial)
    pad: list[int] = []
    for axis in reversed(range(nd)):
        needed = (out_shape[axis] - 1) * stride[axis] + spans[axis]
        pad += [padding[axis], max(padding[axis], needed - spatial[axis] - padding[axis])]
    windows = F.pad(index, pad, value=-1.0)
    for axis in range(nd):
        windows = windows.unfold(2 + axis, spans[axis], stride[axis])[..., :: dilation[axis]]
    crop = (0, 0, *[slice(0, o) for o in out_shape])
    return windows[crop].reshape(math.prod(out_shape), -1).long()


def max_pool(call: DifferenceCall) -> object:
    """``max_pool1d/2d/3d`` (with or without indices) by the exact maximum rule.

    Every window first takes the whole change at the input's winner (the indices
    max pooling returns); the windows whose reference winner differs are then
    recomputed from their members.
    """
    x = call.only_operand()
    nd = int(call.name[len("max_pool")])
    if x.value.ndim != nd + 2:
        raise call.unsupported(f"an unbatched input of shape {tuple(x.value.shape)}; pass (N, C, *spatial)")
    kernel = _tuple(call.argument(1, "kernel_size"), nd)
    stride = _tuple(call.argument(2, "stride") or kernel, nd)
    padding, dilation = _tuple(call.argument(3, "padding", 0), nd), _tuple(call.argument(4, "dilation", 1), nd)
    ceil_mode = call.argument(5, "ceil_mode", False)
    pool = getattr(F, f"max_pool{nd}d")
    value, indices = pool(x.value, kernel, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
    ref = pool(x.diff.ref, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    winner = indices.flatten(2)

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(2)

    parts = [flat(part).gather(2, winner) for part in x.diff.parts]
    changed = flat(x.diff.ref).gather(2, winner) < flat(ref)
    if changed.any():
        plane, window = changed.flatten(0, 1).nonzero(as_tuple=True)
        members = _window_members(x.value.shape[2:], kernel, stride, padding, dilation, value.shape[2:], x.value.device)
        members = members[window]
        valid = members >= 0
        index = plane.unsqueeze(1) * math.prod(x.value.shape[2:])
        index = index + members.clamp(min=0)

        def members_of(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1)[index]

        fractions = envelope(
            torch.where(valid, members_of(x.value), -torch.inf), torch.where(valid, members_of(x.diff.ref), -torch.inf)
        )
        at = changed.nonzero(as_tuple=True)
        parts = [
            part.index_put(at, (fractions * members_of(whole)).sum(dim=-1))
            for part, whole in zip(parts, x.diff.parts, strict=True)
        ]
    attach(value, Difference(ref, *(part.reshape(value.shape) for part in parts)))
    with_indices = call.name.endswith("with_indices") or call.argument(6, "return_indices", False)
    return (value, indices) if with_indices else value
