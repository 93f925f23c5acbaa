"""Verdicts a reviewer can sign: each check's effect, its interval across inputs, and pass, fail or inconclusive.

Every verdict is a stated test on the numbers of an :class:`Analysis`, so a
reader can re-derive it from the tables beside it:

- ``model randomisation`` (Adebayo et al. 2018): per input, the Spearman rank
  correlation of absolute values between the trained model's map and the
  randomised models' maps, averaged over the cascading steps (top layer, top
  two, ..., all). It **passes** when the upper end of the confidence interval of
  the mean over inputs lies below :attr:`Thresholds.decorrelated` (the map
  depends on what the model learnt, the top layers included), **fails** when
  the lower end lies above it, and is **inconclusive** when the interval
  contains it. (Only the fully randomised step would let Guided Backprop pass:
  its maps barely change until the first layers go.)
- ``data randomisation``: the same, for the similarity to the maps of the twin
  trained on shuffled labels.
- ``deletion`` / ``insertion`` (Petsiuk et al. 2018): per input, how much the
  map's area under the curve improves on the mean of ``K`` seeded random pixel
  rankings of the same input (lower AUC for deletion, higher for insertion).
  It **passes** when the lower end of the interval of the mean improvement lies
  above :attr:`Thresholds.margin`, **fails** when the upper end lies below it
  (no better than chance by the margin: an untrained network's maps), and is
  **inconclusive** otherwise.
- ``completeness``: for methods that report a completeness error, passes when
  the largest error is at most :attr:`Thresholds.complete` of the largest
  score, fails otherwise (an exact number: no interval).

The intervals are Student-t intervals of the mean over inputs (a paired t-test
against the threshold for deletion and insertion), at
:attr:`Thresholds.confidence`; the one-sided p-value of the pass direction is
reported beside them. One input gives no interval: every statistical check is
then inconclusive. A **degenerate map** (constant, all zero included, on any
input; :func:`saliencelab.core.degenerate.degenerate_maps`) fails every check
with that reason: it ranks nothing, so no number computed from it means
anything.

Example
-------
>>> import saliencelab as sl
>>> from saliencelab.report.analysis import analyse
>>> model = sl.zoo.load("digits_cnn")
>>> _, _, x, y = sl.zoo.dataset("digits")
>>> result = analyse(model, x[:4], methods={"integrated_gradients": {"steps": 64}}, title="digits", progress=False)
>>> found = verdicts(result, "integrated_gradients")
>>> found["completeness"].outcome, found["deletion"].outcome
('pass', 'pass')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from saliencelab.core.degenerate import describe_degenerate
from saliencelab.report.analysis import Analysis, MethodResult
from saliencelab.report.thresholds import Thresholds

CHECKS = ("model randomisation", "data randomisation", "deletion", "insertion", "completeness")
"""Every check, in the order the report lists them."""
OUTCOMES = ("pass", "fail", "inconclusive")
"""The three outcomes of a check."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check on one method's maps, with the numbers it rests on.

    Attributes
    ----------
    check:
        One of :data:`CHECKS`.
    outcome:
        ``"pass"``, ``"fail"`` or ``"inconclusive"``.
    effect:
        The mean over inputs of the per-input statistic (NaN when no input has one).
    low, high:
        The confidence interval of ``effect`` (equal to it for an exact check,
        infinite for a single input).
    threshold:
        What ``effect`` is compared with.
    better:
        ``"below"`` or ``"above"``: which side of the threshold passes.
    test:
        The statistic and the test, in words.
    p_value:
        One-sided p-value of the pass direction against the threshold, or ``None``.
    per_input:
        The per-input statistics the interval is computed from.
    reason:
        Why the outcome is what it is, in words.

    Example
    -------
    >>> v = Verdict("deletion", "pass", 0.12, 0.08, 0.16, 0.01, "above", "paired t-test", 0.001, (0.1, 0.14), "ok")
    >>> v.passed, v.interval
    (True, '0.120 [0.080, 0.160]')
    """

    check: str
    outcome: str
    effect: float
    low: float
    high: float
    threshold: float
    better: str
    test: str
    p_value: float | None
    per_input: tuple[float, ...]
    reason: str

    @property
    def passed(self) -> bool:
        """Whether the check passed (an inconclusive check did not)."""
        return self.outcome == "pass"

    @property
    def interval(self) -> str:
        """The effect and its interval as text, e.g. ``'0.120 [0.080, 0.160]'``."""
        if math.isnan(self.effect):
            return "—"
        if self.low == self.high:
            return f"{self.effect:.3g}"
        return f"{self.effect:.3f} [{self.low:.3f}, {self.high:.3f}]"


def verdicts(analysis: Analysis, method: str, thresholds: Thresholds | None = None) -> dict[str, Verdict]:
    """Each check that ran for ``method``, by name (checks that did not run are absent).

    ``thresholds`` default to those the analysis was made with (``analysis.thresholds``).

    Example
    -------
    >>> import saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:10], methods={"gradient": {}}, title="digits", progress=False)
    >>> {name: v.outcome for name, v in verdicts(result, "gradient").items()}
    {'model randomisation': 'pass', 'deletion': 'pass', 'insertion': 'inconclusive'}
    >>> verdicts(result, "gradient")["insertion"].reason
    'the interval contains 0.01: more inputs are needed to decide'
    """
    limits = thresholds or analysis.thresholds
    outcome = analysis.methods[method]
    found: dict[str, Verdict] = {}
    if outcome.randomization is not None and len(outcome.randomization):
        steps = np.array(outcome.randomization["per_sample"].to_list(), dtype=float)  # (steps, N)
        found["model randomisation"] = randomisation_verdict("model randomisation", steps.mean(axis=0), limits)
    if outcome.data_randomization is not None:
        similarity = outcome.data_randomization.double().cpu().numpy()
        found["data randomisation"] = randomisation_verdict("data randomisation", similarity, limits)
    for kind in ("deletion", "insertion"):
        curve, control = getattr(outcome, kind), analysis.random_auc(kind)
        if curve is not None and control is not None:
            ours = curve.auc.double().cpu().numpy()
            gain = control - ours if kind == "deletion" else ours - control
            found[kind] = _above(kind, gain, limits, analysis.rankings)
    if outcome.delta is not None:
        found["completeness"] = _complete(outcome.delta, limits)
    return {name: _degenerate(verdict, outcome) for name, verdict in found.items()}


def verdict_table(analysis: Analysis, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """Every method's verdicts as one table: a row per method and check, with the numbers behind each.

    Example
    -------
    >>> import saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:4], methods={"gradient": {}}, title="digits", progress=False)
    >>> table = verdict_table(result)
    >>> list(table.columns)[:6]
    ['method', 'check', 'outcome', 'effect', 'low', 'high']
    """
    rows = [
        {"method": name, **{k: v for k, v in vars(verdict).items() if k != "per_input"}}
        for name in analysis.methods
        for verdict in verdicts(analysis, name, thresholds).values()
    ]
    columns = ["method", "check", "outcome", "effect", "low", "high", "threshold", "better", "p_value", "test"]
    return pd.DataFrame(rows, columns=[*columns, "reason"])


def summary(found: dict[str, Verdict]) -> str:
    """A short label for a method: its checks by outcome, in the report's order.

    Example
    -------
    >>> v = lambda check, outcome: Verdict(check, outcome, 0.0, 0.0, 0.0, 0.0, "above", "", None, (), "")
    >>> summary({"deletion": v("deletion", "fail"), "model randomisation": v("model randomisation", "pass")})
    'passes: model randomisation · fails: deletion'
    """
    parts = []
    for outcome, label in (("pass", "passes"), ("fail", "fails"), ("inconclusive", "inconclusive")):
        names = [name for name in CHECKS if name in found and found[name].outcome == outcome]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    return " · ".join(parts) or "no checks ran"


STATISTICS = {
    "model randomisation": "per input, the similarity to the randomised models' maps, averaged over the steps",
    "data randomisation": "per input, the similarity to the map of the twin trained on shuffled labels",
}
"""What the per-input statistic of each randomisation check is."""


def randomisation_verdict(check: str, per_input: np.ndarray, thresholds: Thresholds | None = None) -> Verdict:
    """The verdict of a randomisation check from its per-input similarities (NaN: undefined, a degenerate map).

    Passes when the interval of the mean lies below ``thresholds.decorrelated``
    (the maps changed), fails when it lies above, and is inconclusive otherwise.
    The caller fails degenerate maps (see :func:`verdicts`).

    Example
    -------
    >>> import numpy as np
    >>> v = randomisation_verdict("model randomisation", np.array([0.1, 0.2, 0.15, 0.12]))
    >>> v.outcome, v.interval
    ('pass', '0.143 [0.073, 0.212]')
    """
    limits = thresholds or Thresholds()
    values = np.asarray(per_input, dtype=float)
    effect, low, high, p_value = _interval(values, limits.decorrelated, limits.confidence, greater=False)
    test = f"{STATISTICS.get(check, check)}; {_t_interval(limits.confidence, values)}"
    if high < limits.decorrelated:
        outcome, reason = "pass", f"the interval lies below {limits.decorrelated}: the maps changed"
    elif low > limits.decorrelated:
        outcome, reason = "fail", f"the interval lies above {limits.decorrelated}: the maps barely changed"
    else:
        outcome, reason = "inconclusive", _undecided(values, limits.decorrelated)
    threshold = limits.decorrelated
    return Verdict(check, outcome, effect, low, high, threshold, "below", test, p_value, _tuple(values), reason)


def _above(check: str, gains: np.ndarray, limits: Thresholds, rankings: int) -> Verdict:
    """An AUC improvement over random rankings that passes when its mean is confidently above ``limits.margin``."""
    effect, low, high, p_value = _interval(gains, limits.margin, limits.confidence, greater=True)
    side = "below" if check == "deletion" else "above"
    test = (
        f"per input, AUC {side} the mean of {rankings} seeded random pixel rankings; paired t-test, "
        f"{_t_interval(limits.confidence, gains)}"
    )
    if low > limits.margin:
        outcome, reason = "pass", f"the interval lies above the margin {limits.margin}: better than chance"
    elif high < limits.margin:
        outcome, reason = "fail", f"the interval lies below the margin {limits.margin}: no better than chance"
    else:
        outcome, reason = "inconclusive", _undecided(gains, limits.margin)
    return Verdict(check, outcome, effect, low, high, limits.margin, "above", test, p_value, _tuple(gains), reason)


def _complete(delta: float, limits: Thresholds) -> Verdict:
    ok = delta <= limits.complete
    reason = f"largest error {delta:.1e} {'≤' if ok else '>'} {limits.complete} of the largest score"
    test = "largest completeness error over the inputs, as a fraction of the largest |score| (exact)"
    return Verdict(
        "completeness", "pass" if ok else "fail", delta, delta, delta, limits.complete, "below", test, None, (), reason
    )


def _degenerate(verdict: Verdict, outcome: MethodResult) -> Verdict:
    """``verdict``, failed with the reason 'degenerate map' when any input's map is constant."""
    where = describe_degenerate(outcome.degenerate)
    if not where:
        return verdict
    return Verdict(**{**vars(verdict), "outcome": "fail", "reason": f"degenerate map (constant) on {where}"})


def _interval(values: np.ndarray, threshold: float, confidence: float, *, greater: bool):
    """Mean, Student-t interval and one-sided p-value of the mean against ``threshold``, over finite values."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, -math.inf, math.inf, None
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, -math.inf, math.inf, None
    error = float(finite.std(ddof=1)) / math.sqrt(finite.size)
    if error == 0.0:
        p_value = 0.0 if (mean > threshold if greater else mean < threshold) else 1.0
        return mean, mean, mean, p_value
    half = float(stats.t.ppf(0.5 + confidence / 2, finite.size - 1)) * error
    t = (mean - threshold) / error
    p_value = float(stats.t.sf(t, finite.size - 1) if greater else stats.t.cdf(t, finite.size - 1))
    return mean, mean - half, mean + half, p_value


def _t_interval(confidence: float, values: np.ndarray) -> str:
    count = int(np.isfinite(values).sum())
    return f"{confidence:.0%} Student-t interval of the mean over {count} input{'s' if count != 1 else ''}"


def _undecided(values: np.ndarray, threshold: float) -> str:
    if np.isfinite(values).sum() < 2:
        return "one input gives no interval: explain at least two (better ten or more)"
    return f"the interval contains {threshold}: more inputs are needed to decide"


def _tuple(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
