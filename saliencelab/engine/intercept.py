"""The one interception engine: every method that replaces or watches the model's operations runs on it.

An :class:`Interception` is a ``TorchFunctionMode`` active during the method's
forward pass. Every call the model makes, whichever way it is spelled
(``F.relu``, ``torch.relu``, ``Tensor.relu_``, ``nn.ReLU(inplace=True)``, an
exported graph's ``aten.relu_.default``), becomes one :class:`Call`: the
canonical op name, the arguments bound as the functional op takes them, and
whether it works in place. What happens next is the same for every method:

1. a call none of whose tensors depends on the input (parameters, buffers,
   shapes, constants) runs unchanged, and so does one that reads only the
   input's shape (``zeros_like``, ``new_ones``): its result is a constant;
2. a call with a rule in the method's table runs through the rule;
3. a call in the method's known-safe set (``passes``: data movement, linear
   ops, whatever the method's rules make safe) runs unchanged;
4. a call that returns no tensor (``size``, ``dim``, a comparison's ``bool``)
   runs unchanged;
5. anything else raises :class:`~saliencelab.UnsupportedOperationError` naming
   the operation and the method. It is an allow-list: a new PyTorch operation
   is refused until a method says how to handle it, never passed as the plain
   gradient.

What depends on the input is marked, never inferred from ``requires_grad``
(which belongs to the user's parameters): the method marks its inputs with
:meth:`Interception.mark` and every tensor an input-dependent call returns, or
writes into, is marked in turn.

Example
-------
>>> import torch
>>> double = {"relu": lambda call: call.genuine() * 2}
>>> mode = Interception(double, method="demo", passes=frozenset({"reshape"}))
>>> x = mode.mark(torch.tensor([-1.0, 3.0]))
>>> with mode:
...     y = torch.relu(x).reshape(2)
>>> y
tensor([0., 6.])
>>> with mode:
...     torch.exp(x)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
saliencelab.errors.UnsupportedOperationError: demo has no rule for the operation 'exp' used by the model...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from saliencelab.engine.ops import (
    SHAPE_OF_OTHER,
    SHAPE_ONLY,
    functional_call,
    inplace_flag,
    inplace_position,
    op_name,
    out_of_place,
)
from saliencelab.engine.watch import hold_hooks, release_hooks
from saliencelab.errors import UnsupportedOperationError

_MARK = "_saliencelab_input_dependent"


def map_tensors(tree: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """Apply ``fn`` to every tensor in nested tuples, lists and dicts; other leaves are kept.

    Example
    -------
    >>> map_tensors((torch.ones(1), [2, {"a": torch.zeros(1)}]), lambda t: t + 1)
    (tensor([2.]), [2, {'a': tensor([1.])}])
    """
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, (tuple, list)):
        mapped = [map_tensors(item, fn) for item in tree]
        return type(tree)(mapped) if not hasattr(tree, "_fields") else type(tree)(*mapped)
    if isinstance(tree, dict):
        return {key: map_tensors(item, fn) for key, item in tree.items()}
    return tree


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """Every tensor in nested tuples, lists and dicts, in order.

    Example
    -------
    >>> len(tensors_in((torch.ones(1), [2, {"a": torch.zeros(1)}])))
    2
    """
    found: list[torch.Tensor] = []
    _collect(tree, found)
    return found


def _collect(tree: Any, found: list[torch.Tensor]) -> None:
    """Append the tensors of ``tree`` to ``found`` without rebuilding its containers (every call pays this)."""
    if isinstance(tree, torch.Tensor):
        found.append(tree)
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            _collect(item, found)
    elif isinstance(tree, dict):
        for item in tree.values():
            _collect(item, found)


def is_marked(tensor: Any) -> bool:
    """Whether ``tensor`` was marked as depending on the input (by :meth:`Interception.mark`).

    Example
    -------
    >>> is_marked(torch.ones(1)), is_marked(Interception({}, method="demo").mark(torch.ones(1)))
    (False, True)
    """
    return isinstance(tensor, torch.Tensor) and getattr(tensor, _MARK, False)


def unintercepted():
    """A block of the library's own checks that reads values, while a method's interception is active.

    Such code is not one of the model's operations: no interception sees it.

    Example
    -------
    >>> mode = Interception({}, method="demo")
    >>> x = mode.mark(torch.tensor([1.0, float("nan")]))
    >>> with mode, unintercepted():
    ...     torch.isfinite(x).tolist()
    [True, False]
    """
    return torch._C.DisableTorchFunction()


@dataclass(slots=True)
class Call:
    """One operation as the model called it, normalised.

    ``name`` is the canonical name (:func:`~saliencelab.engine.op_name`),
    ``args``/``kwargs`` are those of the functional op (an exported graph's ATen
    arguments rewritten), ``inplace`` says whether it writes into its first
    argument (``relu_``, ``inplace=True``, ``+=``), and ``method`` names the
    method whose rule runs it.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> call = Call.of(F.leaky_relu, (torch.ones(1), 0.2), {"inplace": True}, method="demo")
    >>> call.name, call.inplace, call.argument(1, "negative_slope", 0.01)
    ('leaky_relu', True, 0.2)
    """

    func: Callable[..., Any]
    name: str
    args: tuple
    kwargs: dict
    inplace: bool
    method: str

    @classmethod
    def of(cls, func: Callable[..., Any], args: tuple, kwargs: dict, *, method: str, **fields: Any) -> Call:
        """The normalised call of ``func(*args, **kwargs)``; ``fields`` are a subclass's own."""
        func, args, kwargs = functional_call(func, args, kwargs)
        name, inplace = op_name(func)
        if name == "__get__":  # a property read through the descriptor (``x.T``, ``x.mT``)
            name = getattr(getattr(func, "__self__", None), "__name__", name)
        return cls(func, name, args, kwargs, inplace or inplace_flag(name, args, kwargs), method, **fields)

    def argument(self, position: int, keyword: str, default: Any = None) -> Any:
        """An argument given by position or by keyword (``default`` when neither)."""
        if len(self.args) > position:
            return self.args[position]
        return self.kwargs.get(keyword, default)

    def replaced(self, position: int, keyword: str, value: Any) -> Call:
        """This call with one argument replaced (added as a keyword when it was not given)."""
        args, kwargs = list(self.args), dict(self.kwargs)
        if len(args) > position:
            args[position] = value
        else:
            kwargs[keyword] = value
        return replace(self, args=tuple(args), kwargs=kwargs)

    def out_of_place(self) -> Call:
        """The same operation writing a new tensor instead of into its first argument."""
        if not self.inplace:
            return self
        position = inplace_position(self.name)
        args, kwargs, func = self.args, dict(self.kwargs), self.func
        if position is not None and len(args) > position:
            args = (*args[:position], False, *args[position + 1 :])
        elif "inplace" in kwargs:
            kwargs["inplace"] = False
        else:
            func = out_of_place(func)
        return replace(self, func=func, args=args, kwargs=kwargs, inplace=False)

    def genuine(self) -> Any:
        """The operation run on its own arguments, as the model asked."""
        return self.func(*self.args, **self.kwargs)

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor argument, in order."""
        return tensors_in((self.args, self.kwargs))

    def unsupported(self, why: str) -> UnsupportedOperationError:
        """The error for this operation (or this use of it), saying why and what to do."""
        return UnsupportedOperationError(self.name, self.method, why)


OpRule = Callable[[Call], Any]
"""How a method computes one operation: ``rule(call)`` returns what the operation would have returned,
with the method's backward (or recording) attached."""


