"""Canonical names for torch operations, whatever spelling the model used.

``F.relu``, ``torch.relu``, ``Tensor.relu`` and ``Tensor.relu_`` are all
``"relu"``; inside a ``TorchFunctionMode`` the operators arrive as methods and
dunders (``a - b`` as ``Tensor.sub``, ``1 - a`` as ``Tensor.__rsub__``,
``a += b`` as ``Tensor.add_``), which map to ``"sub"``, ``"rsub"``, ``"add"``.
A ``torch.export`` graph calls ATen overloads (``torch.ops.aten.relu_.default``,
``aten.add.Tensor``): they are named by their ATen name (``"relu"`` in place,
``"add"``), the functional name, where their arguments come in the functional
op's order. Those whose arguments come in another order (``aten.batch_norm``
has the weight second, ``F.batch_norm`` the running mean) keep their qualified
name (``"aten::batch_norm"``), as do operators of other namespaces
(``"mylib::gelu"``), so that no rule reads their arguments wrongly;
:func:`functional_call` rewrites the former as the functional call.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
import torch.nn.functional as F

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
    "__gt__": ("gt", False),
    "__ge__": ("ge", False),
    "__lt__": ("lt", False),
    "__le__": ("le", False),
    "__eq__": ("eq", False),
    "__ne__": ("ne", False),
    "__invert__": ("bitwise_not", False),
    "__and__": ("bitwise_and", False),
    "__or__": ("bitwise_or", False),
}

_ALIASES = {
    "true_divide": "div",
    "divide": "div",
    "multiply": "mul",
    "subtract": "sub",
    "negative": "neg",
    "absolute": "abs",
    "_threshold": "threshold",
    "log_sigmoid": "logsigmoid",
    "greater": "gt",
    "greater_equal": "ge",
    "less": "lt",
    "less_equal": "le",
    "not_equal": "ne",
    "clip": "clamp",
    "concat": "cat",
    "concatenate": "cat",
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

DATA_MOVEMENT = frozenset(
    (
        "view view_as reshape reshape_as flatten unflatten permute transpose swapaxes swapdims movedim moveaxis t "
        "squeeze unsqueeze expand expand_as broadcast_to repeat tile repeat_interleave contiguous clone detach "
        "getitem narrow select index_select gather take_along_dim chunk split tensor_split unbind cat concat "
        "concatenate stack hstack vstack flip fliplr flipud roll rot90 diagonal to float double half bfloat16 type "
        "type_as pixel_shuffle pixel_unshuffle channel_shuffle unfold T mT identity slice"
    ).split()
)
"""Operations that only move, copy, select or convert values: exact for every method."""

LINEAR = frozenset(
    (
        "linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d add sub rsub neg sum mean "
        "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d batch_norm "
        "interpolate upsample upsample_nearest upsample_bilinear pad cumsum dropout dropout1d dropout2d dropout3d "
        "alpha_dropout feature_alpha_dropout"
    ).split()
)
"""Operations linear (or affine) in their input-dependent argument. ``mul``, ``div``, ``matmul`` and friends
are linear only when one factor is constant; a method's rules for them check that."""

PRODUCTS = frozenset("mul div rdiv matmul rmatmul mm bmm einsum tensordot".split())
"""Products: linear in each factor, not in two input-dependent factors together."""

ROUTING = frozenset(
    (
        "max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices "
        "adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d amax amin max min sort msort topk kthvalue "
        "masked_select"
    ).split()
)
"""Operations that pass each output the value of one chosen input: the gradient routes to the winner."""

SHAPE_ONLY = frozenset(
    (
        "zeros_like ones_like empty_like full_like rand_like randn_like randint_like new_zeros new_ones new_empty "
        "new_full"
    ).split()
)
"""Operations that read only their input's shape, dtype and device: their results are constants."""

SHAPE_OF_OTHER = frozenset("expand_as type_as view_as reshape_as".split())
"""``t.op(other)`` reading only ``other``'s shape or dtype: a constant when only ``other`` depends on the input."""

QUERIES = frozenset("gt ge lt le eq ne isfinite isnan isinf argmax argmin bitwise_not bitwise_and bitwise_or".split())
"""Operations whose result carries no gradient (comparisons, indices of winners)."""

_INPLACE_POSITION = {
    "relu": 1,
    "relu6": 1,
    "selu": 1,
    "leaky_relu": 2,
    "elu": 2,
    "celu": 2,
    "hardtanh": 3,
    "threshold": 3,
    "rrelu": 4,
    "dropout": 3,
    "dropout1d": 3,
    "dropout2d": 3,
    "dropout3d": 3,
    "alpha_dropout": 3,
    "feature_alpha_dropout": 3,
}
"""Position of the ``inplace`` flag of functional operations that take it positionally."""


def inplace_position(name: str) -> int | None:
    """Where a functional op takes its ``inplace`` flag by position (None: keyword only, or no flag).

    Example
    -------
    >>> inplace_position("leaky_relu"), inplace_position("add")
    (2, None)
    """
    return _INPLACE_POSITION.get(name)


