"""Captum's ``captum.attr`` API over saliencelab: ``import saliencelab.compat.captum as attr``.

Each class has Captum's name, constructor and ``.attribute(...)`` signature and
maps its arguments onto one :func:`saliencelab.explain` call. Captum's
conventions hold: a tuple of inputs gives a tuple of attributions, a tensor a
tensor; ``target`` is an int, a tuple (an index into a multi-dimensional
output), a tensor or a list; ``additional_forward_args`` are passed to the model
after the inputs; ``baselines`` is a number, a tensor or one per input; with
``return_convergence_delta=True`` the result is ``(attributions, delta)`` with
Captum's signed ``delta = Σ attributions − (f(x) − f(baselines))`` per sample.
``Layer*`` classes attribute to a layer's output (``attribute_to_layer_input``:
its input) through ``layer=``, ``Neuron*`` classes explain one unit through
``target=saliencelab.neuron(layer, index)``.

Where the numbers differ from Captum's
--------------------------------------
- Random draws (GradientShap, NoiseTunnel, ShapleyValueSampling, KernelShap,
  Lime) come from a seed drawn from torch's global generator: ``torch.manual_seed``
  fixes the results, but they are not Captum's draws.
- ``IntegratedGradients(method="riemann_trapezoid")`` uses trapezoid weights that
  sum to one; Captum's sum to ``(n_steps − 1) / n_steps``, so Captum's values are
  that factor times these.
- DeepLift's rules are exact on functional operations (``F.relu``,
  ``F.max_pool2d``), where Captum's module hooks do not reach (its convergence
  delta is then far from zero; here it is rounding); a module used twice works
  here and is refused by Captum.
- LRP splits the relevance of a sum (``a(x) + b(y)``, residual connections) in
  proportion to the summands; Captum's hooks give each summand all of it.
  Elsewhere LRP's epsilon rule (ε = 1e-9) gives Captum's values.
- Convergence deltas are per sample, also for DeepLiftShap and GradientShap
  (Captum's are per sample and baseline, or per draw).
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

from saliencelab.compat.captum_gradients import (
    LRP,
    Deconvolution,
    DeepLift,
    DeepLiftShap,
    GradientShap,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Saliency,
)
from saliencelab.compat.captum_layers import (
    LayerDeepLift,
    LayerDeepLiftShap,
    LayerGradientShap,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    LayerLRP,
    NeuronDeepLift,
    NeuronFeatureAblation,
    NeuronGradient,
    NeuronGuidedBackprop,
    NeuronIntegratedGradients,
)
from saliencelab.compat.captum_noise import (
    NoiseTunnel,
)
from saliencelab.compat.captum_perturbation import (
    FeatureAblation,
    KernelShap,
    Lime,
    Occlusion,
    ShapleyValueSampling,
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


def __getattr__(name: str):
    """A Captum name this module does not provide is an ``AttributeError`` that lists the names it does.

    Example
    -------
    >>> import saliencelab.compat.captum as attr
    >>> attr.LayerConductance  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AttributeError: saliencelab.compat.captum has no LayerConductance: ... it provides DeepLift, DeepLiftShap, ...
    """
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"saliencelab.compat.captum has no {name}: not every captum.attr class has a saliencelab counterpart; "
        f"it provides {', '.join(__all__)}"
    )
