"""Captum's ``captum.attr`` API over saliencelab: ``import saliencelab.compat.captum as attr``.

Each class has Captum's name, constructor and ``.attribute(...)`` signature and
maps its arguments onto one :func:`saliencelab.explain` call. Captum's
conventions hold: a tuple of inputs gives a tuple of attributions, a tensor a
tensor; ``target`` is an int, a tuple (an index into a multi-dimensional
output), a tensor or a list; ``additional_forward_args`` are passed to the model
after the inputs; ``baselines`` is a number, a tensor or one per input; with
``return_convergence_delta=True`` the result is ``(attributions, delta)`` with
Captum's signed ``delta = Σ attributions − (f(x) − f(baselines))`` per sample.

Where the numbers differ from Captum's
--------------------------------------
- Random draws (GradientShap, NoiseTunnel, ShapleyValueSampling, KernelShap,
  Lime) come from a seed drawn from torch's global generator: ``torch.manual_seed``
  fixes the results, but they are not Captum's draws.
- ``IntegratedGradients(method="riemann_trapezoid")`` uses trapezoid weights that
  sum to one; Captum's sum to ``(n_steps − 1) / n_steps``, so Captum's values are
  that factor times these.
- DeepLift's rules are exact on functional operations, reused modules and max
  pooling, where Captum's module hooks are not (its convergence delta is then
  far from zero; here it is rounding).
- ``target=None`` on an ``(N, C)`` output explains the argmax class (Captum
  requires a target there).
- Arguments that only batch the work (``internal_batch_size``,
  ``perturbations_per_eval``, ``nt_samples_batch_size``, ``device_ids``) are
  accepted and do not change the results: saliencelab chunks its work under its
  own memory budget.

Arguments saliencelab cannot honour raise ``NotImplementedError`` naming the
argument and what to use instead.

Example
-------
>>> import torch
>>> import saliencelab.compat.captum as attr
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
>>> ig = attr.IntegratedGradients(model)
>>> values, delta = ig.attribute(torch.randn(2, 3, dtype=torch.float64), target=1, return_convergence_delta=True)
>>> values.shape, bool(delta.abs().max() < 1e-8)
(torch.Size([2, 3]), True)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from saliencelab.api import explain
from saliencelab.compat.captum_args import (
    as_parts,
    class_target,
    distribution,
    drawn_seed,
    forward_args,
    integration,
    neuron_index,
    per_part,
    shaped,
    signed_delta,
    sklearn_surrogate,
    unpacked,
)
from saliencelab.core.attribution import Attribution
from saliencelab.core.sampling import generator
from saliencelab.core.sampling import noise_scale as relative_noise_scale

CAPTUM_DEEPLIFT_EPS = 1e-10


def _refuse(argument: str, alternative: str) -> None:
    raise NotImplementedError(f"{argument} is not supported by saliencelab's Captum adapter; {alternative}")


@dataclass(frozen=True)
class _Run:
    """One :func:`saliencelab.explain` call and what Captum's conventions need from it."""

    attribution: Attribution
    parts: tuple[torch.Tensor, ...]
    single: bool
    extra: tuple | None
    to_layer: bool

    @property
    def values(self) -> Any:
        """The attributions in Captum's form: like the inputs, or as the layer gives them."""
        values = self.attribution.values
        values = tuple(values) if isinstance(values, list) else values
        if self.to_layer:
            return values
        return shaped(values if isinstance(values, tuple) else (values,), self.single)

    def delta(self, model: Callable, reference_parts: list[tuple]) -> torch.Tensor:
        """Captum's signed convergence delta against the references (``[]``: against zero output)."""
        return signed_delta(model, self.parts, self.extra, self.attribution.target, self.values, reference_parts)


