"""Can a saliency metric rank explanation methods on this model at all? (Tomsett et al. 2020)

Faithfulness metrics (deletion, insertion, pixel flipping, ROAD) are used to pick
the "best" explanation method, but Tomsett et al. (2020, "Sanity Checks for
Saliency Metrics") found that they often disagree with themselves. Borrowing
psychometrics, they ask three questions of a metric, all about how it **ranks the
methods on each input**:

* **inter-rater reliability**: each input is a "rater" that ranks the methods by
  the metric's score. Do the inputs agree? Krippendorff's alpha (ordinal) over the
  ``inputs × methods`` table of ranks.
* **inter-method reliability**: do variants of the metric that claim to measure
  the same thing (deletion to a zero, blurred, mean or uniform baseline; MoRF vs
  LeRF order) rank the methods alike? The Spearman correlation between two
  variants' rankings of the methods on one input, averaged over inputs and over
  every pair of variants.
* **internal consistency**: do different metrics (deletion, insertion, pixel
  flipping, ROAD) agree? The same mean per-input Spearman correlation between
  metrics, and Cronbach's alpha over all metrics, an item being one metric's
  per-input rank of each (input, method) cell.

Internal consistency is computed on **per-input ranks** of the methods, not on the
raw scores pooled over inputs: raw scores of all metrics move with how confident
the model is on an input, which makes metrics look consistent without saying
anything about the methods. Ranks also put metrics of different scales (AUCs of
probabilities, AOPCs of logits) on one scale, which Cronbach's alpha needs. It is
Cronbach's alpha rather than Krippendorff's because the question is whether the
metrics add up to one consistent score (the psychometric internal consistency of
a test's items), not whether they are interchangeable raters.

**Direction.** Every metric declares whether a higher score means a better
explanation (:attr:`Metric.higher_is_better`); scores are oriented so that "better"
is "higher" before anything is ranked, so a deletion AUC (lower is better) and an
insertion AUC (higher is better) can agree. Inter-rater alpha does not depend on
the direction; the correlations do.

**Reading.** Krippendorff (2004, *Content Analysis*, 2nd ed., §11.4.4) suggests
relying on data with alpha ≥ 0.800, drawing only tentative conclusions for
0.667 ≤ alpha < 0.800 and discarding data below 0.667. The same cut-offs applied
to mean Spearman correlations are a rule of thumb of this library, not a
published standard. With few inputs all three numbers are noisy estimates.

Example
-------
>>> import pandas as pd
>>> scores = pd.DataFrame({
...     "input": [0, 0, 1, 1, 2, 2], "method": ["a", "b"] * 3, "metric": "m", "variant": "default",
...     "score": [0.9, 0.1, 0.8, 0.3, 0.7, 0.2], "higher_is_better": True})
>>> reliability_from_scores(scores).table[["metric", "inter_rater_alpha"]].values.tolist()
[['m', 1.0]]
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from saliencelab.core import registry
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec, prepare_target
from saliencelab.evaluate.agreement import cronbach_alpha, krippendorff_alpha
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.evaluate.faithfulness import ORDERS, Scorer, deletion, insertion, pixel_flipping
from saliencelab.evaluate.road import road
from saliencelab.evaluate.similarity import pearson, ranks
from saliencelab.methods.base import check_inputs
from saliencelab.methods.perturbation.scoring import clean_scores

__all__ = [
    "STANDARD_METRICS",
    "Metric",
    "MetricReliability",
    "metric_reliability",
    "reliability_from_scores",
    "standard_metric",
]

STANDARD_METRICS = ("deletion", "insertion", "pixel_flipping", "road")
"""Metric names :func:`metric_reliability` and :func:`standard_metric` know."""

BASELINES = ("zeros", "blur", "mean", "uniform")
"""The baselines whose deletion and insertion curves are variants of one another."""

RELIABLE, TENTATIVE = 0.800, 0.667
"""Krippendorff's (2004) cut-offs for alpha, also used to read the mean correlations."""

SCORE_COLUMNS = ("input", "method", "metric", "variant", "score", "higher_is_better")
"""The columns of a long score table, one row per (metric, variant, input, method)."""

_CURVES = {
    "deletion": (deletion, "auc", False, "baseline", BASELINES),
    "insertion": (insertion, "auc", True, "baseline", BASELINES),
    "pixel_flipping": (pixel_flipping, "aopc", True, "order", ORDERS),
    "road": (road, "scores", False, "order", ORDERS),
}
"""Per standard metric: the curve function, the attribute of its result that is the score, whether higher is
better (in MoRF order where there is an order), the setting its variants differ in, and that setting's choices."""

