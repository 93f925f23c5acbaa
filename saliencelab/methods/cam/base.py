"""What the class activation map methods share: the layer, its activations and gradients, the map's form.

A CAM method combines the channels of one layer's output ``A`` (a grid
``(N, C, *spatial)``) into one map per sample. The result is raw and signed
before the optional ReLU (``relu=True``, the papers' choice); it is upsampled
to the input's spatial size (``upsample="bilinear"``, linear in each spatial
dimension) or kept at the layer's resolution (``upsample=None``). No
normalisation: that is a choice of the plot, not of the map.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.layers import resolve_layer
from saliencelab.core.structure import rows_of
from saliencelab.core.targets import Target, reported_target
from saliencelab.methods.base import Method
from saliencelab.methods.cam.layers import Reshape, as_grid, default_layer, watching

UPSAMPLE = ("bilinear", "nearest", None)
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def upsampled(maps: torch.Tensor, size: tuple[int, ...], mode: str) -> torch.Tensor:
    """``maps`` ``(N, 1, *spatial)`` resized to ``size``: linear in every spatial dimension, or nearest.

    Example
    -------
    >>> upsampled(torch.ones(1, 1, 2, 2), (4, 4), "bilinear").shape
    torch.Size([1, 1, 4, 4])
    """
    if tuple(maps.shape[2:]) == tuple(size):
        return maps
    if mode == "nearest":
        return F.interpolate(maps, size=size, mode="nearest")
    return F.interpolate(maps, size=size, mode=_LINEAR[len(size)], align_corners=False)


def grid_axes(grid: torch.Tensor) -> tuple[int, ...]:
    """The spatial axes of a grid ``(N, C, *spatial)`` (2, 3, ...)."""
    return tuple(range(2, grid.ndim))


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype to compute a map's weights in: float32 for the half-precision types, else ``dtype``.

    In bfloat16 (8 significant bits) the small probability differences that
    weight Score-CAM's channels drown in rounding, and the SVD of Eigen-CAM
    does not run at all.

    Example
    -------
    >>> working_dtype(torch.bfloat16), working_dtype(torch.float64)
    (torch.float32, torch.float64)
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class CamMethod(Method):
    """Base class of the CAM family: a map from the activations (and gradients) of one layer.

    Parameters
    ----------
    layer:
        The module, or its dotted name, whose output is combined; default: the
        last module whose output is a spatial grid. A token sequence
        ``(N, T, D)`` (vision transformers) becomes a grid ``(N, D, h, h)``
        when T is a square, or a square plus a leading class token.
    relu:
        Keep only the positive part of the map (default, as in the papers);
        ``False`` returns the signed map.
    upsample:
        ``"bilinear"`` (default; linear in each spatial dimension),
        ``"nearest"``, or ``None`` to keep the layer's resolution.
    reshape:
        A function mapping the layer's output to a grid ``(N, C, *spatial)``,
        for layouts the automatic rule does not cover. It must only select and
        rearrange elements.

    A model with several inputs gets the layer's map at the layer's resolution
    (it belongs to no single input), as Captum's ``LayerGradCam`` returns it.
    """

    structured_inputs = True
    input_shaped = False
    uses_gradients: ClassVar[bool] = True
    applies_relu: ClassVar[bool] = True

    def __init__(
        self,
        model,
        *,
        layer: nn.Module | str | None = None,
        relu: bool = True,
        upsample: str | None = "bilinear",
        reshape: Reshape | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if upsample not in UPSAMPLE:
            raise ValueError(f"upsample must be one of {UPSAMPLE}; got {upsample!r}")
        if reshape is not None and not callable(reshape):
            raise TypeError("reshape must be a function mapping the layer output to a grid (N, C, *spatial)")
        self.layer = None if layer is None else resolve_layer(model, layer)
        self.relu = relu
        self.upsample = upsample
        self.reshape = reshape

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        return self._maps(inputs, target)

    def _maps(self, inputs: torch.Tensor, target: Target) -> Attribution:
        several = self.structure is not None and self.structure.packed
        if inputs.ndim < 3 and not several:
            raise ValueError(
                f"CAM methods explain inputs with spatial dimensions (N, C, H, W); got shape {tuple(inputs.shape)}"
            )
        if self.layer is not None:
            layer = self.layer
        else:
            with rows_of(torch.zeros(1, dtype=torch.long)):
                layer = default_layer(self.model, inputs[:1])
        maps: list[torch.Tensor] = []
        bound: list[Target] = []

        def run(rows: slice) -> None:
            samples = torch.arange(rows.start, rows.stop)
            with rows_of(samples):  # the layer map's rows index this chunk
                layer_map, chunk_bound = self.layer_map(inputs[rows], target.rows(samples), layer)
            maps.append(layer_map.detach())
            bound.append(chunk_bound)

        self.run_chunked(inputs, run)
        values = torch.cat(maps).unsqueeze(1).to(inputs.dtype)
        if self.relu and self.applies_relu:
            values = values.clamp(min=0)
        if self.upsample is not None and not several:
            if values.ndim != inputs.ndim:
                raise ValueError(
                    f"the layer's grid has {values.ndim - 2} spatial dimensions and the input {inputs.ndim - 2}; "
                    "pass upsample=None or a reshape= that gives a grid like the input's"
                )
            values = upsampled(values, tuple(inputs.shape[2:]), self.upsample)
        resolved = reported_target(bound)
        return Attribution(values, None, self.name, resolved, {"layer": self.layer_name(layer)})

    def layer_map(self, x: torch.Tensor, target: Target, layer: nn.Module) -> tuple[torch.Tensor, Target]:
        """The map of a chunk at the layer's resolution ``(n, *spatial)`` and the target bound to it.

        Model calls say which rows of the chunk ``x`` they evaluate (``self.forward(rows, samples)``).
        """
        raise NotImplementedError

    def layer_name(self, layer: nn.Module) -> str:
        """The dotted name of ``layer`` in the model (its class name if it is not a submodule)."""
        if isinstance(self.model, nn.Module):
            for name, module in self.model.named_modules():
                if module is layer:
                    return name or "(model)"
        return type(layer).__name__

    def activations_and_gradients(
        self, x: torch.Tensor, target: Target, layer: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, Target]:
        """The layer's grid ``A`` and ``∂score/∂A`` for a chunk; only the layers after ``layer`` build a graph."""
        with torch.no_grad(), watching(layer, gradients=True) as seen:
            output = self.forward(x, torch.arange(x.shape[0]))
            activation = self._seen(seen)
            bound = target.bind(output)
            scores = bound.scores(output)
        if not scores.requires_grad:
            gradient = torch.zeros_like(activation)
        else:
            (gradient,) = torch.autograd.grad(scores.sum(), activation, allow_unused=True)
            gradient = torch.zeros_like(activation) if gradient is None else gradient
        return as_grid(activation.detach(), self.reshape), as_grid(gradient, self.reshape), bound

    def activations(self, x: torch.Tensor, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's raw output and the model's output for a chunk, without gradients."""
        with torch.inference_mode(), watching(layer) as seen:
            output = self.forward(x, torch.arange(x.shape[0]))
        return self._seen(seen), output

    @staticmethod
    def _seen(seen) -> torch.Tensor:
        if seen.activation is None:
            raise ValueError("the CAM layer did not run in the forward pass; choose a layer the model uses")
        return seen.activation
