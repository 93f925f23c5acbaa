"""VisualBackProp (Bojarski et al. 2016): which input pixels feed the network's strongest activations.

The forward pass records, for each 2-D convolution, its geometry and the
channel mean of the last activation (ReLU and the other elementwise
nonlinearities) computed on its output grid. From the deepest such map, the
mask is scaled up to the map before it and multiplied with it, down to the
input. Scaling up follows the paper, a transposed convolution with a kernel of
ones and the convolution's size, stride, padding and dilation, where the
convolution maps the earlier map's grid straight to the later one and its
kernel covers its stride; elsewhere (across pooling, residual branches,
1×1 strided projections) it is bilinear interpolation. Class-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.targets import Target, reported_target
from saliencelab.engine import Call, Interception, linear_products
from saliencelab.engine.gates import SPELLINGS, is_relu, mask_rules
from saliencelab.engine.ops import DATA_MOVEMENT, ELEMENTWISE_ACTIVATIONS, LINEAR, PRODUCTS, QUERIES, ROUTING
from saliencelab.methods.base import Method
from saliencelab.methods.cam.base import upsampled


@dataclass
class Level:
    """One 2-D convolution of the forward pass and the averaged activation map on its output grid."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | None
    dilation: tuple[int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    mean_map: torch.Tensor | None = None


ACTIVATIONS = ELEMENTWISE_ACTIVATIONS | {"clamp"}
"""The elementwise nonlinearities whose output is a feature map (and every ReLU spelling)."""

PASSES = DATA_MOVEMENT | LINEAR | ROUTING | QUERIES
"""What may run between the convolutions and their activations; any other operation is refused."""


class _Recorder:
    """Records :class:`Level` s while a forward pass runs."""

    def __init__(self) -> None:
        self.levels: list[Level] = []

    def mode(self) -> Interception:
        """The interception that records every 2-D convolution and the activation computed on its grid."""
        rules = dict.fromkeys(ACTIVATIONS | SPELLINGS, self._activation) | mask_rules()
        rules["conv2d"] = self._conv
        rules.update(dict.fromkeys(PRODUCTS - {"mul"}, linear_products))
        hint = "VisualBackProp is defined for convolutional networks of linear layers, activations and pooling"
        return Interception(rules, method=VisualBackProp.name, passes=PASSES, hint=hint)

    def _activation(self, call: Call) -> torch.Tensor:
        activation = call.name in ACTIVATIONS or is_relu(call)
        out = call.genuine() if activation or call.name != "mul" else linear_products(call)
        if activation and out.ndim == 4 and self.levels and tuple(out.shape[2:]) == self.levels[-1].out_size:
            self.levels[-1].mean_map = out.detach().mean(1, keepdim=True)
        return out

    def _conv(self, call: Call) -> torch.Tensor:
        out = call.genuine()
        x, weight = call.args[0], call.argument(1, "weight")
        if x.ndim != 4:
            return out
        padding = call.argument(4, "padding", 0)
        self.levels.append(
            Level(
                kernel=tuple(weight.shape[2:]),
                stride=_pair(call.argument(3, "stride", 1)),
                padding=None if isinstance(padding, str) else _pair(padding),
                dilation=_pair(call.argument(5, "dilation", 1)),
                in_size=tuple(x.shape[2:]),
                out_size=tuple(out.shape[2:]),
            )
        )
        return out


def scaled_up(mask: torch.Tensor, level: Level, size: tuple[int, ...]) -> torch.Tensor:
    """``mask`` on ``level``'s output grid, taken back to ``size``: through the convolution's ones-kernel
    transposed convolution when it maps ``size`` to its output and covers its stride, else bilinearly.

    Example
    -------
    >>> level = Level((3, 3), (1, 1), (0, 0), (1, 1), in_size=(4, 4), out_size=(2, 2))
    >>> scaled_up(torch.ones(1, 1, 2, 2), level, (4, 4))[0, 0]
    tensor([[1., 2., 2., 1.],
            [2., 4., 4., 2.],
            [2., 4., 4., 2.],
            [1., 2., 2., 1.]])
    """
    direct = level.in_size == tuple(size) and level.padding is not None
    covers = all(k * d >= s for k, d, s in zip(level.kernel, level.dilation, level.stride, strict=True))
    if direct and covers:
        ones = torch.ones(1, 1, *level.kernel, dtype=mask.dtype, device=mask.device)
        extra = tuple(
            size[i]
            - (
                (level.out_size[i] - 1) * level.stride[i]
                - 2 * level.padding[i]
                + level.dilation[i] * (level.kernel[i] - 1)
                + 1
            )
            for i in range(2)
        )
        if all(0 <= e < max(s, d) for e, s, d in zip(extra, level.stride, level.dilation, strict=True)):
            return F.conv_transpose2d(
                mask, ones, stride=level.stride, padding=level.padding, output_padding=extra, dilation=level.dilation
            )
    return upsampled(mask, tuple(size), "bilinear")


@register
class VisualBackProp(Method):
    """VisualBackProp: averaged feature maps scaled up and multiplied from the deepest to the input.

    ``values`` has shape ``(N, 1, H, W)``. Needs a model with 2-D convolutions
    followed by elementwise activations.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.VisualBackProp(net)(torch.rand(2, 3, 12, 12)).values.shape
    torch.Size([2, 1, 12, 12])
    """

    name = "visual_backprop"
    description = "VisualBackProp: averaged feature maps scaled up and multiplied down to the input"
    source = "Bojarski et al. 2016"

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        if inputs.ndim != 4:
            raise ValueError(f"visual_backprop explains images (N, C, H, W); got shape {tuple(inputs.shape)}")
        maps: list[torch.Tensor] = []
        bound: list[Target] = []

        def run(rows: slice) -> None:
            recorder = _Recorder()
            mode = recorder.mode()
            with torch.inference_mode(), mode:
                output = self.forward(mode.mark(inputs[rows].clone()), torch.arange(rows.start, rows.stop))
            bound.append(target.rows(torch.arange(rows.start, rows.stop)).bind(output))
            maps.append(self._mask(recorder.levels, tuple(inputs.shape[2:])))

        self.run_chunked(inputs, run, passes=1)
        resolved = reported_target(bound)
        return Attribution(torch.cat(maps).to(inputs.dtype), None, self.name, resolved)

    def _mask(self, levels: list[Level], size: tuple[int, int]) -> torch.Tensor:
        mapped = [level for level in levels if level.mean_map is not None]
        if not mapped:
            raise ValueError(
                "visual_backprop found no 2-D convolution followed by an activation in the model's forward pass"
            )
        mask = mapped[-1].mean_map
        for deeper, shallower in zip(mapped[:0:-1], mapped[-2::-1], strict=True):
            mask = scaled_up(mask, deeper, shallower.out_size) * shallower.mean_map
        return scaled_up(mask, mapped[0], size)
