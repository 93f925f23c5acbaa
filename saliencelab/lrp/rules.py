"""LRP rules for one linear operation (seeds 000, 004; Montavon et al. 2019).

A linear operation ``z_j = Σ_i x_i w_ij + b_j`` (a dense layer, a convolution, an
average pool) passes the relevance ``R_j`` of its outputs to its inputs. Every
rule is a modified forward ``z′`` and a normalisation ``s = R / z′``; the
relevance of the inputs is the gradient of ``z′ · s`` with respect to the
modified inputs times those inputs, as Zennit computes it.

- ``epsilon``: ``R_i = Σ_j x_i w_ij / (z_j + ε·sign z_j) · R_j``; ``epsilon=0`` is LRP-0.
- ``zplus``: positive contributions only (``x⁺w⁺ + x⁻w⁻``).
- ``alpha_beta``: ``α R⁺ − β R⁻`` with α − β = 1.
- ``gamma``: weights ``w + γ w⁺`` for positive outputs (``w + γ w⁻`` for negative ones, on
  negative inputs the other way round): favours the contributions that agree with the output.
- ``zbox``: the input layer with bounds ``low ≤ x ≤ high`` (z^B).
- ``flat``: every input of an output gets an equal share.
- ``wsquare``: shares ``w_ij² / Σ_i′ w_i′j²``.
- ``pass``: relevance passes unchanged (shape-preserving operations only).

``bias="absorb"`` puts the bias into the denominator (it takes its share of the
relevance); ``bias="ignore"`` leaves it out, so relevance is conserved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

STABILIZER = 1e-6
"""Default ``stabilizer``: added (with the sign of the denominator) where a rule other than epsilon divides
by z′, as Zennit does; without it a denominator that nearly cancels (γ, z^B, αβ on signed inputs)
multiplies rounding noise. Conservation is then exact up to about ``stabilizer / |z′|``."""


@dataclass(frozen=True)
class Rule:
    """An LRP rule and its parameters, e.g. ``Rule("epsilon", {"epsilon": 1e-6})``.

    Example
    -------
    >>> rule("alpha_beta", alpha=2, beta=1)
    Rule(name='alpha_beta', params={'alpha': 2, 'beta': 1})
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)


RULES = ("epsilon", "zplus", "alpha_beta", "gamma", "zbox", "flat", "wsquare", "pass")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "epsilon": {"epsilon": 1e-6},
    "zplus": {},
    "alpha_beta": {"alpha": 2.0, "beta": 1.0},
    "gamma": {"gamma": 0.25},
    "zbox": {"low": None, "high": None},
    "flat": {},
    "wsquare": {},
    "pass": {},
}


def rule(name: str, **params: Any) -> Rule:
    """Build a checked :class:`Rule`: unknown names and parameters are errors.

    Example
    -------
    >>> rule("epsilon", epsilon=0.25).params
    {'epsilon': 0.25}
    """
    if name not in _DEFAULTS:
        raise ValueError(f"unknown LRP rule {name!r}; choose one of {RULES}")
    unknown = set(params) - set(_DEFAULTS[name])
    if unknown:
        raise TypeError(f"the {name} rule takes {sorted(_DEFAULTS[name]) or 'no parameters'}; got {sorted(unknown)}")
    merged = {**_DEFAULTS[name], **params}
    if name == "alpha_beta" and abs(merged["alpha"] - merged["beta"] - 1) > 1e-12:
        raise ValueError(
            f"alpha_beta needs alpha - beta = 1 to conserve relevance; got {merged['alpha']}, {merged['beta']}"
        )
    if name == "epsilon" and not merged["epsilon"] >= 0:
        raise ValueError(f"epsilon must be >= 0; got {merged['epsilon']}")
    if name == "gamma" and not merged["gamma"] >= 0:
        raise ValueError(f"gamma must be >= 0; got {merged['gamma']}")
    if name == "zbox" and (merged["low"] is None or merged["high"] is None):
        raise ValueError("the zbox rule needs low= and high=, the bounds of the input (e.g. the data range)")
    return Rule(name, merged)


_ZERO_GUARD = 1e-12
"""LRP-0 (``epsilon=0``) divides by ``z ± 1e-12``, only to keep 0/0 out."""

Apply = Callable[..., torch.Tensor]
"""``apply(inputs, weight_map, with_bias)``: the linear operation on ``inputs`` with its
weights mapped by ``weight_map`` (``None``: weights as they are) and the bias kept
(mapped the same way) or dropped."""


