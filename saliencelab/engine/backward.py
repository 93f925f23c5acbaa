"""Autograd functions that give an operation a method's backward: the building blocks of rules."""

from __future__ import annotations

from collections.abc import Callable

import torch

from saliencelab.engine.intercept import Call, OpRule


class _ReplacedBackward(torch.autograd.Function):
    """Runs ``compute(x)`` forward (in place when ``in_place``) and ``backward(grad_out, saved)`` backward.

    ``saved`` is ``keep(x, out)``, taken before an in-place ``compute`` overwrites ``x`` (None: the output).
    """

    @staticmethod
    def forward(ctx, x, compute, keep, backward, in_place):
        kept = None if keep is None else keep(x)
        out = compute(x)
        if in_place:
            ctx.mark_dirty(x)
        ctx.backward = backward
        ctx.shape = x.shape
        ctx.save_for_backward(out if kept is None else kept)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (saved,) = ctx.saved_tensors
        grad = ctx.backward(grad_out, saved)
        return (grad if grad.shape == ctx.shape else grad.sum_to_size(ctx.shape)), None, None, None, None


def modified_backward(backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpRule:
    """A rule for an elementwise operation of one tensor: same forward, new backward.

    ``backward(grad_out, out)`` returns the gradient for the operation's input
    given the incoming gradient and the operation's output. In-place calls
    (``relu_``, ``inplace=True``) stay in place, as autograd does for them.

    Example
    -------
    >>> from saliencelab.engine.intercept import Interception
    >>> guided = modified_backward(lambda grad, out: grad.clamp(min=0) * (out > 0))
    >>> mode = Interception({"relu": guided}, method="guided_backprop")
    >>> x = mode.mark(torch.tensor([-1.0, 2.0, 3.0], requires_grad=True))
    >>> with mode:
    ...     y = x.relu()
    >>> torch.autograd.grad(y, x, torch.tensor([5.0, 6.0, -7.0]))[0]
    tensor([0., 6., 0.])
    """

    def rule(call: Call) -> torch.Tensor:
        rest = call.args[1:]
        return _ReplacedBackward.apply(
            call.args[0], lambda t: call.func(t, *rest, **call.kwargs), None, backward, call.inplace
        )

    return rule


def gated_backward(
    x: torch.Tensor,
    compute: Callable[[torch.Tensor], torch.Tensor],
    gate: Callable[[torch.Tensor], torch.Tensor],
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    in_place: bool = False,
) -> torch.Tensor:
    """``compute(x)`` forward; ``backward(grad_out, gate(x))`` backward, the gate taken before ``compute``.

    For operations whose gradient is the incoming gradient times a 0/1 gate
    (ReLU however it is written, ``threshold``, ``clamp(min=c)``, ``h * (h > 0)``).

    Example
    -------
    >>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
    >>> y = gated_backward(x, lambda t: t.clamp(min=0), lambda t: t > 0, lambda g, on: g.clamp(min=0) * on)
    >>> torch.autograd.grad(y, x, torch.tensor([3.0, -4.0]))[0]
    tensor([0., 0.])
    """
    return _ReplacedBackward.apply(x, compute, gate, backward, in_place)


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


class PropagateKnowingOutput(torch.autograd.Function):
    """:class:`Propagate` whose ``propagate(*inputs, output, grad_out)`` also receives the forward's output.

    ``output`` is None when the output was since overwritten in place (``relu_`` on it):
    ``propagate`` then computes what it needs from the inputs.

    Example
    -------
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> y = PropagateKnowingOutput.apply(lambda t: 3 * t, lambda t, out, g: (g * out,), x)
    >>> torch.autograd.grad(y.sum(), x)[0]
    tensor([3., 6.])
    >>> y = PropagateKnowingOutput.apply(lambda t: 3 * t, lambda t, out, g: (g * (out is None),), x)
    >>> torch.autograd.grad(y.relu_().sum(), x)[0]
    tensor([1., 1.])
    """

    @staticmethod
    def forward(ctx, compute, propagate, *inputs):
        ctx.save_for_backward(*inputs)
        ctx.propagate = propagate
        out = compute(*inputs)
        ctx.output = out.detach()  # an alias without a grad_fn (no reference cycle); it shares the version counter
        ctx.version = ctx.output._version
        return out

    @staticmethod
    def backward(ctx, grad_out):
        output = ctx.output if ctx.output._version == ctx.version else None
        return None, None, *ctx.propagate(*ctx.saved_tensors, output, grad_out)
