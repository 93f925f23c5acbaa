"""The one-call entry point: :func:`explain`."""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core import registry
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.targets import TargetSpec


def explain(
    model: Any,
    inputs: torch.Tensor,
    method: str,
    target: TargetSpec = None,
    baseline: BaselineSpec = None,
    **options: Any,
) -> Attribution:
    """Attribute the model's predictions on ``inputs`` to the input features.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable mapping a batch to a batch of outputs.
        It is left exactly as it was: parameters, buffers, hooks, training flag.
    inputs:
        A floating-point batch, first dimension = samples.
    method:
        A name from :func:`available_methods`.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or ``None`` for
        the argmax class.
    baseline:
        For methods with a reference: a tensor broadcastable to ``inputs``, a
        number, a preset (``"zeros"``, ``"min"``, ``"mean"``, ``"blur"``,
        ``"uniform"``), a callable ``inputs -> tensor``, or
        ``sl.references(batch)`` for K references.
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
    """
    cls = registry.get(method)
    registry.check_options(cls, options)
    return cls(model, **options)(inputs, target=target, baseline=baseline)


def available_methods() -> list[str]:
    """Every method name that :func:`explain` accepts, sorted.

    Example
    -------
    >>> import saliencelab as sl
    >>> {"gradient", "deeplift", "lrp", "grad_cam"} <= set(sl.available_methods())
    True
    """
    return registry.available_methods()
