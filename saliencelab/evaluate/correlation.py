"""Sensitivity-n and faithfulness correlation: do attributions of random feature subsets predict the output drop?

Both measures take K subsets ``S`` of the features, replace each subset by a
baseline, and correlate (Pearson, across the K subsets, per sample) the summed
attribution ``Σ_{i∈S} R_i`` with the output drop ``f(x) − f(x_{S=baseline})``:

- :func:`sensitivity_n` (Ancona et al. 2018) does this for several subset sizes
  ``n`` and returns one correlation per sample and size (a curve over ``n``);
- :func:`faithfulness_correlation` (Bhatt, Weller & Moura 2020) is the same at a
  single subset size ``|S|``;
- :func:`subset_correlation` is the shared core on subsets given explicitly.

Features are pixels with all their channels together (an image's attribution is
reduced over channels by ``aggregate``, as in :func:`~saliencelab.evaluate.deletion`),
square patches (``region``), groups of pixels (``feature_mask``), or the columns of
tabular inputs ``(N, D)``. The random subsets are drawn once from ``seed`` and
shared by every sample, so a sample's result depends only on that sample and the
seed. Every perturbed input of every sample is scored in one batched, chunked
evaluation under ``memory_budget``; the correlations are computed in float64.

A correlation is NaN where it is undefined: when the attribution sums or the
output drops do not vary across the subsets (a constant attribution at a fixed
subset size, or a model that ignores the features).

The population value of the correlation over uniformly drawn subsets of any size
``0 < n < U`` is the Pearson correlation, across the U features, of the
attributions with the features' true additive effects (when the model is additive):
``cov(Σ_S a, Σ_S b) = n(U − n)/(U(U − 1)) · Σ_i (a_i − ā)(b_i − b̄)``.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(6, 1)  # additive: gradient × input is exact for a zero baseline
>>> x = torch.randn(2, 6)
>>> exact = model.weight.detach() * x
>>> sensitivity_n(model, x, exact, sizes=[1, 3, 5]).correlation.round(decimals=6).tolist()
[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import Target, TargetSpec
from saliencelab.evaluate.faithfulness import (
    AttributionSpec,
    MethodSpec,
    Scorer,
    patch_index,
    prepare,
    resolve_attributions,
    score_rows,
    single_baseline,
)
from saliencelab.methods.base import check_inputs

__all__ = ["SensitivityN", "faithfulness_correlation", "sensitivity_n", "subset_correlation"]

DEFAULT_SAMPLES = 100
"""Random subsets per size when ``samples`` is not given."""

DEFAULT_SIZES = 10
"""Subset sizes of :func:`sensitivity_n` when ``sizes=None``: log-spaced from 1 to 80 % of the features."""

SUM_BLOCK = 1 << 24
"""Boolean subset entries widened to float at a time when summing attributions over subsets."""

CONSTANT = 1e-12
"""A vector whose spread is at most this fraction of its largest magnitude counts as constant."""


@dataclass(frozen=True)
class SensitivityN:
    """Sensitivity-n correlations, one row per sample and one column per subset size.

    Attributes
    ----------
    correlation:
        ``(N, S)`` float64 Pearson correlations; NaN where undefined.
    sizes:
        ``(S,)`` the subset sizes ``n``, in features (pixels, patches, groups or columns).

    Example
    -------
    >>> result = SensitivityN(torch.tensor([[1.0, 0.5], [0.0, 0.5]], dtype=torch.float64), torch.tensor([1, 4]))
    >>> result.curve.tolist()
    [0.5, 0.5]
    """

    correlation: torch.Tensor
    sizes: torch.Tensor

    @property
    def curve(self) -> torch.Tensor:
        """The mean correlation over samples at each size, ``(S,)``, leaving out undefined (NaN) values."""
        return self.correlation.nanmean(dim=0)


def sensitivity_n(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    sizes: Sequence[int] | None = None,
    samples: int = DEFAULT_SAMPLES,
    region: int = 1,
    feature_mask: torch.Tensor | None = None,
    baseline: BaselineSpec = "zeros",
    score: str = "logit",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> SensitivityN:
    """Sensitivity-n (Ancona et al. 2018): ``corr_S(Σ_{i∈S} R_i, f(x) − f(x_{S=baseline}))`` for each size ``|S| = n``.

    An attribution is sensitivity-n if its sum over any n features equals the
    output drop when those features are removed; the correlation measures how
    close it comes, for each n.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable; left exactly as it was.
    inputs:
        Images ``(N, C, H, W)`` or tabular rows ``(N, D)``.
    attributions:
        For images a tensor ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; for
        tabular inputs ``(N, D)``; or an :class:`~saliencelab.Attribution` (whose
        resolved target is used when ``target`` is None). Give either this or ``method``.
    method, method_options:
        Instead of ``attributions``: a method name from
        :func:`saliencelab.available_methods` with its options, or a callable
        ``(model, inputs, target) -> tensor``; it explains the resolved target.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or None (argmax class).
    sizes:
        The subset sizes n, each from 1 to ``U − 1`` for U features. None: up to
        10 sizes log-spaced from 1 to 80 % of the features (:func:`default_sizes`).
    samples:
        K, the random subsets drawn for each size. They are held as one boolean
        ``(S, K, U)`` tensor.
    region:
        Images only: the features are non-overlapping ``region × region`` patches
        (smaller at the right and bottom edges).
    feature_mask:
        Integer labels grouping pixels (``(H, W)``) or columns (``(D,)``) into
        features: each distinct label is one feature. Shared by all samples.
    baseline:
        What replaces the removed features: ``"zeros"`` (Ancona et al.), a preset,
        a number or a tensor broadcastable to the inputs, as in :func:`~saliencelab.evaluate.deletion`.
    score:
        ``"logit"`` (the raw output) or ``"probability"`` (softmax over the classes).
    aggregate:
        How an image attribution's channels are reduced to one value per pixel
        (:func:`~saliencelab.core.aggregate.aggregate_channels`); signed ``"sum"`` by default.
    seed:
        Seed of the subsets (and of a ``"uniform"`` baseline).
    memory_budget:
        Bytes for one chunk of perturbed rows (default 1 GiB).
    progress:
        Show a progress bar (None: on a terminal for long runs).

    Returns
    -------
    SensitivityN
        ``.correlation`` ``(N, S)``, ``.sizes`` ``(S,)`` and ``.curve`` ``(S,)``, the mean over samples.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Linear(5, 1, bias=False)
    >>> x = torch.randn(3, 5)
    >>> reversed_attribution = -model.weight.detach() * x
    >>> result = sensitivity_n(model, x, reversed_attribution, sizes=[2, 4], samples=20)
    >>> result.sizes.tolist(), result.curve.round(decimals=6).tolist()
    ([2, 4], [-1.0, -1.0])
    """
    units, count = feature_units(inputs, region, feature_mask)
    chosen = default_sizes(count) if sizes is None else _check_sizes(sizes, count)
    subsets = random_subsets(chosen, samples, count, seed, inputs.device)
    correlation = _correlate(
        model, inputs, attributions, method, method_options, target, units, subsets[None], baseline, score,
        aggregate, seed, memory_budget, progress, "sensitivity_n",
    )  # fmt: skip
    return SensitivityN(correlation, chosen)


def faithfulness_correlation(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    subset_size: int | None = None,
    samples: int = DEFAULT_SAMPLES,
    region: int = 1,
    feature_mask: torch.Tensor | None = None,
    baseline: BaselineSpec = "zeros",
    score: str = "logit",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Faithfulness correlation (Bhatt, Weller & Moura 2020): :func:`sensitivity_n` at the one size ``|S|``.

    ``corr_S(Σ_{i∈S} R_i, f(x) − f(x_{S=baseline}))`` over ``samples`` random
    subsets of ``subset_size`` features. Higher is better: 1 means the attribution
    sums move exactly with the output drops (up to scale and offset).

    Parameters
    ----------
    subset_size:
        ``|S|``, from 1 to ``U − 1`` for U features. None: 10 % of the features (at least 1).

    Other parameters as in :func:`sensitivity_n`.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64 correlations; NaN where undefined.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    >>> x = torch.randn(2, 1, 4, 4)
    >>> exact = model[1].weight.detach().view(1, 1, 4, 4) * x
    >>> faithfulness_correlation(model, x, exact, subset_size=4).round(decimals=6).tolist()
    [1.0, 1.0]
    """
    if subset_size is None:
        _, count = feature_units(inputs, region, feature_mask)
        subset_size = max(1, count // 10)
    result = sensitivity_n(
        model, inputs, attributions, method=method, method_options=method_options, target=target,
        sizes=[subset_size], samples=samples, region=region, feature_mask=feature_mask, baseline=baseline,
        score=score, aggregate=aggregate, seed=seed, memory_budget=memory_budget, progress=progress,
    )  # fmt: skip
    return result.correlation[:, 0]


def subset_correlation(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    subsets: torch.Tensor,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    region: int = 1,
    feature_mask: torch.Tensor | None = None,
    baseline: BaselineSpec = "zeros",
    score: str = "logit",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """The correlation of :func:`sensitivity_n` over subsets given explicitly, per sample.

    Use it to score explanations on identical subsets chosen elsewhere, or to
    enumerate every subset of a small feature set.

    Parameters
    ----------
    subsets:
        Boolean ``(K, U)`` (shared by all samples) or ``(N, K, U)``: row ``k`` marks
        the features of subset ``k``, for U features as defined by ``region`` and
        ``feature_mask``. Subsets may have different sizes.

    Other parameters as in :func:`sensitivity_n`; ``seed`` only seeds a ``"uniform"`` baseline.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64 correlations over the K subsets; NaN where undefined.

    Example
    -------
    >>> import itertools, torch
    >>> model = torch.nn.Linear(4, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> pairs = torch.tensor([[i in pair for i in range(4)] for pair in itertools.combinations(range(4), 2)])
    >>> x = torch.ones(1, 4)
    >>> subset_correlation(model, x, torch.tensor([[1.0, 1.0, 1.0, 4.0]]), subsets=pairs).round(decimals=12).tolist()
    [0.774596669241]
    """
    units, count = feature_units(inputs, region, feature_mask)
    if not isinstance(subsets, torch.Tensor) or subsets.dtype != torch.bool:
        raise TypeError("subsets must be a boolean tensor (K, U) or (N, K, U) marking each subset's features")
    shared = subsets.ndim == 2
    if subsets.ndim not in (2, 3) or subsets.shape[-1] != count or not shared and len(subsets) != len(inputs):
        raise ValueError(
            f"subsets of shape {tuple(subsets.shape)} do not fit {len(inputs)} samples of {count} features; "
            f"give (K, {count}) shared by all samples or ({len(inputs)}, K, {count})"
        )
    if subsets.shape[-2] < 2:
        raise ValueError(f"a correlation needs at least 2 subsets; got {subsets.shape[-2]}")
    shaped = subsets.to(inputs.device).view(1 if shared else -1, 1, *subsets.shape[-2:])
    correlation = _correlate(
        model, inputs, attributions, method, method_options, target, units, shaped, baseline, score,
        aggregate, seed, memory_budget, progress, "subset_correlation",
    )  # fmt: skip
    return correlation[:, 0]


def feature_units(inputs: torch.Tensor, region: int, feature_mask: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """The feature of every position (pixel or column), ``(P,)``, and the number of features U.

    Example
    -------
    >>> units, count = feature_units(torch.zeros(1, 3, 2, 3), 2, None)
    >>> units.tolist(), count
    ([0, 0, 1, 0, 0, 1], 2)
    >>> feature_units(torch.zeros(1, 4), 1, torch.tensor([7, 3, 7, 5]))[0].tolist()
    [2, 0, 2, 1]
    """
    check_inputs(inputs)
    if inputs.ndim not in (2, 4):
        raise ValueError(
            f"expected images (N, C, H, W) or tabular rows (N, D); got shape {tuple(inputs.shape)}. "
            "Add the batch (and for images the channel) dimension"
        )
    if not isinstance(region, int) or isinstance(region, bool) or region < 1:
        raise ValueError(f"region must be a positive int (the patch side in pixels); got {region!r}")
    positions = inputs.shape[2:] if inputs.ndim == 4 else inputs.shape[1:]
    if feature_mask is not None:
        if region != 1:
            raise ValueError("give either region (square patches) or feature_mask (labelled groups), not both")
        if not isinstance(feature_mask, torch.Tensor) or feature_mask.is_floating_point() or feature_mask.is_complex():
            raise TypeError("feature_mask must be an integer tensor of group labels")
        if feature_mask.shape != positions:
            raise ValueError(
                f"feature_mask of shape {tuple(feature_mask.shape)} does not fit inputs of shape "
                f"{tuple(inputs.shape)}; give one label per {'pixel' if inputs.ndim == 4 else 'column'}, "
                f"shape {tuple(positions)}"
            )
        labels, units = feature_mask.to(inputs.device).flatten().unique(return_inverse=True)
        return units, len(labels)
    if inputs.ndim == 2:
        if region != 1:
            raise ValueError("region is for images; group tabular columns with feature_mask")
        return torch.arange(positions[0], device=inputs.device), positions[0]
    units = patch_index(tuple(positions), region, inputs.device)
    return units, int(units.max()) + 1


def default_sizes(count: int) -> torch.Tensor:
    """Default subset sizes: up to 10, log-spaced from 1 to 80 % of ``count`` features (n on a log scale,
    as Ancona et al. plot it; 80 % is Quantus' default upper bound).

    Example
    -------
    >>> default_sizes(1000).tolist()
    [1, 2, 4, 9, 20, 41, 86, 181, 381, 800]
    """
    if count < 2:
        raise ValueError(f"a subset correlation needs at least 2 features; the inputs have {count}")
    top = max(1, int(0.8 * count))
    return torch.logspace(0, torch.log10(torch.tensor(float(top))).item(), DEFAULT_SIZES).round().long().unique()


def random_subsets(sizes: torch.Tensor, samples: int, count: int, seed: int, device: torch.device) -> torch.Tensor:
    """``samples`` uniformly drawn subsets of each size, boolean ``(S, samples, count)``.

    The subsets of a size are drawn without replacement of features, independently
    of each other, all from one generator seeded with ``seed``.

    Example
    -------
    >>> subsets = random_subsets(torch.tensor([1, 3]), 4, 5, 0, torch.device("cpu"))
    >>> subsets.shape, subsets.sum(dim=2).tolist()
    (torch.Size([2, 4, 5]), [[1, 1, 1, 1], [3, 3, 3, 3]])
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise ValueError(f"samples must be an int of at least 2 (a correlation needs two subsets); got {samples!r}")
    draws = generator(seed, device)
    subsets = torch.zeros(len(sizes), samples, count, dtype=torch.bool, device=device)
    for group, size in enumerate(sizes.tolist()):
        keys = torch.rand((samples, count), generator=draws, device=device)
        subsets[group].scatter_(1, keys.topk(size, dim=1).indices, True)
    return subsets


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last dimension; NaN where either side is constant.

    Example
    -------
    >>> pearson(torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]), torch.tensor([[2.0, 4.0, 7.0], [1.0, 2.0, 3.0]]))
    tensor([0.9934,    nan])
    """
    centred_a = a - a.mean(dim=-1, keepdim=True)
    centred_b = b - b.mean(dim=-1, keepdim=True)
    defined = ~(_constant(a, centred_a) | _constant(b, centred_b))
    spread = torch.linalg.vector_norm(centred_a, dim=-1) * torch.linalg.vector_norm(centred_b, dim=-1)
    return torch.where(defined, (centred_a * centred_b).sum(dim=-1) / spread.where(defined, 1.0), torch.nan)


def _constant(values: torch.Tensor, centred: torch.Tensor) -> torch.Tensor:
    """Whether the values do not vary beyond rounding: their spread is tiny next to their magnitude."""
    return centred.abs().amax(dim=-1) <= CONSTANT * values.abs().amax(dim=-1)


def _correlate(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
    units: torch.Tensor,
    subsets: torch.Tensor,
    baseline: BaselineSpec,
    score: str,
    aggregate: str,
    seed: int,
    memory_budget: int | None,
    progress: bool | None,
    name: str,
) -> torch.Tensor:
    """The shared core: ``(N, G)`` correlations over the subsets ``(1 or N, G, K, U)`` of each group."""
    n, groups, samples, count = len(inputs), *subsets.shape[1:]
    scorer = Scorer(model, score, memory_budget)
    with preserved(model):
        bound, maps = _feature_maps(scorer, inputs, attributions, method, method_options, target, aggregate)
        unit_maps = torch.zeros(n, count, dtype=torch.float64, device=inputs.device)
        unit_maps.index_add_(1, units, maps.to(torch.float64))
        flat = subsets.view(subsets.shape[0], groups * samples, count)
        sums = subset_sums(unit_maps, flat)
        fill = single_baseline(baseline, inputs, seed)
        mask_shape = (-1, 1, *inputs.shape[2:]) if inputs.ndim == 4 else (-1, inputs.shape[1])

        def perturbed(sample: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            chosen = flat[sample if len(flat) > 1 else torch.zeros_like(sample), step][:, units].view(mask_shape)
            filled = fill[sample if fill.shape[0] > 1 else torch.zeros_like(sample)]
            return torch.where(chosen, filled, inputs[sample])

        # f(x) is the same for all subsets of a sample, so corr(sums, f(x) − f(x_S)) = corr(sums, −f(x_S)).
        drops = -score_rows(scorer, inputs, bound, groups * samples, perturbed, progress, name)
    return pearson(sums.view(n, groups, samples), drops.view(n, groups, samples))


def subset_sums(values: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """``Σ_{i∈S} values_i`` for every subset: ``(N, R)`` from values ``(N, U)`` and subsets ``(1 or N, R, U)``.

    Boolean subsets (or any weights ``w``, giving ``Σ_i w_i · values_i``) are
    converted to the values' dtype a block of rows at a time.

    Example
    -------
    >>> subset_sums(torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[[True, False, True], [False, True, True]]]))
    tensor([[5., 6.]])
    """
    rows = max(1, SUM_BLOCK // (subsets.shape[0] * subsets.shape[2]))
    blocks = []
    for block in subsets.split(rows, dim=1):
        weights = block.to(values.dtype)
        blocks.append(values @ weights[0].T if len(block) == 1 else torch.einsum("nu,nru->nr", values, weights))
    return torch.cat(blocks, dim=1)


def _feature_maps(
    scorer: Scorer,
    inputs: torch.Tensor,
    attributions: AttributionSpec,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
    aggregate: str,
) -> tuple[Target, torch.Tensor]:
    """The bound target and one attribution per position, ``(N, P)``: channel-reduced pixels or columns."""
    if inputs.ndim == 4:
        _, bound, maps = prepare(scorer, inputs, attributions, method, method_options, target, aggregate)
        return bound, maps.flatten(1)
    _, bound, values = resolve_attributions(scorer, inputs, attributions, method, method_options, target)
    if values.shape != inputs.shape:
        raise ValueError(
            f"attributions of shape {tuple(values.shape)} do not fit tabular inputs of shape {tuple(inputs.shape)}; "
            "give one value per column, (N, D)"
        )
    if not torch.isfinite(values).all():
        raise ValueError("the attributions contain NaN or Inf values; their sums are meaningless")
    return bound, values


def _check_sizes(sizes: Sequence[int], count: int) -> torch.Tensor:
    values = list(sizes) if isinstance(sizes, Sequence) else None
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < count for v in values):
        raise ValueError(
            f"sizes must be a non-empty sequence of ints from 1 to {count - 1} (there are {count} features; "
            f"removing all of them leaves nothing to correlate); got {sizes!r}"
        )
    return torch.tensor(values)
