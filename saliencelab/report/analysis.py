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

import pandas as pd
import torch
from tqdm.auto import tqdm

from saliencelab.api import explain
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec
from saliencelab.evaluate.axioms import axiom_table
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.evaluate.faithfulness import Curve, deletion, insertion
from saliencelab.evaluate.randomization import data_randomization, model_randomization


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
    """

    maps: torch.Tensor
    seconds: float
    delta: float | None = None
    randomization: pd.DataFrame | None = None
    data_randomization: torch.Tensor | None = None
    deletion: Curve | None = None
    insertion: Curve | None = None


@dataclass
class Analysis:
    """Everything the report shows about one model on one batch of inputs.

    ``random_deletion`` / ``random_insertion`` are the curves of a random pixel
    ranking (the control a faithful map must beat); ``axioms`` is the property ×
    method table of :func:`saliencelab.evaluate.axiom_table` (model-independent).
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


def analyse(
    model: Any,
    inputs: torch.Tensor,
    *,
    methods: Mapping[str, Mapping[str, Any]],
    target: TargetSpec = None,
    title: str,
    description: str = "",
    row_labels: Sequence[str] | None = None,
    shuffled_model: Any = None,
    randomization: bool = True,
    faithfulness: bool = True,
    axioms: bool = False,
    steps: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Analysis:
    """Explain ``inputs`` with each method and run the checks the report shows.

    Parameters
    ----------
    model:
        The model (left exactly as it was).
    inputs:
        A batch ``(N, C, H, W)``.
    methods:
        Method name to its options, e.g. ``{"integrated_gradients": {"steps": 32}}``.
    target:
        As for :func:`saliencelab.explain`; resolved once (argmax for ``None``)
        so that every method and check explains the same class.
    title, description, row_labels:
        Text for the report (row labels default to ``"target k"``).
    shuffled_model:
        The same architecture trained on shuffled labels, for data randomisation.
    randomization, faithfulness, axioms:
        Which checks to run: model randomisation (cascading, Spearman of absolute
        values), deletion and insertion curves with ``steps`` steps, the axiom table.
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
    targets = _resolved_targets(model, inputs, target)
    labels = list(row_labels) if row_labels is not None else [f"target {int(t)}" for t in targets]
    if len(labels) != len(inputs):
        raise ValueError(f"row_labels has {len(labels)} labels for {len(inputs)} inputs; give one per input")
    result = Analysis(title, description, inputs, targets, labels)
    if faithfulness:
        noise = torch.rand(inputs.shape, generator=generator(seed, inputs.device), device=inputs.device)
        result.random_deletion, result.random_insertion = _faithfulness(model, inputs, noise, targets, steps)
    bar = tqdm(methods.items(), desc=f"{title}: methods", disable=not progress, leave=False)
    for name, options in bar:
        bar.set_postfix_str(name)
        result.methods[name] = _run_method(
            model, inputs, targets, name, dict(options), shuffled_model, randomization, faithfulness, steps, seed
        )
    if axioms:
        result.axioms = axiom_table(list(methods), seed=seed, progress=progress)
    return result


def _run_method(
    model: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    name: str,
    options: dict[str, Any],
    shuffled_model: Any,
    randomization: bool,
    faithfulness: bool,
    steps: int,
    seed: int,
) -> MethodResult:
    if "seed" in _option_names(name):
        options.setdefault("seed", seed)
    began = time.perf_counter()
    attribution = explain(model, inputs, method=name, target=targets, **options)
    seconds = time.perf_counter() - began
    maps = attribution.values.detach()
    outcome = MethodResult(maps, seconds, delta=_relative_delta(model, inputs, targets, attribution.delta))
    explain_fn = as_explainer(name, **options)  # the method's own seed stays bound; seed= below re-initialises layers
    if randomization:
        outcome.randomization = model_randomization(
            model, inputs, method=explain_fn, target=targets, seed=seed, progress=False
        )
    if shuffled_model is not None:
        outcome.data_randomization = data_randomization(
            model, shuffled_model, inputs, method=explain_fn, target=targets
        )
    if faithfulness:
        outcome.deletion, outcome.insertion = _faithfulness(model, inputs, maps, targets, steps)
    return outcome


def _faithfulness(model: Any, inputs: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, steps: int):
    shared = {"target": targets, "steps": steps, "aggregate": "sum_abs", "progress": False}
    return (
        deletion(model, inputs, maps, **shared),
        insertion(model, inputs, maps, **shared),
    )


def _resolved_targets(model: Any, inputs: torch.Tensor, target: TargetSpec) -> torch.Tensor:
    if callable(target):
        raise ValueError("the report explains classes: give an int, one int per input, or None (the argmax)")
    with torch.inference_mode():
        output = model(inputs)
    if target is None:
        return output.argmax(dim=1)
    resolved = torch.as_tensor(target, device=inputs.device).long().reshape(-1)
    return resolved.expand(len(inputs)).clone() if resolved.numel() == 1 else resolved


def _relative_delta(model: Any, inputs: torch.Tensor, targets: torch.Tensor, delta: torch.Tensor | None):
    if delta is None:
        return None
    with torch.inference_mode():
        scores = model(inputs).gather(1, targets[:, None]).abs().max()
    return float(delta.max() / scores.clamp_min(1e-12))


def _option_names(name: str) -> list[str]:
    from saliencelab.core import registry

    return registry.option_names(registry.get(name))
