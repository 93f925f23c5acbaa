"""ReLU however the model writes it: operations whose gradient is the incoming gradient times a 0/1 gate.

``F.relu``, ``nn.ReLU(inplace=True)``, ``F.threshold`` / ``nn.Threshold``,
``clamp(min=c)``, ``clamp_min``, ``torch.maximum(h, c)``,
``torch.where(h > 0, h, 0)``, ``h.masked_fill(h <= 0, 0)`` and ``h * (h > 0)``
all pass ``h`` where a gate is open and a constant elsewhere, so their gradient
is ``grad · gate``. A method that changes how the backward crosses a ReLU
(DeconvNet, Guided Backprop, PatternNet) must treat every one of them as a ReLU,
or it returns the plain gradient for some spellings. :func:`gate_rules` builds
the rule table that does, from one backward ``(grad_out, gate) -> grad_in``.

A gate counts only when it is computed from the same tensor it gates
(``h * (h > 0)``); a mask computed from another input-dependent tensor gates by
something the rule cannot see, and the call is refused.

Example
-------
>>> import torch
>>> from saliencelab.engine.intercept import Interception
>>> positive = gate_rules(lambda grad, gate: grad.clamp(min=0) * gate)
>>> for spell in (torch.relu, lambda h: h.clamp(min=0), lambda h: h * (h > 0), lambda h: torch.where(h > 0, h, 0.0)):
...     mode = Interception(positive, method="guided_backprop")
...     x = mode.mark(torch.tensor([-1.0, 2.0, 3.0], requires_grad=True))
...     with mode:
...         y = spell(x)
...     print(torch.autograd.grad(y, x, torch.tensor([5.0, 6.0, -7.0]))[0])
tensor([0., 6., 0.])
tensor([0., 6., 0.])
tensor([0., 6., 0.])
tensor([0., 6., 0.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from saliencelab.engine.backward import gated_backward, modified_backward
from saliencelab.engine.intercept import Call, OpRule, is_marked
from saliencelab.engine.ops import PRODUCTS

Backward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(grad_out, gate) -> grad_in``; ``gate`` is a 0/1 tensor shaped like the output."""

_SOURCE = "_saliencelab_compared"  # on a comparison's result: the tensor it compared with a constant

COMPARISONS = frozenset("gt ge lt le".split())
CASTS = frozenset("to float double half bfloat16 type type_as bool int long".split())


def _constant(value: Any) -> bool:
    return not is_marked(value)


def _compared(mask: Any, h: torch.Tensor) -> bool:
    """Whether ``mask`` is a comparison of ``h`` itself with a constant."""
    return isinstance(mask, torch.Tensor) and getattr(mask, _SOURCE, None) is h


def _comparison(call: Call) -> torch.Tensor:
    """A comparison: remembers which tensor it compared, when the other side is a constant."""
    result = call.genuine()
    first, second = call.argument(0, "input"), call.argument(1, "other")
    if is_marked(first) and _constant(second):
        setattr(result, _SOURCE, first)
    elif is_marked(second) and _constant(first):
        setattr(result, _SOURCE, second)
    return result


def _cast(call: Call) -> Any:
    """A cast keeps what a comparison's mask remembers (``(h > 0).float()``)."""
    result = call.genuine()
    source = getattr(call.args[0], _SOURCE, None)
    if source is not None and isinstance(result, torch.Tensor):
        setattr(result, _SOURCE, source)
    return result


def is_relu(call: Call) -> bool:
    """Whether ``call`` computes a ReLU in one of its spellings (see the module's docstring).

    The comparisons and casts it reads masks from must have run through :func:`mask_rules`.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> is_relu(Call.of(F.threshold, (torch.ones(1), 0.0, 0.0), {}, method="demo"))
    True
    >>> is_relu(Call.of(torch.clamp, (torch.ones(1),), {"min": 0.0, "max": 6.0}, method="demo"))
    False
    """
    return call.name == "relu" or _gate_of(call) is not None


def mask_rules() -> dict[str, OpRule]:
    """Rules for comparisons and casts that remember which tensor a mask compares (for ``h * (h > 0)``)."""
    return dict.fromkeys(COMPARISONS, _comparison) | dict.fromkeys(CASTS, _cast)


SPELLINGS = frozenset("relu threshold clamp clamp_min where masked_fill maximum fmax max mul".split())
"""The operations that can spell a ReLU."""


