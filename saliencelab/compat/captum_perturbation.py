"""Captum's perturbation classes over saliencelab (see :mod:`saliencelab.compat.captum`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from saliencelab.compat.captum_adapter import Adapter, refuse
from saliencelab.compat.captum_args import as_parts, drawn_seed, packed_mask, sklearn_surrogate, unpacked


class Occlusion(Adapter):
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


class FeatureAblation(Adapter):
    """Captum's ``FeatureAblation`` (saliencelab ``feature_ablation``).

    ``perturbations_per_eval`` only batches the work and is ignored; Captum's extra
    keyword arguments are not supported.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.ones(1, 3)
    >>> values = attr.FeatureAblation(model).attribute(x)
    >>> torch.allclose(values, x * model.weight.detach(), atol=1e-6)
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
            refuse(f"FeatureAblation.attribute({', '.join(kwargs)}=...)", "leave these out")
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            "feature_ablation",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            feature_mask=packed_mask(feature_mask, parts),
            progress=show_progress,
        )
        return run.values


class ShapleyValueSampling(Adapter):
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
            feature_mask=packed_mask(feature_mask, parts),
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
            refuse("return_input_shape=False", "read each group's value off the input-shaped result")
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
            refuse("similarity_func", "saliencelab's LIME weighs coalitions by its own kernel; leave it None")
        if perturb_func is not None:
            refuse("perturb_func", "saliencelab's LIME draws coalitions keeping each feature with probability 1/2")
        super().__init__(forward_func)
        self.surrogate = sklearn_surrogate(interpretable_model)

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
            refuse("return_input_shape=False", "read each group's value off the input-shaped result")
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
