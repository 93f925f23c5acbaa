"""SmoothGrad and its variants: any method averaged over noisy copies of the input.

SmoothGrad (Smilkov et al. 2017) adds Gaussian noise with
σ = ``noise`` · (max(x) − min(x)) of each sample and averages a base method's
attributions over ``samples`` noisy copies. ``variant="squared"`` averages the
squares (SmoothGrad², Hooker et al. 2019) and ``variant="var"`` takes their
variance (VarGrad, Adebayo et al. 2018).
"""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core import registry
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, References, resolve_baseline
from saliencelab.core.registry import register
from saliencelab.core.sampling import noise_scale, normal_draws
from saliencelab.core.structure import rows_of
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count, check_seed
from saliencelab.methods.base import Method

VARIANTS = ("mean", "squared", "var")
ROW_COPIES = 12
"""Tensors of an input row's size that SmoothGrad holds per noisy copy on top of the model's
activations: the noise, the sample, the noisy copy, the base method's result and its float64 sum
and square (two each), and working space."""


@register
class SmoothGrad(Method):
    """Average a base method over noisy copies of each input.

    Parameters
    ----------
    model:
        The model to explain.
    base:
        Name of the method to smooth (default ``"gradient"``); its own options
        can be given as extra keywords, e.g. ``steps=16`` for
        ``base="integrated_gradients"``.
    samples:
        Number of noisy copies (Smilkov et al. 2017 find little change beyond 50).
    noise:
        σ as a fraction of each sample's value range (Smilkov et al. 2017 recommend 10-20 %).
    variant:
        ``"mean"`` (SmoothGrad), ``"squared"`` (SmoothGrad²) or ``"var"`` (VarGrad).
    seed:
        Seed of the noise. One noise pattern per copy is shared by the whole
        batch, scaled to each sample's range, so results do not depend on the
        rest of the batch. Each copy's noise comes from its own generator and is
        drawn with the chunk that uses it, never all at once.
    memory_budget:
        Bytes for activations, gradients and the noisy copies; copies run in
        chunks under it, and a budget smaller than one copy's working space is refused.

    The target is resolved on the clean inputs (``None``: their argmax class);
    a baseline is resolved on the clean inputs and shared by the noisy copies.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 2)
    >>> a = sl.SmoothGrad(model, samples=8)(torch.randn(4, 3), target=1)
    >>> torch.allclose(a.values, model.weight[1].detach().expand(4, 3))
    True
    """

    layer_attribution = True

    name = "smoothgrad"
    description = "SmoothGrad: a method averaged over noisy copies of the input (also SmoothGrad², VarGrad)"
    source = "Smilkov et al. 2017"
    quick_options = {"samples": 3}

    def __init__(
        self,
        model: Any,
        *,
        base: str = "gradient",
        samples: int = 50,
        noise: float = 0.15,
        variant: str = "mean",
        seed: int = 0,
        memory_budget: int | None = None,
        **base_options: Any,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        base_class = registry.get(base)
        if base_class is SmoothGrad:
            raise ValueError("smoothgrad cannot smooth itself; choose another base method")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        noise_scale(torch.zeros(1, 1), noise)
        registry.check_options(base_class, base_options)
        self.base = base_class(model, memory_budget=memory_budget, **base_options)
        self.structured_inputs = self.base.structured_inputs  # several inputs when the base method takes them
        self.takes_baseline = self.base.takes_baseline
        self.samples = check_count(samples, "samples")
        self.noise = noise
        self.variant = variant
        self.seed = check_seed(seed)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        n, copies = inputs.shape[0], self.samples
        if target.argmax:  # the class is read off the clean inputs; other targets are checked by the base
            _, target = self.scores(inputs, target)
        sigma = self.noise_scale(inputs, self.noise)
        baseline_rows = self._baseline_rows(baseline, inputs)
        total = torch.zeros(inputs.shape, dtype=torch.float64, device=inputs.device)
        total_sq = torch.zeros_like(total) if self.variant != "mean" else None

        base = self.inner(self.base)

        def run(rows: slice) -> None:
            row = torch.arange(rows.start, rows.stop)
            which_copy, sample = row // n, row % n  # copy by copy: each chunk draws its copies' noise once
            drawn, which = torch.unique(which_copy, return_inverse=True)
            eps = normal_draws(self.seed, drawn, tuple(inputs.shape[1:]), inputs.device, inputs.dtype)
            noisy = inputs[sample] + sigma[sample] * eps[which]
            with rows_of(sample):  # the base method's rows are noisy copies of these samples
                values = base._attribute(noisy, target.rows(sample), baseline_rows(sample)).values
            values = values.to(torch.float64)
            total.index_add_(0, sample.to(total.device), values)
            if total_sq is not None:
                total_sq.index_add_(0, sample.to(total.device), values * values)

        self.run_chunked(inputs, run, n * copies, own=ROW_COPIES)
        mean = total / copies
        if self.variant == "mean":
            result = mean
        elif self.variant == "squared":
            result = total_sq / copies
        else:
            result = (total_sq / copies - mean * mean).clamp(min=0)
        return Attribution(result.to(inputs.dtype), None, self.name, target.public(), {"base": self.base.name})

    def _baseline_rows(self, baseline: BaselineSpec, inputs: torch.Tensor):
        """The base method's baseline for rows that repeat samples, resolved on the clean inputs."""
        passed_as_is = baseline is None or isinstance(baseline, References)
        if not self.base.takes_baseline or passed_as_is or self.base.draws_references:
            return lambda sample: baseline
        refs = resolve_baseline(baseline, inputs, seed=getattr(self.base, "seed", 0))
        if refs.tensor.shape[0] == 1:
            shared = References(refs.tensor[0]) if refs.k > 1 else refs.tensor[0, 0]
            return lambda sample: shared
        return lambda sample: refs.tensor[sample, 0]