MetricFn = Callable[[Any, torch.Tensor, torch.Tensor, Any], Any]
"""``(model, inputs, maps, target) -> (N,)`` scores, one per sample."""


@dataclass(frozen=True)
class Metric:
    """A saliency metric: one score per sample for a batch of explanations, and its direction.

    Attributes
    ----------
    score:
        ``(model, inputs, maps, target) -> (N,)`` tensor or array: ``maps`` are one
        method's attributions for ``inputs`` (any shape the metric takes; CAM maps
        are ``(N, 1, H, W)``), ``target`` the resolved target (one class per sample
        or the user's target callable). It must not change the model.
    higher_is_better:
        Whether a higher score means a better (more faithful) explanation.
    label:
        Names this variant in the tables.
    variants:
        Other ways of computing the same metric (another baseline, order or step
        count), each a :class:`Metric` without variants of its own; they are
        compared with this one for the inter-method reliability.

    Example
    -------
    >>> import torch
    >>> mass = Metric(lambda model, x, maps, target: maps.flatten(1).sum(1), higher_is_better=True)
    >>> mass.score(None, torch.ones(2, 3), torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), None).tolist()
    [6.0, 1.0]
    """

    score: MetricFn
    higher_is_better: bool
    label: str = "default"
    variants: Sequence[Metric] = ()

    def __post_init__(self) -> None:
        if not callable(self.score):
            raise TypeError(f"score must be a callable (model, inputs, maps, target) -> (N,); got {self.score!r}")
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"higher_is_better must be True or False; got {self.higher_is_better!r}")
        object.__setattr__(self, "variants", tuple(self.variants))
        for variant in self.variants:
            if not isinstance(variant, Metric) or variant.variants:
                raise TypeError("each variant must be a Metric without variants of its own")
        labels = [metric.label for metric in self.family]
        if len(set(labels)) != len(labels):
            raise ValueError(f"the labels of a metric and its variants must differ; got {labels}")

    @property
    def family(self) -> tuple[Metric, ...]:
        """This metric followed by its variants.

        Example
        -------
        >>> [m.label for m in standard_metric("road").family]
        ['order=morf', 'order=lerf']
        """
        return (self, *self.variants)


def standard_metric(name: str, **options: Any) -> Metric:
    """A built-in faithfulness metric with its usual variants, each scoring one number per sample.

    ===================  ===========================  =========  =======================================
    name                 score                        better     variants
    ===================  ===========================  =========  =======================================
    ``deletion``         AUC of the deletion curve    lower      baselines ``zeros`` (default), ``blur``,
                                                                 ``mean``, ``uniform``
    ``insertion``        AUC of the insertion curve   higher     the same, ``blur`` by default
    ``pixel_flipping``   AOPC                         MoRF:      order ``morf`` (default), ``lerf``
                                                      higher
    ``road``             mean score over percentages  MoRF:      order ``morf`` (default), ``lerf``
                                                      lower
    ===================  ===========================  =========  =======================================

    Parameters
    ----------
    name:
        One of :data:`STANDARD_METRICS`.
    **options:
        Options of :func:`~saliencelab.evaluate.faithfulness.deletion`,
        :func:`~saliencelab.evaluate.faithfulness.insertion`,
        :func:`~saliencelab.evaluate.faithfulness.pixel_flipping` or
        :func:`~saliencelab.evaluate.road.road` (``steps=``, ``score=``, ``seed=``, ...),
        shared by all variants. A ``baseline`` (deletion, insertion) or ``order``
        (pixel flipping, ROAD) sets the default variant; the others stay variants.

    Example
    -------
    >>> metric = standard_metric("deletion", steps=8)
    >>> metric.higher_is_better, [m.label for m in metric.family]
    (False, ['baseline=zeros', 'baseline=blur', 'baseline=mean', 'baseline=uniform'])
    >>> [(m.label, m.higher_is_better) for m in standard_metric("pixel_flipping", order="lerf").family]
    [('order=lerf', False), ('order=morf', True)]
    """
    if name not in _CURVES:
        raise ValueError(f"unknown metric {name!r}; use one of {', '.join(map(repr, STANDARD_METRICS))}")
    function, summary, higher_is_better, setting, choices = _CURVES[name]
    _check_options(function, options)
    default = options.get(setting, inspect.signature(function).parameters[setting].default)

    def variant(value: Any) -> Metric:
        higher = higher_is_better if setting == "baseline" else higher_is_better == (value == "morf")
        label = f"{setting}={value}" if isinstance(value, str) else f"{setting}=custom"
        return Metric(_curve_score(function, summary, {**options, setting: value}), higher, label)

    others = [value for value in choices if not (isinstance(default, str) and value == default)]
    main = variant(default)
    return Metric(main.score, main.higher_is_better, main.label, [variant(value) for value in others])


