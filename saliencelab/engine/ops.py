"""Canonical names for torch operations, whatever spelling the model used.

``F.relu``, ``torch.relu``, ``Tensor.relu`` and ``Tensor.relu_`` are all
``"relu"``; inside a ``TorchFunctionMode`` the operators arrive as methods and
dunders (``a - b`` as ``Tensor.sub``, ``1 - a`` as ``Tensor.__rsub__``,
``a += b`` as ``Tensor.add_``), which map to ``"sub"``, ``"rsub"``, ``"add"``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_DUNDERS = {
    "__add__": ("add", False),
    "__radd__": ("add", False),
    "__iadd__": ("add", True),
    "__sub__": ("sub", False),
    "__isub__": ("sub", True),
    "__rsub__": ("rsub", False),
    "__mul__": ("mul", False),
    "__rmul__": ("mul", False),
    "__imul__": ("mul", True),
    "__truediv__": ("div", False),
    "__itruediv__": ("div", True),
    "__rtruediv__": ("rdiv", False),
    "__div__": ("div", False),
    "__rdiv__": ("rdiv", False),
    "__matmul__": ("matmul", False),
    "__rmatmul__": ("rmatmul", False),
    "__pow__": ("pow", False),
    "__ipow__": ("pow", True),
    "__rpow__": ("rpow", False),
    "__neg__": ("neg", False),
    "__abs__": ("abs", False),
    "__getitem__": ("getitem", False),
}

_ALIASES = {
    "true_divide": "div",
    "divide": "div",
    "multiply": "mul",
    "subtract": "sub",
    "negative": "neg",
    "absolute": "abs",
}

ELEMENTWISE_ACTIVATIONS = frozenset(
    {
        "relu",
        "relu6",
        "leaky_relu",
        "rrelu",
        "prelu",
        "elu",
        "selu",
        "celu",
        "gelu",
        "silu",
        "mish",
        "sigmoid",
        "tanh",
        "softplus",
        "softsign",
        "hardtanh",
        "hardsigmoid",
        "hardswish",
        "logsigmoid",
        "threshold",
        "tanhshrink",
        "softshrink",
        "hardshrink",
        "glu",
    }
)
"""Elementwise nonlinearities: a method that modifies the backward of nonlinearities
must have a rule for each of these it meets, or raise."""


def op_name(func: Any) -> tuple[str, bool]:
    """The canonical name of a torch callable and whether it works in place.

    Example
    -------
    >>> import torch, torch.nn.functional as F
    >>> op_name(F.relu), op_name(torch.Tensor.relu_), op_name(torch.Tensor.__rsub__)
    (('relu', False), ('relu', True), ('rsub', False))
    """
    try:
        return _cached_op_name(func)
    except TypeError:  # an unhashable callable is named without the cache
        return _op_name(func)


def _op_name(func: Any) -> tuple[str, bool]:
    name = getattr(func, "__name__", None) or repr(func)
    if name in _DUNDERS:
        return _DUNDERS[name]
    inplace = name.endswith("_") and not name.startswith("_")
    if inplace:
        name = name[:-1]
    return _ALIASES.get(name, name), inplace


_cached_op_name = cache(_op_name)
