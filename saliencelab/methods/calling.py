"""One method call, whatever the user passed: several inputs, forward arguments, a hidden layer, a neuron.

:func:`call` checks the inputs against the method, then runs the method on the
model as the call needs it (:mod:`saliencelab.core.structure` for several
inputs and forward arguments, :mod:`saliencelab.core.layers` for ``layer=`` and
``sl.neuron``) and gives the values back in the user's structure. A plain
tensor with none of these runs the method as it is.

Example
-------
>>> import torch, saliencelab as sl
>>> two = lambda image, table: image.flatten(1).sum(1, keepdim=True) + 2 * table.sum(1, keepdim=True)
>>> a = call(sl.Gradient(two), (torch.ones(1, 1, 2, 2), torch.ones(1, 3)), None, None, None, None, False)
>>> [part.flatten().tolist() for part in a.values]
[[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, References, pack_references, resolve_baseline
from saliencelab.core.guard import preserved
from saliencelab.core.layers import LayerModel, Neuron, NeuronModel, activations, resolve_layer
from saliencelab.core.structure import ForwardArgs, InputStructure, Structured, StructuredModel
from saliencelab.core.targets import TargetSpec
from saliencelab.core.validation import check_inputs_fit_model, model_dtype

if TYPE_CHECKING:
    from saliencelab.methods.base import Method


def call(
    method: Method,
    inputs: Structured,
    target: TargetSpec,
    baseline: object,
    forward_args: object,
    layer: nn.Module | str | None,
    layer_input: bool,
) -> Attribution:
    """``method`` on ``inputs``: checked, wrapped as the call needs, values in the inputs' structure."""
    from saliencelab.methods.base import check_inputs, check_takes_forward_args  # base imports this module

    structure = InputStructure.of(inputs, fallback=model_dtype(method.model))
    extra = ForwardArgs.of(forward_args, structure.batch)
    if structure.packed and not method.structured_inputs:
        raise ValueError(
            f"{method.name} needs one input tensor (it works on an image's layout); several inputs go to the "
            "gradient, path, reference and relevance methods, smoothgrad over them, the CAMs but score_cam "
            "(the layer's map), and to occlusion, feature_ablation, shapley_sampling, kernel_shap and lime"
        )
    if forward_args is not None:
        check_takes_forward_args(type(method))
    if layer is not None and not method.layer_attribution:
        raise ValueError(
            f"{method.name} does not attribute to a hidden layer; layer= goes to the gradient, path, reference "
            "and relevance methods and to occlusion, feature_ablation and shapley_sampling"
        )
    integers = method.integer_inputs or layer is not None  # at a layer, token ids are not attributed themselves
    for part, tensor in zip(structure.parts, structure.tensors(inputs), strict=True):
        check_inputs(tensor, part.key if structure.packed else None, integers=integers)
        if tensor.is_floating_point():
            check_inputs_fit_model(method.model, tensor)
    if baseline is not None and not method.takes_baseline:
        raise ValueError(f"{method.name} takes no baseline; drop baseline= or use integrated_gradients")
    unit = target if isinstance(target, Neuron) else None
    wrapped = structure.packed or structure.integers or forward_args is not None
    if layer is None and unit is None and not wrapped:
        return method.run_bound(method, inputs, target, baseline)
    caller = method.model
    if wrapped:
        caller = StructuredModel(method.model, structure, extra, method.name)
    if unit is not None:
        caller, target = NeuronModel(caller, resolve_layer(method.model, unit.layer), unit), 0
    packed = structure.pack(inputs)
    if layer is not None:
        return _at_layer(method, caller, structure, inputs, packed, target, baseline, layer, layer_input)
    bound = copy.copy(method)
    bound.model, bound.structure = caller, structure
    masks = structure.parts_of(getattr(method, "feature_mask", None))
    if masks is not None:  # one mask per input, group ids shared across them: packed like the inputs
        bound.feature_mask = structure.pack_masks(masks)
    result = method.run_bound(bound, packed, target, packed_baseline(method, baseline, structure, inputs))
    values = structure.unpack(result.values) if method.input_shaped else result.values
    return Attribution(values, result.delta, result.method, result.target, result.info)