@dataclass(frozen=True)
class MetricReliability:
    """The reliability of each metric, with the scores it was computed from.

    Attributes
    ----------
    table:
        One row per metric (its first, default variant): ``metric``,
        ``higher_is_better``, ``inputs`` (those with a score for every method),
        ``methods``, ``inter_rater_alpha``
        (Krippendorff's ordinal alpha, inputs as raters of the methods),
        ``inter_method_spearman`` (mean per-input Spearman correlation between
        the variants' rankings, over all pairs of variants; NaN without variants),
        ``internal_consistency_spearman`` (mean per-input Spearman correlation with
        each other metric; NaN with one metric) and ``reading``, a sentence.
    variants:
        One row per (metric, variant): ``metric``, ``variant``,
        ``higher_is_better``, ``inter_rater_alpha`` and ``spearman_with_variants``
        (its mean per-input Spearman correlation with the metric's other variants).
    agreement:
        ``metrics × metrics`` mean per-input Spearman correlations of the default
        variants (1 on the diagonal).
    cronbach_alpha:
        Cronbach's alpha of all metrics' per-input ranks (NaN with one metric).
    scores:
        The long score table: :data:`SCORE_COLUMNS`, one row per (metric, variant,
        input, method); ``score`` is the metric's own, not oriented.

    Example
    -------
    >>> import pandas as pd
    >>> empty = pd.DataFrame()
    >>> MetricReliability(empty, empty, empty, float("nan"), empty).cronbach_alpha
    nan
    """

    table: pd.DataFrame
    variants: pd.DataFrame
    agreement: pd.DataFrame
    cronbach_alpha: float
    scores: pd.DataFrame


def metric_reliability(
    model: Any,
    inputs: torch.Tensor,
    methods: Mapping[str, Mapping[str, Any] | Callable] | Sequence[str],
    metrics: Mapping[str, str | Metric] | Sequence[str] = STANDARD_METRICS,
    *,
    target: TargetSpec = None,
    seed: int = 0,
) -> MetricReliability:
    """Score every method's explanations with every metric and measure how reliably each metric ranks them.

    Each method explains ``inputs`` once; its maps are reused by every metric and
    variant. The target is resolved once on the clean inputs (``None``: each
    sample's argmax class) and used by every method and metric.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable; left exactly as it was.
    inputs:
        A batch of at least two inputs (images ``(N, C, H, W)`` for the standard
        metrics); each input is one rater.
    methods:
        At least two methods: ``{name: options}`` for methods of
        :func:`saliencelab.available_methods` (e.g. ``{"integrated_gradients":
        {"steps": 16}}``), ``{label: callable}`` for your own
        ``(model, inputs, target) -> tensor``, or a list of method names.
        Methods that take a ``seed`` get ``seed`` unless their options set one.
    metrics:
        ``{label: metric}`` with a :class:`Metric` (your own ``score`` callable,
        with its direction and variants) or a name of :data:`STANDARD_METRICS`,
        or a list of such names. Named metrics use their default options and
        ``seed``; for other options pass ``standard_metric(name, steps=16, ...)``.
    target:
        An int, one int per sample, a callable ``output -> (N,)``, or None.
    seed:
        Seeds the stochastic methods and the metrics given by name (uniform
        baselines, ROAD's noise); the same seed gives the same tables. A
        :class:`Metric` keeps its own seed (``standard_metric(name, seed=1)``).

    Returns
    -------
    MetricReliability
        ``.table`` (one row per metric with the three reliabilities and a reading),
        ``.variants``, ``.agreement``, ``.cronbach_alpha`` and ``.scores``.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    >>> result = metric_reliability(model, x, ["gradient", "gradient_x_input", "integrated_gradients"],
    ...                             {"deletion": standard_metric("deletion", steps=4)})
    >>> result.table.columns.tolist()
    ['metric', 'higher_is_better', 'inputs', 'methods', 'inter_rater_alpha', 'inter_method_spearman', \
'internal_consistency_spearman', 'reading']
    >>> len(result.scores)  # 4 variants × 6 inputs × 3 methods
    72
    """
    check_inputs(inputs)
    if inputs.shape[0] < 2:
        raise ValueError(f"reliability needs at least two inputs (each one rates the methods); got {inputs.shape[0]}")
    generator(seed, torch.device("cpu"))  # checks the seed
    explainers = _explainers(methods, seed)
    named_metrics = _metrics(metrics, seed)
    with preserved(model):
        _, bound = clean_scores(Scorer(model, "logit", None), inputs, prepare_target(target, inputs.shape[0]))
        resolved = bound.public()
        maps = {label: explain(model, inputs, resolved) for label, explain in explainers.items()}
        columns: dict[str, list] = {column: [] for column in SCORE_COLUMNS}
        for name, metric in named_metrics.items():
            for variant in metric.family:
                for method, method_maps in maps.items():
                    values = _checked_scores(variant.score(model, inputs, method_maps, resolved), inputs, name, variant)
                    count = len(values)
                    columns["input"] += range(count)
                    columns["method"] += [method] * count
                    columns["metric"] += [name] * count
                    columns["variant"] += [variant.label] * count
                    columns["score"] += values.tolist()
                    columns["higher_is_better"] += [variant.higher_is_better] * count
    return reliability_from_scores(pd.DataFrame(columns))