def inplace_flag(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether a functional call asks to work in place through its ``inplace`` argument.

    Example
    -------
    >>> x = torch.ones(1)
    >>> inplace_flag("relu", (x, True), {}), inplace_flag("relu", (x,), {"inplace": True})
    (True, True)
    >>> inplace_flag("relu", (x,), {})
    False
    """
    if kwargs.get("inplace") is True:
        return True
    position = _INPLACE_POSITION.get(name)
    return position is not None and len(args) > position and args[position] is True


def op_name(func: Any) -> tuple[str, bool]:
    """The canonical name of a torch callable and whether it works in place.

    Example
    -------
    >>> import torch, torch.nn.functional as F
    >>> op_name(F.relu), op_name(torch.Tensor.relu_), op_name(torch.Tensor.__rsub__)
    (('relu', False), ('relu', True), ('rsub', False))
    >>> op_name(torch.ops.aten.relu_.default), op_name(torch.ops.aten.add.Tensor), op_name(torch.ops.aten.conv2d)
    (('relu', True), ('add', False), ('conv2d', False))
    >>> op_name(torch.ops.aten.batch_norm.default)  # its arguments differ from F.batch_norm's: see functional_call
    ('aten::batch_norm', False)
    """
    try:
        return _cached_op_name(func)
    except TypeError:  # an unhashable callable is named without the cache
        return _op_name(func)


def _op_name(func: Any) -> tuple[str, bool]:
    if isinstance(func, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        qualified = _qualified_name(func)
        namespace, _, name = qualified.partition("::")
        if namespace != "aten" or name in _REORDERED:
            return qualified, False
    else:
        name = getattr(func, "__name__", None) or repr(func)
    if name in _DUNDERS:
        return _DUNDERS[name]
    inplace = name.endswith("_") and not name.startswith("_")
    if inplace:
        name = name[:-1]
    return _ALIASES.get(name, name), inplace


_cached_op_name = cache(_op_name)


def _batch_norm(args: tuple, kwargs: dict) -> tuple[Any, tuple, dict]:
    """``aten.batch_norm(input, weight, bias, mean, var, training, momentum, eps, cudnn)`` as ``F.batch_norm``."""
    names = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps", "cudnn_enabled")
    bound = dict(zip(names, args, strict=False)) | kwargs
    bound.pop("cudnn_enabled", None)
    order = ("input", "running_mean", "running_var")
    return F.batch_norm, tuple(bound.pop(name) for name in order), bound


def _softmax_like(functional: Any):
    """``aten.softmax.int(self, dim, dtype)`` as ``F.softmax(input, dim, dtype=dtype)``: dtype is a keyword there."""

    def rewrite(args: tuple, kwargs: dict) -> tuple[Any, tuple, dict]:
        names = ("input", "dim", "dtype")
        bound = dict(zip(names, args, strict=False)) | kwargs
        return functional, (bound.pop("input"), bound.pop("dim")), bound

    return rewrite


def _without_cudnn_flag(functional: Any):
    """``aten.layer_norm`` / ``aten.group_norm`` as the functional op: the same arguments less ``cudnn_enable``."""

    def rewrite(args: tuple, kwargs: dict) -> tuple[Any, tuple, dict]:
        kwargs = {key: value for key, value in kwargs.items() if not key.startswith("cudnn_enable")}
        return functional, args[:5], kwargs

    return rewrite


_REORDERED = {
    "batch_norm": _batch_norm,
    "softmax": _softmax_like(F.softmax),
    "log_softmax": _softmax_like(F.log_softmax),
    "layer_norm": _without_cudnn_flag(F.layer_norm),
    "group_norm": _without_cudnn_flag(F.group_norm),
}
"""ATen operations whose functional form takes its arguments in another order (or fewer of them), and the
rewrite to it."""


def functional_call(func: Any, args: tuple, kwargs: dict) -> tuple[Any, tuple, dict]:
    """The call as the functional op the engine's rules read, for ATen overloads whose arguments differ.

    Every other call is returned as it is.

    Example
    -------
    >>> x, mean, var, w, b = torch.ones(1, 2, 1, 1), torch.zeros(2), torch.ones(2), torch.ones(2), torch.zeros(2)
    >>> aten_args = (x, w, b, mean, var, False, 0.1, 1e-5, True)
    >>> func, args, kwargs = functional_call(torch.ops.aten.batch_norm.default, aten_args, {})
    >>> func is F.batch_norm, op_name(func), args[1] is mean, kwargs["weight"] is w
    (True, ('batch_norm', False), True, True)
    """
    if isinstance(func, torch._ops.OpOverload):
        namespace, _, name = _qualified_name(func).partition("::")
        if namespace == "aten" and name in _REORDERED:
            return _REORDERED[name](args, kwargs)
    return func, args, kwargs


def _qualified_name(op: torch._ops.OpOverload | torch._ops.OpOverloadPacket) -> str:
    """``"aten::relu_"`` for ``torch.ops.aten.relu_.default`` and for ``torch.ops.aten.relu_``."""
    return op._schema.name if isinstance(op, torch._ops.OpOverload) else op._qualified_op_name


def out_of_place(func: Any) -> Any:
    """The out-of-place form of an in-place operation; others are returned as they are.

    Example
    -------
    >>> out_of_place(torch.Tensor.relu_) is torch.Tensor.relu
    True
    >>> out_of_place(torch.Tensor.__iadd__) is torch.Tensor.__add__
    True
    >>> out_of_place(torch.ops.aten.add_.Tensor) is torch.ops.aten.add.Tensor
    True
    """
    if isinstance(func, torch._ops.OpOverload):
        name = _qualified_name(func).partition("::")[2]
        if not name.endswith("_"):
            return func
        return getattr(getattr(torch.ops.aten, name[:-1]), func._overloadname)
    name = func.__name__
    if name.startswith("__i"):
        return getattr(torch.Tensor, "__" + name[3:])
    if name.endswith("_"):
        return getattr(torch.Tensor, name[:-1])
    return func
