"""LRP rules: how relevance crosses one linear layer (Bach et al. 2015; Montavon et al. 2019).

A linear layer ``z_j = Σ_i x_i w_ij + b_j`` (a dense layer, a convolution, a
transposed convolution) passes the relevance ``R_j`` of its outputs to its
inputs. A rule is an object with one method, :meth:`RelevanceRule.relevance`,
that receives the layer's input, its output relevance and the layer itself as a
:class:`Layer`: the layer can be run with modified weights (``layer(x, w⁺)``)
and transposed (``layer.transpose(s)``, the backward pass of the modified layer
applied to ``s``). Most rules are the four steps of Montavon et al.: a modified
forward ``z′``, the normalisation ``s = R / z′``, the transposed layer
``c = Wᵀs`` and the product ``R_i = x_i c_i`` (:func:`share`).

The built-in rules are instances of the protocol:

- :class:`Epsilon`: ``R_i = Σ_j x_i w_ij / (z_j + ε·sign z_j) · R_j``; ``epsilon=0`` is LRP-0.
- :class:`ZPlus`: positive contributions only (``x⁺w⁺ + x⁻w⁻``).
- :class:`AlphaBeta`: ``α R⁺ − β R⁻`` with α − β = 1.
- :class:`Gamma`: weights ``w + γ w⁺`` for positive outputs (``w + γ w⁻`` for negative ones, on
  negative inputs the other way round): favours the contributions that agree with the output.
- :class:`ZBox`: the input layer with bounds ``low ≤ x ≤ high`` (z^B); default bounds: each
  sample's own smallest and largest input value.
- :class:`Flat`: every input of an output gets an equal share.
- :class:`WSquare`: shares ``w_ij² / Σ_i′ w_i′j²``.
- :class:`Pass`: relevance passes unchanged (shape-preserving layers only).

``bias="absorb"`` gives a rule the layer's bias (it takes its share of the
relevance in ``z′``); ``bias="ignore"`` gives it none, so relevance is conserved.

Example
-------
A rule of your own, here ε with a fixed stabilizer of 0.1, is a subclass:

>>> import torch
>>> class MyEpsilon(RelevanceRule):
...     def relevance(self, inputs, out_relevance, layer):
...         z = layer(inputs)
...         return inputs * layer.transpose(out_relevance / (z + 0.1 * torch.where(z >= 0, 1.0, -1.0)))
>>> dense = torch.nn.Linear(3, 2)
>>> layer = Layer(lambda x, w, b: torch.nn.functional.linear(x, w, b), dense.weight, dense.bias, (1, 3))
>>> x, r = torch.randn(1, 3), torch.randn(1, 2)
>>> torch.allclose(MyEpsilon().relevance(x, r, layer), Epsilon(0.1).relevance(x, r, layer))
True
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

STABILIZER = 1e-6
"""Default ``stabilizer``: added (with the sign of the denominator) where a rule other than epsilon divides
by z′, as Zennit does; without it a denominator that nearly cancels (γ, z^B, αβ on signed inputs)
multiplies rounding noise. Conservation is then exact up to about ``stabilizer / |z′|``."""

ZERO_GUARD = 1e-12
"""LRP-0 (``epsilon=0``) divides by ``z ± 1e-12``, only to keep 0/0 out."""

WeightMap = Callable[[torch.Tensor], torch.Tensor]
"""A modification of the layer's parameters (``lambda w: w.clamp(min=0)``), applied to weight and bias alike."""


