"""Checks of method options and of inputs against the model, each failing with a message that says how to fix it.

- :func:`check_seed` and :func:`check_memory_budget`: options, checked when a
  method is built, so that a wrong value fails before any work and names the option;
- :func:`check_inputs_fit_model`: the inputs' dtype and device against the
  model's parameters, checked before a method runs the model;
- :func:`batch_dimension_hint`: a model's failure on inputs that look like one
  sample without its batch dimension becomes an error that says to add it.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from saliencelab.errors import UnsupportedOperationError, first_line

SEED_RANGE = (0, 2**64 - 1)
"""The seeds a ``torch.Generator`` takes: 0 to 2**64 - 1."""

_INPUT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


MAX_COUNT = 1_000_000
"""The most samples, masks or steps a method takes: each is at least one model evaluation per input."""


def check_count(value: Any, what: str, least: int = 1, hint: str = "") -> int:
    """``value`` as an int from ``least`` to :data:`MAX_COUNT`, else a ``ValueError`` naming ``what``.

    ``hint`` replaces the advice given for a count above the limit.

    Example
    -------
    >>> check_count(0, "samples")
    Traceback (most recent call last):
    ...
    ValueError: samples must be an int >= 1; got 0
    >>> check_count(10**9, "samples")
    Traceback (most recent call last):
    ...
    ValueError: samples=1,000,000,000 is more than 1,000,000, each at least one model evaluation per input: ...
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
        raise ValueError(f"{what} must be an int >= {least}; got {value!r}")
    if value > MAX_COUNT:
        raise ValueError(
            f"{what}={value:,} is more than {MAX_COUNT:,}, each at least one model evaluation per input: "
            + (hint or f"the call would not finish; lower {what}")
        )
    return int(value)


def check_seed(seed: Any) -> int:
    """``seed`` as an int, if it is a whole number a generator takes (0 to 2**64 - 1); else an error naming ``seed``.

    Example
    -------
    >>> check_seed(7)
    7
    >>> check_seed("abc")
    Traceback (most recent call last):
    ...
    TypeError: seed must be an int from 0 to 2**64 - 1, e.g. seed=0; got 'abc' (str)
    """
    whole = _as_int(seed)
    if whole is None:
        raise TypeError(f"seed must be an int from 0 to 2**64 - 1, e.g. seed=0; got {seed!r} ({type(seed).__name__})")
    if not SEED_RANGE[0] <= whole <= SEED_RANGE[1]:
        raise ValueError(f"seed must be an int from 0 to 2**64 - 1, e.g. seed=0; got {whole}")
    return whole


