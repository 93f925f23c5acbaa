"""The relevance mode: every operation between the input and the output passes relevance by a rule.

Relevance travels backwards as the gradient does, on the engine's
:class:`~saliencelab.engine.Interception`: dense layers and convolutions use
their :class:`~saliencelab.lrp.RelevanceRule` (chosen per layer by a
:class:`~saliencelab.lrp.Composite`), averages and sums share it in proportion
to their inputs, sums of activations split it in proportion to the summands, a
constant added counts as a bias, elementwise nonlinearities and scaling by
constants pass it on, max pooling routes it to the winner, and data movement
(reshape, flatten, concatenation, indexing) moves it with the data. A
composite with ``attention=True`` adds the rules of
:mod:`saliencelab.lrp.attention` (softmax, products of activations, norms,
fused attention). Anything else raises :class:`~saliencelab.UnsupportedOperationError`.

In-place operations (``out += identity``, ``nn.ReLU(inplace=True)``) stay in
place: the rule runs on a copy and its result is written into the tensor.

Example
-------
>>> import torch
>>> from saliencelab.lrp import Composite
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU())
>>> _ = net[0].weight.data.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
>>> mode = RelevanceMode(Composite(), bias="ignore", method="lrp")
>>> x = mode.mark(torch.tensor([[3.0, 1.0]], requires_grad=True))
>>> with mode:
...     y = net(x)
>>> torch.autograd.grad(y, x, torch.tensor([[4.0, 0.0]]))[0].round(decimals=4)  # R = 4 on the first output: 3:1
tensor([[3., 1.]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from saliencelab.engine import (
    DATA_MOVEMENT,
    ELEMENTWISE_ACTIVATIONS,
    QUERIES,
    ROUTING,
    Call,
    Interception,
    OpRule,
    Propagate,
    PropagateKnowingOutput,
    modified_backward,
    watching_modules,
)
from saliencelab.lrp.attention import AttentionRules
from saliencelab.lrp.composites import CONVOLUTIONS, LAYER_OPS, Composite
from saliencelab.lrp.merge import BatchNormMerge, MergedLayer, batch_norm_affine
from saliencelab.lrp.rules import STABILIZER, Layer, RelevanceRule, dense_backward, stabilized

AVERAGES = frozenset(
    "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d sum mean".split()
)
"""Averages and sums over an activation: each input gets its share ``z_ij / z_j`` of its outputs' relevance."""

SUMS = frozenset({"add", "sub", "rsub"})
SCALINGS = frozenset({"mul", "div", "neg"})
PASS_ON = ELEMENTWISE_ACTIVATIONS | frozenset(
    "exp log sqrt abs clamp clamp_min clamp_max pow square erf sin cos".split()
)
"""Elementwise functions of one activation: its relevance passes on unchanged."""

PASSES = (
    DATA_MOVEMENT
    | ROUTING
    | QUERIES
    | frozenset("pad masked_fill where".split())
    | frozenset("dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout".split())
)
"""Operations that move relevance with the data as the gradient does: they run unchanged."""

_PASS_ON = modified_backward(lambda grad, out: grad)

HINT = "LRP has no rule for it; explain the logits (no softmax) with supported operations"

_BIAS = "_saliencelab_bias"


def _bias_of(tensor: torch.Tensor) -> torch.Tensor | float:
    """The constants added to ``tensor`` since its last nonlinearity (0 if none were recorded)."""
    return getattr(tensor, _BIAS, 0.0)


def _set_bias(tensor: torch.Tensor, bias: torch.Tensor | float) -> None:
    setattr(tensor, _BIAS, bias)


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over ``like``'s axis 1."""
    return values.reshape(-1, *([1] * (like.ndim - 2))) if like.ndim > 2 else values