class _Adapter:
    """The plumbing shared by every Captum class: Captum's arguments in, one ``saliencelab.explain`` call.

    Example
    -------
    >>> model = torch.nn.Linear(2, 1)
    >>> run = _Adapter(model)._run(torch.ones(1, 2), "gradient")
    >>> torch.equal(run.values, model.weight.detach())
    True
    """

    distribution_baselines = False
    """True when ``baselines`` is a batch of references to average or draw from (DeepLiftShap, GradientShap)."""

    def __init__(self, forward_func: Callable) -> None:
        self.forward_func = forward_func

    def _run(
        self,
        inputs: Any,
        method: str,
        *,
        target: Any = None,
        baselines: Any = None,
        additional_forward_args: Any = None,
        layer: Any = None,
        layer_input: bool = False,
        **options: Any,
    ) -> _Run:
        parts, single = as_parts(inputs)
        extra = forward_args(additional_forward_args)
        keywords: dict[str, Any] = dict(options)
        if extra is not None:
            keywords["forward_args"] = extra
        if layer is not None:
            keywords["layer"] = _one_layer(layer)
        if layer_input:
            keywords["layer_input"] = True
        if self.distribution_baselines:
            baseline = distribution(baselines, parts)
        else:
            baseline = per_part(baselines, parts, "baselines")
        attribution = explain(
            self.forward_func,
            unpacked(parts),
            method,
            target=class_target(target),
            baseline=baseline,
            **keywords,
        )
        return _Run(attribution, parts, single, extra, to_layer=layer is not None and method not in _INPUT_SHAPED)

    def _answer(self, run: _Run, return_convergence_delta: bool, baselines: Any) -> Any:
        """The values, with Captum's signed delta against ``baselines`` when asked for."""
        if not return_convergence_delta:
            return run.values
        return run.values, run.delta(self.forward_func, _reference_parts(baselines, run, self.distribution_baselines))


_INPUT_SHAPED = ("guided_grad_cam",)
"""Methods whose ``layer`` picks where to look, not where to attribute: their values have the inputs' shape."""


def _one_layer(layer: Any) -> Any:
    if isinstance(layer, (list, tuple)):
        _refuse("a list of layers", "make one adapter per layer")
    return layer


def _reference_parts(baselines: Any, run: _Run, is_distribution: bool) -> list[tuple]:
    """Each reference as one value per input, for the convergence delta."""
    if is_distribution:
        if callable(baselines) and not isinstance(baselines, torch.Tensor):
            raise NotImplementedError("return_convergence_delta with callable baselines; pass the reference tensor")
        batches, _ = as_parts(baselines, "baselines")
        which = run.attribution.info.get("references")
        indices = range(batches[0].shape[0]) if not isinstance(which, torch.Tensor) else which.tolist()
        return [tuple(batch[k : k + 1] for batch in batches) for k in indices]
    if baselines is None:
        return [(0.0,) * len(run.parts)]
    if isinstance(baselines, tuple):
        return [tuple(0.0 if b is None else b for b in baselines)]
    return [(baselines,) * len(run.parts)]


