"""Captum's argument conventions turned into saliencelab's, for :mod:`saliencelab.compat.captum`.

Captum passes inputs as a tensor or a tuple of tensors, targets as an int, a
tuple (an index into a multi-dimensional output), a tensor or a list, extra
model arguments as ``additional_forward_args``, and reports a *signed*
convergence delta. These helpers translate each convention once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from saliencelab.core.baselines import references
from saliencelab.core.targets import resolve_target

INTEGRATION = {
    "gausslegendre": "gauss_legendre",
    "riemann_left": "riemann_left",
    "riemann_right": "riemann_right",
    "riemann_middle": "riemann_middle",
    "riemann_trapezoid": "riemann_trapezoid",
}
"""Captum's ``method=`` of Integrated Gradients -> saliencelab's ``integration=``."""


def as_parts(inputs: Any, name: str = "inputs") -> tuple[tuple[torch.Tensor, ...], bool]:
    """Captum's inputs as a tuple of tensors, and whether a single tensor was given.

    Example
    -------
    >>> parts, single = as_parts(torch.zeros(2, 3))
    >>> len(parts), single
    (1, True)
    """
    if isinstance(inputs, torch.Tensor):
        return (inputs,), True
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(part, torch.Tensor) for part in inputs):
        return tuple(inputs), False
    raise TypeError(
        f"{name} must be a tensor or a non-empty tuple of tensors, as in Captum; got {type(inputs).__name__}"
    )


def shaped(parts: Sequence[torch.Tensor], single: bool) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``parts`` in the form the inputs came in: one tensor for a tensor, else a tuple.

    Example
    -------
    >>> shaped((torch.zeros(1),), single=True).shape, len(shaped((torch.zeros(1),), single=False))
    (torch.Size([1]), 1)
    """
    return parts[0] if single else tuple(parts)


def unpacked(parts: Sequence[Any]) -> Any:
    """What saliencelab takes for one entry per input: the entry itself for one input, else a tuple.

    Example
    -------
    >>> unpacked(("a",)), unpacked(("a", "b"))
    ('a', ('a', 'b'))
    """
    return parts[0] if len(parts) == 1 else tuple(parts)


def forward_args(additional_forward_args: Any) -> tuple | None:
    """Captum's ``additional_forward_args`` as a tuple (a single value is one argument), or None.

    Example
    -------
    >>> forward_args(None), forward_args(3), forward_args((1, "a"))
    (None, (3,), (1, 'a'))
    """
    if additional_forward_args is None:
        return None
    if isinstance(additional_forward_args, tuple):
        return additional_forward_args
    return (additional_forward_args,)


def per_part(value: Any, parts: Sequence[torch.Tensor], name: str) -> Any:
    """A per-input argument (``baselines``, ``feature_mask``) in saliencelab's form.

    A tuple must have one entry per input, as in Captum; anything else is one spec for every input.

    Example
    -------
    >>> per_part((0.5,), (torch.zeros(1, 2),), "baselines"), per_part(0.0, (torch.zeros(1),), "b")
    (0.5, 0.0)
    """
    if not isinstance(value, tuple):
        return value
    if len(value) != len(parts):
        raise ValueError(f"{name} has {len(value)} entries for {len(parts)} inputs; give one per input, as in Captum")
    return unpacked(value)


def packed_mask(mask: Any, parts: Sequence[torch.Tensor]) -> Any:
    """Captum's ``feature_mask`` for saliencelab: as it is for one input; for several, packed side by side.

    Captum gives one mask per input, broadcastable to it, and a group id used in
    several inputs is one group across them; saliencelab takes several inputs'
    groups as one ``(1 or N, D)`` mask over the inputs flattened and concatenated.

    Example
    -------
    >>> parts = (torch.zeros(2, 2, 2), torch.zeros(2, 3))
    >>> packed_mask((torch.tensor([[0, 1]]), torch.tensor([[1, 2, 2]])), parts).tolist()
    [[0, 1, 0, 1, 1, 2, 2]]
    """
    mask = per_part(mask, parts, "feature_mask")
    if len(parts) == 1 or mask is None:
        return mask
    flat = []
    for part_mask, part in zip(mask, parts, strict=True):
        if not isinstance(part_mask, torch.Tensor):
            raise TypeError(f"each feature_mask entry must be a tensor of group ids; got {type(part_mask).__name__}")
        shaped_mask = part_mask.reshape((1,) * (part.ndim - part_mask.ndim) + tuple(part_mask.shape))
        rows = 1 if shaped_mask.shape[0] == 1 else part.shape[0]
        flat.append(shaped_mask.expand(rows, *part.shape[1:]).reshape(rows, -1))
    rows = max(piece.shape[0] for piece in flat)
    return torch.cat([piece.expand(rows, -1) for piece in flat], dim=1)


