"""Captum's ``Layer*`` and ``Neuron*`` classes over saliencelab's ``layer=`` and ``saliencelab.neuron``.

See :mod:`saliencelab.compat.captum`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from saliencelab.compat.captum_adapter import (
    CAPTUM_DEEPLIFT_EPS,
    Adapter,
    deeplift_options,
    one_layer,
    path_options,
    refuse,
    require_multiply_by_inputs,
)
from saliencelab.compat.captum_args import as_parts, neuron_index, packed_mask
from saliencelab.compat.captum_gradients import LRP, GradientShap


class _LayerAdapter(Adapter):
    """A Captum ``Layer*`` class: attribution to a layer's output (or input) via ``layer=``."""

    def __init__(self, forward_func: Callable, layer: Any, device_ids: Any = None, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.layer = one_layer(layer)
        self.multiply_by_inputs = multiply_by_inputs

    def _at_layer(self, attribute_to_layer_input: bool) -> dict:
        return {"layer": self.layer, "layer_input": attribute_to_layer_input}


class LayerIntegratedGradients(_LayerAdapter):
    """Captum's ``LayerIntegratedGradients`` (saliencelab ``integrated_gradients`` with ``layer=``).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.LayerIntegratedGradients(model, model[1]).attribute(torch.randn(2, 3)).shape
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        require_multiply_by_inputs("LayerIntegratedGradients", multiply_by_inputs)
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
            refuse("grad_kwargs", "leave it None")
        run = self._run(
            inputs,
            "integrated_gradients",
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **path_options(n_steps, method),
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
    >>> attr.LayerGradientXActivation(model, model[1]).attribute(torch.randn(2, 3)).shape
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True, memory_efficient=False):
        super().__init__(forward_func, layer, device_ids, multiply_by_inputs)

    def attribute(
        self, inputs, target=None, additional_forward_args=None, attribute_to_layer_input=False, grad_kwargs=None
    ):
        if grad_kwargs:
            refuse("grad_kwargs", "leave it None")
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
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.LayerDeepLift(model, model[1]).attribute(torch.randn(2, 3)).shape
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
            refuse("grad_kwargs", "leave it None")
        parts, _ = as_parts(inputs)
        run = self._run(
            inputs,
            self.method,
            target=target,
            baselines=baselines,
            additional_forward_args=additional_forward_args,
            **deeplift_options(self.multiply_by_inputs, custom_attribution_func, CAPTUM_DEEPLIFT_EPS, len(parts)),
            **self._at_layer(attribute_to_layer_input),
        )
        return self._answer(run, return_convergence_delta, baselines)


class LayerDeepLiftShap(LayerDeepLift):
    """Captum's ``LayerDeepLiftShap`` (saliencelab ``deepshap`` with ``layer=``); see :class:`DeepLiftShap`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> layer = attr.LayerDeepLiftShap(model, model[1])
    >>> layer.attribute(torch.randn(2, 3), torch.randn(5, 3)).shape
    torch.Size([2, 4])
    """

    method = "deepshap"
    distribution_baselines = True


class LayerGradientShap(_LayerAdapter, GradientShap):
    """Captum's ``LayerGradientShap`` (saliencelab ``gradient_shap`` with ``layer=``); see :class:`GradientShap`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.LayerGradientShap(model, model[1]).attribute(torch.randn(2, 3), torch.randn(5, 3)).shape
    torch.Size([2, 4])
    """

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        require_multiply_by_inputs("LayerGradientShap", multiply_by_inputs)
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
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    >>> _ = model[0].weight.data.copy_(torch.eye(2)); _ = model[2].weight.data.copy_(torch.tensor([[1.0, 2.0]]))
    >>> attr.LayerLRP(model, model[1]).attribute(torch.tensor([[1.0, 3.0]])).round(decimals=4)  # h·w: 1 and 6
    tensor([[1., 6.]])
    """

    def __init__(self, model, layer):
        LRP.__init__(self, model)
        self.layer = one_layer(layer)

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


class _NeuronAdapter(Adapter):
    """A Captum ``Neuron*`` class: explains one unit of a layer via ``target=saliencelab.neuron(layer, index)``."""

    method: str

    def __init__(self, forward_func: Callable, layer: torch.nn.Module, device_ids: Any = None, multiply_by_inputs=True):
        super().__init__(forward_func)
        self.layer = one_layer(layer)
        self.multiply_by_inputs = multiply_by_inputs

    def _neuron(self, inputs, neuron_selector, attribute_to_neuron_input, **arguments) -> Any:
        import saliencelab

        if attribute_to_neuron_input:
            refuse("attribute_to_neuron_input=True", "pass the module whose output is that input as layer")
        target = saliencelab.neuron(self.layer, neuron_index(neuron_selector))
        return self._run(inputs, self.method, target=target, **arguments).values


class NeuronGradient(_NeuronAdapter):
    """Captum's ``NeuronGradient`` (saliencelab ``gradient`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.NeuronGradient(model, model[1]).attribute(torch.randn(2, 3), 2).shape
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
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> _ = model[0].weight.data.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
    >>> attr.NeuronGuidedBackprop(model, model[1]).attribute(torch.tensor([[3.0, 1.0]]), 0)  # unit 0 is active
    tensor([[ 1., -1.]])
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
    >>> attr.NeuronIntegratedGradients(model, model[1]).attribute(torch.randn(2, 3), 2).shape
    torch.Size([2, 3])
    """

    method = "integrated_gradients"

    def __init__(self, forward_func, layer, device_ids=None, multiply_by_inputs=True):
        require_multiply_by_inputs("NeuronIntegratedGradients", multiply_by_inputs)
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
            **path_options(n_steps, method),
        )


class NeuronDeepLift(_NeuronAdapter):
    """Captum's ``NeuronDeepLift`` (saliencelab ``deeplift`` of a unit); see :class:`DeepLift`.

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.NeuronDeepLift(model, model[1]).attribute(torch.randn(2, 3), 2).shape
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
            **deeplift_options(self.multiply_by_inputs, custom_attribution_func, CAPTUM_DEEPLIFT_EPS, len(parts)),
        )


class NeuronFeatureAblation(_NeuronAdapter):
    """Captum's ``NeuronFeatureAblation`` (saliencelab ``feature_ablation`` of a unit).

    Example
    -------
    >>> import torch, saliencelab.compat.captum as attr
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> attr.NeuronFeatureAblation(model, model[1]).attribute(torch.randn(2, 3), 2).shape
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
            feature_mask=packed_mask(feature_mask, parts),
        )
