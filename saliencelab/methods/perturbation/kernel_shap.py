"""KernelSHAP: Shapley values as the solution of a weighted regression (Lundberg & Lee 2017).

The Shapley values of G feature groups are the coefficients of the linear
model ``v(z) ≈ f(baseline) + Σ_g z_g φ_g`` over coalitions ``z ∈ {0,1}^G``
weighted by the Shapley kernel ``π(z) = (G − 1) / (C(G, |z|) |z| (G − |z|))``,
under the efficiency constraint ``Σ_g φ_g = f(x) − f(baseline)``. As in the
reference implementation, coalition sizes whose subsets the budget of
``samples`` can enumerate completely are enumerated (the G single groups
always, then sizes G − 1, 2, G − 2, ...: they carry the most kernel weight);
the rest are drawn with probability proportional to their kernel weight, each
with its complement (paired sampling, Covert & Lee 2021). The constraint is
imposed exactly by eliminating one coefficient, so the values are efficient up
to rounding, and exact for any additive model from ``samples >= G − 1`` on:
the single-group coalitions determine every value.
"""

from __future__ import annotations

import itertools
import math
import warnings
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

MAX_GROUPS = 4096
"""The most feature groups KernelSHAP takes (its normal equations have (G − 1)² entries)."""


def size_weights(groups: int) -> torch.Tensor:
    """Kernel mass of each coalition size ``s = 1..G−1``: ``(G − 1) / (s (G − s))``.

    Example
    -------
    >>> size_weights(4).tolist()
    [1.0, 0.75, 1.0]
    """
    s = torch.arange(1, groups, dtype=torch.float64)
    return (groups - 1) / (s * (groups - s))


