"""AttnLRP: relevance through softmax, products of activations and normalisations (Achtibat et al. 2024).

The closed forms of the rules that the ``"transformer"`` composite adds to the
relevance mode (:class:`AttentionRules`):

* softmax ``s = softmax(x)``: the Taylor decomposition at ``x``,
  ``R_i = x_i (R_out,i − s_i Σ_j R_out,j)`` (:func:`softmax_relevance`). Its
  zero-order term, the bias of the expansion, is not redistributed (the
  bias-free variant the paper states), so the softmax is not conservative;
* a product of two activations (``a * b``, ``a @ b``, ``bmm``, ``einsum``):
  the uniform rule, each factor gets half of every product term's relevance
  (:func:`uniform_relevance`);
* layer norm: the standard deviation is held constant, so the layer is the
  linear map ``x ↦ w ⊙ (x − mean x) / σ + b`` and gets the ε rule; RMS norm
  (``F.rms_norm``, or written out as ``x * rsqrt(mean(x²) + eps)``) and a
  division by a standard deviation: the normalising factor is a constant, the
  relevance passes unchanged (identity);
* ``scaled_dot_product_attention`` (masks, causal flag, grouped heads) and
  ``nn.MultiheadAttention``: run decomposed into the dense projections and
  ``softmax(q kᵀ · scale + mask) v`` (:mod:`saliencelab.lrp.decompositions`),
  each step by its rule;
* elementwise nonlinearities (GELU, SiLU, tanh) pass their relevance on, as in
  every composite, and so do those written out as a product of an activation
  with a function of itself (``x * sigmoid(x)``, GPT-2's
  ``0.5 * x * (1 + tanh(...))``, ``x / (1 + exp(-x))``): the factor that is the activation (times
  constants) gets all the relevance; products with one constant factor
  (``x @ W``, ``addmm``) are dense layers with the composite's rule.

A *normaliser* is a reduction of an activation (``mean``, ``var``, ``std``,
``norm``) and what elementwise functions and constants make of it
(``rsqrt(mean(x²) + eps)``): in a product with, or as the divisor of, a larger
activation it is held constant. ``var``, ``std`` and ``norm`` are accepted only
as normalisers: relevance reaching them is an error.

Example
-------
>>> import torch
>>> x, r = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])
>>> softmax_relevance(x, x.softmax(0), r, 0)  # 1·(0.5 − 0.27) and 2·(0.5 − 0.73)
tensor([ 0.2311, -0.4621])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliencelab.engine import ELEMENTWISE_ACTIVATIONS, Call, OpRule, Propagate, PropagateKnowingOutput
from saliencelab.engine.attention import MULTI_HEAD_UNSUPPORTED, attention_decomposed, multi_head_decomposed
from saliencelab.engine.difference.composite import DECOMPOSITIONS
from saliencelab.lrp.rules import Epsilon, stabilized

NORMALISER = "_saliencelab_normaliser"

STATISTICS = frozenset("mean var std norm linalg_vector_norm".split())
"""Reductions whose result may serve as a normaliser."""

KEEPS_NORMALISER = frozenset(
    "add sub rsub mul div sqrt rsqrt reciprocal pow clamp clamp_min clamp_max to float double type_as view reshape "
    "unsqueeze expand".split()
)
"""Operations of normalisers (and constants) only whose result is a normaliser again."""

ELEMENTWISE_OF = "_saliencelab_elementwise_of"
SCALED_COPY_OF = "_saliencelab_scaled_copy_of"

ELEMENTWISE = ELEMENTWISE_ACTIVATIONS | frozenset(
    "exp log sqrt rsqrt reciprocal abs clamp clamp_min clamp_max pow square erf sin cos add sub rsub mul div neg to "
    "float double".split()
)
"""Elementwise operations: applied to functions of one activation only, their result is a function of it too."""

_PROVENANCE = STATISTICS | KEEPS_NORMALISER | ELEMENTWISE
"""The operations whose results :meth:`AttentionRules.note_provenance` may record something about."""

SCALINGS = frozenset("mul div neg to float double".split())
"""Operations that, with constants, make a constant multiple of their one activation."""

BILINEAR = frozenset("mul matmul mm bmm einsum".split())
"""Products that are bilinear in two factors: the uniform rule when both depend on the input."""


def has_attention(model: Any) -> bool:
    """Whether ``model`` has an attention module: ``nn.MultiheadAttention`` or a class named ``*Attention*``.

    LRP chooses the ``"transformer"`` composite for such models by default.

    Example
    -------
    >>> has_attention(nn.Sequential(nn.Linear(2, 2))), has_attention(nn.MultiheadAttention(4, 2))
    (False, True)
    """
    if not isinstance(model, nn.Module):
        return False
    return any(isinstance(m, nn.MultiheadAttention) or "attention" in type(m).__name__.lower() for m in model.modules())


def softmax_relevance(x: torch.Tensor, s: torch.Tensor, out_relevance: torch.Tensor, dim: int) -> torch.Tensor:
    """The AttnLRP softmax rule ``R_i = x_i (R_out,i − s_i Σ_j R_out,j)`` along ``dim``.

    Entries whose softmax is exactly 0 (masked with ``-inf``) get no relevance.

    Example
    -------
    >>> x = torch.tensor([[0.0, float("-inf")]])
    >>> softmax_relevance(x, x.softmax(1), torch.tensor([[1.0, 0.0]]), 1)
    tensor([[0., 0.]])
    """
    total = out_relevance.sum(dim, keepdim=True)
    relevance = x * (out_relevance - s * total)
    return torch.where(s == 0, torch.zeros_like(relevance), relevance)


def uniform_relevance(
    product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    out_relevance: torch.Tensor,
    stabilizer: float,
    *,
    transposed: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    z: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The uniform rule for a bilinear ``product(a, b)``: each factor gets half of every term's share.

    A term ``a_i b_k`` of the output ``z_j`` gets ``a_i b_k / z_j · R_j`` (ε rule
    on the sum of terms, ``stabilizer`` with the sign of ``z``), half of it to
    ``a_i`` and half to ``b_k``; so ``Σ R_a = Σ R_b = Σ R / 2`` up to the stabilizer.
    ``transposed(s, a, b)``, where given, is the product's backward in closed form
    (:func:`matmul_transposed`, :func:`mul_transposed`), and ``z`` the product as the
    forward pass computed it (None: computed again); without ``transposed`` autograd
    differentiates ``product``.

    Example
    -------
    >>> a, b = torch.tensor([[1.0, 3.0]]), torch.tensor([[1.0], [1.0]])
    >>> uniform_relevance(torch.matmul, a, b, torch.tensor([[8.0]]), 1e-12)
    (tensor([[1., 3.]]), tensor([[1.],
            [3.]]))
    """
    if transposed is not None:  # the gradients in closed form: no autograd graph to build and run
        with torch.no_grad():
            z = product(a, b) if z is None else z
            grad_a, grad_b = transposed(out_relevance / (2 * stabilized(z, stabilizer)), a, b)
            return a * grad_a.sum_to_size(a.shape), b * grad_b.sum_to_size(b.shape)
    with torch.enable_grad():
        leaves = (a.detach().requires_grad_(True), b.detach().requires_grad_(True))
        z = product(*leaves)
        scale = (out_relevance / (2 * stabilized(z, stabilizer))).detach()
        grad_a, grad_b = torch.autograd.grad(z, leaves, scale)
    return a.detach() * grad_a, b.detach() * grad_b


