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

import itertools
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from saliencelab.engine.difference.call import DifferenceCall
from saliencelab.engine.difference.difference import Difference, Operand, attach, difference_of


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
        fractions[walk] = _three_pieces(valid[walk], start[walk], slope[walk], first[walk], last[walk], crossing[walk])
    return fractions


def _line_at(start: torch.Tensor, slope: torch.Tensor, line: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
    """The height of line ``line`` ``(m, 1)`` at ``time`` ``(m, 1)``."""
    return start.gather(1, line) + time * slope.gather(1, line)


def _crossing(start: torch.Tensor, slope: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Where the steeper line ``upper`` overtakes line ``lower`` (both ``(m, 1)``), within [0, 1]."""
    run = slope.gather(1, upper) - slope.gather(1, lower)
    rise = start.gather(1, lower) - start.gather(1, upper)
    return (rise / torch.where(run > 0, run, torch.ones_like(run))).clamp(0, 1)


def _three_pieces(
    valid: torch.Tensor,
    start: torch.Tensor,
    slope: torch.Tensor,
    first: torch.Tensor,
    last: torch.Tensor,
    crossing: torch.Tensor,
) -> torch.Tensor:
    """Fractions for windows whose envelope has more than two pieces.

    The line highest where ``first`` and ``last`` cross is on the envelope there;
    when no line is above the three pieces first, middle, last at their two
    crossings, that is the envelope. The other windows are walked.
    """
    lines = torch.where(valid, start + crossing * slope, -torch.inf)
    middle = lines.argmax(dim=1, keepdim=True)
    early, late = _crossing(start, slope, first, middle), _crossing(start, slope, middle, last)
    fits = torch.ones_like(valid[:, 0])
    for time, left, right in ((early, first, middle), (late, middle, last)):
        height = torch.maximum(_line_at(start, slope, left, time), _line_at(start, slope, right, time))
        others = torch.where(valid, start + time * slope, -torch.inf).amax(dim=1, keepdim=True)
        fits &= (others <= height).squeeze(1)
    fractions = torch.zeros_like(start).scatter_(1, first, early)
    fractions = fractions.scatter_add_(1, middle, late - early).scatter_add_(1, last, 1 - late)
    if not fits.all():
        rest = ~fits
        fractions[rest] = _walk(valid[rest], start[rest], slope[rest], first[rest].squeeze(1))
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


def _padding(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
) -> list[int]:
    """``F.pad``'s argument that makes room for every pooling window (the last ones of ``ceil_mode`` included)."""
    pad: list[int] = []
    for axis in reversed(range(len(kernel))):
        span = (kernel[axis] - 1) * dilation[axis] + 1
        needed = (out_shape[axis] - 1) * stride[axis] + span
        pad += [padding[axis], max(padding[axis], needed - spatial[axis] - padding[axis])]
    return pad


def _members(
    t: torch.Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
    fill: float,
) -> Iterator[torch.Tensor]:
    """For each position in the kernel, that member of every pooling window of ``t`` ``(N, C, *spatial)``.

    Each is a strided view ``(N, C, *out_shape)`` of ``t`` padded by ``fill``.
    """
    pad = _padding(t.shape[2:], kernel, stride, padding, dilation, out_shape)
    padded = F.pad(t, pad, value=fill) if any(pad) else t
    for offset in itertools.product(*(range(k) for k in kernel)):
        yield padded[
            (
                slice(None),
                slice(None),
                *[
                    slice(j * d, j * d + (o - 1) * s + 1, s)
                    for j, d, o, s in zip(offset, dilation, out_shape, stride, strict=True)
                ],
            )
        ]


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
    index = torch.arange(math.prod(spatial), device=device, dtype=torch.float64).reshape(1, 1, *spatial)
    members = _members(index, kernel, stride, padding, dilation, out_shape, fill=-1.0)
    return torch.stack([member.reshape(-1) for member in members], dim=1).long()


def max_pool(call: DifferenceCall) -> object:
    """``max_pool1d/2d/3d`` (with or without indices) by the exact maximum rule.

    Max pooling of the input and of the reference gives each window's two
    winners, w and r (the indices it returns). Where they have the same
    reference value, w takes the whole change (gradient routing). Elsewhere line
    r leads at t = 0 and line w at t = 1; they cross at ``c = (x′_r − x′_w) /
    (Δx_w − Δx_r)``, and when no member's line is above theirs there, the
    envelope has these two pieces only: r takes ``c`` of the change, w the rest
    (the envelope is convex and meets each of the two lines at both ends of its
    piece). This is checked for all windows at once, one strided view per
    kernel position (:func:`_top_at`); the windows with more pieces are walked
    by :func:`envelope` from their members. Where under a quarter of the windows
    change winner (constant reference regions), only those are examined.
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
    ref, ref_indices = pool(x.diff.ref, kernel, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=True)
    winner, ref_winner = indices.flatten(2), ref_indices.flatten(2)

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(2)

    ref_at_winner = flat(x.diff.ref).gather(2, winner)
    changed = ref_at_winner < flat(ref)
    out_shape = value.shape[2:]
    count = int(changed.sum())
    if count * SPARSE < changed.numel():  # no new winner or few (constant reference regions): walk just those
        parts = [flat(part).gather(2, winner) for part in x.diff.parts]
        if count:
            parts = _walked(x, changed, parts, kernel, stride, padding, dilation, out_shape)
        return _pooled(call, value, indices, ref, parts)
    with torch.no_grad():  # the shares are multipliers: constants for the backward pass
        # the lines start at the reference, x′ + t·(x − x′); r leads at t = 0 and w at t = 1
        start_r, slope_r = flat(ref), flat(x.value).gather(2, ref_winner) - flat(ref)
        start_w, slope_w = ref_at_winner, flat(value) - ref_at_winner
        run = slope_w - slope_r
        crossing = ((start_r - start_w) / torch.where(changed, run, torch.ones_like(run))).clamp(0, 1)
        crossing = torch.where(changed, crossing, torch.zeros_like(crossing))
        height = torch.maximum(start_r + crossing * slope_r, start_w + crossing * slope_w)
        top = _top_at(x.value, x.diff.ref, crossing.reshape(value.shape), kernel, stride, padding, dilation, out_shape)
        walk = changed & ~(flat(top) <= height)  # NaN or Inf in a window is left to the walk too
    both = torch.stack((torch.where(changed, ref_winner, winner), winner), dim=-1).flatten(2)
    shares = torch.stack((crossing, 1 - crossing), dim=-1)
    parts = [(flat(part).gather(2, both).unflatten(2, shares.shape[2:]) * shares).sum(dim=-1) for part in x.diff.parts]
    if walk.any():
        parts = _walked(x, walk, parts, kernel, stride, padding, dilation, out_shape)
    return _pooled(call, value, indices, ref, parts)


SPARSE = 4
"""Below one window in this many with a new winner, only those windows are examined (by :func:`envelope`)."""


def _top_at(
    value: torch.Tensor,
    ref: torch.Tensor,
    time: torch.Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
) -> torch.Tensor:
    """The highest line ``x′ + t·(x − x′)`` of each pooling window at that window's ``time`` ``(N, C, *out_shape)``.

    One pass per position in the kernel over strided views: no window is copied out.

    Example
    -------
    >>> x, ref = torch.tensor([[[0.0, 2.0, 3.0, 1.0]]]), torch.tensor([[[1.0, 0.0, 0.0, 4.0]]])
    >>> _top_at(x, ref, torch.tensor([[[0.5, 0.5]]]), [2], [2], [0], [1], [2])  # max(0.5, 1), max(1.5, 2.5)
    tensor([[[1.0000, 2.5000]]])
    """
    top = None
    starts = _members(ref, kernel, stride, padding, dilation, out_shape, -torch.inf)
    slopes = _members(value - ref, kernel, stride, padding, dilation, out_shape, 0.0)
    for start, slope in zip(starts, slopes, strict=True):
        line = start + time * slope
        top = line if top is None else torch.maximum(top, line, out=top)
    return top


def _walked(
    x: Operand,
    walk: torch.Tensor,
    parts: list[torch.Tensor],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
) -> list[torch.Tensor]:
    """``parts`` ``(N, C, windows)`` with the windows marked in ``walk`` recomputed by :func:`envelope`."""
    plane, window = walk.flatten(0, 1).nonzero(as_tuple=True)
    members = _window_members(x.value.shape[2:], kernel, stride, padding, dilation, out_shape, x.value.device)
    members = members[window]
    valid = members >= 0
    index = plane.unsqueeze(1) * math.prod(x.value.shape[2:]) + members.clamp(min=0)

    def members_of(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1)[index]

    with torch.no_grad():  # the fractions are multipliers: constants for the backward pass
        fractions = envelope(
            torch.where(valid, members_of(x.value), -torch.inf), torch.where(valid, members_of(x.diff.ref), -torch.inf)
        )
    at = walk.nonzero(as_tuple=True)
    return [
        part.index_put(at, (fractions * members_of(whole)).sum(dim=-1))
        for part, whole in zip(parts, x.diff.parts, strict=True)
    ]


def _pooled(
    call: DifferenceCall, value: torch.Tensor, indices: torch.Tensor, ref: torch.Tensor, parts: list[torch.Tensor]
) -> object:
    """Attach the pooled difference; return what the pooling call returns."""
    attach(value, Difference(ref, *(part.reshape(value.shape) for part in parts)))
    with_indices = call.name.endswith("with_indices") or call.argument(6, "return_indices", False)
    return (value, indices) if with_indices else value
