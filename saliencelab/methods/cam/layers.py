"""Finding a CAM layer, reading its output during a forward pass, and seeing it as a grid.

Nothing is registered on the user's model: the chosen module is watched in the
calling thread only, for the duration of the call
(:func:`~saliencelab.engine.watch.watching_modules`). Its output can be recorded as a fresh
leaf (so gradients stop there and nothing below it is kept for the backward)
or replaced (to run the rest of the network on modified activations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from saliencelab.engine.watch import watching_modules

Reshape = Callable[[torch.Tensor], torch.Tensor]
"""Maps a layer output ``(N, ...)`` to a grid ``(N, C, *spatial)``; it must only select and rearrange."""


def default_layer(model: object, probe: torch.Tensor) -> nn.Module:
    """The last module (in the order the forward pass finishes them) whose output is a spatial grid.

    A grid is a tensor ``(N, C, *spatial)`` with at least two spatial positions;
    the model itself does not count. Transformers, whose blocks output token
    sequences, need ``layer=`` explicitly.
    """
    found: list[nn.Module] = []

    def hook(module, _inputs, output):
        if module is not model and isinstance(output, torch.Tensor) and output.ndim >= 4:
            if math.prod(output.shape[2:]) > 1:
                found.append(module)

    with watching_modules(after=hook), torch.no_grad():
        model(probe)
    if not found:
        raise ValueError(
            "the model has no layer with a spatial output (N, C, H, W); pass layer= (for a vision "
            "transformer, a block whose output is the token sequence, e.g. layer='blocks.3.norm1')"
        )
    return found[-1]


@dataclass
class Capture:
    """What :func:`watching` saw: the layer's output (as a leaf) and how often the layer ran."""

    activation: torch.Tensor | None = None
    calls: int = 0


@contextmanager
def watching(
    layer: nn.Module, replace: Callable[[torch.Tensor], torch.Tensor] | None = None, gradients: bool = False
) -> Iterator[Capture]:
    """Record ``layer``'s output during the forward passes inside the block, or ``replace`` it.

    With ``gradients=True`` the output is recorded as a leaf that requires grad
    and autograd is switched on from that point of the forward pass (run the
    forward under ``torch.no_grad()``: only the layers after ``layer`` build a
    graph). Grad mode is restored on exit. The recorded output is a copy (or a
    leaf of which the network gets a copy), so in-place operations later in the
    model leave it as the layer computed it; a ``replace`` result goes to the
    network as it is, and may be changed in place there.

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    >>> with watching(net[0]) as seen:
    ...     _ = net(torch.ones(1, 2))
    >>> seen.activation.shape, seen.calls
    (torch.Size([1, 3]), 1)
    """
    capture = Capture()
    grad_mode = torch.is_grad_enabled()

    def hook(module, _inputs, output):
        if module is not layer or output is None:  # another module, or the layer raised
            return None
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"the CAM layer must output a tensor; {type(layer).__name__} returned {type(output)}")
        capture.calls += 1
        if capture.calls > 1:
            raise ValueError(
                f"the CAM layer ({type(layer).__name__}) runs more than once in one forward pass; "
                "choose a layer that runs once"
            )
        if replace is not None:
            return replace(output)
        if not gradients:  # a copy: a later in-place op (ReLU(inplace=True)) would change the output
            capture.activation = output.detach().clone()
            return None
        torch.set_grad_enabled(True)
        capture.activation = output.detach().requires_grad_(True)
        return capture.activation.clone()  # later in-place ops must not modify the leaf

    try:
        with watching_modules(after=hook):
            yield capture
    finally:
        torch.set_grad_enabled(grad_mode)


def token_grid(tokens: torch.Tensor) -> torch.Tensor:
    """A token sequence ``(N, T, D)`` as a grid ``(N, D, h, h)``: T = h², or T = h² + 1 with a leading class token.

    Example
    -------
    >>> token_grid(torch.arange(10.0).reshape(1, 5, 2)).shape  # a class token and a 2x2 grid
    torch.Size([1, 2, 2, 2])
    """
    n, t, d = tokens.shape
    for skip in (0, 1):
        side = math.isqrt(t - skip)
        if side * side == t - skip and side > 0:
            return tokens[:, skip:].transpose(1, 2).reshape(n, d, side, side)
    raise ValueError(
        f"a token sequence of {t} tokens is neither a square grid nor a square grid and a class token; "
        "pass reshape= (a function mapping the layer output (N, T, D) to a grid (N, D, h, w))"
    )


def as_grid(activation: torch.Tensor, reshape: Reshape | None) -> torch.Tensor:
    """The layer output as ``(N, C, *spatial)``: as it is, through ``reshape``, or a token sequence's grid."""
    if reshape is not None:
        grid = reshape(activation)
        if not isinstance(grid, torch.Tensor) or grid.ndim < 3 or grid.shape[0] != activation.shape[0]:
            raise ValueError(
                f"reshape= must map the layer output {tuple(activation.shape)} to a grid (N, C, *spatial); "
                f"got {getattr(grid, 'shape', type(grid))}"
            )
        return grid
    if activation.ndim >= 4:
        return activation
    if activation.ndim == 3:
        return token_grid(activation)
    raise ValueError(
        f"the CAM layer's output has shape {tuple(activation.shape)}, which is not spatial; choose a "
        "convolutional layer or pass reshape="
    )
