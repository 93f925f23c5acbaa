"""The relevance mode: every operation between the input and the output passes relevance by a rule.

Relevance travels backwards as the gradient does: linear operations use their
LRP rule (chosen per operation by a :class:`~saliencelab.lrp.Composite`), sums
of activations split it in proportion to the summands, a constant added counts
as a bias, elementwise nonlinearities and multiplication by constants pass it
on, max pooling routes it to the winner, and data movement (reshape, flatten,
concatenation, indexing) moves it with the data. Anything else raises
:class:`~saliencelab.UnsupportedOperationError`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from saliencelab.engine import ELEMENTWISE_ACTIVATIONS, Call, Propagate, modified_backward, op_name
from saliencelab.engine.difference.table import DROPOUT, SHAPE_ONLY, STRUCTURAL
from saliencelab.engine.intercept import tensors_in
from saliencelab.engine.ops import functional_call
from saliencelab.engine.watch import watching_modules
from saliencelab.errors import UnsupportedOperationError
from saliencelab.lrp.composites import CONVOLUTIONS, Composite
from saliencelab.lrp.rules import STABILIZER, relevance

WEIGHTED = frozenset({"linear"} | CONVOLUTIONS)
PROPORTIONAL = frozenset(
    "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d sum mean".split()
)
ROUTED = frozenset(
    "max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices "
    "adaptive_max_pool1d adaptive_max_pool2d amax max".split()
)
NATURAL = ROUTED | frozenset(STRUCTURAL) | frozenset(SHAPE_ONLY.split()) | frozenset(DROPOUT.split())
PASSING = ELEMENTWISE_ACTIVATIONS | frozenset("exp log sqrt abs clamp clip pow square erf sin cos".split())


_BIAS = "_saliencelab_bias"


def _bias_of(tensor: torch.Tensor) -> torch.Tensor | float:
    """The constants added to ``tensor`` since its last nonlinearity (0 if none were recorded)."""
    return getattr(tensor, _BIAS, 0.0)


def _set_bias(tensor: torch.Tensor, bias: torch.Tensor | float) -> None:
    setattr(tensor, _BIAS, bias)


MERGEABLE = frozenset("linear conv1d conv2d conv3d".split())
_MERGE = "_saliencelab_merge"  # on a dense/conv output: the batch-norm affine merged into it (empty until then)
_MERGED = "_saliencelab_merged"  # on a dense/conv output a batch norm has merged into its layer
_BATCH_NORM_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over ``like``'s axis 1."""
    return values.reshape(-1, *([1] * (like.ndim - 2))) if like.ndim > 2 else values


