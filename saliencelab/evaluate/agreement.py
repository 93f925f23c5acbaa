"""Agreement statistics from psychometrics: Krippendorff's alpha and Cronbach's alpha.

Both work on plain score tables, so they apply to any ratings, not only to
saliency metrics; :mod:`saliencelab.evaluate.reliability` uses them to ask
whether a saliency metric can rank explanation methods (Tomsett et al. 2020).

Example
-------
>>> nan = float("nan")
>>> round(krippendorff_alpha([[1, 2, 3, nan], [1, 2, 3, 3], [nan, 2, 3, 3]], level="nominal"), 3)
1.0
>>> round(cronbach_alpha([[1.0, 2.0], [2.0, 3.0], [4.0, 4.0]]), 3)
0.947
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saliencelab.evaluate.similarity import ranks

__all__ = ["LEVELS", "cronbach_alpha", "krippendorff_alpha"]

LEVELS = ("nominal", "ordinal", "interval")
"""Levels of measurement :func:`krippendorff_alpha` takes: the difference function between two values."""


def krippendorff_alpha(ratings: Any, level: str = "ordinal") -> float:
    """Krippendorff's alpha: how far raters agree beyond chance, ``1 − D_o / D_e``.

    ``D_o`` is the mean difference between two values given to the same unit by
    different raters, ``D_e`` the mean difference between any two values pooled
    over all units. Alpha is 1 for perfect agreement, 0 when agreement is what
    chance gives, and negative for systematic disagreement (Krippendorff 2004,
    *Content Analysis*, ch. 11; Hayes & Krippendorff 2007).

    Only units rated at least twice ("pairable" values) count. The coincidence
    matrix ``o_ck = Σ_u Σ_{i≠j} [v_iu = c][v_ju = k] / (m_u − 1)`` is not formed:
    each difference function is a squared distance between embedded values,
    ``δ(c, k) = ‖t_c − t_k‖²``, so ``Σ o_ck δ(c, k)`` and ``Σ n_c n_k δ(c, k)``
    reduce to per-unit sums of ``t`` and ``‖t‖²``. That costs ``O(raters × units)``
    instead of ``O(values²)``, with the same numbers as the textbook tables.

    * ``"nominal"``: ``δ = 1`` for different values (``t`` one-hot, halved);
    * ``"interval"``: ``δ = (c − k)²`` (``t`` the value);
    * ``"ordinal"``: ``δ = (Σ_{g=c..k} n_g − (n_c + n_k)/2)²`` with ``n_g`` the
      pooled count of value ``g``, which is the squared difference of the two
      values' mid-ranks among all pairable values (``t`` the mid-rank).

    Parameters
    ----------
    ratings:
        A ``(raters, units)`` array, tensor or nested list of numbers; NaN marks
        a missing rating.
    level:
        One of :data:`LEVELS`.

    Returns
    -------
    float
        Alpha, or NaN when the pairable values are all equal (``D_e = 0``: alpha
        is undefined, there is no variation to agree on).

    Raises
    ------
    ValueError
        For a table that is not 2-D, has infinite values, fewer than two raters,
        or no unit rated twice, and for an unknown ``level``.

    Example
    -------
    Krippendorff's two-observer binary example (10 units) has alpha 0.095:

    >>> a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    >>> b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    >>> round(krippendorff_alpha([a, b], level="nominal"), 3)
    0.095
    >>> round(krippendorff_alpha([[1, 2, 3], [3, 2, 1]], level="interval"), 3)  # systematic disagreement
    -0.667
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use one of {', '.join(map(repr, LEVELS))}")
    values = _table(ratings, "ratings", missing=True)
    if values.shape[0] < 2:
        raise ValueError(f"alpha needs at least two raters (rows); got a table of shape {tuple(values.shape)}")
    present = ~values.isnan()
    pairable = present.sum(dim=0) >= 2
    if not bool(pairable.any()):
        raise ValueError("no unit (column) has two or more ratings; alpha compares ratings of the same unit")
    values, present = values[:, pairable], present[:, pairable]
    pooled = values[present]
    unit = present.nonzero()[:, 1]  # the unit of each pooled value, in the same row-major order
    units = values.shape[1]
    if level == "nominal":
        codes = torch.unique(pooled, return_inverse=True)[1]
        sums = torch.zeros(units, int(codes.max()) + 1, dtype=torch.float64, device=values.device)
        sums.index_put_((unit, codes), torch.ones_like(pooled), accumulate=True)
        squares = torch.ones_like(pooled)
    else:
        embedded = pooled if level == "interval" else ranks(pooled[None])[0]
        embedded = embedded - embedded.mean()  # alpha does not depend on the origin; centring keeps precision
        sums = torch.zeros(units, 1, dtype=torch.float64, device=values.device).index_add_(0, unit, embedded[:, None])
        squares = embedded.square()
    square_sums = torch.zeros(units, dtype=torch.float64, device=values.device).index_add_(0, unit, squares)
    counts = present.sum(dim=0).to(torch.float64)
    n = counts.sum()
    observed = ((counts * square_sums - sums.square().sum(dim=1)) / (counts - 1)).sum()
    expected = (n * square_sums.sum() - sums.sum(dim=0).square().sum()) / (n - 1)
    if float(expected) <= 0:
        return float("nan")
    return float(1 - observed / expected)


def cronbach_alpha(scores: Any) -> float:
    """Cronbach's alpha of ``(cases, items)`` scores: ``k/(k−1) · (1 − Σ var(item) / var(total))``.

    The internal consistency of ``k`` items meant to measure one thing (Cronbach
    1951): 1 when the items move together, 0 when they are uncorrelated, negative
    when they contradict each other. Items on different scales should be put on
    one scale first (ranks or z-scores), or the widest item dominates.

    Parameters
    ----------
    scores:
        A ``(cases, items)`` array, tensor or nested list, at least two of each,
        all finite.

    Returns
    -------
    float
        Alpha, or NaN when the total score does not vary (alpha is undefined).

    Example
    -------
    Three items sharing one signal and each with its own orthogonal noise of the
    same size correlate 0.5 pairwise, so alpha is ``3·0.5 / (1 + 2·0.5) = 0.75``:

    >>> from scipy.linalg import hadamard
    >>> columns = hadamard(8)  # orthogonal ±1 columns; all but the first have mean 0
    >>> cronbach_alpha(columns[:, [1]] + columns[:, 2:5])
    0.75
    """
    table = _table(scores, "scores", missing=False)
    cases, items = table.shape
    if cases < 2 or items < 2:
        raise ValueError(
            f"Cronbach's alpha needs at least two cases (rows) and two items (columns); got {cases}×{items}"
        )
    total = table.sum(dim=1).var()
    if float(total) <= 0:
        return float("nan")
    return float(items / (items - 1) * (1 - table.var(dim=0).sum() / total))


def _table(data: Any, name: str, *, missing: bool) -> torch.Tensor:
    """``data`` as a 2-D float64 tensor; NaN only where ``missing`` allows it, never Inf."""
    if isinstance(data, torch.Tensor):
        table = data.detach().to(torch.float64)
    else:
        try:
            table = torch.from_numpy(np.asarray(data, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be a 2-D table of numbers (array, tensor or nested list): {error}") from None
    if table.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table; got shape {tuple(table.shape)}")
    if bool(table.isinf().any()):
        raise ValueError(
            f"{name} contain infinite values; give finite numbers" + (" (NaN for missing)" if missing else "")
        )
    if not missing and bool(table.isnan().any()):
        raise ValueError(f"{name} contain NaN; drop the incomplete rows first")
    return table