def check_memory_budget(memory_budget: Any) -> int | None:
    """``memory_budget`` as a whole number of bytes (None: the default budget); else an error naming it.

    An int, or a finite float (``2e9``: rounded down to whole bytes), of at least
    one byte. Text such as ``"1GB"`` is an error: write ``2**30`` (1 GiB) or ``1e9``.

    Example
    -------
    >>> check_memory_budget(2e9), check_memory_budget(None)
    (2000000000, None)
    >>> check_memory_budget("1GB")
    Traceback (most recent call last):
    ...
    TypeError: memory_budget must be a number of bytes (an int such as 2**30 for 1 GiB, or a float such as 1e9); ...
    """
    if memory_budget is None:
        return None
    form = "a number of bytes (an int such as 2**30 for 1 GiB, or a float such as 1e9)"
    if isinstance(memory_budget, float):
        if not math.isfinite(memory_budget):
            raise ValueError(f"memory_budget must be {form}; got {memory_budget!r}")
        budget = int(memory_budget)
    else:
        budget = _as_int(memory_budget)
        if budget is None:
            raise TypeError(f"memory_budget must be {form}; got {memory_budget!r} ({type(memory_budget).__name__})")
    if budget < 1:
        raise ValueError(f"memory_budget must be {form}, at least 1; got {memory_budget!r}")
    return budget


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is an integer (a Python or NumPy int, not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_inputs_fit_model(model: Any, inputs: torch.Tensor) -> None:
    """An error if ``inputs`` differ in dtype or device from the model's first floating-point parameter.

    A model without parameters (any callable) is not checked. A model that casts
    or moves its inputs itself can be wrapped in a function to skip the check.

    Example
    -------
    >>> check_inputs_fit_model(torch.nn.Linear(2, 1), torch.zeros(1, 2, dtype=torch.float64))
    Traceback (most recent call last):
    ...
    TypeError: inputs are float64, the model's parameters float32: convert with inputs.to(torch.float32) or ...
    """
    parameter = _first_floating_parameter(model)
    if parameter is None:
        return
    if inputs.dtype != parameter.dtype:
        wanted, given = str(parameter.dtype).removeprefix("torch."), str(inputs.dtype).removeprefix("torch.")
        raise TypeError(
            f"inputs are {given}, the model's parameters {wanted}: convert with inputs.to(torch.{wanted}) "
            f"or the model with model.to(torch.{given})"
        )
    if inputs.device != parameter.device:
        raise ValueError(
            f"inputs are on {inputs.device}, the model's parameters on {parameter.device}: move them with "
            f"inputs.to('{parameter.device}') or the model with model.to('{inputs.device}')"
        )


def model_dtype(model: Any) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (the default dtype for a model without one).

    Example
    -------
    >>> model_dtype(torch.nn.Linear(2, 1).double()), model_dtype(lambda x: x)
    (torch.float64, torch.float32)
    """
    parameter = _first_floating_parameter(model)
    return torch.get_default_dtype() if parameter is None else parameter.dtype


def _first_floating_parameter(model: Any) -> torch.Tensor | None:
    """The first floating-point parameter in ``model.parameters()`` order, found without walking the whole model."""
    pending = [model] if isinstance(model, nn.Module) else []
    while pending:  # depth first, children in order: the order of model.modules()
        module = pending.pop()
        for parameter in module._parameters.values():
            if parameter is not None and parameter.is_floating_point():
                return parameter
        pending.extend(reversed(module._modules.values()))
    return None


@contextlib.contextmanager
def batch_dimension_hint(model: Any, inputs: torch.Tensor) -> Iterator[None]:
    """Turn an error raised inside into one that says to add a batch dimension, when ``inputs`` look like one sample.

    Inputs look like one sample when they have one dimension fewer than the
    model's first layer takes: ``(C, H, W)`` for a first ``Conv2d``, ``(F,)`` for
    a first ``Linear``. The model's own error is kept as the cause. Other
    errors, and errors on inputs that look like a batch, pass unchanged.

    Example
    -------
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    >>> x = torch.zeros(1, 4, 4)
    >>> try:
    ...     with batch_dimension_hint(model, x):
    ...         model(x)
    ... except ValueError as error:
    ...     print(type(error.__cause__).__name__, "->", str(error).split(". ")[-1])
    RuntimeError -> If this is one sample, add a batch dimension: inputs.unsqueeze(0)
    """
    try:
        yield
    except (RuntimeError, ValueError) as error:
        layer = _input_layer(model)
        if isinstance(error, UnsupportedOperationError) or layer is None or inputs.ndim != _takes_ndim(layer) - 1:
            raise
        raise ValueError(
            f"the model failed on inputs of shape {tuple(inputs.shape)} ({type(error).__name__}: "
            f"{first_line(error)}); its first layer, {type(layer).__name__}, takes batches of "
            f"{_takes_ndim(layer)} dimensions, first dimension = samples. If this is one sample, "
            "add a batch dimension: inputs.unsqueeze(0)"
        ) from error


def _input_layer(model: Any) -> nn.Module | None:
    """The model's first convolution or linear layer, in registration order."""
    modules = model.modules() if isinstance(model, nn.Module) else ()
    return next((m for m in modules if isinstance(m, _INPUT_LAYERS)), None)


def _takes_ndim(layer: nn.Module) -> int:
    """The dimensions of a batch that ``layer`` takes: 2 for a linear layer, N + 2 for an N-d convolution."""
    return 2 if isinstance(layer, nn.Linear) else layer.weight.ndim