@dataclass(frozen=True)
class Layer:
    """A linear layer as a rule sees it: run it, or its transpose, with modified weights.

    Parameters
    ----------
    run:
        ``run(inputs, weight, bias)``: the layer's operation (``F.conv2d`` with
        its stride, padding, ... bound) on any inputs and parameters.
    weight, bias:
        The layer's parameters, detached; ``bias`` is None when the layer has
        none or the method ignores biases (``bias="ignore"``).
    input_shape:
        The shape of the layer's input.
    stabilizer:
        The method's stabilizer, for rules that divide by ``z′`` (all but ε).
    backward:
        ``backward(grad, weight)``, the transposed layer in closed form (for a
        dense layer ``grad @ weight``); None: autograd transposes ``run``.
    output:
        ``run(inputs, weight, bias)`` as the forward pass computed it, when known
        (a rule may read it instead of running the layer again).

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), torch.tensor([0.5]), (1, 2))
    >>> x = torch.tensor([[3.0, 1.0]])
    >>> layer(x), layer(x, lambda w: w.clamp(min=0)), layer(x, bias=False)
    (tensor([[1.5000]]), tensor([[3.5000]]), tensor([[1.]]))
    >>> layer.transpose(torch.tensor([[2.0]]))
    tensor([[ 2., -4.]])
    >>> dense = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2), backward=dense_backward)
    >>> dense.transpose(torch.tensor([[2.0]]))
    tensor([[ 2., -4.]])
    """

    run: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    weight: torch.Tensor
    bias: torch.Tensor | None
    input_shape: tuple[int, ...]
    stabilizer: float = STABILIZER
    backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    output: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, modify: WeightMap | None = None, *, bias: bool = True) -> torch.Tensor:
        """The layer on ``inputs`` with its weight (and bias) mapped by ``modify``; ``bias=False`` drops the bias."""
        weight = self.weight if modify is None else modify(self.weight)
        kept = self.bias if bias and self.bias is not None else None
        return self.run(inputs, weight, kept if kept is None or modify is None else modify(kept))

    def transpose(self, grad: torch.Tensor, modify: WeightMap | None = None) -> torch.Tensor:
        """``Wᵀ grad`` for the layer's (modified) weights: the backward pass of the layer, shaped like its input."""
        if self.backward is not None:
            return self.backward(grad, self.weight if modify is None else modify(self.weight))
        with torch.enable_grad():
            point = torch.zeros(self.input_shape, dtype=grad.dtype, device=grad.device, requires_grad=True)
            (result,) = torch.autograd.grad(self(point, modify, bias=False), point, grad)
        return result


def stabilized(z: torch.Tensor, stabilizer: float) -> torch.Tensor:
    """``z + stabilizer`` where ``z ≥ 0``, ``z − stabilizer`` elsewhere: a denominator kept away from zero.

    The same numbers as ``z + torch.where(z >= 0, s, -s)``, in about half the time (``where``
    with scalar branches is slow on a CPU).

    Example
    -------
    >>> stabilized(torch.tensor([-2.0, 0.0, 3.0]), 0.5)
    tensor([-2.5000,  0.5000,  3.5000])
    """
    offset = torch.ge(z, 0).to(z.dtype).mul_(2 * stabilizer).sub_(stabilizer)  # ±stabilizer exactly: 2s − s = s
    return z + offset