def _map(values: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    return tuple(function(v) for v in values) if isinstance(values, tuple) else function(values)


def _path_options(n_steps: int, method: str) -> dict[str, Any]:
    return {"steps": n_steps, "integration": integration(method)}


def _require_multiply_by_inputs(cls: str, multiply_by_inputs: bool) -> None:
    if not multiply_by_inputs:
        _refuse(
            f"{cls}(multiply_by_inputs=False)",
            "saliencelab's path methods always multiply by (inputs − baselines); use multiply_by_inputs=True",
        )


def _deeplift_options(multiply_by_inputs: bool, custom_attribution_func: Any, eps: float, parts: int) -> dict:
    """``combine`` and ``threshold`` of saliencelab's DeepLift from Captum's arguments."""
    options: dict[str, Any] = {}
    if eps != CAPTUM_DEEPLIFT_EPS:
        options["threshold"] = eps
    if custom_attribution_func is not None:
        if parts > 1:
            _refuse("custom_attribution_func with several inputs", "attribute one input at a time")
        count = len(inspect.signature(custom_attribution_func).parameters)

        def combine(multipliers, inputs, references):
            arguments = ((multipliers,), (inputs,), (references,))[:count]
            return custom_attribution_func(*arguments)[0]

        options["combine"] = combine
    elif not multiply_by_inputs:
        options["combine"] = lambda multipliers, inputs, references: multipliers
    return options


def _relative_noise(stdevs: Any, parts: tuple[torch.Tensor, ...]) -> float:
    """GradientShap's absolute ``stdevs`` as saliencelab's noise, a fraction of each sample's value range."""
    if isinstance(stdevs, tuple):
        if len(set(stdevs)) > 1 or len(stdevs) != len(parts):
            _refuse("stdevs with a different value per input", "pass one float")
        stdevs = stdevs[0]
    if stdevs == 0:
        return 0.0
    if len(parts) > 1:
        _refuse("GradientShap stdevs > 0 with several inputs", "pass stdevs=0.0 or use NoiseTunnel")
    ranges = relative_noise_scale(parts[0], 1.0).flatten()
    if not bool((ranges == ranges[0]).all()) or float(ranges[0]) == 0:
        _refuse(
            "GradientShap stdevs > 0 on a batch whose samples differ in value range",
            "saliencelab scales this noise to each sample's range: attribute one sample at a time, "
            "or use NoiseTunnel(GradientShap(...)) with absolute stdevs",
        )
    return float(stdevs) / float(ranges[0])


class Saliency(_Adapter):
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
        return _map(values, torch.abs) if abs else values


class InputXGradient(_Adapter):
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


class GuidedBackprop(_Adapter):
    """Captum's ``GuidedBackprop`` (saliencelab ``guided_backprop``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> attr.GuidedBackprop(model).attribute(torch.randn(2, 3), target=0).shape
    torch.Size([2, 3])
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


class IntegratedGradients(_Adapter):
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
        _require_multiply_by_inputs("IntegratedGradients", multiply_by_inputs)
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
            **_path_options(n_steps, method),
        )
        return self._answer(run, return_convergence_delta, baselines)


class DeepLift(_Adapter):
    """Captum's ``DeepLift``: the Rescale rule (saliencelab ``deeplift``).

    saliencelab's rules are exact on functional operations (``F.relu``, ``x * y``),
    modules used twice and max pooling; Captum's module hooks are not, so there the
    values differ and only saliencelab's satisfy summation-to-delta. ``eps`` is
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
            **_deeplift_options(self.multiply_by_inputs, custom_attribution_func, self.eps, len(parts)),
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


class GradientShap(_Adapter):
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
        _require_multiply_by_inputs("GradientShap", multiply_by_inputs)
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
            noise=_relative_noise(stdevs, parts),
            seed=drawn_seed(),
            **layer_options,
        )
        return self._answer(run, delta, baselines)


class LayerGradCam(_Adapter):
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
            _refuse("attr_dim_summation=False", "saliencelab's Grad-CAM sums over the channels")
        if attribute_to_layer_input:
            _refuse("attribute_to_layer_input=True", "pass the module whose output is that input as layer")
        if grad_kwargs:
            _refuse("grad_kwargs", "leave it None")
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


class GuidedGradCam(_Adapter):
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
            _refuse(f"interpolate_mode={interpolate_mode!r}", "use 'nearest' or 'bilinear'")
        if attribute_to_layer_input:
            _refuse("attribute_to_layer_input=True", "pass the module whose output is that input as layer")
        run = self._run(
            inputs,
            "guided_grad_cam",
            target=target,
            additional_forward_args=additional_forward_args,
            layer=self.layer,
            upsample=interpolate_mode,
        )
        return run.values


class Occlusion(_Adapter):
    """Captum's ``Occlusion`` (saliencelab ``occlusion``).

    ``sliding_window_shapes`` and ``strides`` cover every dimension but the batch,
    as in Captum (``strides`` defaults to 1); each element gets the mean of
    ``f(x) − f(occluded)`` over the windows that cover it. ``perturbations_per_eval``
    only batches the work and is ignored.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(4, 1)
    >>> x = torch.ones(1, 4)
    >>> values = attr.Occlusion(model).attribute(x, sliding_window_shapes=(1,))
    >>> torch.allclose(values, x * model.weight.detach(), atol=1e-6)
    True
    """

    def attribute(
        self,
        inputs,
        sliding_window_shapes,
        strides=None,
        baselines=None,
        target=None,
        additional_forward_args=None,
        perturbations_per_eval=1,
        show_progress=False,
    ):
        parts, single = as_parts(inputs)
        windows = (sliding_window_shapes,) if single else sliding_window_shapes
        if single or strides is None or isinstance(strides, int):
            strides = (strides,) * len(parts)  # one for every input, as Captum reads a single stride
        stride = tuple(_full_stride(s, w) for s, w in zip(strides, windows, strict=True))
        run = self._run(
            inputs,
            "occlusion",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            window=unpacked(tuple(tuple(w) for w in windows)),
            stride=unpacked(stride),
            progress=show_progress,
        )
        return run.values