def reliability_from_scores(scores: pd.DataFrame) -> MetricReliability:
    """The three reliabilities of every metric in a long score table (e.g. saved from an earlier run).

    Parameters
    ----------
    scores:
        A DataFrame with the columns :data:`SCORE_COLUMNS`: one row per (metric,
        variant, input, method) with the metric's ``score`` and whether a higher
        score is better (the same for every row of a variant). A metric's first
        variant in the table is its default. A score may be NaN (missing); an
        input missing a method's score is left out of that variant's statistics,
        since ranks among fewer methods are not comparable.

    Returns
    -------
    MetricReliability
        As :func:`metric_reliability` returns.

    Example
    -------
    A "metric" that gives each method a fixed score, whatever the input, ranks the
    methods identically on every input:

    >>> import pandas as pd
    >>> rows = [(i, m, "fixed", "default", float(k), True) for i in range(4) for k, m in enumerate("abc")]
    >>> result = reliability_from_scores(pd.DataFrame(rows, columns=list(SCORE_COLUMNS)))
    >>> float(result.table.loc[0, "inter_rater_alpha"]), result.table.loc[0, "reading"]
    (1.0, 'ranks the methods reliably (inter-rater alpha 1.00 ≥ 0.800)')
    """
    scores = _checked_table(scores)
    rankings, directions = _rankings(scores)
    variants = pd.DataFrame(
        [
            {
                "metric": metric,
                "variant": variant,
                "higher_is_better": directions[metric, variant],
                "inter_rater_alpha": _inter_rater(ranked),
                "spearman_with_variants": _nanmean(
                    [_mean_spearman(ranked, other) for label, other in family.items() if label != variant]
                ),
            }
            for metric, family in rankings.items()
            for variant, ranked in family.items()
        ]
    )
    defaults = {metric: next(iter(family.values())) for metric, family in rankings.items()}
    agreement = pd.DataFrame(
        [[_mean_spearman(a, b) for b in defaults.values()] for a in defaults.values()],
        index=list(defaults),
        columns=list(defaults),
    )
    first = variants.drop_duplicates("metric").set_index("metric")
    rows = []
    for metric, family in rankings.items():
        inter_rater = float(first.loc[metric, "inter_rater_alpha"])
        inter_method = _nanmean([_mean_spearman(a, b) for a, b in itertools.combinations(family.values(), 2)])
        internal = _nanmean([agreement.loc[metric, other] for other in defaults if other != metric])
        rows.append(
            {
                "metric": metric,
                "higher_is_better": bool(first.loc[metric, "higher_is_better"]),
                "inputs": int((~defaults[metric].isnan().any(dim=1)).sum()),
                "methods": int(defaults[metric].shape[1]),
                "inter_rater_alpha": inter_rater,
                "inter_method_spearman": inter_method,
                "internal_consistency_spearman": internal,
                "reading": _reading(inter_rater, inter_method, internal),
            }
        )
    return MetricReliability(pd.DataFrame(rows), variants, agreement, _cronbach(list(defaults.values())), scores)


