"""LIME: a weighted linear surrogate fitted around the input (Ribeiro et al. 2016).

Coalitions ``z ∈ {0,1}^G`` of feature groups are drawn (each group kept with
probability ``keep``; the first coalition is the input itself), the model is
scored on the inputs with the dropped groups at the baseline, and a linear
model from scikit-learn is fitted to those scores with sample weights
``exp(−d(z, 1)² / kernel_width²)``, ``d`` the cosine distance between the
coalition and the all-kept one (LIME's image explainer). Each group's
coefficient is its attribution.
"""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator, global_rng_untouched
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count
from saliencelab.methods.perturbation.base import PerturbationMethod, check_fraction
from saliencelab.methods.perturbation.coalitions import score_coalitions
from saliencelab.methods.perturbation.masks import MaskSpec, feature_groups


def lime_coalitions(groups: int, samples: int, keep: float, seed: int) -> torch.Tensor:
    """``samples`` coalitions ``(samples, G)``; the first keeps every group.

    Example
    -------
    >>> z = lime_coalitions(5, 4, keep=0.5, seed=0)
    >>> z.shape, z[0].all().item()
    (torch.Size([4, 5]), True)
    """
    rng = generator(seed, torch.device("cpu"))
    z = torch.rand((samples, groups), generator=rng, dtype=torch.float64) < keep
    z[0] = True
    return z


def cosine_kernel(z: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """``exp(−d² / width²)`` with ``d`` the cosine distance of each coalition to the all-kept one.

    A coalition with no group kept is at distance 1.

    Example
    -------
    >>> w = cosine_kernel(torch.tensor([[True, True], [True, False]]), 0.25)
    >>> round(float(w[0]), 6), round(float(w[1]), 4)
    (1.0, 0.2535)
    """
    kept = z.to(torch.float64).sum(dim=1)
    distance = 1 - (kept / z.shape[1]).sqrt()
    return torch.exp(-(distance**2) / kernel_width**2)


@register
class Lime(PerturbationMethod):
    """LIME with a weighted linear surrogate over feature groups.

    Parameters
    ----------
    model:
        The model to explain.
    feature_mask:
        The feature groups (interpretable features): ``None`` (every element),
        group ids broadcastable to the inputs, a callable, ``"slic"`` or ``"grid"``.
    samples:
        Coalitions per sample (LIME's default 1000).
    keep:
        Probability that a coalition keeps each group (default 0.5).
    kernel_width:
        Width of the exponential kernel on the cosine distance (LIME's 0.25).
    alpha:
        L2 penalty of the default surrogate, ``sklearn.linear_model.Ridge(alpha)``
        (LIME's default surrogate with its alpha = 1).
    surrogate:
        Any scikit-learn regressor with ``fit(X, y, sample_weight=...)`` and
        ``coef_`` to use instead; it is cloned for every sample.
    seed:
        Seed of the coalitions, shared by samples with the same number of groups.
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    ``delta`` is None (the surrogate need not be efficient); ``info["intercept"]``
    holds each sample's surrogate intercept and ``info["score"]`` its weighted R².

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(4, 1)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[4.0, -1.0, 2.0, 0.5]]))
    >>> a = sl.Lime(model, samples=200, alpha=1e-6)(torch.ones(1, 4))
    >>> a.values.round(decimals=3).tolist()
    [[4.0, -1.0, 2.0, 0.5]]
    """

    structured_inputs = True
    integer_inputs = True

    name = "lime"
    description = "LIME: a locally weighted linear surrogate over interpretable feature groups"
    source = "Ribeiro et al. 2016"
    quick_options = {"samples": 40, "feature_mask": "grid"}

    def __init__(
        self,
        model: Any,
        *,
        feature_mask: MaskSpec = None,
        samples: int = 1000,
        keep: float = 0.5,
        kernel_width: float = 0.25,
        alpha: float = 1.0,
        surrogate: Any = None,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.samples = check_count(samples, "samples", least=2)
        self.keep = check_fraction(keep, "keep")
        if not isinstance(kernel_width, (int, float)) or isinstance(kernel_width, bool) or not kernel_width > 0:
            raise ValueError(f"kernel_width must be a positive number; got {kernel_width!r}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number; got {alpha!r}")
        if surrogate is not None and not (hasattr(surrogate, "fit") and hasattr(surrogate, "get_params")):
            raise TypeError(f"surrogate must be a scikit-learn regressor; got {type(surrogate).__name__}")
        self.feature_mask = feature_mask
        self.kernel_width = float(kernel_width)
        self.alpha = float(alpha)
        self.surrogate = surrogate

    def _fit(self, z: torch.Tensor, scores: torch.Tensor, weights: torch.Tensor) -> tuple:
        x, y, w = z.double().numpy(), scores.numpy(), weights.numpy()
        with global_rng_untouched():  # importing scikit-learn draws from Python's random (via rich)
            from sklearn.base import clone
            from sklearn.linear_model import Ridge

            model = Ridge(alpha=self.alpha) if self.surrogate is None else clone(self.surrogate)
            model.fit(x, y, sample_weight=w)
        if not hasattr(model, "coef_"):
            raise TypeError(f"the surrogate {type(model).__name__} has no coef_ after fitting; use a linear model")
        coef = torch.as_tensor(model.coef_, dtype=torch.float64).reshape(-1)
        return coef, float(getattr(model, "intercept_", 0.0)), float(model.score(x, y, sample_weight=w))

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        groups = feature_groups(self.feature_mask, inputs)
        designs = {g: lime_coalitions(g, self.samples, self.keep, self.seed) for g in set(groups.counts)}
        reference = self.one_baseline(baseline, inputs)
        _, target = self.clean(inputs, target)

        def choose(g: int, local: torch.Tensor) -> torch.Tensor:
            return designs[g][local.cpu()]

        per_sample = [self.samples] * inputs.shape[0]
        scores, table = score_coalitions(self, inputs, reference, groups, target, per_sample, choose)
        group_values, intercepts, fits = [], [], []
        for i, g in enumerate(groups.counts):
            z = designs[g]
            coef, intercept, fit = self._fit(z, table.block(scores, i).cpu(), cosine_kernel(z, self.kernel_width))
            group_values.append(coef.to(inputs.device))
            intercepts.append(intercept)
            fits.append(fit)
        values = groups.spread(group_values, tuple(inputs.shape[1:]))
        info = {
            "groups": torch.tensor(groups.counts),
            "group_values": group_values,
            "intercept": torch.tensor(intercepts, dtype=torch.float64),
            "score": torch.tensor(fits, dtype=torch.float64),
        }
        return Attribution(values.to(inputs.dtype), None, self.name, target.public(), info)
