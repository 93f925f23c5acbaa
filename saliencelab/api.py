"""The one-call entry point: :func:`explain`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from saliencelab.core import registry
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.structure import Structured
from saliencelab.core.targets import TargetSpec
from saliencelab.methods.base import check_takes_forward_args


def explain(
    model: Any,
    inputs: Structured,
    method: str,
    target: TargetSpec = None,
    baseline: BaselineSpec = None,
    *,
    forward_args: object = None,
    layer_input: bool = False,
    feature_names: Sequence[str] | None = None,
    **options: Any,
) -> Attribution:
    """Attribute the model's predictions on ``inputs`` to the input features.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable mapping a batch to a batch of outputs.
        It is left exactly as it was: parameters, buffers, hooks, training flag.
    inputs:
        A floating-point batch, first dimension = samples; or several: a tuple or
        list of tensors (the model is called ``model(*inputs)``) or a dict
        (``model(**inputs)``), each with the same batch size. ``values`` then has
        the same structure and ``delta`` sums over all of them.
    method:
        A name from :func:`available_methods`.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or ``None`` for
        the argmax class.
    baseline:
        For methods with a reference: a tensor broadcastable to ``inputs``, a
        number, a preset (``"zeros"``, ``"min"``, ``"mean"``, ``"blur"``,
        ``"uniform"``), a callable ``inputs -> tensor``, or
        ``sl.references(batch)`` for K references; with several inputs, one spec
        for all or one per input in the inputs' structure.
    forward_args:
        Extra model arguments that are not attributed (Captum's
        ``additional_forward_args``): a tuple (positional, after the inputs), a
        dict (keywords) or one value. A tensor whose first dimension is the batch
        size goes with its sample wherever a method evaluates several rows per sample.
    layer, layer_input:
        ``layer=`` (a module or dotted name) is the CAM methods' own option; for
        the other methods it attributes to that layer's output instead of the
        inputs (``layer_input=True``: its input), as Captum's ``Layer*`` classes
        do. ``target=sl.neuron(layer, index)`` explains one unit of a hidden layer.
    feature_names:
        Names of the features of tabular inputs ``(N, D)``, one per column: kept
        in ``a.info["feature_names"]`` and used by ``a.plot`` (a bar chart of the top features).
    progress:
        Among the options: a progress bar (``True``/``False``); by default one
        appears on a terminal when a call runs longer than 2 seconds.
    **options:
        The method's options (``steps``, ``samples``, ``noise``, ``seed``,
        ``memory_budget``, ...); an unknown option is a ``TypeError`` that lists
        the method's options.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> a = sl.explain(model, torch.randn(2, 4), method="integrated_gradients", target=1, steps=64)
    >>> a.values.shape, a.method, a.target.tolist()
    (torch.Size([2, 4]), 'integrated_gradients', [1, 1])
    >>> two = lambda image, table: image.flatten(1).sum(1, keepdim=True) + table @ torch.ones(3, 1)
    >>> a = sl.explain(two, (torch.ones(2, 1, 2, 2), torch.ones(2, 3)), method="gradient_x_input")
    >>> [tuple(part.shape) for part in a.values]
    [(2, 1, 2, 2), (2, 3)]
    """
    cls = registry.get(method)
    layer = options.pop("layer", None) if cls.layer_attribution else None  # else a CAM's own option
    progress = None if "progress" in registry.option_names(cls) else options.pop("progress", None)
    registry.check_options(cls, options)
    if forward_args is not None:
        check_takes_forward_args(cls)  # before the method is built: PatternNet runs the model then
    names = _feature_names(feature_names, inputs)
    call = {"forward_args": forward_args, "layer": layer, "layer_input": layer_input, "progress": progress}
    result = cls(model, **options)(inputs, target=target, baseline=baseline, **call)
    if names is not None:
        result.info["feature_names"] = names
    return result


def _feature_names(names: Sequence[str] | None, inputs: object) -> list[str] | None:
    """``names`` as a list, checked to name every column of tabular inputs ``(N, D)``."""
    if names is None:
        return None
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 2:
        raise ValueError("feature_names names the columns of tabular inputs (N, D): give one tensor of that shape")
    names = [str(name) for name in names]
    if len(names) != inputs.shape[1]:
        raise ValueError(f"feature_names has {len(names)} names for {inputs.shape[1]} features; give one per column")
    return names


def available_methods() -> list[str]:
    """Every method name that :func:`explain` accepts, sorted.

    Example
    -------
    >>> import saliencelab as sl
    >>> {"gradient", "deeplift", "lrp", "grad_cam"} <= set(sl.available_methods())
    True
    """
    return registry.available_methods()
