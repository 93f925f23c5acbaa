"""Gradient methods: Vanilla Gradient, Gradient×Input, DeconvNet and Guided Backprop.

DeconvNet and Guided Backprop differ from the gradient only in how the backward
pass crosses a ReLU (as compared by Springenberg et al. 2015):

- gradient: ``grad_in = grad_out · 1[x > 0]``
- DeconvNet (Zeiler & Fergus 2014): ``grad_in = max(grad_out, 0)``
- Guided Backprop (Springenberg et al. 2015): ``grad_in = max(grad_out, 0) · 1[x > 0]``

A ReLU counts however the model writes it (``F.relu``, ``nn.ReLU(inplace=True)``,
``F.threshold``, ``clamp(min=0)``, ``torch.maximum(h, 0)``,
``torch.where(h > 0, h, 0)``, ``h * (h > 0)``: :mod:`saliencelab.engine.gates`).
Data movement, linear operations and routing operations (max pooling, ``sort``,
``topk``) pass the gradient as they are. Every other operation on the
input-dependent stream (GELU, sigmoid, ``exp``, ``softmax``, ``normalize``, a
product of two activations, ...) has no agreed rule for the modified methods and
raises :class:`~saliencelab.UnsupportedOperationError`.
"""

from __future__ import annotations

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.targets import Target, reported_target
from saliencelab.engine import DATA_MOVEMENT, LINEAR, QUERIES, ROUTING, gate_rules, modified_backward
from saliencelab.methods.base import Method


class _GradientFamily(Method):
    """One (modified) backward pass per sample, chunked under the memory budget."""

    structured_inputs = True
    layer_attribution = True

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        values: list[torch.Tensor] = []
        bound: list[Target] = []

        def run(rows: slice) -> None:
            samples = torch.arange(rows.start, rows.stop)
            whole = rows.stop - rows.start == inputs.shape[0]  # one chunk: its rows are the samples in order
            chunk = inputs if whole else inputs[rows]
            grad, chunk_target = self.input_gradients(chunk, target if whole else target.rows(samples), samples)
            values.append(self.from_gradient(chunk, grad))
            bound.append(chunk_target)

        self.run_chunked(inputs, run)
        joined = values[0] if len(values) == 1 else torch.cat(values)
        return Attribution(values=joined, delta=None, method=self.name, target=reported_target(bound))

    def from_gradient(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Turn the gradient of a chunk into its attribution."""
        return grad


@register
class Gradient(_GradientFamily):
    """Vanilla Gradient (saliency map): ``∂f_target/∂x`` (Simonyan et al. 2014).

    Signed; take ``.abs()`` or a channel aggregation for the classic saliency map.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 2)
    >>> sl.Gradient(model)(torch.randn(1, 3), target=0).values.shape
    torch.Size([1, 3])
    """

    name = "gradient"
    description = "Vanilla Gradient: the derivative of the target score with respect to each input"
    source = "Simonyan et al. 2014"


@register
class GradientXInput(_GradientFamily):
    """Gradient×Input: ``x ⊙ ∂f_target/∂x`` (Shrikumar et al. 2016).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> x = torch.tensor([[2.0, -1.0]])
    >>> torch.allclose(sl.GradientXInput(model)(x).values, x * model.weight.detach())
    True
    """

    name = "gradient_x_input"
    description = "Gradient×Input: the gradient times the input, elementwise"
    source = "Shrikumar et al. 2016"

    def from_gradient(self, inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return inputs * grad


def _guided_relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``max(grad, 0) · 1[out > 0]`` in one allocation: ReLU's own backward, then clamped in place."""
    return torch.ops.aten.threshold_backward(grad, out, 0).clamp_(min=0)


class _ModifiedReLU(_GradientFamily):
    """A gradient whose backward through ReLU is replaced; other nonlinearities have no agreed rule."""

    passes = DATA_MOVEMENT | LINEAR | ROUTING | QUERIES
    hint = (
        "DeconvNet and Guided Backprop are defined for ReLU networks (linear layers, ReLUs, pooling) only; "
        "use method='gradient' or 'integrated_gradients' for this model"
    )


@register
class DeconvNet(_ModifiedReLU):
    """DeconvNet: the backward pass through a ReLU keeps positive gradients, ignoring the input sign.

    (Zeiler & Fergus 2014.)

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1, bias=False))
    >>> _ = model[1].weight.data.copy_(torch.tensor([[1.0, -1.0]]))
    >>> sl.DeconvNet(model)(torch.tensor([[-2.0, 3.0]])).values  # the gradient would be [[0., -1.]]
    tensor([[1., 0.]])
    """

    name = "deconvnet"
    description = "DeconvNet: backward through ReLUs keeps only positive gradients"
    source = "Zeiler & Fergus 2014"
    rules = gate_rules(
        lambda grad, gate: grad.clamp(min=0), relu=modified_backward(lambda grad, out: grad.clamp(min=0))
    )


@register
class GuidedBackprop(_ModifiedReLU):
    """Guided Backpropagation: gradient and DeconvNet masks combined at every ReLU.

    (Springenberg et al. 2015.)

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1, bias=False))
    >>> _ = model[1].weight.data.copy_(torch.tensor([[1.0, -1.0]]))
    >>> sl.GuidedBackprop(model)(torch.tensor([[-2.0, 3.0]])).values  # the gradient would be [[0., -1.]]
    tensor([[0., 0.]])
    """

    name = "guided_backprop"
    description = "Guided Backprop: backward through ReLUs keeps positive gradients of active units"
    source = "Springenberg et al. 2015"
    rules = gate_rules(lambda grad, gate: grad.clamp(min=0) * gate, relu=modified_backward(_guided_relu_backward))
