"""CAMs that weight a layer's activations ``A`` by the gradient ``g = ∂score/∂A``.

- Grad-CAM (Selvaraju et al. 2017): ``Σ_k mean(g_k) · A_k``.
- Grad-CAM++ (Chattopadhyay et al. 2018): ``Σ_k (Σ_ij α_ij relu(g_ij)) · A_k`` with
  ``α = g² / (2g² + Σ_ab A_ab · g³)`` (the closed form for an exponentiated score).
- XGrad-CAM (Fu et al. 2020): ``Σ_k (Σ_ij A_ij g_ij / Σ_ab A_ab) · A_k``.
- HiResCAM (Draelos & Carin 2020): ``Σ_k g_k ⊙ A_k``, no averaging.
- LayerCAM (Jiang et al. 2021): ``Σ_k relu(g_k) ⊙ A_k``.
- Guided Grad-CAM (Selvaraju et al. 2017): Guided Backprop times the upsampled Grad-CAM.
"""

from __future__ import annotations

import torch
from torch import nn

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.targets import Target
from saliencelab.methods.base import Method
from saliencelab.methods.cam.base import CamMethod, grid_axes
from saliencelab.methods.cam.layers import Reshape
from saliencelab.methods.gradient import GuidedBackprop


class _GradientWeighted(CamMethod):
    def layer_map(self, x: torch.Tensor, target: Target, layer: nn.Module) -> tuple[torch.Tensor, Target]:
        activation, gradient, bound = self.activations_and_gradients(x, target, layer)
        return self.map_from(activation, gradient), bound

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The map ``(n, *spatial)`` from the grid ``a`` and its gradient ``g``."""
        raise NotImplementedError


def _weighted_sum(weights: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``Σ_k w_k A_k`` for channel weights ``(n, C)``."""
    return (weights.reshape(*weights.shape, *([1] * (a.ndim - 2))) * a).sum(1)


@register
class GradCam(_GradientWeighted):
    """Grad-CAM: activations weighted by their gradient's spatial mean (Selvaraju et al. 2017).

    ``values`` has shape ``(N, 1, H, W)``: one map per sample at the input's size.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.GradCam(net, layer="1")(torch.rand(2, 3, 8, 8), target=1).values.shape
    torch.Size([2, 1, 8, 8])
    """

    name = "grad_cam"
    description = "Grad-CAM: the layer's channels weighted by the spatial mean of their gradient"
    source = "Selvaraju et al. 2017"

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return _weighted_sum(g.mean(grid_axes(g)), a)


@register
class GradCamPlusPlus(_GradientWeighted):
    """Grad-CAM++: pixel-wise weighted positive gradients (Chattopadhyay et al. 2018).

    The weights are the paper's closed form for the exponential of the score:
    ``α_ij = g_ij² / (2 g_ij² + Σ_ab A_ab g_ij³)`` (0 where the denominator is 0),
    ``w_k = Σ_ij α_ij relu(g_ij)``.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.GradCamPlusPlus(net, layer="1", upsample=None)(torch.rand(1, 3, 8, 8), target=0).values.shape
    torch.Size([1, 1, 6, 6])
    """

    name = "grad_cam_pp"
    description = "Grad-CAM++: activations weighted by pixel-wise weighted positive gradients"
    source = "Chattopadhyay et al. 2018"

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        dims = grid_axes(a)
        g2 = g.square()
        denominator = 2 * g2 + a.sum(dims, keepdim=True) * g2 * g
        alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1), 0)
        return _weighted_sum((alpha * g.clamp(min=0)).sum(dims), a)


@register
class XGradCam(_GradientWeighted):
    """XGrad-CAM: gradients averaged with the activations as weights (Fu et al. 2020).

    ``w_k = Σ_ij A_ij g_ij / Σ_ab A_ab`` (0 for a channel whose activations sum to 0).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.XGradCam(net, layer="1")(torch.rand(1, 3, 8, 8), target=0).values.shape
    torch.Size([1, 1, 8, 8])
    """

    name = "xgrad_cam"
    description = "XGrad-CAM: channels weighted by their activation-weighted mean gradient"
    source = "Fu et al. 2020"

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        dims = grid_axes(a)
        total = a.sum(dims)
        weights = torch.where(total != 0, (a * g).sum(dims) / torch.where(total != 0, total, 1), 0)
        return _weighted_sum(weights, a)


@register
class HiResCam(_GradientWeighted):
    """HiResCAM: the gradient times the activations, summed over channels (Draelos & Carin 2020).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.HiResCam(net, layer="1")(torch.rand(1, 3, 8, 8), target=0).values.shape
    torch.Size([1, 1, 8, 8])
    """

    name = "hires_cam"
    description = "HiResCAM: elementwise gradient times activation, summed over channels"
    source = "Draelos & Carin 2020"

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (g * a).sum(1)


@register
class LayerCam(_GradientWeighted):
    """LayerCAM: the positive gradient times the activations, summed over channels (Jiang et al. 2021).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.LayerCam(net, layer="1")(torch.rand(1, 3, 8, 8), target=0).values.shape
    torch.Size([1, 1, 8, 8])
    """

    name = "layer_cam"
    description = "LayerCAM: elementwise positive gradient times activation, summed over channels"
    source = "Jiang et al. 2021"

    def map_from(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (g.clamp(min=0) * a).sum(1)


@register
class GuidedGradCam(Method):
    """Guided Grad-CAM: Guided Backprop times the upsampled Grad-CAM (Selvaraju et al. 2017).

    ``values`` has the input's shape; Grad-CAM (with its ReLU) is upsampled to
    the input's size and broadcast over the channels.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.GuidedGradCam(net, layer="1")(torch.rand(2, 3, 8, 8), target=0).values.shape
    torch.Size([2, 3, 8, 8])
    """

    name = "guided_grad_cam"
    description = "Guided Grad-CAM: Guided Backprop multiplied by the upsampled Grad-CAM"
    source = "Selvaraju et al. 2017"

    def __init__(
        self,
        model,
        *,
        layer: nn.Module | str | None = None,
        upsample: str = "bilinear",
        reshape: Reshape | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if upsample is None:
            raise ValueError("guided_grad_cam multiplies at the input's resolution; upsample must not be None")
        self.grad_cam = GradCam(model, layer=layer, upsample=upsample, reshape=reshape, memory_budget=memory_budget)
        self.guided = GuidedBackprop(model, memory_budget=memory_budget)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        cam = self.inner(self.grad_cam)._attribute(inputs, target, None)
        guided = self.inner(self.guided)._attribute(inputs, target, None)
        return Attribution(guided.values * cam.values, None, self.name, cam.target, cam.info)
