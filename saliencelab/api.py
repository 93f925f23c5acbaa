"""The one-call entry point: :func:`explain`."""

from __future__ import annotations

from typing import Any

from saliencelab.core import registry
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.structure import Structured
from saliencelab.core.targets import TargetSpec


def explain(
    model: Any,
    inputs: Structured,
    method: str,
    target: TargetSpec = None,
    baseline: BaselineSpec = None,
    *,
    forward_args: object = None,
    layer_input: bool = False,
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
    registry.check_options(cls, options)
    call = {"forward_args": forward_args, "layer": layer, "layer_input": layer_input}
    return cls(model, **options)(inputs, target=target, baseline=baseline, **call)


def available_methods() -> list[str]:
    """Every method name that :func:`explain` accepts, sorted.

    Example
    -------
    >>> import saliencelab as sl
    >>> {"gradient", "deeplift", "lrp", "grad_cam"} <= set(sl.available_methods())
    True
    """
    return registry.available_methods()
