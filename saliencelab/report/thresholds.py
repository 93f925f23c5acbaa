"""The thresholds every verdict of the report is judged against; a user can set each.

Example
-------
>>> Thresholds(margin=0.05).margin, Thresholds().decorrelated
(0.05, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """What a check must show to pass (see :mod:`saliencelab.report.checks`).

    Attributes
    ----------
    decorrelated:
        Randomisation checks pass when the whole interval of the mean similarity
        (|Spearman| of the maps) lies below this, and fail when it lies above.
    margin:
        Deletion and insertion pass when the whole interval of the mean AUC
        improvement over random rankings lies above this (in units of the score,
        a probability), and fail when it lies below: a map that is not better than
        chance by this much fails.
    complete:
        Largest completeness error, as a fraction of the largest |score|, that passes.
    confidence:
        The confidence level of the intervals.

    Example
    -------
    >>> Thresholds(confidence=0.99).confidence
    0.99
    """

    decorrelated: float = 0.5
    margin: float = 0.01
    complete: float = 1e-2
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1; got {self.confidence}")
        for name in ("decorrelated", "margin", "complete"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{name} must be a number; got {value!r}")
        if self.complete < 0:
            raise ValueError(f"complete is a largest error and cannot be negative; got {self.complete}")