def _batch_norm_affine(bound: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as ``s·x + t``, each broadcastable over ``x``."""
    mean, var = bound["running_mean"], bound["running_var"]
    scale = torch.rsqrt(var + bound.get("eps", 1e-5))
    if bound.get("weight") is not None:
        scale = scale * bound["weight"]
    shift = -mean * scale + (bound["bias"] if bound.get("bias") is not None else 0.0)
    return _per_channel(scale.to(x.dtype), x), _per_channel(shift.to(x.dtype), x)


def _merge(weight: torch.Tensor, bias: torch.Tensor | None, merged: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's weight and bias with a batch norm ``s·z + t`` merged in: ``s·w`` and ``s·b + t``."""
    if not merged:
        return weight, bias
    scale, shift = merged["scale"].reshape(-1), merged["shift"].reshape(-1)
    merged_bias = shift if bias is None else scale * bias + shift
    return weight * scale.reshape(-1, *([1] * (weight.ndim - 1))), merged_bias


def _refuse_merged_reuse(name: str, method: str, call: tuple) -> None:
    """A layer output that a batch norm merged into must have no other consumer."""
    if any(getattr(t, _MERGED, False) for t in tensors_in(call)):
        raise UnsupportedOperationError(
            name,
            method,
            "it uses a layer output that a batch norm was merged into; "
            "use batch_norm='rule' for models that reuse a pre-normalisation activation",
        )


class RelevanceMode(TorchFunctionMode):
    """While active, attaches LRP's relevance rules to every operation on input-dependent tensors.

    Input-dependent tensors are recognised by their autograd history: run the
    forward with the model's parameters not requiring gradients.
    """

    def __init__(
        self,
        composite: Composite,
        bias: str,
        *,
        method: str,
        names: dict[int, str],
        stabilizer: float = STABILIZER,
        merge_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.composite = composite
        self.absorb = bias == "absorb"
        self.merge_batch_norm = merge_batch_norm
        self.stabilizer = stabilizer
        self.method = method
        self.names = names
        self.modules: list[nn.Module] = []
        self.position = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        func, args, kwargs = functional_call(func, args, kwargs or {})  # an exported graph's ATen overloads
        if not any(t.requires_grad for t in tensors_in((args, kwargs))):
            return func(*args, **kwargs)
        name, inplace = op_name(func)
        if self.merge_batch_norm:
            _refuse_merged_reuse(name, self.method, (args, kwargs))
        if name == "__get__":
            name = getattr(getattr(func, "__self__", None), "__name__", name)
        if name in WEIGHTED:
            return self._weighted(func, name, args, kwargs)
        if name in PROPORTIONAL:
            return self._proportional(func, args, kwargs)
        if name in ("add", "sub", "rsub"):
            return self._sum(func, name, args, kwargs)
        if name == "batch_norm":
            return self._batch_norm(func, args, kwargs)
        if name in ("mul", "div", "neg"):
            return self._scaled(func, name, args, kwargs)
        if name in PASSING:
            return modified_backward(lambda grad, out: grad)(Call.of(func, args, kwargs, method=self.method))
        if name in NATURAL:
            return func(*args, **kwargs)
        result = func(*args, **kwargs)
        if tensors_in(result):
            raise UnsupportedOperationError(
                name, self.method, "LRP has no rule for it; explain the logits (no softmax) with supported operations"
            )
        return result

    def _stabilize(self, z: torch.Tensor) -> torch.Tensor:
        return z + torch.where(z >= 0, self.stabilizer, -self.stabilizer)

    def _module(self) -> tuple[str | None, nn.Module | None]:
        module = self.modules[-1] if self.modules else None
        return (self.names.get(id(module)) if module is not None else None), module

    def _weighted(self, func, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
        x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
        if weight.requires_grad:
            raise UnsupportedOperationError(name, self.method, "the weights depend on the input")
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        rest_args, rest_kwargs = args[3:], {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
        module_name, module = self._module()
        chosen = self.composite.rule_for(name, module_name, module, self.position)
        self.position += 1

        merged: dict[str, torch.Tensor] = {}  # filled by a batch norm that merges into this operation

        def apply(t: torch.Tensor, weight_map, with_bias: bool) -> torch.Tensor:
            w, b = _merge(weight, bias, merged)
            w = w if weight_map is None else weight_map(w)
            b = None if b is None or not with_bias else (b if weight_map is None else weight_map(b))
            return func(t, w, b, *rest_args, **rest_kwargs)

        def compute(t: torch.Tensor) -> torch.Tensor:
            return func(t, weight, bias, *rest_args, **rest_kwargs)

        def propagate(t: torch.Tensor, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            return (relevance(chosen, t, out_relevance, apply, self.absorb, self.stabilizer),)

        out = Propagate.apply(compute, propagate, x)
        if not self.absorb and bias is not None:
            _set_bias(out, _per_channel(bias, out))
        if name in MERGEABLE and (name != "linear" or out.ndim == 2):  # channels on axis 1, as batch norm has them
            setattr(out, _MERGE, merged)
        return out

    def _proportional(self, func, args: tuple, kwargs: dict) -> torch.Tensor:
        """Averages and sums: each input gets its share of its outputs' relevance (z_ij / z_j)."""
        x = args[0]

        def compute(t: torch.Tensor) -> torch.Tensor:
            return func(t, *args[1:], **kwargs)

        def propagate(t: torch.Tensor, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            with torch.enable_grad():
                leaf = t.detach().requires_grad_(True)
                z = compute(leaf)
                (grad,) = torch.autograd.grad(z, leaf, (out_relevance / self._stabilize(z)).detach())
            return (t * grad,)

        return Propagate.apply(compute, propagate, x)

    def _sum(self, func, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
        """``a ± b``: shares in proportion to the summands; a constant summand is a bias."""
        first = args[0]
        second = args[1] if len(args) > 1 else kwargs.get("other")
        alpha = kwargs.get("alpha", 1)
        signs = {"add": (1, alpha), "sub": (1, -alpha), "rsub": (-alpha, 1)}[name]
        dependent = [isinstance(t, torch.Tensor) and t.requires_grad for t in (first, second)]
        if all(dependent):
            free_a, free_b = self._free(first), self._free(second)

            def propagate(a, b, out_relevance):
                part_a, part_b = signs[0] * free_a(a), signs[1] * free_b(b)
                scale = out_relevance / self._stabilize(part_a + part_b)
                return (part_a * scale).sum_to_size(a.shape), (part_b * scale).sum_to_size(b.shape)

            return Propagate.apply(lambda a, b: func(a, b, **kwargs), propagate, first, second)
        x, constant = (first, second) if dependent[0] else (second, first)
        sign = signs[0] if dependent[0] else signs[1]

        def compute(t: torch.Tensor) -> torch.Tensor:
            return func(t, constant, **kwargs) if dependent[0] else func(constant, t, **kwargs)

        def propagate_bias(t, out_relevance):
            if not self.absorb:
                return (out_relevance.sum_to_size(t.shape),)
            return ((sign * t * out_relevance / self._stabilize(compute(t))).sum_to_size(t.shape),)

        out = Propagate.apply(compute, propagate_bias, x)
        if not self.absorb:
            constant_sign = signs[1] if dependent[0] else signs[0]
            added = constant_sign * torch.as_tensor(constant, dtype=out.dtype, device=out.device)
            _set_bias(out, sign * _bias_of(x) + added)
        return out

    def _free(self, tensor: torch.Tensor):
        """``t ↦ t − (constants added to it since its last nonlinearity)``, under ``bias="ignore"``."""
        bias = _bias_of(tensor) if not self.absorb else 0.0
        return lambda t: t - bias

    def _batch_norm(self, func, args: tuple, kwargs: dict) -> torch.Tensor:
        """Eval-mode batch norm ``s·x + t``: the shift is a bias (absorbed or ignored).

        With ``merge_batch_norm``, a batch norm applied straight to the output of
        a dense layer or convolution is merged into it (weights ``s·w``, bias
        ``s·b + t``): the layer's rule sees the merged layer and the batch norm
        passes relevance on. Other batch norms keep their own rule.
        """
        bound = dict(zip(_BATCH_NORM_ARGS, args, strict=False)) | kwargs
        if bound.get("training", False):
            raise UnsupportedOperationError(
                "batch_norm", self.method, "batch norm in training mode couples the samples; call model.eval()"
            )
        x = bound["input"]
        scale, shift = _batch_norm_affine(bound, x)

        def compute(t: torch.Tensor) -> torch.Tensor:
            return func(t, *args[1:], **kwargs)

        merged = getattr(x, _MERGE, None) if self.merge_batch_norm else None
        if merged is not None and not merged:
            merged.update(scale=scale, shift=shift)
            setattr(x, _MERGED, True)

        def propagate(t, out_relevance):
            if not self.absorb or merged:
                return (out_relevance,)
            return ((out_relevance * (compute(t) - shift) / self._stabilize(compute(t))),)

        out = Propagate.apply(compute, propagate, x)
        if not self.absorb:
            _set_bias(out, scale * _bias_of(x) + shift)
        return out

    def _scaled(self, func, name: str, args: tuple, kwargs: dict) -> Any:
        """``x·c``, ``x/c``, ``c/x``, ``-x``: one activation, scaled elementwise, keeps its relevance."""
        dependent = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]
        if len(dependent) != 1:
            raise UnsupportedOperationError(
                name, self.method, "LRP has no rule for products or quotients of activations"
            )
        position = dependent[0]

        def compute(t: torch.Tensor) -> torch.Tensor:
            return func(*args[:position], t, *args[position + 1 :], **kwargs)

        return Propagate.apply(compute, lambda t, out_relevance: (out_relevance.sum_to_size(t.shape),), args[position])


@contextmanager
def tracking_modules(mode: RelevanceMode):
    """Tell ``mode`` which module each operation runs in (this thread's module calls only)."""

    def enter(module, _inputs):
        mode.modules.append(module)

    def leave(module, _inputs, _output):
        if mode.modules and mode.modules[-1] is module:
            mode.modules.pop()

    with watching_modules(before=enter, after=leave):
        yield


def module_names(model: object) -> dict[int, str]:
    """``id(module) -> dotted name`` for a model's modules."""
    if not isinstance(model, nn.Module):
        return {}
    return {id(module): name for name, module in model.named_modules()}