def _stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    sign = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
    return z + sign * epsilon


def _shares(
    terms: list[tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]],
    relevance: torch.Tensor,
    epsilon: float,
) -> torch.Tensor:
    """Σ_t in_t ⊙ ∂(z′ · s)/∂in_t with z′ = Σ_t op_t(in_t) and s = R / (z′ ± ε)."""
    with torch.enable_grad():
        leaves = [inp.detach().requires_grad_(True) for inp, _ in terms]
        z = sum(op(leaf) for leaf, (_, op) in zip(leaves, terms, strict=True))
        scale = (relevance / _stabilize(z, epsilon)).detach()
        grads = torch.autograd.grad(z, leaves, scale, allow_unused=True)
    return sum(leaf.detach() * (0 if g is None else g) for leaf, g in zip(leaves, grads, strict=True))


def _positive(w: torch.Tensor) -> torch.Tensor:
    return w.clamp(min=0)


def _negative(w: torch.Tensor) -> torch.Tensor:
    return w.clamp(max=0)


def _gamma(x: torch.Tensor, out_relevance: torch.Tensor, apply: Apply, bias: bool, gamma: float, stabilizer: float):
    """γ favours the contributions that agree with each output's sign (as Zennit does): an output z > 0 uses
    ``x⁺(w + γw⁺) + x⁻(w + γw⁻)``, an output z ≤ 0 ``x⁺(w + γw⁻) + x⁻(w + γw⁺)``, so z′ moves away from 0."""
    up, down = x.clamp(min=0), x.clamp(max=0)

    def boosted(part):
        return lambda w: w + gamma * part(w)

    with torch.no_grad():
        positive = apply(x, None, bias) > 0
    agree = [(up, lambda t: apply(t, boosted(_positive), bias)), (down, lambda t: apply(t, boosted(_negative), False))]
    oppose = [(up, lambda t: apply(t, boosted(_negative), bias)), (down, lambda t: apply(t, boosted(_positive), False))]
    return _shares(agree, out_relevance * positive, stabilizer) + _shares(oppose, out_relevance * ~positive, stabilizer)


def relevance(
    r: Rule, x: torch.Tensor, out_relevance: torch.Tensor, apply: Apply, bias: bool, stabilizer: float = STABILIZER
) -> torch.Tensor:
    """The relevance of ``x`` under rule ``r`` for a linear operation ``apply``."""
    name, p = r.name, r.params
    if name == "pass":
        if out_relevance.shape != x.shape:
            raise ValueError(
                f"the pass rule needs an operation that keeps the shape; {tuple(x.shape)} -> "
                f"{tuple(out_relevance.shape)}"
            )
        return out_relevance
    if name == "epsilon":
        return _shares([(x, lambda t: apply(t, None, bias))], out_relevance, p["epsilon"] or _ZERO_GUARD)
    up, down = x.clamp(min=0), x.clamp(max=0)
    if name == "zplus":
        terms = [(up, lambda t: apply(t, _positive, bias)), (down, lambda t: apply(t, _negative, False))]
        return _shares(terms, out_relevance, stabilizer)
    if name == "alpha_beta":
        positive = [(up, lambda t: apply(t, _positive, bias)), (down, lambda t: apply(t, _negative, False))]
        negative = [(up, lambda t: apply(t, _negative, bias)), (down, lambda t: apply(t, _positive, False))]
        return p["alpha"] * _shares(positive, out_relevance, stabilizer) - p["beta"] * _shares(
            negative, out_relevance, stabilizer
        )
    if name == "gamma":
        return _gamma(x, out_relevance, apply, bias, p["gamma"], stabilizer)
    if name == "zbox":
        low = torch.as_tensor(p["low"], dtype=x.dtype, device=x.device).expand_as(x)
        high = torch.as_tensor(p["high"], dtype=x.dtype, device=x.device).expand_as(x)
        terms = [
            (x, lambda t: apply(t, None, bias)),
            (low, lambda t: -apply(t, _positive, False)),
            (high, lambda t: -apply(t, _negative, False)),
        ]
        return _shares(terms, out_relevance, stabilizer)
    ones = torch.ones_like(x)
    if name == "flat":
        return _shares([(ones, lambda t: apply(t, torch.ones_like, False))], out_relevance, stabilizer)
    return _shares([(ones, lambda t: apply(t, torch.square, False))], out_relevance, stabilizer)  # wsquare
