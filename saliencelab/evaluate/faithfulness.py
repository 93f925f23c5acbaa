"""Faithfulness curves: does removing what an explanation ranks first change the prediction most?

:func:`deletion` and :func:`insertion` follow RISE (Petsiuk et al. 2018): pixels,
all channels together, are ranked by the channel-aggregated attribution and
replaced by a baseline (deletion) or revealed over a baseline (insertion) in
``steps`` equal steps. :func:`pixel_flipping` is the region perturbation of Bach
et al. 2015 and Samek et al. 2017 with MoRF and LeRF orders and AOPC.

Every perturbed input of every sample is one row of a single batched evaluation:
rows are built chunk by chunk under ``memory_budget`` and run in
``torch.inference_mode()``; scores are collected in float64. The target is
resolved once on the unperturbed inputs (``None``: each sample's argmax class)
and kept for all perturbed copies; those clean scores are the unperturbed end
of each curve, so no input is run twice. Ties in the ranking are broken by position
(row-major, the earlier pixel first), so results are deterministic.

Example
-------
>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
>>> with torch.no_grad():
...     _ = model[1].weight.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
>>> x = torch.ones(1, 1, 1, 4)
>>> result = deletion(model, x, torch.tensor([[[[4.0, 3.0, 2.0, 1.0]]]]), steps=4, score="logit")
>>> result.curve.tolist(), result.auc.tolist()
([[10.0, 6.0, 3.0, 1.0, 0.0]], [3.75])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from saliencelab.core.aggregate import aggregate_channels
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, resolve_baseline
from saliencelab.core.guard import preserved
from saliencelab.core.targets import Target, TargetSpec, prepare_target
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.methods.base import Method, check_inputs
from saliencelab.methods.perturbation.scoring import clean_scores, evaluate_rows

__all__ = ["Curve", "PixelFlippingCurve", "deletion", "insertion", "pixel_flipping"]

SCORES = ("probability", "logit")
ORDERS = ("morf", "lerf")
DEFAULT_STEPS = 100
"""Steps when ``steps=None``: 100, or one unit per step when there are fewer units."""

AttributionSpec = torch.Tensor | Attribution | None
MethodSpec = str | Callable | None


@dataclass(frozen=True)
class Curve:
    """Scores along a perturbation curve, one row per sample.

    Attributes
    ----------
    curve:
        ``(N, steps + 1)`` float64 target scores; column ``k`` after ``k`` of the
        ``steps`` steps.
    fractions:
        ``(steps + 1,)`` x-axis ``k / steps`` from 0 to 1.

    Example
    -------
    >>> Curve(torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64), torch.tensor([0.0, 0.5, 1.0])).auc
    tensor([0.5000], dtype=torch.float64)
    """

    curve: torch.Tensor
    fractions: torch.Tensor

    @property
    def auc(self) -> torch.Tensor:
        """Area under each sample's curve by the trapezoid rule over ``fractions``, shape ``(N,)``."""
        return torch.trapezoid(self.curve, self.fractions.to(self.curve), dim=1)


@dataclass(frozen=True)
class PixelFlippingCurve(Curve):
    """A region-perturbation curve with its AOPC.

    Example
    -------
    >>> c = PixelFlippingCurve(torch.tensor([[10.0, 6.0, 3.0, 1.0, 0.0]]), torch.linspace(0, 1, 5))
    >>> c.aopc.tolist()
    [6.0]
    """

    @property
    def aopc(self) -> torch.Tensor:
        """Area over the perturbation curve (Samek et al. 2017), shape ``(N,)``.

        ``AOPC = 1/(L+1) Σ_{k=0..L} (f(x⁽⁰⁾) − f(x⁽ᵏ⁾))`` for ``L = steps``; the
        paper's expectation over the data set is the mean of this over samples.
        Larger is better for MoRF, smaller for LeRF.
        """
        return (self.curve[:, :1] - self.curve).mean(dim=1)