def packed_baseline(method: Method, baseline: object, structure: InputStructure, inputs: Structured) -> BaselineSpec:
    """The baseline of several inputs in the packed layout: resolved per input, then packed like them.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> inputs = (torch.ones(1, 2), torch.ones(1, 1))
    >>> packed_baseline(sl.IntegratedGradients(torch.nn.Identity()), (0.5, "zeros"), InputStructure.of(inputs), inputs)
    tensor([[0.5000, 0.5000, 0.0000]])
    """
    if baseline is None or not structure.packed:
        return baseline
    specs = structure.parts_of(baseline)
    if specs is None:
        if isinstance(baseline, (torch.Tensor, References)):
            raise ValueError(
                f"one baseline tensor for {len(structure.parts)} inputs is ambiguous: give one per input, "
                "in the inputs' structure (a tuple or a dict), or a number or preset for all of them"
            )
        specs = [baseline] * len(structure.parts)
    seed = getattr(method, "seed", 0)
    resolved = [
        resolve_baseline(spec, tensor, seed=seed, distribution=method.draws_references).tensor
        for spec, tensor in zip(specs, structure.tensors(inputs), strict=True)
    ]
    return pack_references(resolved, structure)


def _at_layer(
    method: Method,
    caller: Any,
    structure: InputStructure,
    inputs: Structured,
    packed: torch.Tensor,
    target: TargetSpec,
    baseline: object,
    layer: nn.Module | str,
    layer_input: bool,
) -> Attribution:
    """The score attributed to ``layer``'s output (or input): the method on :class:`LayerModel` at them."""
    from saliencelab.methods.base import outside_inference  # base imports this module

    module = resolve_layer(method.model, layer)
    with torch.inference_mode(False), preserved(method.model):
        packed = outside_inference(packed)
        activation = activations(caller, module, packed, torch.arange(packed.shape[0]), layer_input)
        reference = _layer_reference(method, caller, module, structure, inputs, packed, baseline, layer_input)
    bound = copy.copy(method)
    bound.model = LayerModel(caller, module, packed, layer_input)
    result = method.run_bound(bound, activation, target, reference)
    result.info["layer"] = layer if isinstance(layer, str) else type(module).__name__
    return result


def _layer_reference(
    method: Method,
    caller: Any,
    module: nn.Module,
    structure: InputStructure,
    inputs: Structured,
    packed: torch.Tensor,
    baseline: object,
    layer_input: bool,
) -> BaselineSpec:
    """The baseline mapped through the layer: given in input space (token ids too), like the inputs."""
    if not method.takes_baseline or (baseline is None and method.draws_references):
        return None
    if not method.baseline_in_input_space:
        return baseline
    spec = "zeros" if baseline is None else baseline
    if structure.packed:
        spec = packed_baseline(method, spec, structure, inputs)
    seed = getattr(method, "seed", 0)
    refs = resolve_baseline(spec, packed, seed=seed, distribution=method.draws_references).tensor
    if refs.shape[0] == 1 and getattr(caller, "needs_rows", False):
        refs = refs.expand(packed.shape[0], *refs.shape[1:])  # each sample's forward arguments reach its references
    rows, k = refs.shape[0], refs.shape[1]
    flat = refs.reshape(rows * k, *refs.shape[2:])
    if not packed.is_floating_point():
        flat = flat.round().to(packed.dtype)
    mapped = activations(caller, module, flat, torch.arange(rows).repeat_interleave(k), layer_input)
    mapped = mapped.reshape(rows, k, *mapped.shape[1:])
    if k == 1:
        return mapped[:, 0]
    return References(mapped, per_sample=True) if rows > 1 else References(mapped[0])