def distribution(baselines: Any, parts: Sequence[torch.Tensor], name: str = "baselines") -> Any:
    """Captum's baseline distribution (a batch of K references per input, or a callable giving one) for saliencelab.

    Example
    -------
    >>> distribution(torch.zeros(5, 3), (torch.ones(2, 3),)).tensor.shape
    torch.Size([5, 3])
    """
    if callable(baselines) and not isinstance(baselines, torch.Tensor):
        baselines = baselines(*parts) if _takes_arguments(baselines) else baselines()
    batches, _ = as_parts(baselines, name)
    if len(batches) != len(parts):
        raise ValueError(f"{name} has {len(batches)} entries for {len(parts)} inputs; give one per input")
    return unpacked(tuple(references(batch) for batch in batches))


def _takes_arguments(function: Callable) -> bool:
    import inspect

    try:
        return bool(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return True


def class_target(target: Any) -> Any:
    """Captum's ``target`` as a saliencelab target.

    Ints, lists of ints and tensors of class indices carry over; a tuple indexes a
    multi-dimensional output (``output[:, *t]``) and a list of tuples does so per
    sample, which become callables. ``None`` stays ``None``: a model with one output
    per sample is explained as it is (where Captum needs a target for an ``(N, C)``
    output, saliencelab explains the argmax class).

    Example
    -------
    >>> out = torch.arange(12.0).reshape(2, 3, 2)
    >>> class_target((1, 0))(out), class_target([(0, 1), (2, 0)])(out)
    (tensor([2., 8.]), tensor([ 1., 10.]))
    """
    if isinstance(target, tuple):
        index = target
        return lambda output: output[(slice(None), *index)]
    if isinstance(target, list) and target and all(isinstance(entry, tuple) for entry in target):
        indices = list(target)

        def per_sample(output: torch.Tensor) -> torch.Tensor:
            if len(indices) != output.shape[0]:
                raise ValueError(f"target has {len(indices)} index tuples for {output.shape[0]} samples")
            return torch.stack([output[(row, *index)] for row, index in enumerate(indices)])

        return per_sample
    return target


def neuron_index(neuron_selector: Any) -> tuple | Callable[[torch.Tensor], torch.Tensor]:
    """Captum's ``neuron_selector`` as the index of :func:`saliencelab.neuron`.

    An int or a tuple of ints picks one unit; a tuple with slices sums the units it
    selects (Captum's convention); a callable ``activation -> (N,)`` is kept.

    Example
    -------
    >>> neuron_index(3), neuron_index((0, 2))
    ((3,), (0, 2))
    >>> neuron_index((slice(0, 2), 1))(torch.arange(12.0).reshape(2, 3, 2))
    tensor([ 4., 16.])
    """
    if callable(neuron_selector):
        return neuron_selector
    if isinstance(neuron_selector, int) and not isinstance(neuron_selector, bool):
        return (neuron_selector,)
    if isinstance(neuron_selector, tuple) and all(isinstance(entry, (int, slice)) for entry in neuron_selector):
        if not any(isinstance(entry, slice) for entry in neuron_selector):
            return neuron_selector
        selector = neuron_selector
        return lambda activation: activation[(slice(None), *selector)].reshape(activation.shape[0], -1).sum(dim=1)
    raise TypeError(
        f"neuron_selector must be an int, a tuple of ints and slices, or a callable; got {neuron_selector!r}"
    )


def integration(method: str) -> str:
    """Captum's Integrated Gradients ``method`` as saliencelab's ``integration``.

    Example
    -------
    >>> integration("gausslegendre"), integration("riemann_middle")
    ('gauss_legendre', 'riemann_middle')
    """
    if method not in INTEGRATION:
        raise ValueError(f"method must be one of {', '.join(INTEGRATION)} (Captum's names); got {method!r}")
    return INTEGRATION[method]


def drawn_seed() -> int:
    """A seed drawn from torch's global generator, so that ``torch.manual_seed`` fixes the results, as in Captum.

    Example
    -------
    >>> _ = torch.manual_seed(0); first = drawn_seed()
    >>> _ = torch.manual_seed(0); first == drawn_seed()
    True
    """
    return int(torch.randint(0, 2**31 - 1, ()).item())


def sklearn_surrogate(interpretable_model: Any) -> Any:
    """A scikit-learn regressor for LIME from Captum's ``interpretable_model``.

    ``None`` is Captum's default, ``SkLearnLasso(alpha=0.01)``; a Captum
    ``SkLearnLinearModel`` gives the scikit-learn model it names; a scikit-learn
    regressor is used as it is. Captum's own torch-trained linear models have no
    saliencelab counterpart.

    Example
    -------
    >>> sklearn_surrogate(None)
    Lasso(alpha=0.01)
    """
    if interpretable_model is None:
        from sklearn.linear_model import Lasso

        return Lasso(alpha=0.01)
    module = getattr(interpretable_model, "sklearn_module", None)
    if isinstance(module, str):
        path, _, name = f"sklearn.{module}".rpartition(".")
        return getattr(importlib.import_module(path), name)(**getattr(interpretable_model, "construct_kwargs", {}))
    if hasattr(interpretable_model, "fit") and hasattr(interpretable_model, "get_params"):
        return interpretable_model
    raise NotImplementedError(
        f"interpretable_model={type(interpretable_model).__name__} is not supported: pass None (Captum's default "
        "SkLearnLasso(alpha=0.01)), a Captum SkLearnLinearModel such as SkLearnRidge, or a scikit-learn regressor"
    )


def model_scores(
    model: Callable, parts: Sequence[torch.Tensor], extra: tuple | None, target: Any, n: int
) -> torch.Tensor:
    """The target score of each sample, ``(n,)``, for inputs ``parts`` broadcast to ``n`` samples.

    Example
    -------
    >>> model = torch.nn.Linear(2, 3)
    >>> scores = model_scores(model, (torch.zeros(1, 2),), None, torch.tensor([0, 2]), n=2)
    >>> torch.allclose(scores, model.bias.detach()[[0, 2]])
    True
    """
    rows = [part.expand(n, *part.shape[1:]) if part.shape[0] == 1 else part for part in parts]
    with torch.no_grad():
        output = model(*rows, *(extra or ()))
    return resolve_target(target, output).scores(output)


def signed_delta(
    model: Callable,
    parts: Sequence[torch.Tensor],
    extra: tuple | None,
    target: Any,
    attributions: Any,
    reference_parts: Sequence[Sequence[torch.Tensor]],
) -> torch.Tensor:
    """Captum's convergence delta ``Σ attributions − (f(x) − mean_k f(reference_k))`` per sample.

    ``target`` is the resolved target of the attribution (``Attribution.target``);
    ``reference_parts`` lists the references, each one tensor per input broadcastable
    to the inputs; an empty list stands for ``f(reference) = 0`` (LRP's delta).

    Example
    -------
    >>> model = torch.nn.Linear(2, 1)
    >>> x = torch.ones(3, 2)
    >>> attributions = x * model.weight.detach()
    >>> delta = signed_delta(model, (x,), None, None, attributions, [(torch.zeros(1, 2),)])
    >>> bool(delta.abs().max() < 1e-6)
    True
    """
    n = parts[0].shape[0]
    total = sum(_per_sample_sums(attributions))
    outputs = model_scores(model, parts, extra, target, n)
    if reference_parts:
        references_mean = torch.stack(
            [model_scores(model, _broadcast(ref, parts), extra, target, n) for ref in reference_parts]
        ).mean(dim=0)
        outputs = outputs - references_mean
    return total - outputs.to(total.dtype)


def _broadcast(reference: Sequence[Any], parts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Each input's reference (a number or a tensor) as a tensor broadcast to the input."""
    return tuple(
        torch.as_tensor(ref, dtype=part.dtype, device=part.device).expand_as(part)
        for ref, part in zip(reference, parts, strict=True)
    )


def _per_sample_sums(attributions: Any) -> list[torch.Tensor]:
    tensors = attributions if isinstance(attributions, (tuple, list)) else (attributions,)
    return [tensor.reshape(tensor.shape[0], -1).sum(dim=1) for tensor in tensors]