class Interception(TorchFunctionMode):
    """While active, runs the model's operations on input-dependent tensors by a method's table.

    Parameters
    ----------
    rules:
        Canonical op name -> :data:`OpRule`.
    method:
        The method's name, for errors.
    passes:
        Operations that are exact for the method as they are (data movement,
        linear operations, ...): they run unchanged. Every other operation on an
        input-dependent tensor that returns a tensor raises.
    hint:
        What to do instead, appended to the error for an operation outside the table.

    Subclasses whose notion of "depends on the input" is richer (DeepLIFT's
    differences) override :meth:`depends` and :meth:`mark`.

    Example
    -------
    >>> import torch
    >>> mode = Interception({}, method="demo", passes=frozenset({"add", "view"}))
    >>> x = mode.mark(torch.ones(2))
    >>> with mode:
    ...     y = (x + torch.ones(2)).view(1, 2)
    ...     z = torch.ones(2).exp()  # constant: not the method's business
    >>> is_marked(y), is_marked(z)
    (True, False)
    """

    def __init__(
        self,
        rules: Mapping[str, OpRule],
        *,
        method: str,
        passes: frozenset[str] = frozenset(),
        hint: str = "",
    ) -> None:
        super().__init__()
        self.rules = rules
        self.method = method
        self.passes = passes
        self.hint = hint
        self._held: list[bool] = []

    def __enter__(self) -> Interception:
        held = hold_hooks()  # this thread's check for opaque models sees the modules that run under the mode
        try:
            super().__enter__()
        except BaseException:
            release_hooks(held)
            raise
        self._held.append(held)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            super().__exit__(*exc_info)
        finally:
            release_hooks(self._held.pop())

    sight_reason = "replaces or records the model's operations as the model calls them"
    """What the interception does, in words, for the error that refuses an opaque model (TorchScript)."""

    def depends_any(self, tree: Any) -> bool:
        """Whether any tensor in a call's arguments (nested tuples, lists, dicts) :meth:`depends` on the input."""
        if isinstance(tree, torch.Tensor):
            return self.depends(tree)
        if isinstance(tree, (tuple, list)):
            for item in tree:
                if self.depends_any(item):
                    return True
        elif isinstance(tree, dict):
            for item in tree.values():
                if self.depends_any(item):
                    return True
        return False

    def mark(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mark ``tensor`` as depending on the input; returns it."""
        setattr(tensor, _MARK, True)
        return tensor

    def depends(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` depends on the input."""
        return getattr(tensor, _MARK, False)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not (self.depends_any(args) or (kwargs and self.depends_any(kwargs))):
            return func(*args, **kwargs)
        call = self.normalise(func, args, kwargs)
        if call.name in SHAPE_ONLY:  # zeros_like(h): a constant, whatever the method
            return call.genuine()
        if call.name in SHAPE_OF_OTHER and not self.depends_any(call.args[:1]):  # constant.expand_as(h)
            return call.genuine()
        result = self.dispatch(call)
        self.mark_result(call, result)
        return result

    def mark_result(self, call: Call, result: Any) -> None:
        """Mark what an input-dependent call returned, and the tensor it wrote into."""
        for tensor in tensors_in(result):
            self.mark(tensor)
        if call.inplace and isinstance(call.args[0], torch.Tensor):
            self.mark(call.args[0])

    def normalise(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Call:
        """The call as the rules read it."""
        return Call.of(func, args, kwargs, method=self.method)

    def dispatch(self, call: Call) -> Any:
        """Run one input-dependent call: its rule, a known-safe operation, a query, or an error."""
        rule = self.rules.get(call.name)
        if rule is not None:
            return rule(call)
        if call.name in self.passes:
            return call.genuine()
        return self.unlisted(call)

    def unlisted(self, call: Call) -> Any:
        """An operation outside the table: answered when it returns no tensor, refused otherwise."""
        if call.inplace or call.name == "__setitem__":
            raise call.unsupported(
                "it writes into an input-dependent tensor in place, without a rule; write it out of place"
            )
        result = call.genuine()
        if tensors_in(result):
            raise call.unsupported(self.hint)
        return result
