"""One intercepted operation, with helpers to re-run it on differences or references."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from saliencelab.engine.difference.difference import Difference, Operand, Settings, attach, difference_of, operand
from saliencelab.engine.intercept import Call, map_tensors


@dataclass(slots=True)
class DifferenceCall(Call):
    """An operation the model called on tensors that carry differences, with DeepLIFT's settings.

    Example
    -------
    >>> settings = Settings(reveal_cancel=False, threshold=1e-6)
    >>> call = DifferenceCall.of(torch.relu, (torch.ones(1),), {}, method="deeplift", settings=settings)
    >>> call.name, call.settings.reveal_cancel
    ('relu', False)
    """

    settings: Settings

    def operands(self) -> list[Operand]:
        """The arguments that depend on the input, in order."""
        return [op for op in map(operand, self.tensors()) if op is not None]

    def only_operand(self, what: str = "") -> Operand:
        """The single input-dependent argument; more than one is unsupported."""
        operands = self.operands()
        if len(operands) != 1:
            raise self.unsupported(what or "the operation combines two input-dependent tensors")
        return operands[0]

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


def attach_all(values: Any, refs: Any, parts: tuple[Any, ...]) -> Any:
    """Attach differences to each tensor of ``values`` (a tensor, or a tuple/list of them)."""
    if isinstance(values, torch.Tensor):
        return attach(values, Difference(refs, parts[0], parts[1] if len(parts) > 1 else None))
    for index, value in enumerate(values):
        attach_all(value, refs[index], tuple(part[index] for part in parts))
    return values
