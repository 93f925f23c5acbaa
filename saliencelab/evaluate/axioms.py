"""Which attribution axioms does a method satisfy? Empirical checks on small witness networks.

Seven properties, from Sundararajan et al. 2017 and Shrikumar et al. 2017, are
usually tabulated for Gradient, Guided Backprop, DeepLIFT and Integrated
Gradients; Kindermans et al. 2017 add input invariance.
:func:`axiom_table` decides each cell by running the method on a witness network
(:mod:`saliencelab.evaluate.witnesses`) where the property can fail, with one
visible check function per property below. Nothing is looked up: a method's
cell is what it computes, so a new method, a user's callable or a changed
option (``integration="riemann_right"``) gets its own answers.

A check *passes* when the method satisfies the property on its witness; it
proves a failure, and only makes a pass plausible. All witnesses are float64, so
exact properties are checked to round-off.

References. Sundararajan et al. 2017 state completeness, sensitivity and the
other reference properties against a reference ``x'``. Every witness has its reference; a named
method that takes a baseline gets it (a per-sample tensor, or
``sl.references(..., per_sample=True)`` for methods that draw references), a
callable gets it when it has a ``baseline`` parameter. A method without a
reference (gradient, guided backprop, LRP, ...) is checked against the same
reference it cannot see: completeness then asks whether its attributions sum
to ``f(x) − f(x')`` anyway, which on the random-weight, random-reference
witness they do not; hence the usual table's "No" for gradient and guided backprop.

Example
-------
>>> table = axiom_table(["gradient", "integrated_gradients"])
>>> table.loc["sensitivity"].tolist(), table.loc["implementation_invariance"].tolist()
([False, True], [True, True])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from saliencelab.core import registry
from saliencelab.core.baselines import references
from saliencelab.core.degenerate import checked_by_caller
from saliencelab.core.sampling import generator
from saliencelab.errors import UnsupportedOperationError
from saliencelab.evaluate import witnesses
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.evaluate.invariance import attribution_pair

MethodSpec = str | Callable | tuple[str, dict[str, Any]]
"""A method name, a ``(name, options)`` pair, or a callable ``(model, inputs, target[, baseline]) -> tensor``."""

PROPERTIES = (
    "sensitivity",
    "specificity",
    "continuity",
    "completeness",
    "implementation_invariance",
    "symmetry",
    "linearity",
    "input_invariance",
)
"""The rows of :func:`axiom_table`: the seven usual properties, then input invariance (Kindermans et al. 2017)."""

INPUT_SHIFT = -1.0
"""Kindermans et al.'s shift: inputs in [0, 1] moved to [−1, 0]."""

ROUND_OFF = 1e-9
"""Tolerance of the exact properties: float64 witnesses reproduce them to ~1e-15, seven orders below;
a method that departs from them at all (LRP's ε stabiliser: ~1e-7 to 1e-6) is two orders above."""

TOLERANCES = {prop: ROUND_OFF for prop in PROPERTIES} | {"continuity": 0.1, "completeness": 0.1}
"""The tolerance of each check (why each value: the check's docstring)."""

LINEAR_WEIGHTS = (0.7, 1.8)
"""a and b of the linearity witness a·f1 + b·f2 (positive: see :func:`check_linearity`)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one property check: the measured value against its tolerance.

    ``passed`` is ``measured <= tolerance`` except for sensitivity, where the
    measured (smallest) attribution share must exceed the tolerance. A result is
    truthy when it passed.

    Example
    -------
    >>> bool(CheckResult(True, 0.0, 1e-6))
    True
    """

    passed: bool
    measured: float
    tolerance: float

    def __bool__(self) -> bool:
        return self.passed


