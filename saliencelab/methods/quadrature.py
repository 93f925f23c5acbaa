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