def dense_backward(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The transpose of ``F.linear`` with a 2-D ``weight``: ``grad @ weight`` (a :attr:`Layer.backward`).

    Example
    -------
    >>> dense_backward(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    tensor([[1., 2., 3.]])
    """
    return grad @ weight


class RelevanceRule(ABC):
    """The protocol of an LRP rule: a subclass says how relevance crosses one linear layer.

    Pass instances in a :class:`~saliencelab.lrp.Composite`. The rule must not
    change the layer's parameters (it receives detached tensors; use ``modify``
    maps instead).

    Example
    -------
    >>> class Halves(RelevanceRule):  # a toy rule: every input gets half of the inputs' share under ε
    ...     def relevance(self, inputs, out_relevance, layer):
    ...         return 0.5 * Epsilon().relevance(inputs, out_relevance, layer)
    >>> from saliencelab.lrp import Composite
    >>> Composite(default=Halves()).default.__class__.__name__
    'Halves'
    """

    @abstractmethod
    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        """The relevance of ``inputs`` (shaped like them) given the relevance of the layer's outputs."""


Term = tuple[torch.Tensor, WeightMap | None, bool]
"""``(inputs, modify, bias)``: one part ``layer(inputs, modify, bias=bias)`` of a modified forward pass."""


def share(out_relevance: torch.Tensor, layer: Layer, terms: Sequence[Term], stabilizer: float) -> torch.Tensor:
    """Relevance in proportion to contributions: ``R_i = Σ_t in_t ⊙ W_tᵀ (R / (z′ ± stabilizer))``.

    ``z′ = Σ_t layer(in_t, modify_t, bias=bias_t)`` is the modified forward
    pass and ``W_t`` the weights ``modify_t`` makes; the stabilizer is added
    with the sign of ``z′``.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> share(torch.tensor([[1.0]]), layer, [(torch.tensor([[3.0, 1.0]]), None, True)], 1e-12)
    tensor([[ 3., -2.]])
    """
    if layer.backward is not None:  # the transpose in closed form: no autograd graph to build and run
        unmodified = len(terms) == 1 and terms[0][1] is None and terms[0][2]
        with torch.no_grad():
            if unmodified and layer.output is not None:
                z = layer.output
            else:
                z = sum(layer(inputs, modify, bias=bias) for inputs, modify, bias in terms)
            scale = out_relevance / stabilized(z, stabilizer)
            return sum(inputs * layer.transpose(scale, modify) for inputs, modify, _ in terms)
    with torch.enable_grad():  # one forward and one backward pass for all terms
        leaves = [inputs.detach().requires_grad_(True) for inputs, _, _ in terms]
        z = sum(layer(leaf, modify, bias=bias) for leaf, (_, modify, bias) in zip(leaves, terms, strict=True))
        scale = (out_relevance / stabilized(z, stabilizer)).detach()
        grads = torch.autograd.grad(z, leaves, scale, allow_unused=True)
    return sum(leaf.detach() * (0 if g is None else g) for leaf, g in zip(leaves, grads, strict=True))


def positive(w: torch.Tensor) -> torch.Tensor:
    """``w⁺``: the positive part (a :data:`WeightMap`)."""
    return w.clamp(min=0)


def negative(w: torch.Tensor) -> torch.Tensor:
    """``w⁻``: the negative part (a :data:`WeightMap`)."""
    return w.clamp(max=0)


def _agreeing(inputs: torch.Tensor, agree: WeightMap, disagree: WeightMap) -> list[Term]:
    """``x⁺ agree(w) + x⁻ disagree(w)``: positive inputs through one map, negative ones through the other."""
    return [(inputs.clamp(min=0), agree, True), (inputs.clamp(max=0), disagree, False)]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Epsilon(RelevanceRule):
    """LRP-ε: ``R_i = Σ_j x_i w_ij / (z_j + ε·sign z_j) · R_j``; ``epsilon=0`` is LRP-0.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> Epsilon(epsilon=1.0).relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer)
    tensor([[ 1.5000, -1.0000]])
    """

    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        _check(self.epsilon >= 0, f"epsilon must be >= 0; got {self.epsilon}")

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        return share(out_relevance, layer, [(inputs, None, True)], self.epsilon or ZERO_GUARD)


@dataclass(frozen=True)
class ZPlus(RelevanceRule):
    """z⁺: only the positive contributions ``x⁺w⁺ + x⁻w⁻`` share the relevance.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> ZPlus().relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer).round(decimals=4)
    tensor([[1., 0.]])
    """

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        return share(out_relevance, layer, _agreeing(inputs, positive, negative), layer.stabilizer)


@dataclass(frozen=True)
class AlphaBeta(RelevanceRule):
    """αβ: ``α`` times the share of the positive contributions minus ``β`` times that of the negative ones.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> AlphaBeta(alpha=2.0, beta=1.0).relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer).round()
    tensor([[ 2., -1.]])
    """

    alpha: float = 2.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        _check(
            abs(self.alpha - self.beta - 1) <= 1e-12,
            f"alpha_beta needs alpha - beta = 1 to conserve relevance; got {self.alpha}, {self.beta}",
        )

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        up = share(out_relevance, layer, _agreeing(inputs, positive, negative), layer.stabilizer)
        down = share(out_relevance, layer, _agreeing(inputs, negative, positive), layer.stabilizer)
        return self.alpha * up - self.beta * down


@dataclass(frozen=True)
class Gamma(RelevanceRule):
    """γ: favours the contributions that agree with each output's sign.

    An output ``z > 0`` uses ``x⁺(w + γw⁺) + x⁻(w + γw⁻)``, an output ``z ≤ 0``
    ``x⁺(w + γw⁻) + x⁻(w + γw⁺)``, so ``z′`` moves away from 0.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> Gamma(gamma=1.0).relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer)
    tensor([[ 1.5000, -0.5000]])
    """

    gamma: float = 0.25

    def __post_init__(self) -> None:
        _check(self.gamma >= 0, f"gamma must be >= 0; got {self.gamma}")

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        def boosted(part: WeightMap) -> WeightMap:
            return lambda w: w + self.gamma * part(w)

        up, down = boosted(positive), boosted(negative)
        with torch.no_grad():
            rising = layer(inputs) > 0
        agree = share(out_relevance * rising, layer, _agreeing(inputs, up, down), layer.stabilizer)
        oppose = share(out_relevance * ~rising, layer, _agreeing(inputs, down, up), layer.stabilizer)
        return agree + oppose


Bound = float | torch.Tensor | None


@dataclass(frozen=True)
class ZBox(RelevanceRule):
    """z^B for an input layer with bounds ``low ≤ x ≤ high`` (numbers or tensors broadcastable to the input).

    A bound left None is each sample's own smallest (``low``) or largest
    (``high``) input value, so a sample's relevance never depends on the rest of
    the batch.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> ZBox(low=0.0, high=4.0).relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer)  # 3 : (-2 + 8)
    tensor([[0.3333, 0.6667]])
    """

    low: Bound = None
    high: Bound = None

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        low = self._bound(self.low, inputs, torch.amin)
        high = self._bound(self.high, inputs, torch.amax)
        terms = [(inputs, None, True), (low, lambda w: -positive(w), False), (high, lambda w: -negative(w), False)]
        return share(out_relevance, layer, terms, layer.stabilizer)

    @staticmethod
    def _bound(bound: Bound, inputs: torch.Tensor, reduce: Callable[..., torch.Tensor]) -> torch.Tensor:
        if bound is None:
            per_sample = reduce(inputs, dim=tuple(range(1, inputs.ndim)), keepdim=True)
            return per_sample.expand_as(inputs)
        return torch.as_tensor(bound, dtype=inputs.dtype, device=inputs.device).expand_as(inputs)


@dataclass(frozen=True)
class Flat(RelevanceRule):
    """Flat: every input of an output gets an equal share, whatever its value and weight.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> Flat().relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer)
    tensor([[0.5000, 0.5000]])
    """

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        return share(out_relevance, layer, [(torch.ones_like(inputs), torch.ones_like, False)], layer.stabilizer)


@dataclass(frozen=True)
class WSquare(RelevanceRule):
    """w²: shares ``w_ij² / Σ_i′ w_i′j²``, whatever the input's value.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.tensor([[1.0, -2.0]]), None, (1, 2))
    >>> WSquare().relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0]]), layer)
    tensor([[0.2000, 0.8000]])
    """

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        return share(out_relevance, layer, [(torch.ones_like(inputs), torch.square, False)], layer.stabilizer)


@dataclass(frozen=True)
class Pass(RelevanceRule):
    """Relevance passes unchanged: for layers that keep the shape (a 1×1 convolution with as many channels).

    Example
    -------
    >>> import torch.nn.functional as F
    >>> layer = Layer(F.linear, torch.eye(2), None, (1, 2))
    >>> Pass().relevance(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 2.0]]), layer)
    tensor([[1., 2.]])
    """

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        if out_relevance.shape != inputs.shape:
            raise ValueError(
                f"the pass rule needs an operation that keeps the shape; {tuple(inputs.shape)} -> "
                f"{tuple(out_relevance.shape)}"
            )
        return out_relevance


BUILT_IN: dict[str, type[RelevanceRule]] = {
    "epsilon": Epsilon,
    "zplus": ZPlus,
    "alpha_beta": AlphaBeta,
    "gamma": Gamma,
    "zbox": ZBox,
    "flat": Flat,
    "wsquare": WSquare,
    "pass": Pass,
}
"""The built-in rules by name."""

RULE_NAMES = tuple(BUILT_IN)
"""Names accepted by :func:`rule` and by ``rule=``."""


def parameters_of(name: str) -> tuple[str, ...]:
    """The parameters a built-in rule takes.

    Example
    -------
    >>> parameters_of("alpha_beta"), parameters_of("flat")
    (('alpha', 'beta'), ())
    """
    return tuple(inspect.signature(BUILT_IN[name]).parameters)


def rule(name: str, **params: Any) -> RelevanceRule:
    """A built-in rule by name: unknown names and parameters are errors.

    ``rule("zbox")`` needs its bounds: the default of :class:`ZBox` (each
    sample's own range) is for :class:`~saliencelab.DeepTaylor`, which says so.

    Example
    -------
    >>> rule("epsilon", epsilon=0.25)
    Epsilon(epsilon=0.25)
    >>> rule("alpha_beta", alpha=2, gamma=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: the alpha_beta rule takes ['alpha', 'beta']; got ['gamma']
    """
    if name not in BUILT_IN:
        raise ValueError(f"unknown LRP rule {name!r}; choose one of {RULE_NAMES}")
    unknown = set(params) - set(parameters_of(name))
    if unknown:
        takes = list(parameters_of(name)) or "no parameters"
        raise TypeError(f"the {name} rule takes {takes}; got {sorted(unknown)}")
    if name == "zbox" and (params.get("low") is None or params.get("high") is None):
        raise ValueError("the zbox rule needs low= and high=, the bounds of the input (e.g. the data range)")
    return BUILT_IN[name](**params)