def _full_stride(stride: Any, window: tuple[int, ...]) -> tuple[int, ...]:
    """Captum's stride for one input (None: 1; an int: every dimension) as one int per window dimension."""
    if stride is None:
        stride = 1
    return (stride,) * len(window) if isinstance(stride, int) else tuple(stride)


class FeatureAblation(_Adapter):
    """Captum's ``FeatureAblation`` (saliencelab ``feature_ablation``).

    ``perturbations_per_eval`` only batches the work and is ignored; Captum's extra
    keyword arguments are not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(1, 3)
    >>> values = attr.FeatureAblation(model).attribute(x)  # doctest: +SKIP
    >>> torch.allclose(values, x * model.weight.detach(), atol=1e-6)  # doctest: +SKIP
    True
    """

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        feature_mask=None,
        perturbations_per_eval=1,
        show_progress=False,
        **kwargs,
    ):
        if kwargs:
            _refuse(f"FeatureAblation.attribute({', '.join(kwargs)}=...)", "leave these out")
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            "feature_ablation",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            feature_mask=per_part(feature_mask, parts, "feature_mask"),
            progress=show_progress,
        )
        return run.values


class ShapleyValueSampling(_Adapter):
    """Captum's ``ShapleyValueSampling``: ``n_samples`` random permutations (saliencelab ``shapley_sampling``).

    Permutations are drawn without antithetic pairs, as in Captum, from a seed drawn
    from torch's global generator. ``perturbations_per_eval`` is ignored.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(1, 3)
    >>> values = attr.ShapleyValueSampling(model).attribute(x, n_samples=2)
    >>> torch.allclose(values, x * model.weight.detach(), atol=1e-6)  # additive: every permutation is exact
    True
    """

    method = "shapley_sampling"

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        feature_mask=None,
        n_samples=25,
        perturbations_per_eval=1,
        show_progress=False,
    ):
        return self._sampled(inputs, baselines, target, additional_forward_args, feature_mask, n_samples, show_progress)

    def _sampled(self, inputs, baselines, target, extra, feature_mask, n_samples, show_progress, **options):
        parts, _ = as_parts(inputs)
        if self.method == "shapley_sampling":
            options["antithetic"] = False
        run = self._run(
            inputs,
            self.method,
            target=target,
            baselines=baselines,
            additional_forward_args=extra,
            feature_mask=per_part(feature_mask, parts, "feature_mask"),
            samples=n_samples,
            seed=drawn_seed(),
            progress=show_progress,
            **options,
        )
        return run.values


class KernelShap(ShapleyValueSampling):
    """Captum's ``KernelShap`` (saliencelab ``kernel_shap``).

    ``n_samples`` coalitions per sample (at least the number of features − 1);
    ``return_input_shape=False`` is not supported. ``perturbations_per_eval`` is ignored.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(1, 3)
    >>> values = attr.KernelShap(model).attribute(x, n_samples=6)
    >>> torch.allclose(values, x * model.weight.detach(), atol=1e-5)
    True
    """

    method = "kernel_shap"

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        feature_mask=None,
        n_samples=25,
        perturbations_per_eval=1,
        return_input_shape=True,
        show_progress=False,
    ):
        if not return_input_shape:
            _refuse("return_input_shape=False", "read each group's value off the input-shaped result")
        return self._sampled(inputs, baselines, target, additional_forward_args, feature_mask, n_samples, show_progress)


