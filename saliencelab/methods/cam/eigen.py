"""Eigen-CAM (Muhammad & Yeasin 2020): the layer's activations projected on their first principal direction.

Each sample's grid is a matrix ``O`` of positions × channels; with its SVD
``O = U Σ Vᵀ`` the map is ``O v₁`` (the paper's formula: no centring, no
gradient, so the map does not depend on the target). A singular vector's sign
is arbitrary; it is fixed so that the map correlates positively with the
channels' mean activation. All samples go through one batched SVD, in float32
for half-precision grids (bfloat16, float16), which the SVD does not take; the
map is cast back.
"""

from __future__ import annotations

import torch
from torch import nn

from saliencelab.core.registry import register
from saliencelab.core.targets import Target
from saliencelab.methods.cam.base import CamMethod, working_dtype
from saliencelab.methods.cam.layers import as_grid


def first_component_projection(grid: torch.Tensor) -> torch.Tensor:
    """``O v₁`` for each sample's ``O`` = grid ``(n, C, *spatial)`` as positions × channels, sign-fixed.

    Example
    -------
    >>> grid = torch.zeros(1, 2, 2, 2)
    >>> grid[0, 0, 0, 0] = 3.0  # one channel, one position
    >>> first_component_projection(grid)
    tensor([[[3., 0.],
             [0., 0.]]])
    """
    n, c = grid.shape[:2]
    positions = grid.reshape(n, c, -1).transpose(1, 2).to(working_dtype(grid.dtype))  # (n, P, C)
    _, _, vh = torch.linalg.svd(positions, full_matrices=False)
    projection = positions @ vh[:, 0, :].unsqueeze(2)  # (n, P, 1)
    mean = positions.mean(2, keepdim=True)
    sign = torch.where((projection * mean).sum((1, 2)) < 0, -1.0, 1.0).to(positions.dtype)
    return (projection.squeeze(2) * sign.unsqueeze(1)).reshape(n, *grid.shape[2:]).to(grid.dtype)


@register
class EigenCam(CamMethod):
    """Eigen-CAM: the projection of the layer's activations on their first principal direction.

    Class-agnostic: the map is the same for every target (the target is still
    resolved and reported).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.EigenCam(net, layer="1")(torch.rand(2, 3, 8, 8)).values.shape
    torch.Size([2, 1, 8, 8])
    """

    name = "eigen_cam"
    description = "Eigen-CAM: the layer's activations projected on their first principal component"
    source = "Muhammad & Yeasin 2020"

    def layer_map(self, x: torch.Tensor, target: Target, layer: nn.Module) -> tuple[torch.Tensor, Target]:
        raw, output = self.activations(x, layer)
        return first_component_projection(as_grid(raw, self.reshape)), target.bind(output)