def _gate_of(call: Call) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]] | None:
    """The gated tensor and the gate as a function of it, when ``call`` is a ReLU spelling; else None."""
    name, h = call.name, call.args[0]
    if name == "threshold":
        limit = call.argument(1, "threshold")
        return h, lambda t: t > limit
    if name in ("clamp", "clamp_min"):
        low = call.argument(1, "min")
        high = None if name == "clamp_min" else call.argument(2, "max")
        if high is None and low is not None and _constant(low):
            return h, lambda t: t > low
        return None
    if name in ("maximum", "fmax", "max"):
        other = call.argument(1, "other")
        if not isinstance(other, torch.Tensor):
            return None  # max(h, dim): a reduction, routed
        if is_marked(h) and _constant(other):
            return h, lambda t: t > other
        if is_marked(other) and _constant(h):
            return other, lambda t: t > h
        return None
    if name == "where":
        mask, first, second = call.argument(0, "condition"), call.argument(1, "input"), call.argument(2, "other")
        if is_marked(first) and _constant(second) and _compared(mask, first):
            return first, lambda t: mask
        if is_marked(second) and _constant(first) and _compared(mask, second):
            return second, lambda t: ~mask
        return None
    if name == "masked_fill":
        mask = call.argument(1, "mask")
        if _compared(mask, h):
            return h, lambda t: ~mask
        return None
    if name == "mul":
        other = call.argument(1, "other")
        if _compared(other, h):
            return h, lambda t: other != 0
        if _compared(h, other):
            return other, lambda t: h != 0
    return None


def _genuine(call: Call) -> Any:
    return call.genuine()


def _select(call: Call) -> Any:
    """``where`` and ``masked_fill`` with a constant mask select linearly; with another input-dependent mask,
    they gate by something the rule cannot see."""
    mask = call.args[0] if call.name == "where" else call.argument(1, "mask")
    if is_marked(mask):
        raise call.unsupported("its mask is computed from another input-dependent tensor; the gate is not a ReLU")
    return call.genuine()


def _gated(backward: Backward, fallback: OpRule | None) -> OpRule:
    def rule(call: Call) -> Any:
        found = _gate_of(call)
        if found is None:
            if fallback is not None:
                return fallback(call)
            raise call.unsupported(
                "it is not a ReLU (a gate computed from the same tensor, against a constant), and the method's "
                "backward rule is defined for ReLUs only"
            )
        h, gate = found
        if h is not call.args[0]:  # the gated tensor is a later argument: compute with it in its place
            return gated_backward(h, lambda t: call.func(*_swap(call.args, h, t), **call.kwargs), gate, backward)
        rest = call.args[1:]
        return gated_backward(h, lambda t: call.func(t, *rest, **call.kwargs), gate, backward, call.inplace)

    return rule


def _swap(args: tuple, old: torch.Tensor, new: torch.Tensor) -> tuple:
    return tuple(new if arg is old else arg for arg in args)


def linear_products(call: Call) -> Any:
    """A product with one input-dependent factor is linear in it; two are refused.

    Example
    -------
    >>> from saliencelab.engine.intercept import Interception
    >>> mode = Interception({"mul": linear_products}, method="demo")
    >>> x = mode.mark(torch.ones(2))
    >>> with mode:
    ...     (x * 3)
    tensor([3., 3.])
    """
    if sum(is_marked(t) for t in call.tensors()) > 1:
        raise call.unsupported(
            "it multiplies two input-dependent tensors (gating, attention), which the method has no rule for"
        )
    return call.genuine()


def gate_rules(backward: Backward, relu: OpRule | None = None) -> dict[str, OpRule]:
    """Rules that give every ReLU spelling the backward ``backward(grad_out, gate)``.

    ``relu`` gets the gate ``out > 0`` (or the rule ``relu``, a faster
    equivalent); the other spellings are recognised by their arguments. A
    ``mul``, ``maximum`` or ``max`` that is no ReLU spelling keeps its own meaning (a product with a
    constant, a reduction, the winner of two); ``clamp`` with an upper bound,
    ``where`` with a mask computed from another input-dependent tensor, and a
    product of two input-dependent tensors are refused.
    """
    rules: dict[str, OpRule] = dict.fromkeys(("threshold", "clamp", "clamp_min"), _gated(backward, None))
    rules.update(dict.fromkeys(("where", "masked_fill"), _gated(backward, _select)))
    rules.update(dict.fromkeys(("maximum", "fmax", "max"), _gated(backward, _genuine)))  # else: routed
    rules["relu"] = relu if relu is not None else modified_backward(lambda grad, out: backward(grad, out > 0))
    rules["mul"] = _gated(backward, linear_products)
    rules.update(dict.fromkeys(PRODUCTS - {"mul"}, linear_products))
    return rules | mask_rules()
