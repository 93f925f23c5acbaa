"""Infidelity (Yeh et al. 2019): how well do attributions predict the output change under random perturbations?

``INFD(Φ, f, x) = E_I[(Iᵀ Φ(x) − (f(x) − f(x − I)))²]``: each perturbation ``I``
is subtracted from the input, and the attribution's linear prediction of the
output drop, ``Iᵀ Φ(x)``, is compared with the actual drop. Lower is better; an
explanation that is exactly the gradient of a linear model has infidelity 0 under
any perturbation.

The perturbations ``I_k``, ``k < samples``, are drawn once from ``seed`` and
shared by all samples (so a sample's result depends only on that sample and the
seed):

- ``"gaussian"``: ``I_k = noise · Z_k`` with ``Z_k`` standard normal, one value per
  input element (Yeh et al.'s noisy baseline);
- ``"square"``: images only; a ``region × region`` square at a uniformly drawn
  position is replaced by ``baseline``: ``I_k = (x − baseline) ⊙ M_k`` (Yeh et al.'s
  square removal);
- a tensor of explicit perturbations, ``(K, *x.shape[1:])`` shared by all samples
  or ``(N, K, *x.shape[1:])``.

``normalize=True`` rescales the attributions by the optimal
``β = E[Iᵀ Φ · Δf] / E[(Iᵀ Φ)²]`` first (as Captum's ``normalize``), so that only
the direction of Φ is judged, not its scale. The ``N · samples`` perturbed inputs
are scored in one batched evaluation, chunked under ``memory_budget``; the
products ``Iᵀ Φ`` and the squared errors are computed in float64.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(4, 1)
>>> x = torch.randn(3, 4)
>>> gradient = model.weight.detach().expand(3, 4)
>>> infidelity(model, x, gradient).abs().max().item() < 1e-10
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec
from saliencelab.evaluate.correlation import subset_sums
from saliencelab.evaluate.faithfulness import (
    AttributionSpec,
    MethodSpec,
    Scorer,
    resolve_attributions,
    score_rows,
    single_baseline,
)
from saliencelab.methods.base import check_inputs
from saliencelab.methods.perturbation.scoring import clean_scores

__all__ = ["infidelity", "infidelity_perturbations"]

PERTURBATIONS = ("gaussian", "square")
DEFAULT_SAMPLES = 100
"""Perturbations per input when ``samples`` is not given."""

PerturbationSpec = str | torch.Tensor


def infidelity(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    perturbation: PerturbationSpec = "gaussian",
    samples: int = DEFAULT_SAMPLES,
    noise: float = 0.1,
    region: int = 4,
    baseline: BaselineSpec = "zeros",
    normalize: bool = False,
    score: str = "logit",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Infidelity (Yeh et al. 2019): ``mean_k (I_kᵀ Φ(x) − (f(x) − f(x − I_k)))²`` per sample.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable; left exactly as it was.
    inputs:
        A batch ``(N, ...)``: images ``(N, C, H, W)``, tabular rows ``(N, D)``, ...
    attributions:
        A tensor of the inputs' shape (images also take ``(N, 1, H, W)`` or
        ``(N, H, W)`` maps, applied to every channel), or an
        :class:`~saliencelab.Attribution` (whose resolved target is used when
        ``target`` is None). Give either this or ``method``.
    method, method_options:
        Instead of ``attributions``: a method name from
        :func:`saliencelab.available_methods` with its options, or a callable
        ``(model, inputs, target) -> tensor``; it explains the resolved target.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or None (argmax class).
    perturbation:
        ``"gaussian"``, ``"square"`` or explicit perturbations (see the module's notes).
    samples:
        Number of drawn perturbations per input (ignored for explicit ones). The
        ``"gaussian"`` draws are held as ``samples`` input-sized tensors.
    noise:
        Standard deviation of the ``"gaussian"`` perturbation, in input units.
    region:
        Side of the ``"square"`` perturbation, in pixels.
    baseline:
        What the ``"square"`` perturbation puts in place of the square: a preset,
        a number or a tensor broadcastable to the inputs, as in :func:`~saliencelab.evaluate.deletion`.
    normalize:
        Rescale Φ by the optimal ``β = Σ_k I_kᵀΦ·Δf_k / Σ_k (I_kᵀΦ)²`` first (0 when every
        ``I_kᵀΦ`` is 0).
    score:
        ``"logit"`` (the raw output, Yeh et al.) or ``"probability"`` (softmax over the classes).
    seed:
        Seed of the perturbations (and of a ``"uniform"`` baseline).
    memory_budget:
        Bytes for one chunk of perturbed rows (default 1 GiB).
    progress:
        Show a progress bar (None: on a terminal for long runs).

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64 infidelity, in squared output units; lower is better.

    Example
    -------
    >>> import torch
    >>> class Square(torch.nn.Module):  # f(x) = x², f(x) − f(x − I) = 2xI − I²
    ...     def forward(self, x):
    ...         return x.pow(2).sum(dim=1)
    >>> x = torch.tensor([[1.0]])
    >>> I = torch.tensor([[0.5], [-0.5]])  # gradient 2x = 2 predicts 2I; the error is -I² = -0.25 for both
    >>> infidelity(Square(), x, torch.tensor([[2.0]]), perturbation=I).item()
    0.0625
    """
    _check_flag(normalize)
    scorer = Scorer(model, score, memory_budget)
    with preserved(model):
        check_inputs(inputs)
        _, bound, values = resolve_attributions(scorer, inputs, attributions, method, method_options, target)
        phi = _fit_attributions(values, inputs)
        scale, pattern = _draw(inputs, perturbation, samples, noise, region, baseline, seed)
        count = pattern.shape[1]
        predicted = _predicted_drops(phi, scale, pattern)

        def perturbed(sample: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            s = sample if len(scale) > 1 else torch.zeros_like(sample)
            p = sample if len(pattern) > 1 else torch.zeros_like(sample)
            return inputs[sample] - scale[s] * pattern[p, step]

        clean, _ = clean_scores(scorer, inputs, bound)
        drops = clean[:, None] - score_rows(scorer, inputs, bound, count, perturbed, progress, "infidelity")
    if normalize:
        power = predicted.pow(2).sum(dim=1)
        fit = torch.where(power > 0, (predicted * drops).sum(dim=1) / power.where(power > 0, 1.0), 0.0)
        predicted = predicted * fit[:, None]
    return (predicted - drops).pow(2).mean(dim=1)


def infidelity_perturbations(
    inputs: torch.Tensor,
    perturbation: PerturbationSpec = "gaussian",
    *,
    samples: int = DEFAULT_SAMPLES,
    noise: float = 0.1,
    region: int = 4,
    baseline: BaselineSpec = "zeros",
    seed: int = 0,
) -> torch.Tensor:
    """The perturbations :func:`infidelity` subtracts from each input under the same arguments, ``(N, K, ...)``.

    For inspection and for running another implementation on exactly the same
    perturbations; :func:`infidelity` itself never stores all ``N · K`` of them.

    Example
    -------
    >>> x = torch.ones(2, 1, 3, 3)
    >>> squares = infidelity_perturbations(x, "square", samples=5, region=2)
    >>> squares.shape, squares.sum(dim=(2, 3, 4)).tolist()
    (torch.Size([2, 5, 1, 3, 3]), [[4.0, 4.0, 4.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0, 4.0]])
    """
    check_inputs(inputs)
    scale, pattern = _draw(inputs, perturbation, samples, noise, region, baseline, seed)
    return (scale.unsqueeze(1) * pattern).expand(len(inputs), pattern.shape[1], *inputs.shape[1:])


def _draw(
    inputs: torch.Tensor,
    perturbation: PerturbationSpec,
    samples: int,
    noise: float,
    region: int,
    baseline: BaselineSpec,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The perturbations as ``I[n, k] = scale[n] ⊙ pattern[n, k]``.

    ``scale`` has shape ``(1 or N, ...)`` and ``pattern`` ``(1 or N, K, ...)``; a leading
    dimension of 1 is shared by all samples, and ``pattern``'s channel dimension may be 1.
    """
    features = inputs.shape[1:]
    if isinstance(perturbation, torch.Tensor):
        return torch.ones((1,) * inputs.ndim, dtype=inputs.dtype, device=inputs.device), _explicit(perturbation, inputs)
    if perturbation not in PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {perturbation!r}; use one of {', '.join(map(repr, PERTURBATIONS))} "
            "or a tensor of explicit perturbations"
        )
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be a positive int; got {samples!r}")
    draws = generator(seed, inputs.device)
    if perturbation == "gaussian":
        if not 0 < noise < float("inf"):
            raise ValueError(f"noise must be a positive standard deviation in input units; got {noise!r}")
        normal = torch.randn((1, samples, *features), generator=draws, device=inputs.device, dtype=inputs.dtype)
        return torch.full((1,) * inputs.ndim, noise, dtype=inputs.dtype, device=inputs.device), normal
    squares = _squares(inputs, samples, region, draws)
    return inputs - single_baseline(baseline, inputs, seed), squares


def _explicit(perturbation: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Explicit perturbations as ``(1 or N, K, ...)`` in the inputs' dtype and device."""
    features = inputs.shape[1:]
    if perturbation.ndim == inputs.ndim and perturbation.shape[1:] == features:
        perturbation = perturbation.unsqueeze(0)
    elif perturbation.ndim != inputs.ndim + 1 or len(perturbation) != len(inputs):
        perturbation = None
    if perturbation is None or perturbation.shape[2:] != features or perturbation.shape[1] < 1:
        shape = ", ".join(map(str, features))
        raise ValueError(
            f"explicit perturbations do not fit inputs of shape {tuple(inputs.shape)}; "
            f"give (K, {shape}) shared by all samples or ({len(inputs)}, K, {shape}) with K >= 1"
        )
    if not perturbation.is_floating_point() or not torch.isfinite(perturbation).all():
        raise ValueError("explicit perturbations must be a floating-point tensor of finite values")
    return perturbation.to(inputs.device, inputs.dtype)


def _squares(inputs: torch.Tensor, samples: int, region: int, draws: torch.Generator) -> torch.Tensor:
    """``samples`` masks ``(1, K, 1, H, W)``, each a ``region × region`` square at a uniform position."""
    if inputs.ndim != 4:
        raise ValueError(f"perturbation='square' needs images (N, C, H, W); got shape {tuple(inputs.shape)}")
    height, width = inputs.shape[2:]
    if not isinstance(region, int) or isinstance(region, bool) or not 1 <= region <= min(height, width):
        raise ValueError(
            f"region must be an int from 1 to the image's smaller side ({min(height, width)}); got {region!r}"
        )
    top = torch.randint(height - region + 1, (samples, 1, 1), generator=draws, device=inputs.device)
    left = torch.randint(width - region + 1, (samples, 1, 1), generator=draws, device=inputs.device)
    rows = torch.arange(height, device=inputs.device)[None, :, None]
    cols = torch.arange(width, device=inputs.device)[None, None, :]
    inside = (rows >= top) & (rows < top + region) & (cols >= left) & (cols < left + region)
    return inside.to(inputs.dtype)[None, :, None]


def _predicted_drops(phi: torch.Tensor, scale: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """``I[n, k]ᵀ Φ[n]`` for every sample and perturbation, ``(N, K)`` float64."""
    weighted = phi.to(torch.float64) * scale.to(torch.float64)
    if pattern.shape[2] == 1 and weighted.shape[1] > 1:  # one mask for all channels
        weighted = weighted.sum(dim=1, keepdim=True)
    return subset_sums(weighted.flatten(1), pattern.flatten(2))


def _fit_attributions(values: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The attributions at the inputs' shape; image maps ``(N, 1, H, W)`` or ``(N, H, W)`` repeat over channels."""
    if inputs.ndim == 4 and values.shape == (inputs.shape[0], *inputs.shape[2:]):
        values = values.unsqueeze(1)
    fits = values.shape == inputs.shape or inputs.ndim == 4 and values.shape == (len(inputs), 1, *inputs.shape[2:])
    if not fits:
        raise ValueError(
            f"attributions of shape {tuple(values.shape)} do not fit inputs of shape {tuple(inputs.shape)}; "
            "give one value per input element (images also take (N, 1, H, W) or (N, H, W) maps)"
        )
    if not torch.isfinite(values).all():
        raise ValueError("the attributions contain NaN or Inf values; infidelity is undefined for them")
    return values.expand_as(inputs)


def _check_flag(normalize: object) -> None:
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False; got {normalize!r}")
