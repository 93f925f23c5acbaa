"""Attribution to a hidden layer (``layer=``) and to one unit of it (``target=sl.neuron(layer, index)``).

Both are models built around the user's, so that every method works on them
unchanged:

- :class:`LayerModel` is ``g(a)``: the model run on the samples' inputs with the
  layer's output (or, with ``layer_input=True``, its input) replaced by ``a``.
  Attributing ``g`` at ``a = A(x)`` against ``A(x′)`` attributes the model's
  score to the layer's activations, with Captum's ``Layer*`` semantics: the
  integration path runs in the activation space, what bypasses the layer sees
  the sample's own inputs, and summation-to-delta holds at the layer.
- :class:`NeuronModel` is the unit's activation as the model's only output; the
  forward pass stops at the layer.

Example
-------
>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
>>> x = torch.ones(2, 2)
>>> g = LayerModel(net, net[1], x, layer_input=False)
>>> a = activations(net, net[1], x, torch.arange(2))
>>> from saliencelab.core.structure import rows_of
>>> with rows_of(torch.arange(2)):
...     torch.allclose(g(a), net(x))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from saliencelab.core.structure import current_rows, rows_of
from saliencelab.engine.watch import watching_modules


def resolve_layer(model: object, layer: nn.Module | str) -> nn.Module:
    """The module ``layer`` names: a module, or a dotted name inside ``model``.

    Example
    -------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> resolve_layer(net, "0") is net[0]
    True
    """
    if isinstance(layer, nn.Module):
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module or its dotted name; got {type(layer).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError("a layer given by name needs an nn.Module model; pass the module itself")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        raise ValueError(
            f"the model has no layer named {layer!r}; its layers include {names[-8:]} (see model.named_modules())"
        ) from None


class _Reached(Exception):
    """Raised from inside the forward pass once the layer has run: nothing after it is needed."""


@dataclass(frozen=True)
class Neuron:
    """One unit of a hidden layer as the explained score (see :func:`neuron`)."""

    layer: nn.Module | str
    index: tuple[int, ...] | Callable[[torch.Tensor], torch.Tensor]

    def score(self, activation: torch.Tensor) -> torch.Tensor:
        """The unit's value per row, ``(rows,)``."""
        if callable(self.index):
            value = self.index(activation)
            if not isinstance(value, torch.Tensor) or value.shape != (activation.shape[0],):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"a neuron's index callable must return one value per row, (N,); got {shape}")
            return value
        if len(self.index) != activation.ndim - 1:
            raise ValueError(
                f"the neuron index {self.index} has {len(self.index)} entries; the layer's output "
                f"{tuple(activation.shape)} needs one per dimension after the batch ({activation.ndim - 1})"
            )
        for position, (i, size) in enumerate(zip(self.index, activation.shape[1:], strict=True)):
            if not -size <= i < size:
                raise ValueError(f"neuron index {self.index} is out of range at position {position} (size {size})")
        return activation[(slice(None), *self.index)]


def neuron(layer: nn.Module | str, index: tuple[int, ...] | int | Callable[[torch.Tensor], torch.Tensor]) -> Neuron:
    """A target: explain one unit of ``layer`` (a module or dotted name) instead of a model output.

    ``index`` is a tuple into the layer's output without the batch dimension (an
    int for a flat layer), or a callable ``activation -> (N,)``.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> a = sl.explain(net, torch.ones(1, 2), method="gradient", target=sl.neuron("0", 1))
    >>> torch.equal(a.values[0], net[0].weight[1].detach())
    True
    """
    if isinstance(index, int) and not isinstance(index, bool):
        index = (index,)
    if not callable(index) and not (isinstance(index, tuple) and all(isinstance(i, int) for i in index)):
        raise TypeError(f"a neuron index is a tuple of ints or a callable activation -> (N,); got {index!r}")
    return Neuron(layer, index)


def activations(
    model: Any, layer: nn.Module, inputs: torch.Tensor, samples: torch.Tensor, layer_input: bool = False
) -> torch.Tensor:
    """``layer``'s output (or input) for ``inputs`` (rows of ``samples``), detached; the forward stops there.

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    >>> activations(net, net[0], torch.zeros(4, 2), torch.arange(4)).shape
    torch.Size([4, 3])
    """
    seen: list[torch.Tensor] = []

    def stop(module: nn.Module, args: tuple, output: Any) -> None:
        if module is layer and output is not None:
            seen.append(_tensor(args[0] if layer_input else output, layer_input))
            raise _Reached

    with torch.no_grad(), rows_of(samples), watching_modules(after=stop):
        try:
            model(inputs)
        except _Reached:
            pass
    if not seen:
        raise ValueError(f"the layer {type(layer).__name__} did not run in the forward pass; choose one the model uses")
    return seen[0].detach()


class LayerModel:
    """``g(a)``: the model on its samples' inputs with ``layer``'s output (or input) replaced by ``a``.

    Each call says which samples its rows belong to (:func:`~saliencelab.core.structure.rows_of`).
    """

    needs_rows = True

    def __init__(self, model: Any, layer: nn.Module, inputs: torch.Tensor, layer_input: bool) -> None:
        self.model, self.layer, self.inputs, self.layer_input = model, layer, inputs, layer_input

    def __call__(self, a: torch.Tensor) -> Any:
        rows = current_rows()
        if rows is None:
            raise NotImplementedError("a layer attribution evaluated the model without saying which sample each row is")
        busy = False

        def replace(module: nn.Module, args: tuple, output: Any) -> Any:
            nonlocal busy
            if module is not self.layer or output is None or busy:
                return None
            if not self.layer_input:
                return a.clone()  # the network may change it in place; the method's rows stay as they are
            busy = True
            try:
                return module(a.clone(), *args[1:])
            finally:
                busy = False

        with watching_modules(after=replace):
            return self.model(self.inputs[rows.to(self.inputs.device)])


class NeuronModel:
    """The model whose only output is one unit of a hidden layer, ``(rows, 1)``; the forward stops at the layer."""

    def __init__(self, model: Any, layer: nn.Module, unit: Neuron) -> None:
        self.model, self.layer, self.unit = model, layer, unit
        self.needs_rows = getattr(model, "needs_rows", False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        seen: list[torch.Tensor] = []

        def stop(module: nn.Module, args: tuple, output: Any) -> None:
            if module is self.layer and output is not None:
                seen.append(_tensor(output, False))
                raise _Reached

        with watching_modules(after=stop):
            try:
                self.model(x)
            except _Reached:
                pass
        if not seen:
            raise ValueError("the neuron's layer did not run in the forward pass; choose a layer the model uses")
        return self.unit.score(seen[0])[:, None]


def _tensor(value: Any, layer_input: bool) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        where = "input" if layer_input else "output"
        raise ValueError(f"layer attribution needs a layer whose {where} is one tensor; got {type(value).__name__}")
    return value
