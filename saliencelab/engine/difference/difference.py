"""Differences from the reference: what DeepLIFT propagates instead of activations.

Every tensor that depends on the input carries a :class:`Difference`: its value
at the reference and its difference from that value, split into the positive and
negative parts ``Δ⁺`` and ``Δ⁻`` when the RevealCancel rule needs them
(Shrikumar et al. 2017). The parts are differentiable functions of the input's
difference, built with every multiplier detached, so the gradient of the output's
difference with respect to the input's difference is the DeepLIFT multiplier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

_ATTRIBUTE = "_saliencelab_difference"


@dataclass(frozen=True)
class Difference:
    """A tensor's value at the reference and its difference-from-reference.

    ``neg`` is ``None`` when the parts are not tracked (the Rescale rule): then
    ``pos`` holds the whole difference. Otherwise ``pos + neg`` is the difference.

    Example
    -------
    >>> d = Difference(torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([-1.0]))
    >>> d.delta
    tensor([2.])
    """

    ref: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor | None = None

    @property
    def delta(self) -> torch.Tensor:
        """The whole difference ``Δ = Δ⁺ + Δ⁻``."""
        return self.pos if self.neg is None else self.pos + self.neg

    @property
    def parts(self) -> tuple[torch.Tensor, ...]:
        """``(Δ,)`` or ``(Δ⁺, Δ⁻)``."""
        return (self.pos,) if self.neg is None else (self.pos, self.neg)

    def with_parts(self, ref: torch.Tensor, parts: tuple[torch.Tensor, ...]) -> Difference:
        """A difference with this one's bookkeeping (split or not) and new tensors."""
        return Difference(ref, parts[0], parts[1] if len(parts) > 1 else None)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Difference:
        """Apply a data-movement function (view, permute, index, ...) to every component."""
        return self.with_parts(fn(self.ref), tuple(fn(part) for part in self.parts))


class Operand(NamedTuple):
    """A tensor as the model sees it (its value at the input) with its difference."""

    value: torch.Tensor
    diff: Difference


@dataclass(frozen=True)
class Settings:
    """How differences cross nonlinearities.

    ``reveal_cancel`` selects the RevealCancel rule (parts tracked) over Rescale;
    a difference ``|Δz| <= threshold · (1 + |z′|)`` counts as zero and takes the
    gradient instead of the ratio ``Δy / Δz``.
    """

    reveal_cancel: bool
    threshold: float


def difference_of(tensor: object) -> Difference | None:
    """The difference a tensor carries, or ``None`` for a constant (or a non-tensor)."""
    return getattr(tensor, _ATTRIBUTE, None) if isinstance(tensor, torch.Tensor) else None


def attach(value: torch.Tensor, diff: Difference) -> torch.Tensor:
    """Mark ``value`` (a tensor the model will see) as carrying ``diff``; returns ``value``."""
    setattr(value, _ATTRIBUTE, diff)
    return value


def operand(tensor: torch.Tensor) -> Operand | None:
    """The tensor with its difference, or ``None`` for a constant."""
    diff = difference_of(tensor)
    return None if diff is None else Operand(tensor, diff)


def split(delta: torch.Tensor, settings: Settings) -> tuple[torch.Tensor, ...]:
    """The parts of a difference that has no history (the model's input): ``(Δ,)`` or ``(Δ⁺, Δ⁻)``."""
    if not settings.reveal_cancel:
        return (delta,)
    return (delta.clamp(min=0), delta.clamp(max=0))