def _rankings(scores: pd.DataFrame) -> tuple[dict[str, dict[str, torch.Tensor]], dict[tuple[str, str], bool]]:
    """Per metric and variant, the ``(inputs, methods)`` per-input ranks of the oriented scores; and the directions.

    Every table has the same rows (inputs) and columns (methods), in the order they first appear.
    """
    inputs, methods = scores["input"].unique(), scores["method"].unique()
    rankings: dict[str, dict[str, torch.Tensor]] = {}
    directions = {}
    for (metric, variant), rows in scores.groupby(["metric", "variant"], sort=False):
        higher = bool(rows["higher_is_better"].iloc[0])
        oriented = rows["score"] if higher else -rows["score"]
        wide = oriented.set_axis(pd.MultiIndex.from_frame(rows[["input", "method"]])).unstack("method")
        wide = wide.reindex(index=inputs, columns=methods)
        rankings.setdefault(metric, {})[variant] = _ranks_within_inputs(torch.tensor(wide.to_numpy(np.float64)))
        directions[metric, variant] = higher
    return rankings, directions


def _explainers(methods: Mapping[str, Any] | Sequence[str], seed: int) -> dict[str, Callable]:
    if isinstance(methods, str) or not isinstance(methods, Mapping | Sequence):
        raise TypeError(
            f"methods must be a list of method names or a dict {{name: options}} / {{label: callable}}; got {methods!r}"
        )
    specs = methods if isinstance(methods, Mapping) else {name: {} for name in methods}
    if len(specs) < 2:
        raise ValueError(f"a metric ranks methods: give at least two methods; got {list(specs)}")
    explainers = {}
    for label, spec in specs.items():
        if callable(spec):
            explainers[label] = as_explainer(spec)
        elif isinstance(spec, Mapping):
            options = dict(spec)
            if "seed" in registry.option_names(registry.get(label)):
                options.setdefault("seed", seed)
            explainers[label] = as_explainer(label, **options)
        else:
            raise TypeError(
                f"method {label!r}: give a dict of options or a callable (model, inputs, target); got {spec!r}"
            )
    return explainers


def _metrics(metrics: Mapping[str, str | Metric] | Sequence[str], seed: int) -> dict[str, Metric]:
    if isinstance(metrics, str) or not isinstance(metrics, Mapping | Sequence):
        raise TypeError(f"metrics must be a list of metric names or a dict {{label: Metric or name}}; got {metrics!r}")
    specs = metrics if isinstance(metrics, Mapping) else {name: name for name in metrics}
    if not specs:
        raise ValueError(f"give at least one metric, e.g. metrics={list(STANDARD_METRICS)}")
    named = {}
    for label, spec in specs.items():
        if isinstance(spec, Metric):
            named[label] = spec
        elif isinstance(spec, str):
            named[label] = standard_metric(spec, seed=seed)
        else:
            raise TypeError(
                f"metric {label!r}: give a Metric or one of {', '.join(STANDARD_METRICS)}; got {spec!r}. "
                "Wrap a callable as Metric(fn, higher_is_better=...) to say which direction is better"
            )
    return named


def _check_options(function: Callable, options: Mapping[str, Any]) -> None:
    supplied = {"attributions", "method", "method_options", "target", "progress"}
    allowed = [name for name, p in inspect.signature(function).parameters.items() if p.kind == p.KEYWORD_ONLY]
    allowed = [name for name in allowed if name not in supplied]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{function.__name__} does not take options {unknown}; it takes {', '.join(allowed)}")


def _curve_score(function: Callable, summary: str, options: Mapping[str, Any]) -> MetricFn:
    def score(model: Any, inputs: torch.Tensor, maps: torch.Tensor, target: Any) -> torch.Tensor:
        return getattr(function(model, inputs, maps, target=target, progress=False, **options), summary)

    score.__name__ = function.__name__
    return score


def _checked_scores(values: Any, inputs: torch.Tensor, metric: str, variant: Metric) -> np.ndarray:
    where = f"metric {metric!r} (variant {variant.label!r})"
    if not isinstance(values, torch.Tensor | np.ndarray):
        raise TypeError(f"{where} returned a {type(values).__name__}; return a (N,) tensor, one score per sample")
    values = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else values.astype(np.float64)
    if values.shape != (inputs.shape[0],):
        raise ValueError(f"{where} returned shape {values.shape} for {inputs.shape[0]} inputs; return one score each")
    if not np.isfinite(values).all():
        raise ValueError(f"{where} returned NaN or Inf scores; a ranking of them is meaningless")
    return values


