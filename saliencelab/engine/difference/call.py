"""One intercepted operation, with helpers to re-run it on differences or references."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from saliencelab.engine.difference.difference import Difference, Operand, Settings, attach, difference_of, operand
from saliencelab.errors import UnsupportedOperationError


def map_tensors(tree: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """Apply ``fn`` to every tensor in nested tuples, lists and dicts; other leaves are kept."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, (tuple, list)):
        mapped = [map_tensors(item, fn) for item in tree]
        return type(tree)(mapped) if not hasattr(tree, "_fields") else type(tree)(*mapped)
    if isinstance(tree, dict):
        return {key: map_tensors(item, fn) for key, item in tree.items()}
    return tree


def tensors_in(tree: Any) -> list[torch.Tensor]:
    """Every tensor in nested tuples, lists and dicts, in order."""
    found: list[torch.Tensor] = []
    map_tensors(tree, found.append)
    return found


@dataclass
class Call:
    """An operation the model called on tensors that carry differences."""

    func: Callable[..., Any]
    name: str
    args: tuple
    kwargs: dict
    settings: Settings
    method: str

    def operands(self) -> list[Operand]:
        """The arguments that depend on the input, in order."""
        return [op for op in map(operand, tensors_in((self.args, self.kwargs))) if op is not None]

    def only_operand(self, what: str = "") -> Operand:
        """The single input-dependent argument; more than one is unsupported."""
        operands = self.operands()
        if len(operands) != 1:
            raise self.unsupported(what or "the operation combines two input-dependent tensors")
        return operands[0]

    def argument(self, position: int, keyword: str, default: Any = None) -> Any:
        """An argument given by position or keyword."""
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
        return Call(self.func, self.name, tuple(args), kwargs, self.settings, self.method)

    def genuine(self) -> Any:
        """The operation on the model's own values."""
        return self.func(*self.args, **self.kwargs)

    def run(
        self,
        component: Callable[[Difference], torch.Tensor],
        constant: Callable[[torch.Tensor], Any] = lambda tensor: tensor,
    ) -> Any:
        """The operation with every input-dependent argument replaced by ``component(difference)``
        and every other tensor by ``constant(tensor)``."""

        def swap(tensor: torch.Tensor) -> Any:
            diff = difference_of(tensor)
            return constant(tensor) if diff is None else component(diff)

        return self.func(*map_tensors(self.args, swap), **map_tensors(self.kwargs, swap))

    def unsupported(self, why: str) -> UnsupportedOperationError:
        """The error for an operation (or a use of it) that has no exact rule."""
        return UnsupportedOperationError(self.name, self.method, why)


def attach_all(values: Any, refs: Any, parts: tuple[Any, ...]) -> Any:
    """Attach differences to each tensor of ``values`` (a tensor, or a tuple/list of them)."""
    if isinstance(values, torch.Tensor):
        return attach(values, Difference(refs, parts[0], parts[1] if len(parts) > 1 else None))
    for index, value in enumerate(values):
        attach_all(value, refs[index], tuple(part[index] for part in parts))
    return values
