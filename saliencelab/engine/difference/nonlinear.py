"""Rules for nonlinear operations: elementwise functions, products and softmax.

Elementwise ``y = f(z)`` (Shrikumar et al. 2017):

- Rescale: ``m = Δy / Δz``, so the difference ``m · Δz`` is exactly ``Δy``.
- RevealCancel: ``Δy⁺ = ½(f(z′+Δz⁺) − f(z′)) + ½(f(z′+Δz⁺+Δz⁻) − f(z′+Δz⁻))`` and
  ``Δy⁻`` the same with the parts exchanged; ``m⁺ = Δy⁺/Δz⁺``, ``m⁻ = Δy⁻/Δz⁻``.

Where a denominator is tiny, ``|Δ| <= threshold · (1 + |z′|)``, the ratio is
replaced by the derivative at the middle of the step (the DeepLIFT paper's "use dy/dx",
taken at the midpoint because that is where the ratio tends to), so no 0/0 or
rounding noise is ever multiplied into the result.

Products of two input-dependent tensors, ``y = a·b`` (or ``a @ b``), are bilinear:
``Δy = Δa·(b + b′)/2 + (a + a′)/2·Δb`` exactly, the Shapley split of the two
factors. Softmax and log-softmax are computed per sample as
``z − c − log Σ exp(z − c)`` (``c`` a constant shift), each piece by the rules
above, so no sample's result depends on another's; the exponentials and the
logarithm there take the Rescale multiplier under either rule (see
:func:`log_softmax`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from saliencelab.engine.difference.call import DifferenceCall
from saliencelab.engine.difference.difference import Difference, Operand, Settings, attach, difference_of
from saliencelab.engine.difference.linear import scale_parts, weighted
from saliencelab.engine.intercept import map_tensors, tensors_in

Elementwise = Callable[[torch.Tensor], torch.Tensor]


def _derivative(f: Elementwise, at: torch.Tensor) -> torch.Tensor:
    """``f'(at)`` elementwise, by autograd."""
    with torch.enable_grad():
        point = at.detach().requires_grad_(True)
        out = f(point)
        (grad,) = torch.autograd.grad(out, point, torch.ones_like(out), allow_unused=True)
    return torch.zeros_like(point) if grad is None else grad


def _ratio(
    rise: torch.Tensor,
    run: torch.Tensor,
    ref: torch.Tensor,
    f: Elementwise,
    midpoints: tuple[torch.Tensor, ...],
    threshold: float,
    pointwise: bool,
) -> torch.Tensor:
    """``rise / run``, or where ``run`` is too small to divide by, ``f'`` averaged over ``midpoints``.

    A ``pointwise`` ``f`` (no other tensor arguments) is differentiated at the
    tiny elements only; otherwise over the whole tensor, as broadcasting needs.
    """
    tiny = run.abs() <= threshold * (1 + ref.abs())
    ratio = rise / torch.where(tiny, torch.ones_like(run), run)
    if not tiny.any():
        return ratio.detach()
    if pointwise:
        ratio[tiny] = sum(_derivative(f, point[tiny]) for point in midpoints) / len(midpoints)
        return ratio.detach()
    slope = sum(_derivative(f, point) for point in midpoints) / len(midpoints)
    return torch.where(tiny, slope, ratio).detach()


class Values(NamedTuple):
    """``f`` at the points the rules read: the input, the reference and, for
    RevealCancel, the reference moved by each part alone (``None`` for Rescale)."""

    value: torch.Tensor
    ref: torch.Tensor
    pos: torch.Tensor | None = None
    neg: torch.Tensor | None = None


def evaluate(f: Elementwise, x: Operand) -> Values:
    """``f`` at the points its rule reads, for an operand that carries a difference."""
    ref = x.diff.ref
    if x.diff.neg is None:
        return Values(f(x.value), f(ref))
    return Values(f(x.value), f(ref), f(ref + x.diff.pos.detach()), f(ref + x.diff.neg.detach()))


