"""Rules for linear operations and data movement (the Linear rule of Shrikumar et al. 2017).

- Weighted sums (``linear``, convolutions, pooling by averaging, sums, means, the
  sum of two input-dependent tensors): the difference is the operation applied to
  the input's difference without the bias, and for RevealCancel the parts are
  ``Δy⁺ = Σ 1{wᵢΔxᵢ > 0} wᵢΔxᵢ`` and ``Δy⁻ = Σ 1{wᵢΔxᵢ < 0} wᵢΔxᵢ``, computed as
  ``(WΔ ± |W||Δ|) / 2``. Their gradient is DeepLIFT's multiplier ``1{wΔx > 0} w``,
  and ``0.5 w`` where ``Δx = 0``.
- One-to-one scalings by constants (batch norm in eval mode, ``x * c``, ``x / c``,
  ``-x``, adding a constant): each part is scaled, swapping when the factor is
  negative; a constant added is part of the reference value, never of a difference.
- Data movement (view, permute, indexing, concatenation, padding, ...): applied to
  the reference and to each part alike.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Number

import torch

from saliencelab.engine.difference.call import DifferenceCall, attach_all
from saliencelab.engine.difference.difference import Difference, Operand, Settings, attach, difference_of


def parts_from_sums(linear: torch.Tensor, absolute: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """The parts of a weighted sum from ``WΔ`` and ``|W||Δ|`` (``None`` when parts are not tracked)."""
    if absolute is None:
        return (linear,)
    return ((linear + absolute) / 2, (linear - absolute) / 2)


def scale_parts(parts: tuple[torch.Tensor, ...], factor: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    """Multiply a difference by a constant factor, keeping ``Δ⁺`` positive and ``Δ⁻`` negative."""
    if len(parts) == 1:
        return (parts[0] * factor,)
    pos, neg = parts
    if isinstance(factor, Number):
        return (pos * factor, neg * factor) if factor >= 0 else (neg * factor, pos * factor)
    up, down = factor.clamp(min=0), factor.clamp(max=0)
    return (pos * up + neg * down, neg * up + pos * down)


def weighted(
    value: torch.Tensor | None, ref: torch.Tensor, linear: torch.Tensor, absolute, settings: Settings
) -> Operand:
    """An operand for the result of a weighted sum (see :func:`parts_from_sums`).

    ``absolute()`` computes ``|W||Δ|``, only for RevealCancel; ``value=None``
    takes the value as ``ref + WΔ``.
    """
    parts = parts_from_sums(linear, absolute() if settings.reveal_cancel else None)
    if value is None:
        value = (ref + linear).detach()
    return Operand(value, Difference(ref, parts[0], parts[1] if len(parts) > 1 else None))


def _zero_if_float(tensor: torch.Tensor) -> torch.Tensor:
    """A constant tensor's difference: zero for data, unchanged for indices and masks."""
    return torch.zeros_like(tensor) if tensor.is_floating_point() else tensor


def _zero_numbers(call: DifferenceCall) -> DifferenceCall:
    """The call with its number arguments (fill values) set to zero, for the parts."""
    args = tuple(0 if isinstance(a, Number) and not isinstance(a, bool) else a for a in call.args)
    kwargs = {k: (0 if k == "value" and isinstance(v, Number) else v) for k, v in call.kwargs.items()}
    return replace(call, args=args, kwargs=kwargs)


def structural(call: DifferenceCall) -> object:
    """Data movement: the same operation on the reference and on each part.

    Number arguments of ``pad``, ``masked_fill`` and ``where`` are fill values:
    they fill the reference, and the parts with zero.
    """
    value = call.genuine()
    ref = call.run(lambda d: d.ref)
    part_call = _zero_numbers(call) if call.name in ("pad", "masked_fill", "where") else call
    count = 2 if call.settings.reveal_cancel else 1
    parts = tuple(part_call.run(lambda d, i=i: d.parts[i], _zero_if_float) for i in range(count))
    return attach_all(value, ref, parts)


def dropout(call: DifferenceCall) -> object:
    """Dropout is the identity in eval mode; in training mode it is random and has no rule."""
    if call.argument(2, "training", True):
        raise call.unsupported("dropout is in training mode and random; call model.eval() before explaining")
    return structural(call)