class Lime(ShapleyValueSampling):
    """Captum's ``Lime`` (saliencelab ``lime``).

    The surrogate is Captum's default, ``Lasso(alpha=0.01)``, or the scikit-learn
    model a Captum ``SkLearnLinearModel`` names. Coalitions keep each feature with
    probability 1/2, as Captum's default ``perturb_func``; the sample weights are
    saliencelab's LIME kernel (cosine distance of the coalition to the full one,
    width 0.25, as in Ribeiro et al. 2016), where Captum's default takes the cosine
    distance of the perturbed input to the input with width 1. Custom
    ``similarity_func`` and ``perturb_func`` are not supported;
    ``return_input_shape=False`` neither.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> attr.Lime(model).attribute(torch.ones(2, 3), n_samples=50).shape
    torch.Size([2, 3])
    """

    method = "lime"

    def __init__(self, forward_func: Callable, interpretable_model=None, similarity_func=None, perturb_func=None):
        if similarity_func is not None:
            _refuse("similarity_func", "saliencelab's LIME weighs coalitions by its own kernel; leave it None")
        if perturb_func is not None:
            _refuse("perturb_func", "saliencelab's LIME draws coalitions keeping each feature with probability 1/2")
        super().__init__(forward_func)
        self.surrogate = sklearn_surrogate(interpretable_model)

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        feature_mask=None,
        n_samples=50,
        perturbations_per_eval=1,
        return_input_shape=True,
        show_progress=False,
    ):
        if not return_input_shape:
            _refuse("return_input_shape=False", "read each group's value off the input-shaped result")
        return self._sampled(
            inputs,
            baselines,
            target,
            additional_forward_args,
            feature_mask,
            n_samples,
            show_progress,
            surrogate=self.surrogate,
        )


class LRP(_Adapter):
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
            _refuse(f"rules set on modules ({', '.join(ruled[:3])})", "use saliencelab's lrp composites")
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


class NoiseTunnel:
    """Captum's ``NoiseTunnel`` over any class of this module: SmoothGrad, SmoothGrad² and VarGrad.

    Each sample gets ``nt_samples`` noisy copies (Gaussian noise of absolute
    standard deviation ``stdevs``, as in Captum); the wrapped method explains all
    copies in one call and the attributions are averaged (``"smoothgrad"``),
    averaged squared (``"smoothgrad_sq"``) or their variance taken (``"vargrad"``).
    The copies are explained by the wrapped class itself, so its own post-processing
    (``Saliency``'s ``abs``) applies to each copy, as in Captum; saliencelab's
    ``smoothgrad`` method is not used because it scales the noise to each
    sample's value range and cannot take the absolute value per copy.
    ``draw_baseline_from_distrib=True`` is not supported; ``nt_samples_batch_size``
    is ignored.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 2)
    >>> nt = attr.NoiseTunnel(attr.Saliency(model))
    >>> values = nt.attribute(torch.randn(4, 3), nt_type="smoothgrad", nt_samples=8, stdevs=0.1, target=1)
    >>> torch.allclose(values, model.weight[1].detach().abs().expand(4, 3))
    True
    """

    TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

    def __init__(self, attribution_method: _Adapter) -> None:
        if not isinstance(attribution_method, _Adapter):
            raise TypeError(
                "NoiseTunnel wraps a class of saliencelab.compat.captum (e.g. attr.Saliency(model)); "
                f"got {type(attribution_method).__name__}"
            )
        self.attribution_method = attribution_method

    def attribute(
        self,
        inputs,
        nt_type="smoothgrad",
        nt_samples=5,
        nt_samples_batch_size=None,
        stdevs=1.0,
        draw_baseline_from_distrib=False,
        **kwargs,
    ):
        if nt_type not in self.TYPES:
            raise ValueError(f"nt_type must be one of {', '.join(self.TYPES)}; got {nt_type!r}")
        if draw_baseline_from_distrib:
            _refuse("draw_baseline_from_distrib=True", "use GradientShap, which draws baselines from a batch")
        if not isinstance(nt_samples, int) or nt_samples < 1:
            raise ValueError(f"nt_samples must be a positive int; got {nt_samples!r}")
        parts, single = as_parts(inputs)
        n = parts[0].shape[0]
        sigmas = stdevs if isinstance(stdevs, tuple) else (stdevs,) * len(parts)
        if len(sigmas) != len(parts):
            raise ValueError(f"stdevs has {len(sigmas)} entries for {len(parts)} inputs; give one per input")
        rng = generator(drawn_seed(), parts[0].device)
        noisy = tuple(
            part.repeat(nt_samples, *([1] * (part.ndim - 1)))
            + sigma
            * torch.randn((nt_samples * n, *part.shape[1:]), generator=rng, dtype=part.dtype, device=part.device)
            for part, sigma in zip(parts, sigmas, strict=True)
        )
        answer = self.attribution_method.attribute(
            shaped(noisy, single), **_repeated(kwargs, n, nt_samples, self.attribution_method)
        )
        values, delta = answer if kwargs.get("return_convergence_delta") else (answer, None)
        combined = _map(values, lambda v: _combine(v.reshape(nt_samples, n, *v.shape[1:]), nt_type))
        return combined if delta is None else (combined, delta)


