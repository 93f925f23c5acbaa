"""Run every method and every data-dependent check on one model and one batch of inputs.

:func:`analyse` gathers what the HTML report shows for one model: each method's
maps and time, its model-randomisation curve (Adebayo et al. 2018, cascading
from the output), its data-randomisation similarity when a twin trained on
shuffled labels is given, and its deletion and insertion curves (Petsiuk et al.
2018) next to a random ranking's. It only calls the public API.

Example
-------
>>> import torch, saliencelab as sl
>>> model = sl.zoo.load("digits_cnn")
>>> _, _, x, y = sl.zoo.dataset("digits")
>>> result = analyse(model, x[:2], methods={"gradient": {}}, target=y[:2], title="digits", progress=False)
>>> sorted(result.methods), result.methods["gradient"].maps.shape
(['gradient'], torch.Size([2, 1, 8, 8]))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from saliencelab.api import explain
from saliencelab.core import registry
from saliencelab.core.degenerate import checked_by_caller, degenerate_maps
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec, resolve_target
from saliencelab.evaluate.axioms import axiom_table
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.evaluate.faithfulness import Curve, deletion, insertion
from saliencelab.evaluate.randomization import data_randomization, model_randomization
from saliencelab.report.thresholds import Thresholds


@dataclass
class MethodResult:
    """What one method produced on the analysed inputs.

    Attributes
    ----------
    maps:
        The attributions, ``(N, C, H, W)`` (CAM maps ``(N, 1, H, W)``).
    seconds:
        Wall time of the one ``sl.explain`` call that produced ``maps``.
    delta:
        The largest completeness error divided by the largest ``|f(x)|`` of the batch, or ``None``.
    randomization:
        The model-randomisation rows (see :func:`saliencelab.evaluate.model_randomization`), or ``None``.
    data_randomization:
        Per-sample similarity to the shuffled-label twin's maps, ``(N,)``, or ``None``.
    deletion, insertion:
        The faithfulness curves of ``maps``, or ``None``.
    degenerate:
        Per input, whether its map is constant (all zero included), ``(N,)`` bool:
        such a map fails every check (:func:`saliencelab.core.degenerate.degenerate_maps`).
    """

    maps: torch.Tensor
    seconds: float
    degenerate: torch.Tensor
    delta: float | None = None
    randomization: pd.DataFrame | None = None
    data_randomization: torch.Tensor | None = None
    deletion: Curve | None = None
    insertion: Curve | None = None


@dataclass
class Analysis:
    """Everything the report shows about one model on one batch of inputs.

    ``random_deletion`` / ``random_insertion`` are the curves of ``rankings``
    seeded random pixel rankings of every input (the control a faithful map must
    beat), ranking-major: row ``k·N + i`` is ranking ``k`` of input ``i``;
    ``axioms`` is the property × method table of
    :func:`saliencelab.evaluate.axiom_table` (model-independent); ``thresholds``
    are what the verdicts are judged against; ``feature_names`` name the
    features of table rows ``(N, D)`` (``None`` for images), for the report's bar charts.
    ``tokens`` are the token strings of each text when the inputs are texts: their
    token ids ``(N, T)``, each text's from column 0, then padding, as are the maps (see
    :func:`saliencelab.report.text_analysis.analyse_text`; ``None`` otherwise): the
    report draws their maps as token heatmaps, ``special_tokens`` in grey;
    ``targets`` are then ``-1`` (the target is a text target, not a class).
    ``score_name`` is what the deletion and insertion curves score.
    """

    title: str
    description: str
    inputs: torch.Tensor
    targets: torch.Tensor
    row_labels: list[str]
    methods: dict[str, MethodResult] = field(default_factory=dict)
    random_deletion: Curve | None = None
    random_insertion: Curve | None = None
    axioms: pd.DataFrame | None = None
    shuffled_accuracy: str | None = None
    rankings: int = 0
    thresholds: Thresholds = field(default_factory=Thresholds)
    feature_names: list[str] | None = None
    tokens: list[list[str]] | None = None
    special_tokens: tuple[str, ...] = ()
    score_name: str = "target probability"

    def random_auc(self, kind: str) -> np.ndarray | None:
        """Per input, the mean AUC of the random rankings' ``"deletion"`` or ``"insertion"`` curves, or ``None``.

        Example
        -------
        >>> import saliencelab as sl
        >>> model = sl.zoo.load("digits_cnn")
        >>> _, _, x, _ = sl.zoo.dataset("digits")
        >>> analyse(model, x[:3], methods={}, title="digits", rankings=4, progress=False).random_auc("deletion").shape
        (3,)
        """
        control = {"deletion": self.random_deletion, "insertion": self.random_insertion}[kind]
        if control is None:
            return None
        return control.auc.double().cpu().numpy().reshape(self.rankings, len(self.inputs)).mean(axis=0)


def analyse(
    model: Any,
    inputs: torch.Tensor,
    *,
    methods: Mapping[str, Mapping[str, Any]],
    target: TargetSpec = None,
    title: str,
    description: str = "",
    row_labels: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    shuffled_model: Any = None,
    randomization: bool = True,
    faithfulness: bool = True,
    axioms: bool = False,
    steps: int = 16,
    rankings: int = 8,
    thresholds: Thresholds | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Analysis:
    """Explain ``inputs`` with each method and run the checks the report shows.

    Parameters
    ----------
    model:
        The model (left exactly as it was).
    inputs:
        A batch of images ``(N, C, H, W)`` or of table rows ``(N, D)``.
    methods:
        Method name to its options, e.g. ``{"integrated_gradients": {"steps": 32}}``.
    target:
        As for :func:`saliencelab.explain`; resolved once (argmax for ``None``)
        so that every method and check explains the same class.
    title, description, row_labels:
        Text for the report (row labels default to ``"target k"``).
    feature_names:
        For table rows ``(N, D)``: the ``D`` feature names of the report's bar
        charts (default ``feature 0`` ... ``feature D-1``).
    shuffled_model:
        The same architecture trained on shuffled labels, for data randomisation.
    randomization, faithfulness, axioms:
        Which checks to run: model randomisation (cascading, Spearman of absolute
        values), deletion and insertion curves with ``steps`` steps, the axiom table.
    rankings:
        How many seeded random pixel rankings of each input the deletion and
        insertion curves are compared with (the control of their verdicts).
    thresholds:
        What the verdicts are judged against (default :class:`Thresholds`).
    seed:
        Seed of every stochastic method without its own, of the randomised
        layers and of the random-ranking control.

    Example
    -------
    >>> import saliencelab as sl
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, y = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:2], methods={"gradient": {}}, title="digits", progress=False)
    >>> result.methods["gradient"].deletion.curve.shape
    torch.Size([2, 17])
    """
    with torch.inference_mode():
        output = model(inputs)
    bound = resolve_target(target, output)
    if bound.classes is None:
        raise ValueError("the report explains classes: give an int, one int per input, or None (the argmax)")
    targets = bound.classes
    labels = list(row_labels) if row_labels is not None else [f"target {int(t)}" for t in targets]
    if len(labels) != len(inputs):
        raise ValueError(f"row_labels has {len(labels)} labels for {len(inputs)} inputs; give one per input")
    if isinstance(rankings, bool) or not isinstance(rankings, int) or rankings < 2:
        raise ValueError(f"rankings must be an int of at least 2 (random rankings per input); got {rankings!r}")
    names = _feature_names(feature_names, inputs)
    result = Analysis(title, description, inputs, targets, labels, rankings=rankings, feature_names=names)
    result.thresholds = thresholds or Thresholds()
    checks = _Checks(
        targets, float(bound.scores(output).abs().max()), shuffled_model, randomization, faithfulness, steps, seed
    )
    if faithfulness:
        result.random_deletion, result.random_insertion = _random_rankings(model, inputs, rankings, checks)
    bar = tqdm(methods.items(), desc=f"{title}: methods", disable=not progress, leave=False)
    for name, options in bar:
        bar.set_postfix_str(name)
        with checked_by_caller():  # the verdicts fail constant maps, with the reason: no warning
            result.methods[name] = _run_method(model, inputs, name, dict(options), checks)
    if axioms:
        result.axioms = axiom_table(list(methods), seed=seed, progress=progress)
    return result


def _feature_names(names: Sequence[str] | None, inputs: torch.Tensor) -> list[str] | None:
    """``names`` as strings, one per feature of the table rows ``inputs`` ``(N, D)``; ``ValueError`` otherwise.

    Example
    -------
    >>> _feature_names(("age", "income"), torch.zeros(3, 2)), _feature_names(None, torch.zeros(3, 2))
    (['age', 'income'], None)
    """
    if names is None:
        return None
    if inputs.ndim != 2:
        raise ValueError(
            f"feature_names name the features of table rows (N, D); these inputs have shape {tuple(inputs.shape)}"
        )
    if isinstance(names, str) or len(names) != inputs.shape[1]:
        count = "a string" if isinstance(names, str) else f"{len(names)} names"
        raise ValueError(f"feature_names: got {count} for {inputs.shape[1]} features; give one name per feature")
    return [str(name) for name in names]


@dataclass(frozen=True)
class _Checks:
    """What every method of one analysis shares: the resolved targets, the largest |score|, the checks to run."""

    targets: torch.Tensor
    scale: float
    shuffled_model: Any
    randomization: bool
    faithfulness: bool
    steps: int
    seed: int


def _run_method(model: Any, inputs: torch.Tensor, name: str, options: dict[str, Any], checks: _Checks) -> MethodResult:
    if "seed" in registry.option_names(registry.get(name)):
        options.setdefault("seed", checks.seed)
    began = time.perf_counter()
    attribution = explain(model, inputs, method=name, target=checks.targets, **options)
    seconds = time.perf_counter() - began
    maps = attribution.values.detach()
    delta = None if attribution.delta is None else float(attribution.delta.max()) / max(checks.scale, 1e-12)
    outcome = MethodResult(maps, seconds, degenerate_maps(maps).cpu(), delta=delta)
    explain_fn = as_explainer(name, **options)  # the method's own seed stays bound; seed= below re-initialises layers
    if checks.randomization:
        outcome.randomization = model_randomization(
            model, inputs, method=explain_fn, target=checks.targets, seed=checks.seed, reference=maps, progress=False
        )
    if checks.shuffled_model is not None:
        outcome.data_randomization = data_randomization(
            model, checks.shuffled_model, inputs, method=explain_fn, target=checks.targets, reference=maps
        )
    if checks.faithfulness:
        outcome.deletion, outcome.insertion = _faithfulness(model, inputs, maps, checks)
    return outcome


def _random_rankings(model: Any, inputs: torch.Tensor, rankings: int, checks: _Checks) -> tuple[Curve, Curve]:
    """The curves of ``rankings`` seeded random pixel rankings of every input, ranking-major."""
    repeated = inputs.repeat(rankings, *([1] * (inputs.ndim - 1)))
    noise = torch.rand(repeated.shape, generator=generator(checks.seed, inputs.device), device=inputs.device)
    return _faithfulness(model, repeated, noise, checks, checks.targets.repeat(rankings))


def _faithfulness(
    model: Any, inputs: torch.Tensor, maps: torch.Tensor, checks: _Checks, targets: torch.Tensor | None = None
) -> tuple[Curve, Curve]:
    target = checks.targets if targets is None else targets
    shared = {"target": target, "steps": checks.steps, "aggregate": "sum_abs", "progress": False}
    if inputs.ndim == 2:  # table rows: insertion starts from zeros too (blurring needs neighbours)
        shared["baseline"] = "zeros"
    return deletion(model, inputs, maps, **shared), insertion(model, inputs, maps, **shared)