def matmul_transposed(scale: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of ``(a @ b)`` weighted by ``scale`` for both factors (at least 2-D), before broadcasting.

    Example
    -------
    >>> matmul_transposed(torch.ones(1, 1), torch.tensor([[1.0, 3.0]]), torch.tensor([[2.0], [4.0]]))
    (tensor([[2., 4.]]), tensor([[1.],
            [3.]]))
    """
    return scale @ b.mT, a.mT @ scale


def mul_transposed(scale: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of ``a * b`` weighted by ``scale`` for both factors, before broadcasting.

    Example
    -------
    >>> mul_transposed(torch.tensor([2.0]), torch.tensor([3.0]), torch.tensor([5.0]))
    (tensor([10.]), tensor([6.]))
    """
    return scale * b, scale * a


def is_normaliser(factor: Any, other: Any) -> bool:
    """Whether ``factor`` is a normaliser smaller than ``other``, the activation it scales.

    Example
    -------
    >>> h, sigma = torch.ones(2, 3), torch.ones(2, 1)
    >>> setattr(sigma, NORMALISER, True)
    >>> is_normaliser(sigma, h), is_normaliser(h, sigma)
    (True, False)
    """
    return getattr(factor, NORMALISER, False) and factor.numel() < other.numel()


def elementwise_root(tensor: torch.Tensor) -> torch.Tensor:
    """The activation ``tensor`` is an elementwise function of (``tensor`` itself if none was recorded).

    Example
    -------
    >>> x = torch.ones(2)
    >>> elementwise_root(x) is x
    True
    """
    return getattr(tensor, ELEMENTWISE_OF, tensor)


def _is_scaled_copy(tensor: torch.Tensor, root: torch.Tensor) -> bool:
    return tensor is root or getattr(tensor, SCALED_COPY_OF, None) is root


def _einsum_operands(call: Call) -> tuple[str, list[Any]]:
    equation, rest = call.args[0], list(call.args[1:])
    return equation, list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest


class AttentionRules:
    """The AttnLRP operation rules, for :class:`~saliencelab.lrp.engine.RelevanceMode` (a mixin).

    The mode provides ``depends``, ``stabilizer``, ``_only_input_dependent``, ``_in_place``, ``_scaled``, ``_pass_on``
    and ``_linear_map`` (a linear map by a rule, the composite's by default).

    Example
    -------
    >>> from saliencelab.lrp.composites import transformer
    >>> from saliencelab.lrp.engine import RelevanceMode
    >>> mode = RelevanceMode(transformer(), bias="ignore", method="lrp")
    >>> q = mode.mark(torch.randn(1, 2, 3, 4, requires_grad=True))
    >>> with mode:
    ...     out = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    >>> torch.autograd.grad(out, q, out.detach())[0].shape
    torch.Size([1, 2, 3, 4])
    """

    def attention_rules(self) -> dict[str, OpRule]:
        """Op name -> rule for the operations AttnLRP adds."""
        return {
            "softmax": self._softmax,
            "layer_norm": self._layer_norm,
            "rms_norm": self._rms_norm,
            "scaled_dot_product_attention": self._attention,
            "multi_head_attention_forward": self._multi_head_attention,
            **dict.fromkeys(("normalize", "cosine_similarity"), self._written_out),
            "baddbmm": self._added_product(torch.bmm),
            "addmm": self._added_product(torch.mm),
            **dict.fromkeys(("var", "std", "norm", "linalg_vector_norm"), self._statistic),
            **dict.fromkeys(("rsqrt", "reciprocal"), self._pass_on),
            **dict.fromkeys(("mul", "div"), self._in_place(self._elementwise_product)),
            **dict.fromkeys(BILINEAR - {"mul"}, self._product),
        }

    def note_provenance(self, call: Call, result: Any) -> None:
        """Record what ``result`` is: a normaliser, or an elementwise function (or multiple) of one activation."""
        if call.name not in _PROVENANCE or not isinstance(result, torch.Tensor):
            return  # most calls (layers, views, products): nothing to record, and no arguments to walk
        dependent = [t for t in call.tensors() if self.depends(t)]
        made = call.name in STATISTICS and result.numel() < dependent[0].numel()
        kept = call.name in KEEPS_NORMALISER and all(getattr(t, NORMALISER, False) for t in dependent)
        if made or kept:
            setattr(result, NORMALISER, True)
        roots = {id(elementwise_root(t)): elementwise_root(t) for t in dependent}
        if call.name not in ELEMENTWISE or len(roots) != 1:
            return
        (root,) = roots.values()
        if result.shape == root.shape:
            setattr(result, ELEMENTWISE_OF, root)
            if call.name in SCALINGS and len(dependent) == 1 and _is_scaled_copy(dependent[0], root):
                setattr(result, SCALED_COPY_OF, root)

    def _softmax(self, call: Call) -> torch.Tensor:
        """Softmax: the AttnLRP rule (:func:`softmax_relevance`)."""
        dim = call.argument(1, "dim")
        if dim is None:
            raise call.unsupported("softmax needs an explicit dim= for its rule")

        def compute(t: torch.Tensor) -> torch.Tensor:
            return call.replaced(0, "input", t).genuine()

        def propagate(t: torch.Tensor, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            s = compute(t).to(out_relevance.dtype)
            return (softmax_relevance(t.to(out_relevance.dtype), s, out_relevance, dim).to(t.dtype),)

        return Propagate.apply(compute, propagate, call.args[0])

    def _layer_norm(self, call: Call) -> torch.Tensor:
        """Layer norm with its standard deviation held constant: a linear map, by the ε rule."""
        x, shape = call.args[0], call.argument(1, "normalized_shape")
        weight, bias, eps = call.argument(2, "weight"), call.argument(3, "bias"), call.argument(4, "eps", 1e-5)
        self._only_input_dependent(call, (weight, bias))
        dims = tuple(range(-len(shape), 0))
        std = torch.native_layer_norm(x.detach(), shape, None, None, eps)[2].reciprocal()  # torch.var is 5× slower

        def run(t: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor:
            centred = (t - t.mean(dims, keepdim=True)) / std
            scaled = centred if w is None else centred * w
            return scaled if b is None else scaled + b

        def transposed(grad: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
            scaled = (grad if w is None else grad * w) / std
            return scaled - scaled.mean(dims, keepdim=True)  # centring is its own transpose

        parameters = (None if weight is None else weight.detach(), None if bias is None else bias.detach())
        out = self._linear_map(
            call,
            x,
            lambda t: call.replaced(0, "input", t).genuine(),
            run,
            lambda: parameters,
            Epsilon(self.stabilizer),
            backward=transposed,
        )
        if not self.absorb and bias is not None:
            self.record_bias(out, parameters[1])
        return out

    def _rms_norm(self, call: Call) -> torch.Tensor:
        """``F.rms_norm``: the normalising factor is a constant, the relevance passes unchanged."""
        self._only_input_dependent(call, (call.argument(2, "weight"),))
        return Propagate.apply(lambda t: call.replaced(0, "input", t).genuine(), lambda t, r: (r,), call.args[0])

    def _statistic(self, call: Call) -> torch.Tensor:
        """``var``, ``std``, ``norm``: accepted as normalisers only, which get no relevance."""

        def propagate(t: torch.Tensor, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            if bool(out_relevance.ne(0).any()):
                raise call.unsupported("its result is used other than as a normaliser (a divisor or scale)")
            return (torch.zeros_like(t),)

        return Propagate.apply(lambda t: call.replaced(0, "input", t).genuine(), propagate, call.args[0])

    def _attention(self, call: Call) -> torch.Tensor:
        """Fused attention, run decomposed (:func:`attention_decomposed`) so that each step has its rule."""
        if call.argument(4, "dropout_p", 0.0):
            raise call.unsupported("attention dropout is random; call model.eval() (dropout_p=0)")
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        bound = dict(zip(names, call.args, strict=False)) | call.kwargs
        bound.pop("dropout_p", None)
        self._only_input_dependent(call, (bound.get("attn_mask"),))
        with self:
            return attention_decomposed(**bound)

    def _written_out(self, call: Call) -> torch.Tensor:
        """``F.normalize`` and ``F.cosine_similarity``, run as their definitions: the norms are normalisers."""
        with self:
            return DECOMPOSITIONS[call.name](*call.args, **call.kwargs, vector_norm=torch.linalg.vector_norm)

    def _multi_head_attention(self, call: Call) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``nn.MultiheadAttention``, run decomposed (:func:`~saliencelab.engine.attention.multi_head_decomposed`)."""
        bound = inspect.signature(F.multi_head_attention_forward).bind(*call.args, **call.kwargs)
        bound.apply_defaults()
        options = bound.arguments
        used = [name for name in MULTI_HEAD_UNSUPPORTED if options[name] is not None and options[name] is not False]
        if used:
            raise call.unsupported(f"LRP writes out multi-head attention without {used}; leave them unset")
        if options["training"] and options["dropout_p"]:
            raise call.unsupported("attention dropout is random; call model.eval()")
        self._only_input_dependent(call, (options["attn_mask"], options["key_padding_mask"]))
        with self:
            return multi_head_decomposed(**options)

    def _added_product(self, product: Callable[..., torch.Tensor]) -> OpRule:
        """``addmm``/``baddbmm`` (``beta·input + alpha·(m1 @ m2)``), run decomposed so each step has its rule."""

        def rule(call: Call) -> torch.Tensor:
            start, first, second = call.args[:3]
            beta, alpha = call.kwargs.get("beta", 1), call.kwargs.get("alpha", 1)
            with self:
                return beta * start + alpha * product(first, second)

        return rule

    def _elementwise_product(self, call: Call) -> torch.Tensor:
        """``a * b`` of two activations: uniform, or all to one factor (:meth:`_whole_factor`); ``a / σ``: identity."""
        first, second = call.args[0], call.argument(1, "other")
        if not (isinstance(second, torch.Tensor) and self.depends(first) and self.depends(second)):
            return self._scaled(call)
        kwargs = {key: value for key, value in call.kwargs.items() if key != "other"}

        def compute(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return call.func(a, b, **kwargs)

        kept = self._whole_factor(call.name, first, second)
        if kept is not None:

            def held(a, b, out_relevance):
                passed = out_relevance.sum_to_size((a, b)[kept].shape)
                return (passed, torch.zeros_like(b)) if kept == 0 else (torch.zeros_like(a), passed)

            return Propagate.apply(compute, held, first, second)
        if call.name == "div":
            raise call.unsupported("LRP has no rule for a quotient of activations other than by a normaliser")

        same_dtype = first.dtype == second.dtype
        return self._uniform(compute, first, second, mul_transposed if call.name == "mul" and same_dtype else None)

    def _uniform(
        self,
        product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        first: torch.Tensor,
        second: torch.Tensor,
        transposed: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        """``product(first, second)`` of two activations by the uniform rule (:func:`uniform_relevance`).

        With a closed-form ``transposed`` the product's output is kept for the backward (it is ``z``);
        without one autograd computes ``z`` again, so nothing is kept.
        """
        if transposed is None:
            return Propagate.apply(
                product, lambda a, b, r: uniform_relevance(product, a, b, r, self.stabilizer), first, second
            )

        def uniform(a: torch.Tensor, b: torch.Tensor, z: torch.Tensor | None, r: torch.Tensor) -> tuple:
            return uniform_relevance(product, a, b, r, self.stabilizer, transposed=transposed, z=z)

        return PropagateKnowingOutput.apply(product, uniform, first, second)

    @staticmethod
    def _whole_factor(name: str, first: torch.Tensor, second: torch.Tensor) -> int | None:
        """Which factor of ``first * second`` (or ``/``) gets all the relevance; None: the uniform rule.

        The one scaled by a normaliser, or in ``x * g(x)`` and ``x / g(x)`` (an elementwise nonlinearity
        written out) the one that is ``x`` times constants.
        """
        if is_normaliser(second, first):
            return 0
        if name == "mul" and is_normaliser(first, second):
            return 1
        root = elementwise_root(first)
        if elementwise_root(second) is root and _is_scaled_copy(first, root):
            return 0
        if elementwise_root(second) is root and name == "mul" and _is_scaled_copy(second, root):
            return 1
        return None

    def _product(self, call: Call) -> torch.Tensor:
        """``matmul``, ``mm``, ``bmm``, ``einsum``: uniform for two activations, a dense layer for one."""
        if call.name == "einsum":
            equation, operands = _einsum_operands(call)
            func = lambda a, b: torch.einsum(equation, a, b)  # noqa: E731
        else:
            operands, func = [call.args[0], call.argument(1, "mat2" if call.name != "matmul" else "other")], call.func
        if len(operands) != 2:
            raise call.unsupported("LRP's product rules take two factors; write the product in pairs")
        first, second = operands
        dependent = [isinstance(t, torch.Tensor) and self.depends(t) for t in operands]
        if all(dependent):
            matrices = call.name in ("matmul", "mm", "bmm") and first.ndim >= 2 and second.ndim >= 2
            closed = matrices and first.dtype == second.dtype
            return self._uniform(func, first, second, matmul_transposed if closed else None)
        position = dependent.index(True)
        weight = (second if position == 0 else first).detach()

        def run(t: torch.Tensor, w: torch.Tensor, _bias: torch.Tensor | None) -> torch.Tensor:
            return func(t, w) if position == 0 else func(w, t)

        return self._linear_map(call, operands[position], lambda t: run(t, weight, None), run, lambda: (weight, None))
