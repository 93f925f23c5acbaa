"""The torch-function mode that applies a method's rules to the model's operations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch.overrides import TorchFunctionMode

from saliencelab.engine.ops import functional_call, op_name
from saliencelab.errors import UnsupportedOperationError


class Rule(Protocol):
    """Computes an intercepted operation, attaching the method's backward to it.

    Called as ``rule(func, args, kwargs, inplace)`` with the operation exactly as
    the model called it; returns what the operation would have returned.
    """

    def __call__(self, func: Callable[..., Any], args: tuple, kwargs: dict, inplace: bool) -> Any: ...


class RuleMode(TorchFunctionMode):
    """While active, routes every operation named in ``rules`` through its rule.

    Operations named in ``unsupported`` raise :class:`UnsupportedOperationError`;
    every other operation runs unchanged. Activate it around the forward pass
    only: the backward pass then follows the rules that the forward attached.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> deconv = modified_backward(lambda grad, out: grad.clamp(min=0))
    >>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
    >>> with RuleMode({"relu": deconv}, method="deconvnet"):
    ...     y = F.relu(x)
    >>> torch.autograd.grad(y, x, torch.tensor([3.0, -4.0]))[0]
    tensor([3., 0.])
    """

    def __init__(
        self,
        rules: Mapping[str, Rule],
        *,
        method: str,
        unsupported: frozenset[str] = frozenset(),
        hint: str = "",
    ) -> None:
        super().__init__()
        self.rules = dict(rules)
        self.method = method
        self.unsupported = unsupported
        self.hint = hint

    def __torch_function__(self, func, types, args=(), kwargs=None):
        func, args, kwargs = functional_call(func, args, kwargs or {})
        name, inplace = op_name(func)
        rule = self.rules.get(name)
        if rule is not None:
            return rule(func, args, kwargs, inplace)
        if name in self.unsupported:
            raise UnsupportedOperationError(name, self.method, self.hint)
        return func(*args, **kwargs)


class _ReplacedBackward(torch.autograd.Function):
    """Runs ``compute(x)`` forward (in place when ``in_place``) and ``backward(grad_out, out)`` backward."""

    @staticmethod
    def forward(ctx, x, compute, backward, in_place):
        out = compute(x)
        if in_place:
            ctx.mark_dirty(x)
        ctx.backward = backward
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return ctx.backward(grad_out, out), None, None, None


def modified_backward(backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Rule:
    """A rule for an elementwise operation of one tensor: same forward, new backward.

    ``backward(grad_out, out)`` returns the gradient for the operation's input
    given the incoming gradient and the operation's output. In-place calls
    (``relu_``, ``inplace=True``) stay in place, as autograd does for them.

    Example
    -------
    >>> guided = modified_backward(lambda grad, out: grad.clamp(min=0) * (out > 0))
    >>> x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    >>> with RuleMode({"relu": guided}, method="guided_backprop"):
    ...     y = x.relu()
    >>> torch.autograd.grad(y, x, torch.tensor([5.0, 6.0, -7.0]))[0]
    tensor([0., 6., 0.])
    """

    def rule(func: Callable[..., Any], args: tuple, kwargs: dict, inplace: bool) -> Any:
        x, rest = args[0], args[1:]
        in_place = inplace or bool(kwargs.get("inplace", False))
        return _ReplacedBackward.apply(x, lambda t: func(t, *rest, **kwargs), backward, in_place)

    return rule


class Propagate(torch.autograd.Function):
    """``compute(*inputs)`` forward; ``propagate(*inputs, grad_out)`` gives the inputs' gradients backward.

    For rules that replace the whole backward of an operation of several tensors
    (LRP's rules, PatternNet's patterns); ``compute`` and ``propagate`` are
    closures over the operation's other arguments.

    Example
    -------
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> y = Propagate.apply(lambda t: 3 * t, lambda t, g: (g * 10,), x)
    >>> torch.autograd.grad(y.sum(), x)[0]
    tensor([10., 10.])
    """

    @staticmethod
    def forward(ctx, compute, propagate, *inputs):
        ctx.save_for_backward(*inputs)
        ctx.propagate = propagate
        return compute(*inputs)

    @staticmethod
    def backward(ctx, grad_out):
        return None, None, *ctx.propagate(*ctx.saved_tensors, grad_out)