class _Subject:
    """A method under test: ``explain(model, inputs, target, reference)`` -> attributions, and its label."""

    def __init__(self, spec: MethodSpec) -> None:
        if isinstance(spec, tuple):
            if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], dict):
                raise TypeError(f"a method with options must be a (name, options dict) pair; got {spec!r}")
            name, options = spec
        else:
            name, options = spec, {}
        if isinstance(name, str):
            if "baseline" in options:
                raise ValueError(
                    "axiom_table sets the baseline itself (each witness has its reference, see the axioms module); "
                    f"remove baseline= from the options of {name}"
                )
            as_explainer(name, **options)  # an unknown name or option raises here, not in every cell
            instance = _instance(name, options)
            self.takes_baseline = getattr(instance, "takes_baseline", registry.get(name).takes_baseline)
            self.draws_references = getattr(instance, "draws_references", False)
            shown = ", ".join(f"{k}={v}" for k, v in options.items())
            self.label = f"{name}({shown})" if options else name
        elif callable(name):
            parameters = inspect.signature(name).parameters
            self.takes_baseline = "baseline" in parameters
            self.draws_references = False
            self.label = getattr(name, "__name__", type(name).__name__)
        else:
            raise TypeError(f"a method must be a name, a (name, options) pair or a callable; got {spec!r}")
        self.method, self.options = name, options

    def explain(self, model: Any, inputs: torch.Tensor, target: Any, reference: torch.Tensor) -> torch.Tensor:
        """Attributions of ``model`` at ``inputs`` for ``target``, with ``reference`` where the method takes one.

        Constant maps raise no warning: a witness may zero a method's map, and the check judges it.
        """
        with checked_by_caller():
            return self._explain(model, inputs, target, reference)

    def _explain(self, model: Any, inputs: torch.Tensor, target: Any, reference: torch.Tensor) -> torch.Tensor:
        if not self.takes_baseline:
            return as_explainer(self.method, **self.options)(model, inputs, target)
        if callable(self.method):
            return as_explainer(functools.partial(self.method, baseline=reference))(model, inputs, target)
        baseline = references(reference.unsqueeze(1), per_sample=True) if self.draws_references else reference
        return as_explainer(self.method, baseline=baseline, **self.options)(model, inputs, target)


def _instance(name: str, options: dict) -> object | None:
    """The method built on a stand-in model, to read whether it takes a baseline; None if it cannot be built so."""
    try:
        return registry.get(name)(nn.Identity(), **options)
    except (ValueError, TypeError):
        return None


