"""The demo: every method on embedded real data, every check, one HTML report.

Explains test digits (scikit-learn's digits, the zoo's ``digits_cnn``) and
test faces (scikit-image's LFW subset, the zoo's ``lfw_cnn``) with every
registered method, runs model randomisation, data randomisation (against the
zoo's twins trained on shuffled labels), deletion and insertion for each, the
axiom table once, and writes the report to ``out/index.html``. Nothing is
trained or downloaded at run time.

Example
-------
>>> import tempfile
>>> rows = run_demo(tempfile.mkdtemp(), inputs=2, methods=["gradient", "grad_cam"], progress=False)
>>> sorted(rows[0])
['checks', 'data set', 'degenerate maps', 'deletion AUC', 'method', 'random deletion AUC', 'seconds']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import saliencelab as sl
from saliencelab import report
from saliencelab.report.checks import summary

DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"baseline": "zeros", "steps": 32},
    "smoothgrad": {"samples": 50, "noise": 0.15},
    "expected_gradients": {"samples": 64},
    "gradient_shap": {"samples": 64, "noise": 0.1},
    "deeplift": {"baseline": "zeros"},
    "lrp": {"composite": "epsilon_plus"},
    "deep_taylor": {"low": 0.0, "high": 1.0},
    "occlusion": {"window": 2, "stride": 1},
    "shapley_sampling": {"samples": 8},
    "kernel_shap": {"samples": 256},
    "lime": {"samples": 256},
    "rise": {"samples": 500},
    "prediction_difference": {"window": 2},
    "meaningful_perturbation": {"steps": 100},
}
"""Options for the methods whose defaults are not the demo's choice (the others run with their defaults)."""
FACES_OPTIONS: dict[str, dict[str, Any]] = {"prediction_difference": {"window": 4, "stride": 2}}
"""Coarser windows on the 25×25 faces, where one window per pixel costs 576 windows × 10 samples per image."""
BACKGROUND = ("expected_gradients", "gradient_shap", "deepshap", "prediction_difference")
"""Methods that take a batch of training images as references."""
FITTED = ("pattern_net", "pattern_attribution")
"""Methods that fit patterns on training images first."""
GROUPED = ("shapley_sampling", "kernel_shap", "lime")
"""Methods whose cost grows with the number of feature groups."""


def demo_methods(
    x_train: torch.Tensor,
    cam_layer: str | None = None,
    feature_mask: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every registered method with its demo options for a data set whose training images are ``x_train``.

    ``cam_layer`` is the CAM methods' layer (default: their own default) and
    ``feature_mask`` the feature groups of the Shapley-type methods and LIME
    (default: one group per pixel); ``overrides`` replaces options per method.

    Example
    -------
    >>> import torch
    >>> options = demo_methods(torch.rand(100, 1, 8, 8), cam_layer="features.3")
    >>> options["grad_cam"], len(options["deepshap"]["baseline"].tensor)
    ({'layer': 'features.3'}, 16)
    """
    methods: dict[str, dict[str, Any]] = {}
    for name in sl.available_methods():
        options = {**DEMO_OPTIONS.get(name, {}), **(overrides or {}).get(name, {})}
        if name in BACKGROUND:
            options["baseline"] = sl.references(x_train[:16] if name == "deepshap" else x_train[:64])
        if name in FITTED:
            options["fit_data"] = x_train[:512]
        if cam_layer is not None and ("cam" in name and name != "visual_backprop"):
            options["layer"] = cam_layer
        if feature_mask is not None and name in GROUPED:
            options["feature_mask"] = feature_mask
        methods[name] = options
    return methods


def run_demo(
    out: str | Path,
    *,
    inputs: int = 6,
    methods: Sequence[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Explain ``inputs`` test digits and ``inputs`` test faces with every method and write the report.

    Parameters
    ----------
    out:
        Folder for ``index.html`` and its images.
    inputs:
        Inputs per data set (digits 0, 1, 2, ...; faces and non-faces alternating).
    methods:
        A subset of the methods (default: every registered method).

    Returns
    -------
    One row per data set and method: its seconds, its deletion AUC and that of
    random pixel rankings of the same inputs (lower is better for both numbers),
    how many inputs got a constant map, and a summary of the checks it passed,
    failed and could not decide.
    """
    analyses = [_analysis(data, inputs, methods, progress) for data in DATA]
    report.write_report(analyses, out, title="saliencelab demo: digits and faces")
    rows = []
    for analysis in analyses:
        for name, result in analysis.methods.items():
            rows.append(
                {
                    "data set": analysis.title,
                    "method": name,
                    "seconds": result.seconds,
                    "deletion AUC": float(result.deletion.auc.mean()),
                    "random deletion AUC": float(analysis.random_auc("deletion").mean()),
                    "degenerate maps": int(result.degenerate.sum()),
                    "checks": summary(report.verdicts(analysis, name)) + _degenerate_note(result),
                }
            )
    return rows


@dataclass(frozen=True)
class DemoData:
    """One section of the demo: a zoo model with its shuffled-label twin, its data set and how to show it."""

    title: str
    model: str
    dataset: str
    class_names: tuple[str, ...]
    class_order: tuple[int, ...]
    """Inputs are picked cycling through these classes: the first test image of each, then the second, ..."""
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    """Arguments of :func:`demo_methods` for this data set."""
    axioms: bool = False


DATA = (
    DemoData(
        "Digits",
        "digits_cnn",
        "digits",
        tuple(str(digit) for digit in range(10)),
        tuple(range(10)),
        "The zoo's digits_cnn on test images of scikit-learn's 8×8 digits; CAM methods read its last convolution "
        "(features.3, 8×8). The target is the true class.",
        {"cam_layer": "features.3"},
        axioms=True,
    ),
    DemoData(
        "Faces",
        "lfw_cnn",
        "lfw_faces",
        ("not a face", "face"),
        (1, 0),
        "The zoo's lfw_cnn (face or not) on test images of scikit-image's 25×25 LFW subset; CAM methods read its "
        "last spatial layer. The target is the true class.",
        {"feature_mask": "grid", "overrides": FACES_OPTIONS},
    ),
)
"""The demo's two sections."""


def _analysis(data: DemoData, count: int, methods: Sequence[str] | None, progress: bool) -> report.Analysis:
    model = sl.zoo.load(data.model)
    x_train, _, x_test, y_test = sl.zoo.dataset(data.dataset)
    by_class = [(y_test == label).nonzero()[:, 0] for label in data.class_order]
    picks = torch.stack([by_class[i % len(by_class)][i // len(by_class)] for i in range(count)])
    x, y = x_test[picks], y_test[picks]
    with torch.inference_mode():
        predicted = model(x).argmax(dim=1)
    names = data.class_names
    return report.analyse(
        model,
        x,
        methods=_chosen(demo_methods(x_train, **data.options), methods),
        target=y,
        title=data.title,
        description=data.description,
        row_labels=[f"true {names[int(t)]}, predicted {names[int(p)]}" for t, p in zip(y, predicted, strict=True)],
        shuffled_model=sl.zoo.load(data.model, labels="shuffled"),
        axioms=data.axioms,
        progress=progress,
    )


def _degenerate_note(result: report.MethodResult) -> str:
    count = int(result.degenerate.sum())
    return f" (constant map on {count} of {len(result.degenerate)} inputs)" if count else ""


def _chosen(options: dict[str, dict[str, Any]], methods: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    if methods is None:
        return options
    unknown = sorted(set(methods) - set(options))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from saliencelab.available_methods()")
    return {name: options[name] for name in methods}