def _checked_table(scores: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a pandas DataFrame with columns {list(SCORE_COLUMNS)}")
    missing = [column for column in SCORE_COLUMNS if column not in scores.columns]
    if missing:
        raise ValueError(f"the score table lacks the columns {missing}; it needs {list(SCORE_COLUMNS)}")
    scores = scores[list(SCORE_COLUMNS)].reset_index(drop=True)
    if scores.empty:
        raise ValueError("the score table is empty")
    values = pd.to_numeric(scores["score"], errors="coerce")
    if np.isinf(values).any() or (values.isna() & scores["score"].notna()).any():
        raise ValueError("scores must be numbers (NaN where missing), never Inf or text")
    scores["score"] = values.astype(np.float64)
    if scores.duplicated(["metric", "variant", "input", "method"]).any():
        raise ValueError("the score table has more than one row for some (metric, variant, input, method)")
    directions = scores.groupby(["metric", "variant"], sort=False)["higher_is_better"].nunique()
    if (directions > 1).any() or not scores["higher_is_better"].map(lambda v: isinstance(v, bool | np.bool_)).all():
        raise ValueError("higher_is_better must be True or False, the same on every row of a (metric, variant)")
    return scores


def _ranks_within_inputs(oriented: torch.Tensor) -> torch.Tensor:
    """Each input's ranks of the methods (0 for the worst), ties averaged.

    An input missing any method's score becomes a row of NaN: ranks among fewer
    methods are on another scale, so the input is left out of every statistic.
    """
    ranked = ranks(oriented.nan_to_num(0.0))
    return ranked.masked_fill(oriented.isnan().any(dim=1, keepdim=True), float("nan"))


def _inter_rater(ranked: torch.Tensor) -> float:
    """Krippendorff's ordinal alpha of the inputs' rankings; NaN when fewer than two inputs rank every method."""
    complete = ranked[~ranked.isnan().any(dim=1)]
    return krippendorff_alpha(complete, level="ordinal") if complete.shape[0] >= 2 else float("nan")


def _mean_spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over inputs of the Spearman correlation between two rankings of the methods.

    Inputs left out of either ranking, or on which either ranking ties every
    method, are left out (their correlation is undefined); NaN if none is left.
    """
    usable = ~(a.isnan() | b.isnan()).any(dim=1)
    usable &= (a.amax(dim=1) > a.amin(dim=1)) & (b.amax(dim=1) > b.amin(dim=1))
    if not bool(usable.any()):
        return float("nan")
    return float(pearson(a[usable], b[usable]).mean())


def _cronbach(rankings: list[torch.Tensor]) -> float:
    """Cronbach's alpha with each metric's per-input ranks as one item over the complete (input, method) cells."""
    if len(rankings) < 2:
        return float("nan")
    items = torch.stack([ranked.flatten() for ranked in rankings], dim=1)
    complete = items[~items.isnan().any(dim=1)]
    return cronbach_alpha(complete) if complete.shape[0] >= 2 else float("nan")


def _nanmean(values: list[float]) -> float:
    finite = [value for value in values if not np.isnan(value)]
    return float(np.mean(finite)) if finite else float("nan")


def _reading(inter_rater: float, inter_method: float, internal: float) -> str:
    """One sentence on the three reliabilities, by Krippendorff's cut-offs."""
    if np.isnan(inter_rater):
        parts = ["cannot rank the methods: no two inputs score them all, or all inputs tie them (alpha undefined)"]
    else:
        parts = [
            (
                f"ranks the methods reliably (inter-rater alpha {inter_rater:.2f} ≥ {RELIABLE:.3f})",
                f"ranks the methods only tentatively (inter-rater alpha {inter_rater:.2f} < {RELIABLE:.3f})",
                f"cannot rank the methods reliably (inter-rater alpha {inter_rater:.2f} < {TENTATIVE:.3f})",
            )[_grade(inter_rater)]
        ]
    if not np.isnan(inter_method):
        words = ("rank the methods alike", "rank the methods partly alike", "rank the methods differently")
        parts.append(f"its variants {words[_grade(inter_method)]} (mean Spearman {inter_method:.2f})")
    if not np.isnan(internal):
        words = ("agrees with", "partly agrees with", "disagrees with")
        parts.append(f"it {words[_grade(internal)]} the other metrics (mean Spearman {internal:.2f})")
    return "; ".join(parts)


def _grade(value: float) -> int:
    """0 at or above :data:`RELIABLE`, 1 at or above :data:`TENTATIVE`, 2 below."""
    return 0 if value >= RELIABLE else 1 if value >= TENTATIVE else 2
