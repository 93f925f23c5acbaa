"""Turn a method name or a user's own function into one explainer signature.

Every evaluation takes ``method`` as a registered method name (with its options)
or any callable ``(model, inputs, target) -> tensor``, so users can put their own
attribution functions through the same checks.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> explain_fn = as_explainer("gradient")
>>> torch.equal(explain_fn(model, torch.ones(1, 3), 0)[0], model.weight[0].detach())
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from saliencelab.api import explain
from saliencelab.core import registry
from saliencelab.core.attribution import Attribution
from saliencelab.core.degenerate import checked_by_caller

Explainer = Callable[[Any, torch.Tensor, Any], torch.Tensor]


def as_explainer(method: str | Callable, **options: Any) -> Explainer:
    """Return ``explain_fn(model, inputs, target) -> tensor`` for ``method``.

    Parameters
    ----------
    method:
        A name from :func:`saliencelab.available_methods`, or a callable
        ``(model, inputs, target)`` returning a tensor, an array or an
        :class:`~saliencelab.Attribution` with one map per sample.
    **options:
        Options for a named method (``steps=32``, ...), including ``baseline=``,
        which goes to each call. A callable takes none: bind them in the callable instead.

    Example
    -------
    >>> import torch
    >>> edges = as_explainer(lambda model, x, target: x.diff(dim=-1))
    >>> edges(None, torch.tensor([[0.0, 1.0, 3.0]]), None).tolist()
    [[1.0, 2.0]]
    """
    if isinstance(method, str):
        cls = registry.get(method)
        baseline = options.pop("baseline", None)
        registry.check_options(cls, options)

        def named(model: Any, inputs: torch.Tensor, target: Any) -> torch.Tensor:
            with checked_by_caller():  # the checks judge constant maps themselves
                found = explain(model, inputs, method=method, target=target, baseline=baseline, **options)
            return found.values.detach()

        named.__name__ = method
        return named
    if not callable(method):
        raise TypeError(
            f"method must be a method name or a callable (model, inputs, target) -> tensor; got {type(method).__name__}"
        )
    if options:
        raise TypeError(
            f"options {sorted(options)} were given with a callable method; bind them in the callable "
            "(for example with functools.partial)"
        )

    def custom(model: Any, inputs: torch.Tensor, target: Any) -> torch.Tensor:
        return _as_tensor(method(model, inputs, target), inputs)

    custom.__name__ = getattr(method, "__name__", type(method).__name__)
    return custom


def method_name(method: str | Callable) -> str:
    """A readable name for a method name or callable (for table rows and legends).

    Example
    -------
    >>> method_name("gradient"), method_name(len)
    ('gradient', 'len')
    """
    return method if isinstance(method, str) else getattr(method, "__name__", type(method).__name__)


def _as_tensor(result: object, inputs: torch.Tensor) -> torch.Tensor:
    if isinstance(result, Attribution):
        result = result.values
    if isinstance(result, np.ndarray):
        result = torch.from_numpy(result).to(inputs.device)
    if not isinstance(result, torch.Tensor):
        raise TypeError(
            f"a custom method must return a tensor, an array or an Attribution; got {type(result).__name__}"
        )
    if result.ndim == 0 or result.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"a custom method returned shape {tuple(result.shape)} for {inputs.shape[0]} inputs; "
            "return one map per sample (first dimension = samples)"
        )
    return result.detach()
