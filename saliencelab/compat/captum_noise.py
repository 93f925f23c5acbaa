"""Captum's ``NoiseTunnel`` over the adapters (see :mod:`saliencelab.compat.captum`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from saliencelab.compat.captum_adapter import Adapter, map_values, refuse
from saliencelab.compat.captum_args import as_parts, drawn_seed, forward_args, shaped
from saliencelab.core.sampling import generator


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

    def __init__(self, attribution_method: Adapter) -> None:
        if not isinstance(attribution_method, Adapter):
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
            refuse("draw_baseline_from_distrib=True", "use GradientShap, which draws baselines from a batch")
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
        combined = map_values(values, lambda v: _combine(v.reshape(nt_samples, n, *v.shape[1:]), nt_type))
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


def _repeated(kwargs: dict, n: int, copies: int, method: Adapter) -> dict:
    """The wrapped method's per-sample arguments repeated for the noisy copies (rows ``copy · N + sample``).

    Captum's rules: every tensor forward argument, a list target or a tensor target
    of several entries, a baseline tensor with one row per sample and a feature mask
    with several rows are repeated; a batch of baselines to draw from is not.
    """
    out = dict(kwargs)
    extra = forward_args(out.get("additional_forward_args"))
    if extra is not None:
        out["additional_forward_args"] = tuple(
            _copies(value, copies) if isinstance(value, torch.Tensor) and value.ndim else value for value in extra
        )
    target = out.get("target")
    if isinstance(target, list):
        out["target"] = target * copies
    elif isinstance(target, torch.Tensor) and target.numel() > 1:
        out["target"] = _copies(target, copies)
    if out.get("baselines") is not None and not method.distribution_baselines:
        out["baselines"] = _each(out["baselines"], lambda b: b.shape[0] == n > 1, copies)
    if out.get("feature_mask") is not None:
        out["feature_mask"] = _each(out["feature_mask"], lambda mask: mask.shape[0] > 1, copies)
    return out


def _copies(tensor: torch.Tensor, copies: int) -> torch.Tensor:
    return tensor.repeat(copies, *([1] * (tensor.ndim - 1)))


def _each(value: Any, per_sample: Callable[[torch.Tensor], bool], copies: int) -> Any:
    """``value`` (one entry or a tuple of them) with the per-sample tensors among them repeated."""
    if isinstance(value, tuple):
        return tuple(_each(entry, per_sample, copies) for entry in value)
    if isinstance(value, torch.Tensor) and value.ndim and per_sample(value):
        return _copies(value, copies)
    return value