def _combine(copies: torch.Tensor, nt_type: str) -> torch.Tensor:
    """The attributions of the noisy copies ``(copies, N, ...)`` combined as ``nt_type`` says."""
    if nt_type == "smoothgrad":
        return copies.mean(dim=0)
    squares = (copies * copies).mean(dim=0)
    if nt_type == "smoothgrad_sq":
        return squares
    mean = copies.mean(dim=0)
    return squares - mean * mean


def _repeated(kwargs: dict, n: int, copies: int, method: _Adapter) -> dict:
    """The wrapped method's per-sample arguments repeated for the noisy copies (rows ``copy · N + sample``)."""

    def repeat(value: Any, per_sample: bool = True) -> Any:
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == n and n > 1 and per_sample:
            return value.repeat(copies, *([1] * (value.ndim - 1)))
        if isinstance(value, list) and len(value) == n and n > 1:
            return value * copies
        if isinstance(value, tuple):
            return tuple(repeat(item, per_sample) for item in value)
        return value

    out = dict(kwargs)
    for name in ("target", "additional_forward_args", "baselines", "feature_mask"):
        if name in out and not (name == "target" and isinstance(out[name], tuple)):
            out[name] = repeat(out[name], per_sample=not (name == "baselines" and method.distribution_baselines))
    return out


