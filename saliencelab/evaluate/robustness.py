"""Robustness: how much does an explanation change when the input barely changes?

Both measures draw ``samples`` perturbations ``δ`` uniformly from the L∞ ball of
``radius`` around each input, explain all ``N · samples`` perturbed inputs in
batches (the explainer's own ``memory_budget`` sizes its inner chunks), and take
the worst case per sample. The target is the one resolved at the unperturbed
input and stays fixed for its perturbed copies.

The perturbations are ``δ_s = radius · (2·U_s − 1)`` with ``U = torch.rand((samples,
*inputs.shape[1:]))`` drawn from a generator seeded with ``seed``: one set shared
by every sample, so a sample's result never depends on the rest of the batch.

Example
-------
>>> import torch
>>> model = torch.nn.Linear(3, 1)  # a constant gradient does not move at all
>>> max_sensitivity(model, torch.randn(2, 3), method="gradient").tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from saliencelab.core.batching import DEFAULT_MEMORY_BUDGET, rows_per_chunk
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec, prepare_target
from saliencelab.evaluate.explainers import as_explainer
from saliencelab.evaluate.faithfulness import MethodSpec
from saliencelab.methods.base import Method, check_inputs
from saliencelab.methods.perturbation.scoring import clean_scores

__all__ = ["local_lipschitz", "max_sensitivity"]

NORMS = ("l2", "linf")


def max_sensitivity(
    model: Any,
    inputs: torch.Tensor,
    *,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    radius: float = 0.02,
    samples: int = 10,
    norm: str = "l2",
    relative: bool = True,
    seed: int = 0,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Max-sensitivity (Yeh et al. 2019): ``max_s ‖Φ(x + δ_s) − Φ(x)‖ / ‖Φ(x)‖`` per sample.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` or callable; left exactly as it was.
    inputs:
        A batch ``(N, ...)``.
    method, method_options:
        A method name from :func:`saliencelab.available_methods` with its
        options, or a callable ``(model, inputs, target) -> tensor``.
    target:
        An int, one int per sample, a callable, or None (the argmax class at ``x``).
    radius:
        Half-width of the L∞ ball, in input units.
    samples:
        Perturbations per input.
    norm:
        ``"l2"`` (over all of a sample's attribution values) or ``"linf"``.
    relative:
        Divide by ``‖Φ(x)‖`` (default). An all-zero ``Φ(x)`` gives 0 where every
        ``Φ(x + δ)`` is zero too and ``inf`` otherwise. False: Yeh et al.'s absolute
        ``max_s ‖Φ(x + δ_s) − Φ(x)‖``.
    seed:
        Seed of the perturbations.
    memory_budget:
        Bytes for one chunk of perturbed inputs and their attributions (default 1 GiB).

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64.

    Example
    -------
    >>> import torch
    >>> class HalfSquare(torch.nn.Module):  # f(x) = ‖x‖²/2, gradient x
    ...     def forward(self, x):
    ...         return 0.5 * x.pow(2).sum(dim=1)
    >>> x = torch.tensor([[2.0]])
    >>> value = max_sensitivity(HalfSquare(), x, method="gradient", radius=0.1, samples=100, norm="linf")
    >>> 0.099 / 2 < value.item() <= 0.1 / 2  # max_s |δ_s| / |x|, close to radius / |x|
    True
    """
    _check_choice(norm)
    explanation, moved, _ = _perturbed(
        model, inputs, method, method_options, target, radius, samples, seed, memory_budget
    )
    change = _norm((moved - explanation.unsqueeze(1)).flatten(2), norm).amax(dim=1)
    if not relative:
        return change
    scale = _norm(explanation.flatten(1), norm)
    return torch.where(change == 0, torch.zeros_like(change), change / scale)


def local_lipschitz(
    model: Any,
    inputs: torch.Tensor,
    *,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    radius: float = 0.02,
    samples: int = 10,
    seed: int = 0,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018): ``max_s ‖Φ(x) − Φ(x + δ_s)‖₂ / ‖δ_s‖₂``.

    Parameters as in :func:`max_sensitivity`. Returns ``(N,)`` float64.

    Example
    -------
    >>> import torch
    >>> class Quadratic(torch.nn.Module):  # f(x) = 1.5 ‖x‖², gradient 3x: Lipschitz constant 3
    ...     def forward(self, x):
    ...         return 1.5 * x.pow(2).sum(dim=1)
    >>> local_lipschitz(Quadratic(), torch.randn(2, 5), method="gradient", radius=0.1).round(decimals=4).tolist()
    [3.0, 3.0]
    """
    explanation, moved, distance = _perturbed(
        model, inputs, method, method_options, target, radius, samples, seed, memory_budget
    )
    change = _norm((moved - explanation.unsqueeze(1)).flatten(2), "l2")
    return (change / distance).amax(dim=1)


def _perturbed(
    model: Any,
    inputs: torch.Tensor,
    method: MethodSpec,
    method_options: Mapping[str, Any] | None,
    target: TargetSpec,
    radius: float,
    samples: int,
    seed: int,
    memory_budget: int | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``Φ(x)`` ``(N, ...)``, ``Φ(x + δ_s)`` ``(N, samples, ...)`` and ``‖x + δ_s − x‖₂`` ``(N, samples)``, float64.

    The distance is measured on the perturbed inputs as stored, after rounding to their dtype.
    """
    check_inputs(inputs)
    if not 0 < radius < float("inf"):
        raise ValueError(f"radius must be a positive half-width of the L-inf ball; got {radius}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be a positive int; got {samples!r}")
    if method is None:
        raise TypeError("method= is required: a method name or a callable (model, inputs, target) -> tensor")
    explain_fn = as_explainer(method, **(method_options or {}))
    uniform = torch.rand((samples, *inputs.shape[1:]), generator=generator(seed, inputs.device), device=inputs.device)
    delta = (radius * (2 * uniform - 1)).to(inputs.dtype)
    n = inputs.shape[0]
    with preserved(model):
        _, bound = clean_scores(Method(model, memory_budget=memory_budget), inputs, prepare_target(target, n))
        explanation = explain_fn(model, inputs, bound.public()).double()
        sample = torch.arange(n, device=inputs.device).repeat_interleave(samples)
        step = torch.arange(samples, device=inputs.device).repeat(n)
        row_bytes = 2 * inputs[0].numel() * inputs.element_size()
        chunk = rows_per_chunk(row_bytes, memory_budget or DEFAULT_MEMORY_BUDGET, passes=1)
        moved, distance = [], []
        for first in range(0, n * samples, chunk):
            rows = slice(first, first + chunk)
            points = inputs[sample[rows]] + delta[step[rows]]
            moved.append(explain_fn(model, points, bound.rows(sample[rows]).public()).double())
            distance.append(_norm((points - inputs[sample[rows]]).double().flatten(1), "l2"))
    return explanation, torch.cat(moved).view(n, samples, *explanation.shape[1:]), torch.cat(distance).view(n, samples)


def _norm(values: torch.Tensor, norm: str) -> torch.Tensor:
    """Norm over the last dimension."""
    return values.abs().amax(dim=-1) if norm == "linf" else torch.linalg.vector_norm(values, dim=-1)


def _check_choice(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; use one of {', '.join(map(repr, NORMS))}")