def rescaled(f: Elementwise, x: Operand, at: Values, settings: Settings, pointwise: bool = True) -> Operand:
    """``f`` by the Rescale multiplier ``m = Δy / Δz``, which scales each part of the difference alike."""
    ref, delta = x.diff.ref, x.diff.delta.detach()
    m = _ratio(at.value - at.ref, delta, ref, f, (ref + delta / 2,), settings.threshold, pointwise)
    return Operand(at.value, x.diff.with_parts(at.ref, scale_parts(x.diff.parts, m)))


def linearised(f: Elementwise, x: Operand, at: Values, settings: Settings, pointwise: bool = True) -> Operand:
    """``f`` applied to an operand by the Rescale or RevealCancel rule, from ``f``'s values ``at`` its points.

    ``f`` itself is only differentiated where a difference is too small to divide
    by. ``pointwise`` says that ``f`` can be applied to any subset of the elements.
    """
    if x.diff.neg is None:
        return rescaled(f, x, at, settings, pointwise)
    ref, threshold = x.diff.ref, settings.threshold
    pos, neg = x.diff.pos.detach(), x.diff.neg.detach()
    rise_pos = ((at.pos - at.ref) + (at.value - at.neg)) / 2
    rise_neg = ((at.neg - at.ref) + (at.value - at.pos)) / 2
    m_pos = _ratio(rise_pos, pos, ref, f, (ref + pos / 2, ref + neg + pos / 2), threshold, pointwise)
    m_neg = _ratio(rise_neg, neg, ref, f, (ref + neg / 2, ref + pos + neg / 2), threshold, pointwise)
    return Operand(at.value, Difference(at.ref, m_pos * x.diff.pos, m_neg * x.diff.neg))


def elementwise(f: Elementwise, x: Operand, settings: Settings, pointwise: bool = True) -> Operand:
    """``f`` applied to an operand by the Rescale or RevealCancel rule.

    ``pointwise`` says that ``f`` can be applied to any subset of the elements.
    """
    return linearised(f, x, evaluate(f, x), settings, pointwise)


def elementwise_rule(call: DifferenceCall) -> torch.Tensor:
    """An elementwise function of one input-dependent tensor (other arguments constant)."""
    x = call.only_operand("an elementwise function of two input-dependent tensors has no DeepLIFT rule")

    def f(t: torch.Tensor) -> torch.Tensor:
        def swap(a: torch.Tensor) -> torch.Tensor:
            return t if a is x.value else a

        return call.func(*map_tensors(call.args, swap), **map_tensors(call.kwargs, swap))

    pointwise = len(tensors_in((call.args, call.kwargs))) == 1
    result = elementwise(f, x, call.settings, pointwise)
    return attach(result.value, result.diff)


def product(a: Operand, b: Operand, op: Callable, settings: Settings) -> Operand:
    """``op(a, b)`` for a bilinear ``op`` (``mul``, ``matmul``) of two operands."""
    mean_a = ((a.value + a.diff.ref) / 2).detach()
    mean_b = ((b.value + b.diff.ref) / 2).detach()
    value, ref = op(a.value, b.value), op(a.diff.ref, b.diff.ref)
    linear = op(a.diff.delta, mean_b) + op(mean_a, b.diff.delta)
    return weighted(
        value,
        ref,
        linear,
        lambda: op(a.diff.delta.abs(), mean_b.abs()) + op(mean_a.abs(), b.diff.delta.abs()),
        settings,
    )


def _as_operand(tensor: object, like: torch.Tensor) -> Operand:
    """An argument as an operand: a constant gets a zero difference."""
    diff = difference_of(tensor)
    if diff is not None:
        return Operand(tensor, diff)
    constant = torch.as_tensor(tensor, dtype=like.dtype, device=like.device)
    zero = torch.zeros_like(constant)
    return Operand(constant, Difference(constant, zero, zero if difference_of(like).neg is not None else None))


def reciprocal(x: Operand, settings: Settings) -> Operand:
    """``1 / x`` by the elementwise rule."""
    return elementwise(torch.reciprocal, x, settings)