class _LayerAdapter(_Adapter):
    """A Captum ``Layer*`` class: attribution to a layer's output (or input) via ``layer=``."""

    def __init__(self, forward_func: Callable, layer: Any, device_ids: Any = None, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.layer = _one_layer(layer)
        self.multiply_by_inputs = multiply_by_inputs

    def _at_layer(self, attribute_to_layer_input: bool) -> dict:
        return {"layer": self.layer, "layer_input": attribute_to_layer_input}


class LayerIntegratedGradients(_LayerAdapter):
    """Captum's ``LayerIntegratedGradients`` (saliencelab ``integrated_gradients`` with ``layer=``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.LayerIntegratedGradients(model, model[1]).attribute(torch.randn(2, 3)).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        _require_multiply_by_inputs("LayerIntegratedGradients", multiply_by_inputs)
        super().__init__(forward_func, layer, device_ids, multiply_by_inputs)

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
        attribute_to_layer_input=False,
        grad_kwargs=None,
    ):
        if grad_kwargs:
            _refuse("grad_kwargs", "leave it None")
        run = self._run(
            inputs,
            "integrated_gradients",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **_path_options(n_steps, method),
            **self._at_layer(attribute_to_layer_input),
        )
        return self._answer(run, return_convergence_delta, baselines)


class LayerGradientXActivation(_LayerAdapter):
    """Captum's ``LayerGradientXActivation`` (saliencelab ``gradient_x_input`` with ``layer=``;
    ``multiply_by_inputs=False``: ``gradient`` with ``layer=``, the layer's gradient).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.LayerGradientXActivation(model, model[1]).attribute(torch.randn(2, 3)).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True, memory_efficient=False):
        super().__init__(forward_func, layer, device_ids, multiply_by_inputs)

    def attribute(
        self, inputs, target=None, additional_forward_args=None, attribute_to_layer_input=False, grad_kwargs=None
    ):
        if grad_kwargs:
            _refuse("grad_kwargs", "leave it None")
        method = "gradient_x_input" if self.multiply_by_inputs else "gradient"
        run = self._run(
            inputs,
            method,
            target=target,
            additional_forward_args=additional_forward_args,
            **self._at_layer(attribute_to_layer_input),
        )
        return run.values


class LayerDeepLift(_LayerAdapter):
    """Captum's ``LayerDeepLift`` (saliencelab ``deeplift`` with ``layer=``); see :class:`DeepLift`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> attr.LayerDeepLift(model, model[1]).attribute(torch.randn(2, 3)).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    method = "deeplift"

    def __init__(self, model, layer, multiply_by_inputs=True):
        super().__init__(model, layer, None, multiply_by_inputs)

    def attribute(
        self,
        inputs,
        baselines=None,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
        attribute_to_layer_input=False,
        custom_attribution_func=None,
        grad_kwargs=None,
    ):
        if grad_kwargs:
            _refuse("grad_kwargs", "leave it None")
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            self.method,
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **_deeplift_options(self.multiply_by_inputs, custom_attribution_func, CAPTUM_DEEPLIFT_EPS, len(parts)),
            **self._at_layer(attribute_to_layer_input),
        )
        return self._answer(run, return_convergence_delta, baselines)


class LayerDeepLiftShap(LayerDeepLift):
    """Captum's ``LayerDeepLiftShap`` (saliencelab ``deepshap`` with ``layer=``); see :class:`DeepLiftShap`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> layer = attr.LayerDeepLiftShap(model, model[1])
    >>> layer.attribute(torch.randn(2, 3), torch.randn(5, 3)).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    method = "deepshap"
    distribution_baselines = True


class LayerGradientShap(_LayerAdapter, GradientShap):
    """Captum's ``LayerGradientShap`` (saliencelab ``gradient_shap`` with ``layer=``); see :class:`GradientShap`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> attr.LayerGradientShap(model, model[1]).attribute(torch.randn(2, 3), torch.randn(5, 3)).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        _require_multiply_by_inputs("LayerGradientShap", multiply_by_inputs)
        _LayerAdapter.__init__(self, forward_func, layer, device_ids, multiply_by_inputs)

    def attribute(
        self,
        inputs,
        baselines,
        n_samples=5,
        stdevs=0.0,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
        attribute_to_layer_input=False,
    ):
        return self._gradient_shap(
            inputs,
            baselines,
            n_samples,
            stdevs,
            target,
            additional_forward_args,
            return_convergence_delta,
            **self._at_layer(attribute_to_layer_input),
        )


class LayerLRP(_LayerAdapter, LRP):
    """Captum's ``LayerLRP`` (saliencelab ``lrp`` with ``layer=``); see :class:`LRP`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> attr.LayerLRP(model, model[1]).attribute(torch.randn(2, 3), target=0).shape  # doctest: +SKIP
    torch.Size([2, 4])
    """

    def __init__(self, model, layer):
        LRP.__init__(self, model)
        self.layer = _one_layer(layer)

    def attribute(
        self,
        inputs,
        target=None,
        additional_forward_args=None,
        return_convergence_delta=False,
        attribute_to_layer_input=False,
        verbose=False,
    ):
        return LRP.attribute(
            self,
            inputs,
            target,
            additional_forward_args,
            return_convergence_delta,
            verbose,
            **self._at_layer(attribute_to_layer_input),
        )


class _NeuronAdapter(_Adapter):
    """A Captum ``Neuron*`` class: explains one unit of a layer via ``target=saliencelab.neuron(layer, index)``."""

    method: str

    def __init__(self, forward_func: Callable, layer: torch.nn.Module, device_ids: Any = None, multiply_by_inputs=True):
        super().__init__(forward_func)
        self.layer = _one_layer(layer)
        self.multiply_by_inputs = multiply_by_inputs

    def _neuron(self, inputs, neuron_selector, attribute_to_neuron_input, **arguments) -> Any:
        import saliencelab

        if attribute_to_neuron_input:
            _refuse("attribute_to_neuron_input=True", "pass the module whose output is that input as layer")
        target = saliencelab.neuron(self.layer, neuron_index(neuron_selector))
        return self._run(inputs, self.method, target=target, **arguments).values


class NeuronGradient(_NeuronAdapter):
    """Captum's ``NeuronGradient`` (saliencelab ``gradient`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.NeuronGradient(model, model[1]).attribute(torch.randn(2, 3), 2).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """

    method = "gradient"

    def attribute(self, inputs, neuron_selector, additional_forward_args=None, attribute_to_neuron_input=False):
        return self._neuron(
            inputs, neuron_selector, attribute_to_neuron_input, additional_forward_args=additional_forward_args
        )


class NeuronGuidedBackprop(NeuronGradient):
    """Captum's ``NeuronGuidedBackprop`` (saliencelab ``guided_backprop`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> attr.NeuronGuidedBackprop(model, model[1]).attribute(torch.randn(2, 3), 2).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """

    method = "guided_backprop"

    def __init__(self, model, layer, device_ids=None):
        super().__init__(model, layer, device_ids)


class NeuronIntegratedGradients(_NeuronAdapter):
    """Captum's ``NeuronIntegratedGradients`` (saliencelab ``integrated_gradients`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.NeuronIntegratedGradients(model, model[1]).attribute(torch.randn(2, 3), 2).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """

    method = "integrated_gradients"

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        _require_multiply_by_inputs("NeuronIntegratedGradients", multiply_by_inputs)
        super().__init__(forward_func, layer, device_ids, multiply_by_inputs)

    def attribute(
        self,
        inputs,
        neuron_selector,
        baselines=None,
        additional_forward_args=None,
        n_steps=50,
        method="gausslegendre",
        internal_batch_size=None,
        attribute_to_neuron_input=False,
    ):
        return self._neuron(
            inputs,
            neuron_selector,
            attribute_to_neuron_input,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **_path_options(n_steps, method),
        )


class NeuronDeepLift(_NeuronAdapter):
    """Captum's ``NeuronDeepLift`` (saliencelab ``deeplift`` of a unit); see :class:`DeepLift`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> attr.NeuronDeepLift(model, model[1]).attribute(torch.randn(2, 3), 2).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """

    method = "deeplift"

    def __init__(self, model, layer, multiply_by_inputs=True):
        super().__init__(model, layer, None, multiply_by_inputs)

    def attribute(
        self,
        inputs,
        neuron_selector,
        baselines=None,
        additional_forward_args=None,
        attribute_to_neuron_input=False,
        custom_attribution_func=None,
    ):
        parts, _ = as_parts(inputs)
        return self._neuron(
            inputs,
            neuron_selector,
            attribute_to_neuron_input,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **_deeplift_options(self.multiply_by_inputs, custom_attribution_func, CAPTUM_DEEPLIFT_EPS, len(parts)),
        )


class NeuronFeatureAblation(_NeuronAdapter):
    """Captum's ``NeuronFeatureAblation`` (saliencelab ``feature_ablation`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> attr.NeuronFeatureAblation(model, model[1]).attribute(torch.randn(2, 3), 2).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """

    method = "feature_ablation"

    def attribute(
        self,
        inputs,
        neuron_selector,
        baselines=None,
        additional_forward_args=None,
        feature_mask=None,
        attribute_to_neuron_input=False,
        perturbations_per_eval=1,
    ):
        parts, _ = as_parts(inputs)
        return self._neuron(
            inputs,
            neuron_selector,
            attribute_to_neuron_input,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            feature_mask=per_part(feature_mask, parts, "feature_mask"),
        )


__all__ = [
    "DeepLift",
    "DeepLiftShap",
    "Deconvolution",
    "FeatureAblation",
    "GradientShap",
    "GuidedBackprop",
    "GuidedGradCam",
    "InputXGradient",
    "IntegratedGradients",
    "KernelShap",
    "LRP",
    "LayerAttribution",
    "LayerDeepLift",
    "LayerDeepLiftShap",
    "LayerGradCam",
    "LayerGradientShap",
    "LayerGradientXActivation",
    "LayerIntegratedGradients",
    "LayerLRP",
    "Lime",
    "NeuronDeepLift",
    "NeuronFeatureAblation",
    "NeuronGradient",
    "NeuronGuidedBackprop",
    "NeuronIntegratedGradients",
    "NoiseTunnel",
    "Occlusion",
    "Saliency",
    "ShapleyValueSampling",
]
