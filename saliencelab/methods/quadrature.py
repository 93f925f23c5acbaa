"""Quadrature rules on [0, 1] for path integrals (Integrated Gradients).

Each rule returns the points α_k and weights w_k with Σ w_k = 1, so that
``∫₀¹ g(α) dα ≈ Σ w_k g(α_k)`` (Sundararajan et al. 2017 use a Riemann sum).

Gauss-Legendre nodes are computed in O(steps) (:func:`gauss_legendre`): Newton
iterations in θ (x = cos θ) on the Stieltjes asymptotic expansion of P_n(cos θ)
for the interior nodes, and on P_n by recurrence for the few nodes near ±1
where that expansion does not hold. Eigenvalue methods (Golub-Welsch, and
scipy's ``roots_legendre``) take O(steps²): 9 s at 20,000 steps.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from saliencelab.core.validation import check_count

INTEGRATIONS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gauss_legendre")

_EDGE = 30.0
"""Nodes with n·sin θ below this (about ten at each end) are found on P_n by recurrence."""

_TERMS = 24
"""Terms of the Stieltjes expansion: at n·sin θ ≥ 30 the last is far below double precision."""


def quadrature(steps: int, integration: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and weights of ``integration`` with ``steps`` points, in float64.

    Example
    -------
    >>> alphas, weights = quadrature(4, "riemann_middle")
    >>> alphas.tolist(), float(weights.sum())
    ([0.125, 0.375, 0.625, 0.875], 1.0)
    """
    steps = check_count(
        steps, "steps", hint="a smooth path needs far fewer: lower steps, or set tolerance= to refine only as needed"
    )
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
        nodes, gl_weights = gauss_legendre(steps)
        alphas, weights = (nodes + 1) / 2, gl_weights / 2
    else:
        raise ValueError(f"unknown integration {integration!r}; choose one of {', '.join(INTEGRATIONS)}")
    return alphas, weights


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [−1, 1] (ascending) and weights, in O(n).

    Example
    -------
    >>> nodes, weights = gauss_legendre(3)
    >>> np.allclose(nodes, [-math.sqrt(0.6), 0, math.sqrt(0.6)]), np.allclose(weights, [5 / 9, 8 / 9, 5 / 9])
    (True, True)
    """
    k = np.arange(1, (n + 1) // 2 + 1)  # the nodes with θ in (0, π/2]; the others mirror them
    guess = (4 * k - 1) * math.pi / (4 * n + 2)
    edge = n * np.sin(guess) < _EDGE
    theta_edge, weights_edge = _edge_nodes(n, guess[edge])
    theta_inner, weights_inner = _inner_nodes(n, guess[~edge])
    if len(theta_inner):  # the expansion leaves out P_n's constant: fix it by Σ w = 2 (the middle node counts once)
        counted = 2 * math.fsum(weights_inner) - (n % 2) * weights_inner[-1]
        weights_inner = weights_inner * (2 - 2 * math.fsum(weights_edge)) / counted
    theta = np.concatenate([theta_edge, theta_inner])
    weights = np.concatenate([weights_edge, weights_inner])
    x = np.cos(theta)
    if n % 2:
        x[-1] = 0.0  # θ = π/2 exactly
    return np.concatenate([-x[: n // 2], x[::-1]]), np.concatenate([weights[: n // 2], weights[::-1]])


def _newton(theta: np.ndarray, ratio) -> np.ndarray:
    """Newton iterations θ ← θ − f/f' until the steps fall below rounding (``ratio(θ)`` gives f/f')."""
    for _ in range(20):
        if not len(theta):
            break
        step = ratio(theta)
        theta = theta - step
        if np.abs(step).max() < 1e-15:
            break
    return theta


def _edge_nodes(n: int, guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes near x = 1 from P_n and P_{n−1} by recurrence (O(n) each; few nodes), and their weights."""
    from scipy.special import eval_legendre  # scipy.special costs a quarter second to import: only when needed

    def ratio(theta: np.ndarray) -> np.ndarray:
        x = np.cos(theta)
        p, q = eval_legendre(n, x), eval_legendre(n - 1, x)
        return p * np.sin(theta) / (n * (x * p - q))  # P_n / (dP_n(cos θ)/dθ)

    theta = _newton(guess, ratio)
    return theta, 2 * np.sin(theta) ** 2 / (n * eval_legendre(n - 1, np.cos(theta))) ** 2


def _inner_nodes(n: int, guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interior nodes from the Stieltjes expansion, and weights up to one common factor."""
    theta = _newton(guess, lambda t: np.divide(*_stieltjes(n, t)))
    return theta, 2 / _stieltjes(n, theta)[1] ** 2


def _stieltjes(n: int, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``P_n(cos θ)`` and its θ-derivative, each divided by the same constant (Szegő's expansion)."""
    sine, cot = 2 * np.sin(theta), np.cos(theta) / np.sin(theta)
    value, slope = np.zeros_like(theta), np.zeros_like(theta)
    h = 1.0
    for m in range(_TERMS):
        if m:
            h *= (m - 0.5) ** 2 / (m * (n + m + 0.5))
        phase = (n + m + 0.5) * theta - (m + 0.5) * math.pi / 2
        scale = h / sine ** (m + 0.5)
        value += scale * np.cos(phase)
        slope -= scale * ((n + m + 0.5) * np.sin(phase) + (m + 0.5) * cot * np.cos(phase))
    return value, slope


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