def multiply(call: DifferenceCall, op: Callable) -> torch.Tensor:
    """``mul``, ``div`` and ``matmul`` where both factors depend on the input, or a divisor does."""
    first, second = call.args[0], call.args[1] if len(call.args) > 1 else call.kwargs["other"]
    anchor = first if difference_of(first) is not None else second
    a, b = _as_operand(first, anchor), _as_operand(second, anchor)
    if call.name == "rdiv":  # Tensor.__rtruediv__(x, c) = c / x
        a, b = b, reciprocal(a, call.settings)
    elif call.name == "div":
        b = reciprocal(b, call.settings)
    result = product(a, b, op, call.settings)
    return attach(result.value, result.diff)


def _shifted(x: Operand, shift: torch.Tensor) -> Operand:
    """``x − shift`` for a constant ``shift``: the differences are unchanged."""
    return Operand(x.value - shift, x.diff.with_parts(x.diff.ref - shift, x.diff.parts))


def _exp(x: Operand, settings: Settings) -> Operand:
    """``exp`` inside softmax: Rescale, on each part alike (see :func:`log_softmax`)."""
    return rescaled(torch.exp, x, Values(torch.exp(x.value), torch.exp(x.diff.ref)), settings)


def log_softmax(x: Operand, dim: int, settings: Settings) -> Operand:
    """``z − c − log Σ exp(z − c)`` along ``dim``, piece by piece (``c`` a per-sample constant).

    ``c`` is the larger of the two ends' maxima, so no exponential overflows; the
    rule is the same for any ``c`` (every piece scales with ``exp(−c)``). The
    logarithm of the sum takes its values from each end's own log-sum-exp, not
    from the scaled sum, which underflows to 0 at an end whose logits all lie
    more than about 100 (float32) or 745 (float64) below the other end's.

    The exponentials and the logarithm take the Rescale multiplier ``Δy/Δz`` on
    each part, under RevealCancel too: its points ``z′ + Δz⁺`` lie outside
    ``[z′, z]``, where ``exp`` grows without bound, and parts of ±300 that cancel
    to a small ``Δz`` would give contributions of order ``e³⁰⁰`` that cancel only
    in exact arithmetic.
    """
    shift = torch.maximum(x.value.amax(dim, keepdim=True), x.diff.ref.amax(dim, keepdim=True)).detach()
    z = _shifted(x, shift)
    e = _exp(z, settings)
    total = weighted(
        e.value.sum(dim, keepdim=True),
        e.diff.ref.sum(dim, keepdim=True),
        e.diff.delta.sum(dim, keepdim=True),
        lambda: e.diff.delta.abs().sum(dim, keepdim=True),
        settings,
    )
    ends = Values(torch.logsumexp(z.value, dim, keepdim=True), torch.logsumexp(z.diff.ref, dim, keepdim=True))
    log_total = rescaled(torch.log, total, ends, settings)
    return weighted(
        z.value - log_total.value,
        z.diff.ref - log_total.diff.ref,
        z.diff.delta - log_total.diff.delta,
        lambda: z.diff.delta.abs() + log_total.diff.delta.abs(),
        settings,
    )


def softmax_rule(call: DifferenceCall) -> torch.Tensor:
    """``softmax`` and ``log_softmax`` along a non-batch dimension."""
    x = call.only_operand()
    dim = call.argument(1, "dim")
    ndim = x.value.ndim
    if dim is None:
        dim = 0 if ndim in (0, 1, 3) else 1
    if ndim == 0 or dim % ndim == 0:
        raise call.unsupported("it normalises over the batch dimension, so samples would depend on each other")
    dtype = call.kwargs.get("dtype")
    if dtype is not None:
        x = Operand(x.value.to(dtype), x.diff.map(lambda t: t.to(dtype)))
    result = log_softmax(x, dim, call.settings)
    if call.name == "softmax":
        result = _exp(result, call.settings)
    return attach(result.value, result.diff)