def kernel_coalitions(groups: int, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``samples`` coalitions ``(samples, G)`` (True: the group is kept) and their regression weights.

    The G single-group coalitions come first (the largest kernel weight; they
    make the regression determine every value, so an additive model is
    recovered exactly from ``samples >= G``; with ``samples = G − 1`` the first
    G − 1 of them alone). Then, as in the reference implementation, the sizes
    ``G − 1``, ``2`` and ``G − 2``, ... are enumerated while the budget covers
    them in proportion to their kernel mass, and the rest is drawn with
    probability proportional to the kernel mass of each size, every draw paired
    with its complement when that size is drawn too. Enumerated coalitions
    weigh their kernel weight; drawn ones share the mass of the sizes drawn.

    Example
    -------
    >>> z, w = kernel_coalitions(3, 6, seed=0)  # 6 = 2**3 - 2: every coalition, exactly weighted
    >>> sorted(z.sum(1).tolist()), w.unique().tolist()  # the Shapley kernel (G-1)/(C(G,s) s (G-s)) = 1/3
    ([1, 1, 1, 2, 2, 2], [0.3333333333333333])
    """
    mass = size_weights(groups)  # mass[s - 1]
    rows: list[torch.Tensor] = []
    weights: list[float] = []
    remaining = set(range(1, groups))

    def enumerate_size(size: int, limit: int | None = None) -> None:
        for members in itertools.islice(itertools.combinations(range(groups), size), limit):
            z = torch.zeros(groups, dtype=torch.bool)
            z[list(members)] = True
            rows.append(z)
            weights.append(float(mass[size - 1]) / math.comb(groups, size))
        remaining.discard(size)

    enumerate_size(1, min(groups, samples))
    budget = samples - len(rows)
    for size in range(1, groups // 2 + 1):
        sizes = {size, groups - size} & remaining
        if not sizes:
            continue
        subsets = sum(math.comb(groups, s) for s in sizes)
        share = sum(float(mass[s - 1]) for s in sizes) / sum(float(mass[s - 1]) for s in remaining)
        if subsets > budget or budget * share < subsets:
            break
        for s in sorted(sizes):
            enumerate_size(s)
        budget -= subsets
    if budget > 0 and remaining:
        rng = generator(seed, torch.device("cpu"))
        left = torch.tensor(sorted(remaining))
        probabilities = mass[left - 1]
        sizes = left[torch.multinomial(probabilities, budget, replacement=True, generator=rng)]
        order = torch.rand((budget, groups), generator=rng, dtype=torch.float32).argsort(dim=1)  # not the default dtype
        drawn = order < sizes[:, None]  # a uniform subset of each drawn size
        paired = torch.tensor([groups - int(s) in remaining for s in sizes])
        coalitions = torch.stack([drawn, ~drawn], dim=1)[:, :, None]  # (budget, 2, 1, G)
        chosen = torch.cat([coalitions[i, : 2 if paired[i] else 1, 0] for i in range(budget)])[:budget]
        each = float(probabilities.sum()) / budget
        rows.extend(chosen)
        weights.extend([each] * budget)
    return torch.stack(rows), torch.tensor(weights, dtype=torch.float64)


def solve_efficient(z: torch.Tensor, weights: torch.Tensor, gains: torch.Tensor, total: float) -> tuple:
    """Weighted least squares for ``gains ≈ z φ`` subject to ``Σ φ = total``; returns ``(φ, rank)``.

    ``gains`` are ``f(z) − f(baseline)``; the last coefficient is eliminated and
    the normal equations, ``(G − 1) × (G − 1)``, are solved by an eigendecomposition
    (``rank``: the eigenvalues above 1e-10 of the largest; the minimum-norm
    solution when the coalitions leave some values undetermined).

    Example
    -------
    >>> z = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=torch.float64)
    >>> phi, rank = solve_efficient(z, torch.ones(3, dtype=torch.float64), z @ torch.tensor([1.0, 2, 3]).double(), 6.0)
    >>> phi.round(decimals=9).tolist(), rank
    ([1.0, 2.0, 3.0], 2)
    """
    design = z[:, :-1] - z[:, -1:]
    response = gains - z[:, -1] * total
    weighted = design * weights[:, None]
    normal = design.T @ weighted  # (G-1, G-1): small, whatever the number of coalitions
    eigenvalues, vectors = torch.linalg.eigh(normal)
    keep = eigenvalues > eigenvalues.max().clamp(min=0) * 1e-10
    projected = vectors[:, keep].T @ (weighted.T @ response)
    solution = vectors[:, keep] @ (projected / eigenvalues[keep])  # the minimum-norm least-squares solution
    return torch.cat([solution, (total - solution.sum())[None]]), int(keep.sum())


@register
class KernelShap(PerturbationMethod):
    """KernelSHAP: Shapley values of feature groups by Shapley-kernel weighted regression.

    Parameters
    ----------
    model:
        The model to explain.
    feature_mask:
        The feature groups: ``None`` (every element), group ids broadcastable
        to the inputs, a callable, ``"slic"`` or ``"grid"``.
    samples:
        Coalitions per sample, at least G − 1 (fewer cannot determine G values).
        Default ``None``: ``2 G + 2048`` (the reference implementation's), at
        most the ``2^G − 2`` coalitions there are (then the values are exact).
    seed:
        Seed of the sampled coalitions, shared by samples with the same number of groups.
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    ``delta`` is the efficiency error over the groups (rounding only); a warning
    says when the coalitions drawn leave some values undetermined.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(4, 1)  # additive: φ_i = w_i (x_i − 0)
    >>> x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    >>> a = sl.KernelShap(model, samples=6, seed=1)(x)
    >>> torch.allclose(a.values, model.weight.detach() * x, atol=1e-6)
    True
    """

    structured_inputs = True
    integer_inputs = True

    name = "kernel_shap"
    description = "KernelSHAP: Shapley values from a Shapley-kernel weighted linear regression on coalitions"
    source = "Lundberg & Lee 2017"
    quick_options = {"samples": 70, "feature_mask": "grid"}

    def __init__(
        self,
        model: Any,
        *,
        feature_mask: MaskSpec = None,
        samples: int | None = None,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.samples = None if samples is None else check_count(samples, "samples")
        self.feature_mask = feature_mask

    def coalitions(self, groups: int) -> int:
        """How many coalitions to evaluate for a sample with ``groups`` groups."""
        if groups > MAX_GROUPS:
            raise ValueError(
                f"kernel_shap solves a (G - 1) x (G - 1) system for G = {groups} feature groups, more than "
                f"{MAX_GROUPS}; pass a feature_mask with fewer groups (e.g. feature_mask='slic' or 'grid' for images)"
            )
        possible = 2**groups - 2 if groups < 62 else 2**62
        if self.samples is None:
            return min(2 * groups + 2048, possible)
        if groups > 1 and self.samples < groups - 1:
            raise ValueError(
                f"kernel_shap needs samples >= G - 1 = {groups - 1} coalitions to determine the values of "
                f"G = {groups} feature groups; got samples={self.samples}. Raise samples, or pass a feature_mask "
                "with fewer groups (e.g. feature_mask='slic' or 'grid' for images)"
            )
        return min(self.samples, possible)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        groups = feature_groups(self.feature_mask, inputs)
        designs = {g: kernel_coalitions(g, self.coalitions(g), self.seed) for g in sorted(set(groups.counts)) if g > 1}
        reference = self.one_baseline(baseline, inputs)
        f_x, target = self.clean(inputs, target)
        f_b = baseline_scores(self, inputs, reference, target)

        def choose(g: int, local: torch.Tensor) -> torch.Tensor:
            return designs[g][0][local.cpu()]

        per_sample = [len(designs[g][0]) if g > 1 else 0 for g in groups.counts]
        scores, table = score_coalitions(self, inputs, reference, groups, target, per_sample, choose)
        group_values, short = [], []
        for i, g in enumerate(groups.counts):
            total = f_x[i] - f_b[i]
            if g == 1:
                group_values.append(total[None])
                continue
            z, weights = designs[g]
            gains = table.block(scores, i).cpu() - f_b[i].cpu()
            phi, rank = solve_efficient(z.to(torch.float64), weights, gains, float(total))
            if rank < g - 1:
                short.append(i)
            group_values.append(phi.to(inputs.device))
        if short:
            warnings.warn(
                f"kernel_shap: the coalitions drawn do not determine every group's value for samples {short} "
                "(the regression is rank-deficient; the minimum-norm solution is returned); raise samples",
                stacklevel=3,
            )
        values = groups.spread(group_values, tuple(inputs.shape[1:]))
        delta = (torch.stack([v.sum() for v in group_values]) - (f_x - f_b)).abs()
        info = {"groups": torch.tensor(groups.counts), "group_values": group_values, "baseline_scores": f_b}
        return Attribution(values.to(inputs.dtype), delta.to(inputs.dtype), self.name, target.public(), info)
