"""Sanity checks on loaded inputs: model (and data) randomisation for several methods, as one table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from saliencelab import evaluate
from saliencelab.io.inputs import LoadedInput
from saliencelab.io.run import check_model_takes, method_errors
from saliencelab.report.checks import randomisation_verdict

COLUMNS = ["input", "method", "step", "layer", "similarity"]


def sanity_table(
    model: torch.nn.Module,
    inputs: Sequence[LoadedInput],
    methods: Sequence[str],
    *,
    target: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    mode: str = "cascading",
    similarity: str = "spearman_abs",
    seed: int = 0,
    shuffled: torch.nn.Module | None = None,
) -> pd.DataFrame:
    """Model randomisation (and data randomisation against ``shuffled``) of every method on every input.

    Parameters
    ----------
    model, inputs, methods, target, options:
        As for :func:`saliencelab.io.explain_inputs`.
    mode, similarity, seed:
        Passed to :func:`saliencelab.evaluate.model_randomization`.
    shuffled:
        The same architecture trained on shuffled labels: adds a row per method
        and input from :func:`saliencelab.evaluate.data_randomization` (its
        ``step`` is ``"data"``, its ``layer`` empty).

    Returns
    -------
    One row per randomisation step: ``input``, ``method``, ``step``, ``layer`` and
    ``similarity`` (mean over the input's samples) to the trained model's maps.
    ``table.attrs["verdicts"]`` holds each method's verdict per input file and
    check (:func:`saliencelab.report.randomisation_verdict`: the interval of the
    mean over the file's samples against 0.5) with the interval as text.

    Example
    -------
    >>> from pathlib import Path
    >>> import saliencelab as sl
    >>> x = sl.zoo.dataset("digits")[2][:2]
    >>> table = sanity_table(sl.zoo.load("digits_cnn"), [LoadedInput(Path("x.npy"), x, x)], ["gradient"])
    >>> table["layer"].tolist()
    ['classifier.3', 'classifier.1', 'features.2', 'features.0']
    >>> table.attrs["verdicts"][["method", "outcome"]].values.tolist()  # two samples give a wide interval
    [['gradient', 'inconclusive']]
    """
    options = options or {}
    for loaded in inputs:
        check_model_takes(model, loaded, target)
    rows: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []

    def judge(check: str, per_sample: np.ndarray, where: dict[str, str]) -> None:
        verdict = randomisation_verdict(check, per_sample)
        verdicts.append({**where, "check": check, "outcome": verdict.outcome, "similarity": verdict.interval})

    for loaded in inputs:
        for method in methods:
            with method_errors(method, loaded.path.name):
                steps = evaluate.model_randomization(
                    model, loaded.inputs, method=method, target=target, mode=mode, similarity=similarity,
                    seed=seed, progress=False, method_options=options.get(method),
                )  # fmt: skip
                where = {"input": loaded.path.name, "method": method}
                rows += [{**where, **step} for step in steps[["step", "layer", "similarity"]].to_dict("records")]
                judge("model randomisation", np.array(steps["per_sample"].to_list()).mean(axis=0), where)
                if shuffled is not None:
                    score = evaluate.data_randomization(
                        model, shuffled, loaded.inputs, method=method, target=target, similarity=similarity,
                        method_options=options.get(method),
                    )  # fmt: skip
                    rows.append({**where, "step": "data", "layer": "", "similarity": float(score.mean())})
                    judge("data randomisation", score.double().cpu().numpy(), where)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["verdicts"] = pd.DataFrame(verdicts, columns=["input", "method", "check", "outcome", "similarity"])
    return table
