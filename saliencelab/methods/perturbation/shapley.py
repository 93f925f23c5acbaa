"""Shapley value sampling by random permutations (Castro et al. 2009; Štrumbelj & Kononenko 2014).

The Shapley value of feature group g is its marginal contribution
``f(S ∪ {g}) − f(S)`` averaged over all orders in which the groups can be added
to the baseline, ``S`` being the groups before g. Each sampled permutation
walks from the baseline (no group kept) to the input (every group kept),
adding one group at a time, so it costs ``G − 1`` evaluations and its
marginals sum to ``f(x) − f(baseline)`` exactly: the estimate is efficient for
any number of permutations, and exact for any additive model. By default the
permutations come in antithetic pairs (each with its reverse; Mitchell et al.
2022), which cancels most of the variance that comes from a group's position.
"""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count
from saliencelab.methods.perturbation.base import PerturbationMethod
from saliencelab.methods.perturbation.coalitions import baseline_scores, score_coalitions
from saliencelab.methods.perturbation.masks import MaskSpec, feature_groups


def permutation_ranks(groups: int, samples: int, seed: int, antithetic: bool = True) -> torch.Tensor:
    """``ranks[p, g]``: the position at which permutation p adds group g, shape ``(samples, groups)``.

    With ``antithetic`` every second permutation reverses the one before it.

    Example
    -------
    >>> ranks = permutation_ranks(4, 2, seed=0)
    >>> (ranks[0] + ranks[1]).tolist()  # a permutation and its reverse
    [3, 3, 3, 3]
    """
    rng = generator(seed, torch.device("cpu"))
    orders = []
    while len(orders) < samples:
        order = torch.randperm(groups, generator=rng)
        orders.append(order)
        if antithetic and len(orders) < samples:
            orders.append(order.flip(0))
    return torch.stack(orders).argsort(dim=1)


@register
class ShapleySampling(PerturbationMethod):
    """Shapley values of feature groups, estimated from sampled permutations.

    Parameters
    ----------
    model:
        The model to explain.
    feature_mask:
        The feature groups (see :mod:`saliencelab.methods.perturbation.masks`):
        ``None`` (every element), group ids broadcastable to the inputs, a
        callable, ``"slic"`` or ``"grid"``. Each element gets its group's value.
    samples:
        Number of permutations (each costs ``G − 1`` model evaluations per sample).
    antithetic:
        Pair each permutation with its reverse (default True).
    seed:
        Seed of the permutations, shared by all samples with the same number of groups.
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    ``delta`` is the efficiency error ``|Σ_g φ_g − (f(x) − f(baseline))|`` with
    each group counted once (rounding only). ``info["groups"]`` holds each
    sample's number of groups and ``info["group_values"]`` its values φ_g.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = lambda x: (x[:, 0] * x[:, 1] + x[:, 2])[:, None]  # an interaction and an additive term
    >>> a = sl.ShapleySampling(model, samples=2)(torch.tensor([[2.0, 3.0, 5.0]]))
    >>> a.values.tolist(), a.delta.tolist()  # two features: a permutation and its reverse are exact
    ([[3.0, 3.0, 5.0]], [0.0])
    """

    structured_inputs = True
    layer_attribution = True
    integer_inputs = True

    name = "shapley_sampling"
    description = "Shapley value sampling: marginal contributions averaged over sampled (antithetic) permutations"
    source = "Castro et al. 2009; Strumbelj & Kononenko 2014"
    quick_options = {"samples": 2, "feature_mask": "grid"}

    def __init__(
        self,
        model: Any,
        *,
        feature_mask: MaskSpec = None,
        samples: int = 25,
        antithetic: bool = True,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.samples = check_count(samples, "samples")
        if not isinstance(antithetic, bool):
            raise TypeError(f"antithetic must be True or False; got {antithetic!r}")
        self.feature_mask = feature_mask
        self.antithetic = antithetic

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        groups = feature_groups(self.feature_mask, inputs)
        reference = self.one_baseline(baseline, inputs)
        f_x, target = self.clean(inputs, target)
        f_b = baseline_scores(self, inputs, reference, target)
        ranks = {g: permutation_ranks(g, self.samples, self.seed, self.antithetic) for g in set(groups.counts)}

        def choose(g: int, local: torch.Tensor) -> torch.Tensor:
            permutation, step = local // (g - 1), local % (g - 1) + 1
            return ranks[g][permutation] < step[:, None]

        per_sample = [self.samples * (g - 1) for g in groups.counts]
        scores, table = score_coalitions(self, inputs, reference, groups, target, per_sample, choose, "permutations")
        group_values = []
        for i, g in enumerate(groups.counts):
            chain = torch.empty((self.samples, g + 1), dtype=torch.float64, device=inputs.device)
            chain[:, 0], chain[:, g] = f_b[i], f_x[i]
            chain[:, 1:g] = table.block(scores, i).reshape(self.samples, g - 1)
            marginals = chain[:, 1:] - chain[:, :-1]  # marginals[p, k]: the group added at step k
            group_values.append(marginals.gather(1, ranks[g].to(inputs.device)).mean(dim=0))
        values = groups.spread(group_values, tuple(inputs.shape[1:]))
        totals = torch.stack([v.sum() for v in group_values])
        delta = (totals - (f_x - f_b)).abs()
        info = {"groups": torch.tensor(groups.counts), "group_values": group_values, "baseline_scores": f_b}
        return Attribution(values.to(inputs.dtype), delta.to(inputs.dtype), self.name, target.public(), info)
