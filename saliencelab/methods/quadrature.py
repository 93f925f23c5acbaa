"""Quadrature rules on [0, 1] for path integrals (Integrated Gradients).

Each rule returns the points α_k and weights w_k with Σ w_k = 1, so that
``∫₀¹ g(α) dα ≈ Σ w_k g(α_k)`` (seed 002, "Riemann sums").
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.special import roots_legendre

INTEGRATIONS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gauss_legendre")


def quadrature(steps: int, integration: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and weights of ``integration`` with ``steps`` points, in float64.

    Example
    -------
    >>> alphas, weights = quadrature(4, "riemann_middle")
    >>> alphas.tolist(), float(weights.sum())
    ([0.125, 0.375, 0.625, 0.875], 1.0)
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    alphas, weights = _rule(steps, integration)
    return torch.from_numpy(alphas.copy()), torch.from_numpy(weights.copy())


@lru_cache(maxsize=64)
def _rule(steps: int, integration: str) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(steps, dtype=np.float64)
    if integration == "riemann_left":
        alphas, weights = k / steps, np.full(steps, 1 / steps)
    elif integration == "riemann_right":
        alphas, weights = (k + 1) / steps, np.full(steps, 1 / steps)
    elif integration == "riemann_middle":
        alphas, weights = (k + 0.5) / steps, np.full(steps, 1 / steps)
    elif integration == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("riemann_trapezoid needs at least 2 steps (both end points)")
        alphas = k / (steps - 1)
        weights = np.full(steps, 1 / (steps - 1))
        weights[[0, -1]] /= 2
    elif integration == "gauss_legendre":
        nodes, gl_weights = roots_legendre(steps)  # O(steps) asymptotics for large n, unlike leggauss
        alphas, weights = (nodes + 1) / 2, gl_weights / 2
    else:
        raise ValueError(f"unknown integration {integration!r}; choose one of {', '.join(INTEGRATIONS)}")
    return alphas, weights


def refinement(steps: int, integration: str) -> tuple[int, float, torch.Tensor, torch.Tensor]:
    """How to refine ``integration`` at ``steps`` points, reusing what was computed.

    Returns ``(new_steps, keep, alphas, weights)``: the refined estimate is
    ``keep · old_estimate + Σ weights_k g(alphas_k)`` over the new points only.
    The left, right and trapezoid rules double their intervals (the new points are
    the old intervals' midpoints, ``keep = 1/2``); the midpoint rule triples them
    (its old points stay midpoints, ``keep = 1/3``); Gauss-Legendre nodes do not
    nest, so it starts again with twice the points (``keep = 0``).

    Example
    -------
    >>> new_steps, keep, alphas, weights = refinement(2, "riemann_trapezoid")
    >>> new_steps, keep, alphas.tolist(), weights.tolist()
    (3, 0.5, [0.5], [0.5])
    """
    if integration == "gauss_legendre":
        alphas, weights = quadrature(2 * steps, integration)
        return 2 * steps, 0.0, alphas, weights
    if integration == "riemann_middle":
        fine = 3 * steps
        k = np.arange(fine)
        added = k[k % 3 != 1]  # k = 3j + 1 are the old midpoints
        alphas, weights = (added + 0.5) / fine, np.full(len(added), 1 / fine)
        return fine, 1 / 3, torch.from_numpy(alphas), torch.from_numpy(weights)
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; choose one of {', '.join(INTEGRATIONS)}")
    intervals = steps - 1 if integration == "riemann_trapezoid" else steps
    alphas = (np.arange(intervals) + 0.5) / intervals
    weights = np.full(intervals, 1 / (2 * intervals))
    return steps + intervals, 0.5, torch.from_numpy(alphas), torch.from_numpy(weights)