class RelevanceMode(AttentionRules, Interception):
    """While active, attaches LRP's relevance rules to every operation on input-dependent tensors.

    A composite with ``attention=True`` adds the AttnLRP rules
    (:mod:`saliencelab.lrp.attention`): softmax, products of activations, layer
    and RMS norm, fused attention.

    Parameters
    ----------
    composite:
        The rule of each dense layer and convolution.
    bias:
        ``"absorb"``: biases and added constants take their share of the
        relevance; ``"ignore"``: they are left out of the denominators.
    method:
        The method's name, for errors.
    names:
        ``id(module) -> dotted name``, for composites that name layers.
    stabilizer:
        Passed to the rules (:class:`~saliencelab.lrp.Layer`) and used by the
        proportional shares of averages, sums and batch norm.
    merge_batch_norm:
        Merge each batch norm into the layer whose output it normalises
        (:class:`~saliencelab.lrp.merge.BatchNormMerge`).
    """

    def __init__(
        self,
        composite: Composite,
        *,
        bias: str,
        method: str,
        names: dict[int, str] | None = None,
        stabilizer: float = STABILIZER,
        merge_batch_norm: bool = False,
    ) -> None:
        rules: dict[str, OpRule] = {
            **dict.fromkeys(LAYER_OPS, self._layer),
            **dict.fromkeys(AVERAGES, self._average),
            **dict.fromkeys(SUMS, self._in_place(self._sum)),
            **dict.fromkeys(SCALINGS, self._in_place(self._scaled)),
            **dict.fromkeys(PASS_ON, self._pass_on),
            "batch_norm": self._batch_norm,
            **(self.attention_rules() if composite.attention else {}),
        }
        super().__init__(rules, method=method, passes=PASSES, hint=HINT)
        self.composite = composite
        self.absorb = bias == "absorb"
        self.stabilizer = stabilizer
        self.names = names or {}
        self.merge = BatchNormMerge(method) if merge_batch_norm else None
        self.modules: list[nn.Module] = []
        self.position = 0

    # ------------------------------------------------------------------ the call stream

    def dispatch(self, call: Call) -> Any:
        if self.merge is not None and (call.name in self.rules or call.name in self.passes):
            self.merge.observe(call)
        result = super().dispatch(call)
        if self.composite.attention:
            self.note_provenance(call, result)
        return result

    @contextmanager
    def watching_layers(self) -> Iterator[None]:
        """Tell the mode which module each operation runs in (this thread's module calls only)."""

        def enter(module, _inputs):
            self.modules.append(module)

        def leave(module, _inputs, _output):
            if self.modules and self.modules[-1] is module:
                self.modules.pop()

        with watching_modules(before=enter, after=leave):
            yield

    def _only_input_dependent(self, call: Call, tensors: tuple[Any, ...]) -> None:
        if any(isinstance(t, torch.Tensor) and self.depends(t) for t in tensors):
            raise call.unsupported("the weights depend on the input; LRP's rules need a layer with fixed weights")

    def record_bias(self, tensor: torch.Tensor, bias: torch.Tensor | float) -> None:
        """Under ``bias="ignore"``: ``bias`` is the constant added to ``tensor`` by the operation that made it."""
        _set_bias(tensor, bias)

    def _stabilize(self, z: torch.Tensor) -> torch.Tensor:
        return stabilized(z, self.stabilizer)

    def _in_place(self, rule: OpRule) -> OpRule:
        """``rule`` for in-place calls too: it runs on a copy of the target, and its result is written back."""

        def run(call: Call) -> Any:
            if not call.inplace:
                return rule(call)
            target = call.args[0]
            copy = target.clone()  # what the rule saves must not be overwritten
            if self.depends(target):
                self.mark(copy)
                _set_bias(copy, _bias_of(target))
            result = rule(call.out_of_place().replaced(0, "input", copy))
            target.copy_(result)
            _set_bias(target, _bias_of(result))
            return target

        return run

    # ------------------------------------------------------------------ the rules

    def _pass_on(self, call: Call) -> torch.Tensor:
        """An elementwise nonlinearity: relevance passes on; the constants added before it are no bias after it."""
        out = _PASS_ON(call)
        _set_bias(out, 0.0)  # an in-place call returns its input, which carried the bias of the layer before
        return out

    def _layer(self, call: Call) -> torch.Tensor:
        """A dense layer or convolution: its rule from the composite."""
        x, weight, bias = call.args[0], call.argument(1, "weight"), call.argument(2, "bias")
        self._only_input_dependent(call, (weight, bias))
        record = MergedLayer(call)  # the parameters the rule uses, merged with a batch norm if one reads the output

        def run(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return call.replaced(0, "input", t).replaced(1, "weight", w).replaced(2, "bias", b).genuine()

        dense = call.name == "linear" and weight.ndim == 2
        out = self._linear_map(
            call,
            x,
            lambda t: call.replaced(0, "input", t).genuine(),
            run,
            record.parameters,
            backward=dense_backward if dense else None,
            output_is_z=lambda: record.affine is None and (self.absorb or bias is None),
        )
        if self.merge is not None:
            self.merge.register(record, out)
        if not self.absorb and bias is not None:
            _set_bias(out, _per_channel(bias.detach(), out) if call.name in CONVOLUTIONS else bias.detach())
        return out

    def _linear_map(
        self,
        call: Call,
        x: torch.Tensor,
        compute: Callable[[torch.Tensor], torch.Tensor],
        run: Callable[[torch.Tensor, Any, Any], torch.Tensor],
        parameters: Callable[[], tuple[Any, Any]],
        chosen: RelevanceRule | None = None,
        backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        output_is_z: Callable[[], bool] = lambda: False,
    ) -> torch.Tensor:
        """``compute(x)``, a linear map, whose relevance is by ``chosen`` or else the composite's rule.

        The rule sees the layer ``run(t, weight, bias)`` with ``parameters()``, read when relevance flows
        back, and ``backward``, its transpose in closed form where there is one (``Layer.backward``).
        ``output_is_z()``, asked then too: whether ``compute(x)`` equals ``run(x, *parameters())`` as the
        rule's layer runs it (not once a batch norm is merged into the parameters, nor under
        ``bias="ignore"``); the rule then gets the forward's output as ``Layer.output`` (with a
        ``backward`` only: the output is kept until relevance flows back).
        """
        if chosen is None:
            module = self.modules[-1] if self.modules else None
            chosen = self.composite.rule_for(call.name, self.names.get(id(module)), module, self.position)
            self.position += 1

        def propagate(t: torch.Tensor, output: torch.Tensor | None, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            w, b = parameters()
            z = output if output is not None and output_is_z() else None
            layer = Layer(run, w, b if self.absorb else None, tuple(t.shape), self.stabilizer, backward, z)
            return (chosen.relevance(t, out_relevance, layer),)

        if backward is None:  # only the closed forms read the output: do not hold it until the backward
            return Propagate.apply(compute, lambda t, out_relevance: propagate(t, None, out_relevance), x)
        return PropagateKnowingOutput.apply(compute, propagate, x)

    def _average(self, call: Call) -> torch.Tensor:
        """Averages and sums: each input gets its share of its outputs' relevance (z_ij / z_j)."""

        def compute(t: torch.Tensor) -> torch.Tensor:
            return call.replaced(0, "input", t).genuine()

        def propagate(t: torch.Tensor, out_relevance: torch.Tensor) -> tuple[torch.Tensor]:
            with torch.enable_grad():
                leaf = t.detach().requires_grad_(True)
                z = compute(leaf)
                (grad,) = torch.autograd.grad(z, leaf, (out_relevance / self._stabilize(z)).detach())
            return (t * grad,)

        return Propagate.apply(compute, propagate, call.args[0])

    def _sum(self, call: Call) -> torch.Tensor:
        """``a ± b``: shares in proportion to the summands; a constant summand is a bias."""
        first, second = call.args[0], call.argument(1, "other")
        kwargs = {key: value for key, value in call.kwargs.items() if key != "other"}
        alpha = kwargs.get("alpha", 1)
        signs = {"add": (1, alpha), "sub": (1, -alpha), "rsub": (-alpha, 1)}[call.name]

        def compute(a: Any, b: Any) -> torch.Tensor:
            return call.func(a, b, **kwargs)

        dependent = [isinstance(t, torch.Tensor) and self.depends(t) for t in (first, second)]
        if all(dependent):
            bias_a, bias_b = self._bias_left_out(first), self._bias_left_out(second)

            def propagate(a, b, out_relevance):
                part_a, part_b = signs[0] * (a - bias_a), signs[1] * (b - bias_b)
                scale = out_relevance / self._stabilize(part_a + part_b)
                return (part_a * scale).sum_to_size(a.shape), (part_b * scale).sum_to_size(b.shape)

            return Propagate.apply(compute, propagate, first, second)
        x, constant = (first, second) if dependent[0] else (second, first)
        sign = signs[0] if dependent[0] else signs[1]

        def compute_one(t: torch.Tensor) -> torch.Tensor:
            return compute(t, constant) if dependent[0] else compute(constant, t)

        def propagate_one(t, out_relevance):
            if not self.absorb:
                return (out_relevance.sum_to_size(t.shape),)
            return ((sign * t * out_relevance / self._stabilize(compute_one(t))).sum_to_size(t.shape),)

        out = Propagate.apply(compute_one, propagate_one, x)
        if not self.absorb:
            added = (signs[1] if dependent[0] else signs[0]) * torch.as_tensor(constant, dtype=out.dtype)
            _set_bias(out, sign * _bias_of(x) + added.to(out.device))
        return out

    def _bias_left_out(self, tensor: torch.Tensor) -> torch.Tensor | float:
        """Under ``bias="ignore"``, the constants added to ``tensor`` since its last nonlinearity."""
        return 0.0 if self.absorb else _bias_of(tensor)

    def _batch_norm(self, call: Call) -> torch.Tensor:
        """Eval-mode batch norm ``s·x + t``: the shift is a bias (absorbed or ignored), or merged into its layer."""
        if call.argument(5, "training", False):
            raise call.unsupported("batch norm in training mode couples the samples; call model.eval()")
        x = call.args[0]
        self._only_input_dependent(call, call.tensors()[1:])
        scale, shift = batch_norm_affine(call)
        scale, shift = _per_channel(scale.to(x.dtype), x), _per_channel(shift.to(x.dtype), x)
        merged = self.merge is not None and self.merge.absorbs(call)

        def compute(t: torch.Tensor) -> torch.Tensor:
            return call.replaced(0, "input", t).genuine()

        def propagate(t, out_relevance):
            if not self.absorb or merged:
                return (out_relevance,)
            y = compute(t)
            return (out_relevance * (y - shift) / self._stabilize(y),)

        out = Propagate.apply(compute, propagate, x)
        if not self.absorb:
            _set_bias(out, scale * _bias_of(x) + shift)
        return out

    def _scaled(self, call: Call) -> torch.Tensor:
        """``x·c``, ``x/c``, ``c/x``, ``-x``: one activation, scaled elementwise, keeps its relevance."""
        dependent = [i for i, a in enumerate(call.args) if isinstance(a, torch.Tensor) and self.depends(a)]
        if len(dependent) != 1:
            raise call.unsupported("LRP has no rule for products or quotients of activations")
        position = dependent[0]

        def compute(t: torch.Tensor) -> torch.Tensor:
            return call.func(*call.args[:position], t, *call.args[position + 1 :], **call.kwargs)

        def propagate(t, out_relevance):
            return (out_relevance.sum_to_size(t.shape),)

        return Propagate.apply(compute, propagate, call.args[position])


def module_names(model: object) -> dict[int, str]:
    """``id(module) -> dotted name`` for a model's modules (empty for a model that is not an ``nn.Module``).

    Example
    -------
    >>> sorted(module_names(torch.nn.Sequential(torch.nn.Linear(1, 1))).values())
    ['', '0']
    """
    if not isinstance(model, nn.Module):
        return {}
    return {id(module): name for name, module in model.named_modules()}