def weighted_sum(
    call: DifferenceCall, weight: tuple[int, str] | None = None, bias: tuple[int, str] | None = None
) -> object:
    """A weighted sum of one input-dependent tensor with constant weights (and bias).

    ``weight`` and ``bias`` name the arguments (position, keyword) that hold them.
    """
    call.only_operand("the weights depend on the input; there is no linear rule for that")
    if weight is not None and difference_of(call.argument(*weight)) is not None:
        raise call.unsupported("the weights depend on the input; there is no linear rule for that")
    ref = call.run(lambda d: d.ref)
    unbiased = call.replaced(*bias, None) if bias is not None and call.argument(*bias) is not None else call

    def absolute() -> torch.Tensor:
        magnitudes = unbiased
        if weight is not None:
            magnitudes = unbiased.replaced(*weight, unbiased.argument(*weight).abs())
        return magnitudes.run(lambda d: d.delta.abs())

    result = weighted(None, ref, unbiased.run(lambda d: d.delta), absolute, call.settings)
    return attach(result.value, result.diff)


def interpolate(call: DifferenceCall) -> object:
    """Nearest-neighbour resampling moves data; the other modes are weighted sums."""
    mode = call.argument(3, "mode", "nearest")
    if mode in ("nearest", "nearest-exact"):
        return structural(call)
    if mode == "bicubic" and call.settings.reveal_cancel:
        raise call.unsupported("bicubic weights can be negative; RevealCancel needs them split, use 'bilinear'")
    return weighted_sum(call)


def _coefficients(call: DifferenceCall) -> tuple[float, float]:
    """Factors of the two arguments of ``add``, ``sub`` and ``rsub`` (``alpha`` included)."""
    alpha = call.kwargs.get("alpha", 1)
    if call.name == "add":
        return 1, alpha
    if call.name == "sub":
        return 1, -alpha
    return -alpha, 1  # rsub(input, other) = other - alpha * input


def add(call: DifferenceCall) -> object:
    """``a + b``, ``a - b``, ``b - a``: a weighted sum of two differences, or a constant added."""
    first, second = call.args[0], call.args[1] if len(call.args) > 1 else call.kwargs["other"]
    coefficients = _coefficients(call)
    value = call.genuine()
    ref = call.run(lambda d: d.ref)
    operands = [(difference_of(t), c) for t, c in zip((first, second), coefficients, strict=True)]
    present = [(d, c) for d, c in operands if d is not None]
    if len(present) == 2:
        linear = call.run(lambda d: d.delta)
        result = weighted(value, ref, linear, lambda: sum(abs(c) * d.delta.abs() for d, c in present), call.settings)
        return attach(value, result.diff)
    diff, coefficient = present[0]
    parts = tuple(part.expand(value.shape) for part in scale_parts(diff.parts, coefficient))
    return attach(value, diff.with_parts(ref, parts))


def scale(call: DifferenceCall, factor: torch.Tensor | float) -> object:
    """The input-dependent argument times a constant ``factor``."""
    x = call.only_operand()
    value = call.genuine()
    ref = call.run(lambda d: d.ref)
    parts = tuple(part.expand(value.shape) for part in scale_parts(x.diff.parts, factor))
    return attach(value, x.diff.with_parts(ref, parts))


def batch_norm(call: DifferenceCall) -> object:
    """Batch norm in eval mode: a per-channel scaling by ``weight / sqrt(running_var + eps)``."""
    if call.argument(5, "training", False):
        raise call.unsupported(
            "batch norm in training mode normalises with the batch's statistics, coupling the samples; "
            "call model.eval() before explaining"
        )
    running_var, weight, eps = (
        call.argument(2, "running_var"),
        call.argument(3, "weight"),
        call.argument(7, "eps", 1e-5),
    )
    for tensor in (call.argument(1, "running_mean"), running_var, weight, call.argument(4, "bias")):
        if difference_of(tensor) is not None:
            raise call.unsupported("the normalisation parameters depend on the input")
    factor = torch.rsqrt(running_var + eps)
    if weight is not None:
        factor = factor * weight
    value = call.args[0]
    return scale(call, factor.reshape(1, -1, *([1] * (value.ndim - 2))))
