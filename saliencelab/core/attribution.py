"""The result of an attribution method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Attribution:
    """Attribution of a batch of predictions to the input features.

    Attributes
    ----------
    values:
        Tensor with the input's shape, dtype and device (CAM maps: ``(N, 1, H, W)``).
    delta:
        Per-sample completeness error ``|sum(values) - (f(x) - f(baseline))|`` as a
        tensor of shape ``(N,)``, or ``None`` for methods without a reference.
    method:
        Name of the method that produced the values.
    target:
        The resolved target: an int64 tensor of class indices ``(N,)``, the
        callable that was given, or ``None`` for a model with one output per sample.
    info:
        Method-specific facts, for example ``info["steps"]``: the integration
        steps used for each sample by Integrated Gradients.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 2)
    >>> a = sl.explain(model, torch.ones(1, 3), method="gradient", target=0)
    >>> torch.equal(a.values[0], model.weight[0].detach())
    True
    """

    values: torch.Tensor
    delta: torch.Tensor | None
    method: str
    target: torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None
    info: dict[str, Any] = field(default_factory=dict)