def deletion(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    steps: int | None = None,
    baseline: BaselineSpec = "zeros",
    score: str = "probability",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> Curve:
    """The RISE deletion curve: the target score as the top-ranked pixels are replaced by ``baseline``.

    A faithful explanation makes the score fall fast: lower AUC is better.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable; left exactly as it was.
    inputs:
        Images ``(N, C, H, W)``, or table rows ``(N, D)``: a row is ranked and
        perturbed feature by feature, as a one-channel ``1 × D`` image.
    attributions:
        A tensor ``(N, C, H, W)``, ``(N, 1, H, W)`` (CAM maps), ``(N, H, W)`` or, for rows, ``(N, D)``, or an
        :class:`~saliencelab.Attribution` (whose resolved target is used when
        ``target`` is None). Give either this or ``method``.
    method, method_options:
        Instead of ``attributions``: a method name from
        :func:`saliencelab.available_methods` with its options, or a callable
        ``(model, inputs, target) -> tensor``; it explains the resolved target.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or None (argmax class).
    steps:
        Number of equal steps; step ``k`` removes the first ``k·H·W // steps`` pixels.
        None: 100, or ``H·W`` when that is smaller.
    baseline:
        The values that replace deleted pixels: ``"zeros"`` (RISE), ``"blur"``,
        ``"mean"``, ``"min"``, ``"uniform"`` (drawn from ``seed``), a number or a
        tensor broadcastable to the inputs.
    score:
        ``"probability"`` (softmax over the classes, RISE) or ``"logit"`` (the raw output).
    aggregate:
        How channels are reduced to rank pixels (:func:`~saliencelab.core.aggregate.aggregate_channels`).
        The default ``"sum"`` is signed: positive evidence is deleted first; use
        ``"sum_abs"`` for unsigned importance.
    seed:
        Seed of the ``"uniform"`` baseline.
    memory_budget:
        Bytes for one chunk of perturbed rows (default 1 GiB).
    progress:
        Show a progress bar (None: on a terminal for long runs).

    Returns
    -------
    Curve
        ``.curve`` ``(N, steps + 1)`` from the unperturbed input to the fully
        baselined one, ``.auc`` ``(N,)``, ``.fractions``.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
    >>> x = torch.ones(1, 1, 1, 4)
    >>> deletion(model, x, method="gradient_x_input", steps=2, score="logit").curve.tolist()
    [[10.0, 3.0, 0.0]]
    >>> deletion(model[1], x.view(1, 4), method="gradient_x_input", steps=2, score="logit").curve.tolist()  # rows
    [[10.0, 3.0, 0.0]]
    """
    return _progressive(
        model, inputs, attributions, method, method_options, target, steps, baseline, score, aggregate,
        seed, memory_budget, progress, insert=False, order="morf", region=1, name="deletion",
    )


def insertion(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    steps: int | None = None,
    baseline: BaselineSpec = "blur",
    score: str = "probability",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> Curve:
    """The RISE insertion curve: the target score as the top-ranked pixels are revealed over ``baseline``.

    The first point is the fully baselined image (RISE: a blurred copy), the
    last the unperturbed input. A faithful explanation makes the score rise
    fast: higher AUC is better. Parameters as in :func:`deletion`.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
    >>> x = torch.ones(1, 1, 1, 4)
    >>> result = insertion(model, x, torch.tensor([[4.0, 3.0, 2.0, 1.0]]).view(1, 1, 4), steps=4,
    ...                    baseline="zeros", score="logit")
    >>> result.curve.tolist(), result.auc.tolist()
    ([[0.0, 4.0, 7.0, 9.0, 10.0]], [6.25])
    """
    return _progressive(
        model, inputs, attributions, method, method_options, target, steps, baseline, score, aggregate,
        seed, memory_budget, progress, insert=True, order="morf", region=1, name="insertion",
    )


def pixel_flipping(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    order: str = "morf",
    region: int = 1,
    steps: int | None = None,
    baseline: BaselineSpec = "uniform",
    score: str = "logit",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> PixelFlippingCurve:
    """Region perturbation (Bach et al. 2015, Samek et al. 2017) with its AOPC.

    The image is tiled into non-overlapping ``region × region`` patches (smaller at
    the right and bottom edges), each scored by the sum of its pixels'
    channel-aggregated attribution. Patches are perturbed most relevant first
    (``order="morf"``) or least relevant first (``"lerf"``), in ``steps`` equal steps.

    Parameters
    ----------
    order:
        ``"morf"`` (most relevant first) or ``"lerf"`` (least relevant first).
    region:
        Patch side in pixels; 1 is Bach et al.'s pixel flipping.
    steps:
        Number of equal steps over the patches; None: one patch per step, at most 100 steps.
    baseline:
        What replaces a perturbed patch: ``"uniform"`` (Samek et al.: each value drawn
        uniformly from the sample's value range, one draw from ``seed`` shared by all
        samples), a number, a preset or a tensor, as in :func:`deletion`.
    score:
        ``"logit"`` (the raw output, Samek et al.) or ``"probability"``.

    Other parameters as in :func:`deletion`.

    Returns
    -------
    PixelFlippingCurve
        ``.curve`` ``(N, steps + 1)``, ``.auc`` and ``.aopc`` ``(N,)``.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
    >>> x = torch.ones(1, 1, 2, 2)
    >>> a = x * model[1].weight.view(1, 1, 2, 2)
    >>> pixel_flipping(model, x, a, baseline=0.0).aopc.tolist()  # curve 10, 6, 3, 1, 0
    [6.0]
    >>> pixel_flipping(model, x, a, baseline=0.0, order="lerf").curve.tolist()
    [[10.0, 9.0, 7.0, 4.0, 0.0]]
    """
    curve = _progressive(
        model, inputs, attributions, method, method_options, target, steps, baseline, score, aggregate,
        seed, memory_budget, progress, insert=False, order=order, region=region, name="pixel_flipping",
    )
    return PixelFlippingCurve(curve.curve, curve.fractions)


def _progressive(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
    steps: int | None,
    baseline: BaselineSpec,
    score: str,
    aggregate: str,
    seed: int,
    memory_budget: int | None,
    progress: bool | None,
    *,
    insert: bool,
    order: str,
    region: int,
    name: str,
) -> Curve:
    """Perturb ranked units (pixels or patches) in equal steps and score every step of every sample."""
    _check_choice("order", order, ORDERS)
    if not isinstance(region, int) or isinstance(region, bool) or region < 1:
        raise ValueError(f"region must be a positive int (the patch side in pixels); got {region!r}")
    scorer = Scorer(model, score, memory_budget)
    with preserved(model):
        clean, bound, maps = prepare(
            scorer, inputs, attributions, method, method_options, target, aggregate, rows=True
        )
        units = patch_index(maps.shape[1:], region, maps.device)
        unit_maps = torch.zeros(maps.shape[0], int(units.max()) + 1, dtype=maps.dtype, device=maps.device)
        unit_maps.index_add_(1, units, maps.flatten(1))
        ranks = rank(unit_maps, descending=order == "morf")
        steps = _check_steps(steps, unit_maps.shape[1])
        counts = torch.arange(steps + 1, device=inputs.device) * unit_maps.shape[1] // steps
        # the first step that perturbs each pixel (its unit's rank < counts[step]), in a small integer type
        first = torch.searchsorted(counts, ranks[:, units].contiguous(), right=True)
        first = first.to(torch.int16 if steps < 2**15 else torch.int32)
        first = first.view(-1, 1, *inputs.shape[2:]) if inputs.ndim == 4 else first  # rows: (N, D)
        fill = compact(single_baseline(baseline, inputs, seed))
        offset = 0 if insert else 1  # the clean input is step `steps` of insertion, step 0 of deletion

        def perturbed(sample: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            chosen = first[sample] <= (step + offset).to(first.dtype).view(-1, *[1] * (first.ndim - 1))
            x, filled = inputs[sample], fill[sample] if fill.shape[0] > 1 else fill
            return torch.where(chosen, x, filled) if insert else torch.where(chosen, filled, x)

        # the clean scores, computed once to bind the target, are the unperturbed end of the curve
        scores = score_rows(scorer, inputs, bound, steps, perturbed, progress, name)
        parts = (scores, clean[:, None]) if insert else (clean[:, None], scores)
        curve = torch.cat(parts, dim=1)
    return Curve(curve, torch.linspace(0, 1, steps + 1, dtype=torch.float64, device=curve.device))


class Scorer(Method):
    """Evaluates perturbed rows: the model's output, softmaxed for ``score="probability"``."""

    name = "faithfulness"

    def __init__(self, model: Any, score: str, memory_budget: int | None) -> None:
        _check_choice("score", score, SCORES)
        super().__init__(model, memory_budget=memory_budget)
        self.score = score

    def forward(self, x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        output = super().forward(x, samples)
        if self.score == "logit":
            return output
        if output.ndim != 2 or output.shape[1] < 2:
            raise ValueError(
                f"score='probability' takes a softmax over class logits of shape (N, C) with C >= 2, but the "
                f"model returned shape {tuple(output.shape)}; pass score='logit' to score the raw output"
            )
        return output.softmax(dim=1)


def prepare(
    scorer: Scorer,
    inputs: torch.Tensor,
    attributions: AttributionSpec,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
    aggregate: str,
    rows: bool = False,
) -> tuple[torch.Tensor, Target, torch.Tensor]:
    """Check the inputs, bind the target on the clean inputs; return their target scores (``(N,)`` float64),
    the bound target and ``(N, H, W)`` maps.

    ``attributions`` are used as given; otherwise ``method`` explains the bound target. With ``rows``,
    table rows ``(N, D)`` are accepted too, with ``(N, D)`` attributions; their maps are ``(N, 1, D)``.

    Example
    -------
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0]]))
    >>> x = torch.ones(1, 1, 2, 2)
    >>> clean, bound, maps = prepare(Scorer(model, "logit", None), x, x, None, None, None, "sum")
    >>> clean.tolist(), bound.classes.tolist(), tuple(maps.shape)
    ([4.0], [1], (1, 2, 2))
    """
    check_inputs(inputs)
    table = rows and inputs.ndim == 2
    if inputs.ndim != 4 and not table:
        shapes = "images of shape (N, C, H, W) or table rows (N, D)" if rows else "images of shape (N, C, H, W)"
        raise ValueError(
            f"expected {shapes}; got {tuple(inputs.shape)}. "
            "Add the batch and channel dimensions, e.g. inputs.view(N, 1, H, W)"
        )
    clean, bound, attributions = resolve_attributions(scorer, inputs, attributions, method, method_options, target)
    if table and attributions.shape != inputs.shape:
        raise ValueError(
            f"attributions of shape {tuple(attributions.shape)} do not fit table rows of shape "
            f"{tuple(inputs.shape)}; give one value per feature, (N, D)"
        )
    maps = aggregate_channels(attributions[:, None, None] if table else attributions, aggregate)  # a row: 1 × D
    if not table and maps.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise ValueError(
            f"attributions of shape {tuple(attributions.shape)} do not fit inputs of shape {tuple(inputs.shape)}; "
            "give (N, C, H, W), (N, 1, H, W) or (N, H, W) maps at the inputs' size"
        )
    if not torch.isfinite(maps).all():
        raise ValueError("the attributions contain NaN or Inf values; a ranking of them is meaningless")
    return clean, bound, maps


def resolve_attributions(
    scorer: Scorer,
    inputs: torch.Tensor,
    attributions: AttributionSpec,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
) -> tuple[torch.Tensor, Target, torch.Tensor]:
    """Bind the target on the clean inputs; return their target scores (``(N,)`` float64), the bound target
    and the attributions, detached, on the inputs' device.

    ``attributions`` are used as given (an :class:`~saliencelab.Attribution` lends its
    target when ``target`` is None); otherwise ``method`` explains the bound target.
    The caller has checked ``inputs`` (:func:`~saliencelab.methods.base.check_inputs`) and
    checks the attributions' shape.

    Example
    -------
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> clean, bound, values = resolve_attributions(Scorer(model, "logit", None), torch.ones(1, 2), torch.ones(1, 2),
    ...                                       None, None, 0)
    >>> clean.tolist(), bound.classes.tolist()
    ([1.0], [0])
    """
    if (attributions is None) == (method is None):
        raise TypeError("give either attributions (a tensor or an Attribution) or method= (a name or a callable)")
    if isinstance(attributions, Attribution):
        if target is None and attributions.target is not None:
            target = attributions.target
        attributions = attributions.values
    clean, bound = clean_scores(scorer, inputs, prepare_target(target, inputs.shape[0]))
    if method is not None:
        attributions = as_explainer(method, **(method_options or {}))(scorer.model, inputs, bound.public())
    elif method_options:
        raise TypeError("method_options are only used with method=; drop them or pass method=")
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor or an Attribution; got {type(attributions).__name__}")
    return clean, bound, attributions.detach().to(inputs.device)


def rank(maps: torch.Tensor, descending: bool = True) -> torch.Tensor:
    """Each unit's position in the order of ``maps`` ``(N, U)``: 0 for the first; ties by index.

    Example
    -------
    >>> rank(torch.tensor([[1.0, 3.0, 3.0, 2.0]])).tolist()
    [[3, 0, 1, 2]]
    """
    order = maps.sort(dim=1, descending=descending, stable=True).indices
    positions = torch.arange(maps.shape[1], device=maps.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def patch_index(size: tuple[int, int], region: int, device: torch.device) -> torch.Tensor:
    """The patch of every pixel, row-major ``(H·W,)``, for non-overlapping ``region × region`` tiles.

    Example
    -------
    >>> patch_index((3, 3), 2, torch.device("cpu")).view(3, 3).tolist()
    [[0, 0, 1], [0, 0, 1], [2, 2, 3]]
    """
    height, width = size
    rows = torch.arange(height, device=device) // region
    cols = torch.arange(width, device=device) // region
    return (rows[:, None] * -(-width // region) + cols[None, :]).flatten()


def single_baseline(baseline: BaselineSpec, inputs: torch.Tensor, seed: int) -> torch.Tensor:
    """The replacement values, ``(1, C, H, W)`` when shared or ``(N, C, H, W)``."""
    references = resolve_baseline(baseline, inputs, seed=seed)
    if references.k != 1:
        raise ValueError(
            f"a perturbation curve takes one baseline per sample; got {references.k} references. "
            "Pass a tensor broadcastable to the inputs or a preset"
        )
    return references.tensor[:, 0]


def compact(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` without the copies of a broadcast: every dimension of stride 0 cut to size 1.

    :func:`torch.where` broadcasts them back; indexing the compact tensor copies less.

    Example
    -------
    >>> compact(torch.ones(2, 1, 1, 1).expand(2, 3, 4, 4)).shape
    torch.Size([2, 1, 1, 1])
    """
    return tensor[tuple(slice(0, 1) if stride == 0 else slice(None) for stride in tensor.stride())]


def score_rows(
    scorer: Scorer,
    inputs: torch.Tensor,
    bound: Target,
    per_sample: int,
    perturbed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    progress: bool | None,
    name: str,
) -> torch.Tensor:
    """Score ``per_sample`` perturbed copies of every sample, ``(N, per_sample)`` float64.

    ``perturbed(sample, step)`` builds the rows of one chunk; row ``r`` is copy
    ``r % per_sample`` of sample ``r // per_sample``.
    """

    def make_rows(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sample = index // per_sample
        return perturbed(sample, index % per_sample), sample

    total = inputs.shape[0] * per_sample
    scores = evaluate_rows(scorer, inputs, total, make_rows, bound, progress=progress, description=name)
    return scores.view(inputs.shape[0], per_sample)


def _check_steps(steps: int | None, units: int) -> int:
    if steps is None:
        return min(DEFAULT_STEPS, units)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= units:
        raise ValueError(f"steps must be an int from 1 to the number of pixels or regions ({units}); got {steps!r}")
    return steps


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(map(repr, choices))}")