def _random(seed: int, *shape: int, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    draw = torch.rand(shape, generator=generator(seed, torch.device("cpu")), dtype=witnesses.DTYPE)
    return low + (high - low) * draw


def _largest(values: torch.Tensor) -> float:
    return float(values.abs().max()) if values.numel() else 0.0


def _within(measured: float, prop: str) -> CheckResult:
    """Passed when ``measured`` (an error) is at most the property's tolerance."""
    return CheckResult(measured <= TOLERANCES[prop], measured, TOLERANCES[prop])


def check_sensitivity(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Sensitivity(a): a feature that alone changes the prediction gets a non-zero attribution.

    Witness: Sundararajan et al.'s f(x) = 1 − ReLU(1 − x) at x ∈ {0.5, 2, 3} with the
    reference x' = 0 (f(x) − f(x') = 0.5, 1, 1). Measured: the smallest
    |attribution| / |f(x) − f(x')| over the three inputs. It must exceed
    :data:`ROUND_OFF` (1e-9): any genuine share of the change is far above float64
    round-off (LIME's, the smallest seen, is 6e-5), while a saturated gradient
    gives exactly 0 (gradient and guided backprop at x = 2 and 3).
    ``seed`` is unused: the witness is the paper's fixed example.

    Example
    -------
    >>> check_sensitivity("gradient").passed, check_sensitivity("deeplift").passed
    (False, True)
    """
    model = witnesses.saturating_unit()
    inputs = torch.tensor([[0.5], [2.0], [3.0]], dtype=witnesses.DTYPE)
    reference = torch.zeros_like(inputs)
    values = _Subject(method).explain(model, inputs, 0, reference)
    with torch.no_grad():
        change = (model(inputs) - model(reference))[:, 0].abs()
    measured = float((values.reshape(3).abs() / change).min())
    return CheckResult(measured > TOLERANCES["sensitivity"], measured, TOLERANCES["sensitivity"])


def check_specificity(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Specificity (Sensitivity(b), "dummy"): a feature f does not depend on gets zero attribution.

    Witness: :func:`~saliencelab.evaluate.witnesses.dummy_feature_net`, whose
    first layer reads feature 3 through non-zero weights that the second layer
    cancels exactly; 4 random inputs and references in [−1, 1]³ that differ in
    every feature. Measured: largest |attribution of feature 3| / largest
    |attribution|. Tolerance :data:`ROUND_OFF` (1e-9): the cancellation leaves
    ~1e-16 of float64 round-off; LRP-ε's stabiliser leaks ~4e-7 to the dummy, and
    a method that truly credits it (Deep Taylor, LIME) does so at 1e-3 to 0.2.

    Example
    -------
    >>> check_specificity("gradient").passed
    True
    """
    model = witnesses.dummy_feature_net(seed)
    inputs, reference = _random(seed, 4, 3), _random(seed + 1, 4, 3)
    values = _Subject(method).explain(model, inputs, 0, reference).reshape(4, 3)
    return _within(_largest(values[:, 2]) / max(_largest(values), 1e-300), "specificity")


def check_continuity(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Continuity: attributions change continuously where the gradient jumps.

    Witness: f(x) = max(0, x1 + x2 − 10) (Shrikumar et al. 2017's max(0, x − 10) on x2 = 0),
    reference 0, evaluated on both sides of the kink, x1 = 10 ± h with
    h = 1e-2, 1e-3, 1e-4. Measured: the largest change of any attribution across
    the kink. Tolerance 0.1: the output changes by at most h ≤ 0.01 there, and an
    integral over the path adds at most x times its last quadrature weight
    (≈ 0.015 for 50 Gauss-Legendre nodes), while the gradient jumps by 1 and
    gradient × input by 10 (Shrikumar et al. 2017). ``seed`` is unused (a fixed example).

    Example
    -------
    >>> check_continuity("gradient").passed, check_continuity("integrated_gradients").passed
    (False, True)
    """
    model = witnesses.kink_net()
    offsets = torch.tensor([1e-2, 1e-3, 1e-4], dtype=witnesses.DTYPE)
    x1 = torch.cat([witnesses.KINK - offsets, witnesses.KINK + offsets])
    inputs = torch.stack([x1, torch.zeros_like(x1)], dim=1)
    values = _Subject(method).explain(model, inputs, 0, torch.zeros_like(inputs)).reshape(6, 2)
    return _within(_largest(values[3:] - values[:3]), "continuity")


def check_completeness(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Completeness (summation to delta): attributions sum to f(x) − f(x').

    Witness: a random-weight ReLU MLP 4 → 8 → 8 → 3 with biases, 4 random inputs
    and 4 random references (normal, one per input), classes 0, 1, 2, 0 (the
    peers' tests miss completeness errors that only random weights and
    references reveal, DESIGN.md). Measured: the largest
    |Σ attributions − (f(x) − f(x'))| / |f(x) − f(x')|. Tolerance 0.1: exact
    methods (DeepLIFT, Shapley values) reach 1e-15, but Integrated Gradients'
    default 50-node Gauss-Legendre quadrature errs by up to 4.8e-2 here (the ReLU
    kinks along the path; 6e-3 at 200 nodes), and the check is of the property,
    not of a step count. Methods without it are off by 0.3 (Monte-Carlo expected
    gradients with one reference) to 9 (DeconvNet).
    A method without a reference is held to the witness's reference it cannot
    see (module docstring): it passes only if its sum happens to equal the change.

    Example
    -------
    >>> check_completeness("gradient_x_input").passed, check_completeness("deeplift").passed
    (False, True)
    """
    model = witnesses.random_mlp((4, 8, 8, 3), seed)
    inputs = torch.randn(4, 4, generator=generator(seed + 2, torch.device("cpu")), dtype=witnesses.DTYPE)
    reference = torch.randn(4, 4, generator=generator(seed + 3, torch.device("cpu")), dtype=witnesses.DTYPE)
    target = torch.tensor([0, 1, 2, 0])
    values = _Subject(method).explain(model, inputs, target, reference).reshape(4, -1)
    rows = torch.arange(4)
    with torch.no_grad():
        change = (model(inputs) - model(reference))[rows, target]
    return _within(float(((values.sum(dim=1) - change).abs() / change.abs().clamp(min=1e-12)).max()), "completeness")


def check_implementation_invariance(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Implementation invariance: two networks that compute the same function get the same attributions.

    Witness: the IG paper's pair (Sundararajan et al. 2017), f = ReLU(ReLU(x1) − 1 − ReLU(x2))
    and g = ReLU(ReLU(x1 − 1) − ReLU(x2)), at the paper's x = (3, 1) and 4 random
    points in [0, 4]², reference 0 (in the paper DeepLIFT gives (1.5, −0.5) on f and
    (2, −1) on g, IG (1.5, −0.5) on both). Measured: largest |A_f − A_g| / largest
    |A_f|. Tolerance :data:`ROUND_OFF`: the two networks agree to float64
    round-off; DeepLIFT is off by 1.8.

    Example
    -------
    >>> check_implementation_invariance("gradient").passed, check_implementation_invariance("deeplift").passed
    (True, False)
    """
    points = torch.cat([torch.tensor([[3.0, 1.0]], dtype=witnesses.DTYPE), _random(seed, 4, 2, low=0.0, high=4.0)])
    reference = torch.zeros_like(points)
    subject = _Subject(method)
    on_f = subject.explain(witnesses.InvarianceF(), points, 0, reference)
    on_g = subject.explain(witnesses.InvarianceG(), points, 0, reference)
    return _within(_largest(on_f - on_g) / max(_largest(on_f), 1e-300), "implementation_invariance")


def check_symmetry(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Symmetry preservation: features the function treats alike, at equal values, get equal attributions.

    Witness: :func:`~saliencelab.evaluate.witnesses.symmetric_net`, f(x1, x2, x3) =
    f(x2, x1, x3) with no symmetric unit inside; 4 random inputs with x1 = x2 and
    references with x1' = x2'. Measured: largest |A1 − A2| / largest |A|.
    Tolerance :data:`ROUND_OFF`: a deterministic method of a symmetric function
    is symmetric to round-off; sampling methods fail by their Monte-Carlo error
    (SmoothGrad 0.17, Shapley sampling 0.04).

    Example
    -------
    >>> check_symmetry("integrated_gradients").passed
    True
    """
    model = witnesses.symmetric_net(seed)
    inputs, reference = _random(seed, 4, 3), _random(seed + 1, 4, 3)
    inputs[:, 1], reference[:, 1] = inputs[:, 0], reference[:, 0]
    values = _Subject(method).explain(model, inputs, 0, reference).reshape(4, 3)
    return _within(_largest(values[:, 0] - values[:, 1]) / max(_largest(values), 1e-300), "symmetry")


def check_linearity(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Linearity: the attributions of a·f1 + b·f2 are a·A(f1) + b·A(f2).

    Witness: two random-weight ReLU MLPs 4 → 8 → 3 combined by a final linear
    layer with a = 0.7, b = 1.8 (:class:`~saliencelab.evaluate.witnesses.LinearCombination`);
    4 random inputs and references, classes 0, 1, 2, 0. Measured: largest
    |A(a·f1 + b·f2) − a·A(f1) − b·A(f2)| / largest |A(a·f1 + b·f2)|. Tolerance
    :data:`ROUND_OFF` (a seeded sampling method draws the same samples for all
    three; LRP-ε's stabiliser departs by 2e-6).

    The weights are positive, as in the usual table of these properties, which marks guided
    backprop linear: guided backprop (and DeconvNet) discard negative signals at
    ReLUs, so they are positively homogeneous but give A(−f) ≠ −A(f).

    Example
    -------
    >>> check_linearity("gradient").passed
    True
    """
    f1, f2 = witnesses.random_mlp((4, 8, 3), seed + 1), witnesses.random_mlp((4, 8, 3), seed + 2)
    a, b = LINEAR_WEIGHTS
    inputs, reference = _random(seed, 4, 4), _random(seed + 1, 4, 4)
    target = torch.tensor([0, 1, 2, 0])
    subject = _Subject(method)
    combined = subject.explain(witnesses.LinearCombination(f1, f2, a, b), inputs, target, reference)
    parts = a * subject.explain(f1, inputs, target, reference) + b * subject.explain(f2, inputs, target, reference)
    return _within(_largest(combined - parts) / max(_largest(combined), 1e-300), "linearity")


def check_input_invariance(method: MethodSpec, *, seed: int = 0) -> CheckResult:
    """Input invariance (Kindermans et al. 2017): a constant input shift, undone by the first bias.

    Witness: a random-weight conv net (Conv-ReLU-Conv-ReLU-Linear, no padding) on
    3 random 2×6×6 inputs in [0, 1], and its :func:`~saliencelab.evaluate.invariance.shifted_model`
    for the shift −1, explained at x − 1. The reference is the same zero image
    for both networks (a fixed reference, as in the paper), so reference methods
    see it move relative to the data. Measured: largest |A_f(x) − A_g(x − 1)| /
    largest |A_f(x)|. Tolerance :data:`ROUND_OFF`: f and g agree to float64
    round-off; gradient × input, IG and DeepLIFT with the zero reference are off by ~1.

    Example
    -------
    >>> check_input_invariance("gradient").passed, check_input_invariance("gradient_x_input").passed
    (True, False)
    """
    model = witnesses.random_convnet(seed)
    inputs = _random(seed, 3, 2, 6, 6, low=0.0, high=1.0)
    subject = _Subject(method)

    def explain_fn(net: Any, x: torch.Tensor, target: Any) -> torch.Tensor:
        return subject.explain(net, x, target, torch.zeros_like(x))

    original, shifted = attribution_pair(model, inputs, explain_fn, torch.tensor([0, 1, 2]), INPUT_SHIFT)
    return _within(_largest(original - shifted) / max(_largest(original), 1e-300), "input_invariance")


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "sensitivity": check_sensitivity,
    "specificity": check_specificity,
    "continuity": check_continuity,
    "completeness": check_completeness,
    "implementation_invariance": check_implementation_invariance,
    "symmetry": check_symmetry,
    "linearity": check_linearity,
    "input_invariance": check_input_invariance,
}
"""The check of each property of :data:`PROPERTIES`."""

_CANNOT_RUN = (UnsupportedOperationError, ValueError)
"""What a method raises when it cannot run on a witness (no conv layer for a CAM, an unsupported operation)."""


def axiom_table(methods: Sequence[MethodSpec], *, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Run every property check of :data:`PROPERTIES` for every method: a table of booleans.

    Parameters
    ----------
    methods:
        Method names, ``(name, options)`` pairs (``("deeplift", {"rule": "reveal_cancel"})``)
        or callables ``(model, inputs, target) -> tensor`` (a callable with a
        ``baseline`` parameter also gets each witness's reference).
    seed:
        Seed of the random witnesses (weights, inputs, references).
    progress:
        Show a progress bar over the cells.

    Returns
    -------
    pandas.DataFrame
        Rows = properties, columns = method labels, cells ``True``/``False``, or
        ``None`` where the method cannot run on the witness (a CAM on a network
        without a spatial layer). ``table.attrs`` holds ``"measured"`` (a
        DataFrame of each check's measured value, NaN where missing),
        ``"tolerance"`` (a Series, one per property) and ``"missing"``
        (``{(property, label): reason}``).

    Example
    -------
    >>> table = axiom_table(["gradient", "deeplift", "grad_cam"])
    >>> table.loc["completeness"].tolist()
    [False, True, None]
    >>> table.attrs["missing"][("completeness", "grad_cam")]  # doctest: +ELLIPSIS
    'ValueError: ...'
    """
    if isinstance(methods, (str, tuple)) or callable(methods):
        raise TypeError("methods must be a list of method names, (name, options) pairs or callables")
    subjects = [(spec, _Subject(spec).label) for spec in methods]
    labels = [label for _, label in subjects]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two methods have the same label in {labels}; give each its own options or name")
    cells: dict[str, dict[str, bool | None]] = {label: {} for label in labels}
    measured = pd.DataFrame(index=list(PROPERTIES), columns=labels, dtype=float)
    missing: dict[tuple[str, str], str] = {}
    jobs = [(prop, spec, label) for spec, label in subjects for prop in PROPERTIES]
    for prop, spec, label in tqdm(jobs, desc="axioms", disable=not progress):
        try:
            result = CHECKS[prop](spec, seed=seed)
        except _CANNOT_RUN as error:
            cells[label][prop] = None
            missing[(prop, label)] = f"{type(error).__name__}: {error}"
            continue
        cells[label][prop] = result.passed
        measured.loc[prop, label] = result.measured
    table = pd.DataFrame(cells, index=list(PROPERTIES), dtype=object)
    table.attrs["measured"] = measured
    table.attrs["tolerance"] = pd.Series(TOLERANCES)
    table.attrs["missing"] = missing
    return table
