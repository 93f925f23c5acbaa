"""Captum's gradient, path, DeepLift, CAM and LRP classes over saliencelab (see :mod:`saliencelab.compat.captum`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from saliencelab.compat.captum_adapter import (
    CAPTUM_DEEPLIFT_EPS,
    Adapter,
    deeplift_options,
    map_values,
    path_options,
    refuse,
    relative_noise,
    require_multiply_by_inputs,
)
from saliencelab.compat.captum_args import as_parts, drawn_seed


class Saliency(Adapter):
    """Captum's ``Saliency``: the gradient, its absolute value by default (saliencelab ``gradient``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(2, 1)
    >>> torch.equal(attr.Saliency(model).attribute(torch.ones(1, 2)), model.weight.detach().abs())
    True
    """

    def attribute(self, inputs, target=None, abs=True, additional_forward_args=None):
        values = self._run(inputs, "gradient", target=target, additional_forward_args=additional_forward_args).values
        return map_values(values, torch.abs) if abs else values


class InputXGradient(Adapter):
    """Captum's ``InputXGradient`` (saliencelab ``gradient_x_input``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(2, 1)
    >>> x = torch.tensor([[2.0, -1.0]])
    >>> torch.equal(attr.InputXGradient(model).attribute(x), x * model.weight.detach())
    True
    """

    def attribute(self, inputs, target=None, additional_forward_args=None):
        run = self._run(inputs, "gradient_x_input", target=target, additional_forward_args=additional_forward_args)
        return run.values


class GuidedBackprop(Adapter):
    """Captum's ``GuidedBackprop`` (saliencelab ``guided_backprop``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1, bias=False))
    >>> _ = model[1].weight.data.copy_(torch.tensor([[1.0, -1.0]]))
    >>> attr.GuidedBackprop(model).attribute(torch.tensor([[2.0, 3.0]]))  # the gradient would be [[1., -1.]]
    tensor([[1., 0.]])
    """

    method = "guided_backprop"

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)

    def attribute(self, inputs, target=None, additional_forward_args=None):
        return self._run(inputs, self.method, target=target, additional_forward_args=additional_forward_args).values


class Deconvolution(GuidedBackprop):
    """Captum's ``Deconvolution`` (saliencelab ``deconvnet``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1, bias=False))
    >>> _ = model[1].weight.data.copy_(torch.tensor([[1.0, -1.0]]))
    >>> attr.Deconvolution(model).attribute(torch.tensor([[-2.0, 3.0]]))
    tensor([[1., 0.]])
    """

    method = "deconvnet"


class IntegratedGradients(Adapter):
    """Captum's ``IntegratedGradients`` (saliencelab ``integrated_gradients``).

    ``method`` maps onto saliencelab's quadrature rules (``"gausslegendre"``, the
    default, and the four Riemann rules); saliencelab's ``riemann_trapezoid`` has
    weights that sum to one, so Captum's values with it are ``(n_steps − 1) / n_steps``
    times these. ``internal_batch_size`` only batches the work and is ignored.
    ``multiply_by_inputs=False`` is not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(2, 3)
    >>> torch.allclose(attr.IntegratedGradients(model).attribute(x, baselines=0.0), x * model.weight.detach())
    True
    """

    def __init__(self, forward_func: Callable, multiply_by_inputs: bool = True) -> None:
        require_multiply_by_inputs("IntegratedGradients", multiply_by_inputs)
        super().__init__(forward_func)

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        n_steps=50,
        method="gausslegendre",
        internal_batch_size=None,
        return_convergence_delta=False,
    ):
        run = self._run(
            inputs,
            "integrated_gradients",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **path_options(n_steps, method),
        )
        return self._answer(run, return_convergence_delta, baselines)


class DeepLift(Adapter):
    """Captum's ``DeepLift``: the Rescale rule (saliencelab ``deeplift``).

    saliencelab's rules are exact on functional operations (``F.relu``,
    ``F.max_pool2d``, ``x * y``), which Captum's module hooks do not reach: there the
    values differ and only saliencelab's satisfy summation-to-delta. A module used
    twice works here; Captum refuses it. ``eps`` is
    saliencelab's ``threshold`` when set (below it a difference counts as zero and
    the derivative replaces Δy/Δz; saliencelab measures it relative to ``1 + |z′|``).
    ``multiply_by_inputs=False`` returns the multipliers; ``custom_attribution_func``
    is applied to ``(multipliers, inputs, baselines)`` tuples as in Captum.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    >>> x = torch.randn(2, 3, dtype=torch.float64)
    >>> values, delta = attr.DeepLift(model).attribute(x, return_convergence_delta=True)
    >>> bool(delta.abs().max() < 1e-10)
    True
    """

    method = "deeplift"

    def __init__(self, model: torch.nn.Module, multiply_by_inputs: bool = True, eps: float = CAPTUM_DEEPLIFT_EPS):
        super().__init__(model)
        self.multiply_by_inputs = multiply_by_inputs
        self.eps = eps

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
        custom_attribution_func=None,
    ):
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            self.method,
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **deeplift_options(self.multiply_by_inputs, custom_attribution_func, self.eps, len(parts)),
        )
        return self._answer(run, return_convergence_delta, baselines)


class DeepLiftShap(DeepLift):
    """Captum's ``DeepLiftShap``: DeepLift averaged over a batch of K baselines (saliencelab ``deepshap``).

    ``baselines`` is the batch ``(K, ...)`` (or a callable giving it); the delta is
    per sample, ``Σ attributions − (f(x) − mean_k f(b_k))`` (Captum's is one per
    sample and baseline pair, shape ``(N·K,)``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    >>> x, background = torch.randn(2, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    >>> values, delta = attr.DeepLiftShap(model).attribute(x, background, return_convergence_delta=True)
    >>> values.shape, bool(delta.abs().max() < 1e-10)
    (torch.Size([2, 3]), True)
    """

    method = "deepshap"
    distribution_baselines = True

    def __init__(self, model: torch.nn.Module, multiply_by_inputs: bool = True) -> None:
        super().__init__(model, multiply_by_inputs)


class GradientShap(Adapter):
    """Captum's ``GradientShap`` (saliencelab ``gradient_shap``).

    ``baselines`` is a batch ``(K, ...)`` to draw from; each of ``n_samples`` draws
    takes a baseline and a point on the path, shared by the samples of the batch.
    ``stdevs`` is absolute, as in Captum; saliencelab scales its noise to each
    sample's value range, so ``stdevs > 0`` needs a batch whose samples share one
    range (e.g. one sample). The delta is per sample against the mean output at the
    drawn baselines (Captum's is one per draw, shape ``(N·n_samples,)``).
    ``multiply_by_inputs=False`` is not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.randn(2, 3)
    >>> values = attr.GradientShap(model).attribute(x, baselines=torch.zeros(4, 3), n_samples=8)
    >>> torch.allclose(values, x * model.weight.detach())
    True
    """

    distribution_baselines = True

    def __init__(self, forward_func: Callable, multiply_by_inputs: bool = True) -> None:
        require_multiply_by_inputs("GradientShap", multiply_by_inputs)
        super().__init__(forward_func)

    def attribute(
        self,
        inputs,
        baselines,
        n_samples=5,
        stdevs=0.0,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
    ):
        return self._gradient_shap(
            inputs, baselines, n_samples, stdevs, target, additional_forward_args, return_convergence_delta
        )

    def _gradient_shap(self, inputs, baselines, n_samples, stdevs, target, extra, delta, **layer_options):
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            "gradient_shap",
            target=target,
            baselines=baselines,
            additional_forward_args=extra,
            samples=n_samples,
            noise=relative_noise(stdevs, parts),
            seed=drawn_seed(),
            **layer_options,
        )
        return self._answer(run, delta, baselines)


class LayerGradCam(Adapter):
    """Captum's ``LayerGradCam`` at the layer's resolution (saliencelab ``grad_cam`` with ``upsample=None``).

    ``relu_attributions`` is the ReLU of Grad-CAM (off by default, as in Captum);
    ``attr_dim_summation=False`` (per-channel maps), ``attribute_to_layer_input``
    and ``grad_kwargs`` are not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> attr.LayerGradCam(net, net[1]).attribute(torch.rand(2, 3, 8, 8), target=1).shape
    torch.Size([2, 1, 6, 6])
    """

    def __init__(self, forward_func: Callable, layer: torch.nn.Module, device_ids: Any = None) -> None:
        super().__init__(forward_func)
        self.layer = layer

    def attribute(
        self,
        inputs,
        target=None,
        additional_forward_args=None,
        attribute_to_layer_input=False,
        relu_attributions=False,
        attr_dim_summation=True,
        grad_kwargs=None,
    ):
        if not attr_dim_summation:
            refuse("attr_dim_summation=False", "saliencelab's Grad-CAM sums over the channels")
        if attribute_to_layer_input:
            refuse("attribute_to_layer_input=True", "pass the module whose output is that input as layer")
        if grad_kwargs:
            refuse("grad_kwargs", "leave it None")
        run = self._run(
            inputs,
            "grad_cam",
            target=target,
            additional_forward_args=additional_forward_args,
            layer=self.layer,
            relu=relu_attributions,
            upsample=None,
        )
        return run.values


class LayerAttribution:
    """Captum's ``LayerAttribution.interpolate``: a layer's attribution resized to the input's spatial size.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> attr.LayerAttribution.interpolate(torch.ones(2, 1, 3, 3), (6, 6)).shape
    torch.Size([2, 1, 6, 6])
    """

    @staticmethod
    def interpolate(layer_attribution: torch.Tensor, interpolate_dims, interpolate_mode: str = "nearest"):
        """``torch.nn.functional.interpolate`` of ``layer_attribution`` to ``interpolate_dims``."""
        return torch.nn.functional.interpolate(layer_attribution, interpolate_dims, mode=interpolate_mode)


class GuidedGradCam(Adapter):
    """Captum's ``GuidedGradCam`` (saliencelab ``guided_grad_cam``).

    ``interpolate_mode`` is ``"nearest"`` (Captum's default) or ``"bilinear"``;
    ``attribute_to_layer_input=True`` is not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> attr.GuidedGradCam(net, net[1]).attribute(torch.rand(2, 3, 8, 8), target=0).shape
    torch.Size([2, 3, 8, 8])
    """

    def __init__(self, model: torch.nn.Module, layer: torch.nn.Module, device_ids: Any = None) -> None:
        super().__init__(model)
        self.layer = layer

    def attribute(
        self,
        inputs,
        target=None,
        additional_forward_args=None,
        interpolate_mode="nearest",
        attribute_to_layer_input=False,
    ):
        if interpolate_mode not in ("nearest", "bilinear"):
            refuse(f"interpolate_mode={interpolate_mode!r}", "use 'nearest' or 'bilinear'")
        if attribute_to_layer_input:
            refuse("attribute_to_layer_input=True", "pass the module whose output is that input as layer")
        run = self._run(
            inputs,
            "guided_grad_cam",
            target=target,
            additional_forward_args=additional_forward_args,
            layer=self.layer,
            upsample=interpolate_mode,
        )
        return run.values


class LRP(Adapter):
    """Captum's ``LRP`` with its default rules: the epsilon rule, ε = 1e-9 (saliencelab ``lrp``).

    Rules set on modules (``module.rule = ...``) are not read: a model carrying them
    is refused; use saliencelab's composites (``sl.explain(..., method="lrp",
    composite=...)``). The delta is Captum's, ``f(x) − Σ relevance`` (this sign only for LRP).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> attr.LRP(model).attribute(torch.randn(2, 3), target=1).shape
    torch.Size([2, 3])
    """

    EPSILON = 1e-9

    def __init__(self, model: torch.nn.Module) -> None:
        ruled = [name for name, module in model.named_modules() if getattr(module, "rule", None) is not None]
        if ruled:
            refuse(f"rules set on modules ({', '.join(ruled[:3])})", "use saliencelab's lrp composites")
        super().__init__(model)

    def attribute(
        self,
        inputs,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
        verbose=False,
        **layer_options,
    ):
        run = self._run(
            inputs,
            "lrp",
            target=target,
            additional_forward_args=additional_forward_args,
            rule="epsilon",
            epsilon=self.EPSILON,
            stabilizer=self.EPSILON,
            **layer_options,
        )
        if not return_convergence_delta:
            return run.values
        return run.values, -run.delta(self.forward_func, [])  # Captum's LRP delta is f(x) − Σ relevance
