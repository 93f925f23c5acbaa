"""The plumbing shared by the Captum adapters: Captum's arguments in, one :func:`saliencelab.explain` call out."""

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
    forward_args,
    integration,
    per_part,
    shaped,
    signed_delta,
    unpacked,
)
from saliencelab.core.attribution import Attribution
from saliencelab.core.sampling import noise_scale as relative_noise_scale

CAPTUM_DEEPLIFT_EPS = 1e-10


def refuse(argument: str, alternative: str) -> None:
    """Raise ``NotImplementedError`` naming the Captum ``argument`` and what to do instead.

    Example
    -------
    >>> refuse("abs=2", "pass True or False")
    Traceback (most recent call last):
    ...
    NotImplementedError: abs=2 is not supported by saliencelab's Captum adapter; pass True or False
    """
    raise NotImplementedError(f"{argument} is not supported by saliencelab's Captum adapter; {alternative}")


@dataclass(frozen=True)
class Run:
    """One :func:`saliencelab.explain` call and what Captum's conventions need from it.

    Example
    -------
    >>> model = torch.nn.Linear(2, 1)
    >>> run = Adapter(model)._run((torch.ones(3, 2),), "gradient_x_input")
    >>> type(run.values).__name__, run.delta(model, [(0.0,)]).abs().max() < 1e-6
    ('tuple', tensor(True))
    """

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


class Adapter:
    """The plumbing shared by every Captum class: Captum's arguments in, one ``saliencelab.explain`` call.

    Example
    -------
    >>> model = torch.nn.Linear(2, 1)
    >>> run = Adapter(model)._run(torch.ones(1, 2), "gradient")
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
    ) -> Run:
        parts, single = as_parts(inputs)
        extra = forward_args(additional_forward_args)
        keywords: dict[str, Any] = dict(options)
        if extra is not None:
            keywords["forward_args"] = extra
        if layer is not None:
            keywords["layer"] = one_layer(layer)
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
        return Run(attribution, parts, single, extra, to_layer=layer is not None and method not in INPUT_SHAPED)

    def _answer(self, run: Run, return_convergence_delta: bool, baselines: Any) -> Any:
        """The values, with Captum's signed delta against ``baselines`` when asked for."""
        if not return_convergence_delta:
            return run.values
        return run.values, run.delta(self.forward_func, reference_parts(baselines, run, self.distribution_baselines))


INPUT_SHAPED = ("guided_grad_cam",)
"""Methods whose ``layer`` picks where to look, not where to attribute: their values have the inputs' shape."""


def one_layer(layer: Any) -> Any:
    """``layer`` if it is one layer; Captum's lists of layers are refused.

    Example
    -------
    >>> one_layer("fc1")
    'fc1'
    """
    if isinstance(layer, (list, tuple)):
        refuse("a list of layers", "make one adapter per layer")
    return layer


def reference_parts(baselines: Any, run: Run, is_distribution: bool) -> list[tuple]:
    """Each reference as one value per input, for the convergence delta.

    Example
    -------
    >>> run = Adapter(torch.nn.Linear(2, 1))._run(torch.ones(1, 2), "gradient")
    >>> reference_parts(None, run, is_distribution=False), reference_parts((0.5,), run, is_distribution=False)
    ([(0.0,)], [(0.5,)])
    """
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


def map_values(values: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``function`` applied to a tensor, or to each tensor of a tuple.

    Example
    -------
    >>> map_values((torch.tensor([-1.0]), torch.tensor([2.0])), torch.abs)
    (tensor([1.]), tensor([2.]))
    """
    return tuple(function(v) for v in values) if isinstance(values, tuple) else function(values)


def path_options(n_steps: int, method: str) -> dict[str, Any]:
    """saliencelab's Integrated Gradients options from Captum's ``n_steps`` and ``method``.

    Example
    -------
    >>> path_options(32, "riemann_left")
    {'steps': 32, 'integration': 'riemann_left'}
    """
    return {"steps": n_steps, "integration": integration(method)}


def require_multiply_by_inputs(cls: str, multiply_by_inputs: bool) -> None:
    """Refuse ``multiply_by_inputs=False`` for the path methods (saliencelab has no unscaled path integral).

    Example
    -------
    >>> require_multiply_by_inputs("IntegratedGradients", True)  # accepted: nothing happens
    """
    if not multiply_by_inputs:
        refuse(
            f"{cls}(multiply_by_inputs=False)",
            "saliencelab's path methods always multiply by (inputs − baselines); use multiply_by_inputs=True",
        )


def deeplift_options(multiply_by_inputs: bool, custom_attribution_func: Any, eps: float, parts: int) -> dict:
    """``combine`` and ``threshold`` of saliencelab's DeepLift from Captum's arguments.

    Example
    -------
    >>> deeplift_options(True, None, CAPTUM_DEEPLIFT_EPS, parts=1), sorted(deeplift_options(False, None, 1e-6, 1))
    ({}, ['combine', 'threshold'])
    """
    options: dict[str, Any] = {}
    if eps != CAPTUM_DEEPLIFT_EPS:
        options["threshold"] = eps
    if custom_attribution_func is not None:
        if parts > 1:
            refuse("custom_attribution_func with several inputs", "attribute one input at a time")
        count = len(inspect.signature(custom_attribution_func).parameters)

        def combine(multipliers, inputs, references):
            arguments = ((multipliers,), (inputs,), (references,))[:count]
            return custom_attribution_func(*arguments)[0]

        options["combine"] = combine
    elif not multiply_by_inputs:
        options["combine"] = lambda multipliers, inputs, references: multipliers
    return options


def relative_noise(stdevs: Any, parts: tuple[torch.Tensor, ...]) -> float:
    """GradientShap's absolute ``stdevs`` as saliencelab's noise, a fraction of each sample's value range.

    Example
    -------
    >>> relative_noise(0.5, (torch.tensor([[0.0, 2.0], [1.0, 3.0]]),))  # both samples span 2
    0.25
    """
    if isinstance(stdevs, tuple):
        if len(set(stdevs)) > 1 or len(stdevs) != len(parts):
            refuse("stdevs with a different value per input", "pass one float")
        stdevs = stdevs[0]
    if stdevs == 0:
        return 0.0
    if len(parts) > 1:
        refuse("GradientShap stdevs > 0 with several inputs", "pass stdevs=0.0 or use NoiseTunnel")
    ranges = relative_noise_scale(parts[0], 1.0).flatten()
    if not bool((ranges == ranges[0]).all()) or float(ranges[0]) == 0:
        refuse(
            "GradientShap stdevs > 0 on a batch whose samples differ in value range",
            "saliencelab scales this noise to each sample's range: attribute one sample at a time, "
            "or use NoiseTunnel(GradientShap(...)) with absolute stdevs",
        )
    return float(stdevs) / float(ranges[0])
