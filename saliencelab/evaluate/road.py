"""ROAD: RemOve And Debias (Rong et al. 2022) with noisy linear imputation.

Removing pixels by a constant leaks the removal mask's shape to the model, which
can then score the mask rather than the missing evidence. ROAD instead fills
every removed pixel with the weighted mean of its eight neighbours (direct
neighbours weight 1/6, diagonal ones 1/12, as in the paper; neighbours outside
the image are left out and the weights renormalised) and adds Gaussian noise.
Removed pixels next to each other depend on each other, so each image and
removal set is one sparse linear system, solved with SciPy's sparse LU for all
channels at once.

Unlike Quantus' ROAD, every sample of the batch is evaluated, any number of
channels works, and a sample's result depends only on that sample and ``seed``
(the noise is one field drawn from ``seed`` and shared by all samples), never on
how the inputs were batched.

Example
-------
>>> import torch
>>> image = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 0.0, 6.0], [7.0, 8.0, 9.0]]]])
>>> removed = torch.zeros(1, 3, 3, dtype=torch.bool); removed[0, 1, 1] = True
>>> noisy_linear_imputation(image, removed, noise=0.0)[0, 0, 1, 1].item()  # (2+4+6+8)/6 + (1+3+7+9)/12
5.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec
from saliencelab.evaluate.faithfulness import (
    ORDERS,
    AttributionSpec,
    MethodSpec,
    Scorer,
    _check_choice,
    prepare,
    rank,
    score_rows,
)

__all__ = ["RoadResult", "noisy_linear_imputation", "road"]

NEIGHBOURS = (
    (-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12),
    (0, -1, 1 / 6), (0, 1, 1 / 6),
    (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12),
)  # fmt: skip
"""(row offset, column offset, weight) of the eight neighbours in the imputation."""

DEFAULT_PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class RoadResult:
    """ROAD scores of a batch.

    Attributes
    ----------
    curve:
        ``(N, len(percentages))`` float64: the target score (probability by
        default) after removing each percentage of pixels.
    percentages:
        The fractions of pixels removed, ``(len(percentages),)``.

    Example
    -------
    >>> RoadResult(torch.tensor([[0.9, 0.5]], dtype=torch.float64), torch.tensor([0.1, 0.5])).scores
    tensor([0.7000], dtype=torch.float64)
    """

    curve: torch.Tensor
    percentages: torch.Tensor

    @property
    def scores(self) -> torch.Tensor:
        """Each sample's mean target score over the percentages, ``(N,)``.

        With ``order="morf"`` a faithful explanation gives a low score (removing
        what it ranks first destroys the prediction); with ``"lerf"`` a high one.
        The paper's accuracy curves are the fraction of samples whose argmax stays
        the target; this is the per-sample, threshold-free counterpart.
        """
        return self.curve.mean(dim=1)


def road(
    model: Any,
    inputs: torch.Tensor,
    attributions: AttributionSpec = None,
    *,
    method: MethodSpec = None,
    method_options: Mapping[str, Any] | None = None,
    target: TargetSpec = None,
    percentages: Sequence[float] = DEFAULT_PERCENTAGES,
    order: str = "morf",
    noise: float = 0.01,
    score: str = "probability",
    aggregate: str = "sum",
    seed: int = 0,
    memory_budget: int | None = None,
    progress: bool | None = None,
) -> RoadResult:
    """Remove the top- (MoRF) or bottom-ranked (LeRF) pixels, impute them, and score the model.

    Parameters
    ----------
    model, inputs, attributions, method, method_options, target, score, aggregate, memory_budget, progress:
        As in :func:`~saliencelab.evaluate.faithfulness.deletion`: images
        ``(N, C, H, W)`` with any number of channels, pixels ranked by the
        channel-aggregated attribution (ties by position).
    percentages:
        Fractions of pixels to remove, each in ``[0, 1)``; ``round(p·H·W)``
        pixels (all their channels) are removed for fraction ``p``.
    order:
        ``"morf"`` removes the most relevant pixels first, ``"lerf"`` the least.
    noise:
        Standard deviation of the Gaussian noise added to imputed values, in input
        units (the paper's 0.01 by default).
    seed:
        Seed of the noise field.

    Returns
    -------
    RoadResult
        ``.curve`` ``(N, len(percentages))`` and ``.scores`` ``(N,)``, the mean over percentages.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(9, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.fill_(1.0)
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 1, 1] = 6.0
    >>> result = road(model, x, x, percentages=(0.0, 0.1), noise=0.0, score="logit")
    >>> result.curve.tolist()  # removing the centre leaves the mean of its zero neighbours
    [[6.0, 0.0]]
    """
    _check_choice("order", order, ORDERS)
    fractions = _check_percentages(percentages)
    if not 0 <= noise < float("inf"):
        raise ValueError(f"noise must be a non-negative standard deviation; got {noise}")
    scorer = Scorer(model, score, memory_budget)
    with preserved(model):
        _, bound, maps = prepare(scorer, inputs, attributions, method, method_options, target, aggregate)
        ranks = rank(maps.flatten(1), descending=order == "morf").view_as(maps)
        pixels = maps[0].numel()
        counts = torch.tensor([round(p * pixels) for p in fractions], device=inputs.device)
        field = _noise_field(inputs.shape[1:], seed)

        def perturbed(sample: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            removed = ranks[sample] < counts[step, None, None]
            return _impute(inputs[sample], removed, noise, field)

        curve = score_rows(scorer, inputs, bound, len(fractions), perturbed, progress, "road")
    return RoadResult(curve, torch.tensor(fractions, dtype=torch.float64))


def noisy_linear_imputation(
    images: torch.Tensor, removed: torch.Tensor, *, noise: float = 0.01, seed: int = 0
) -> torch.Tensor:
    """Fill the ``removed`` pixels of ``images`` by ROAD's noisy linear imputation.

    Each removed pixel ``i`` satisfies ``x_i = Σ_j w_ij x_j / Σ_j w_ij`` over its
    neighbours ``j`` inside the image (weights 1/6 direct, 1/12 diagonal), all
    channels alike, and then gets ``noise · z_i`` added, ``z`` a standard normal
    field drawn from ``seed`` (shape ``(C, H, W)``, shared by all images).

    Parameters
    ----------
    images:
        ``(N, C, H, W)``.
    removed:
        ``(N, H, W)`` booleans: the pixels to impute. At least one pixel of each
        image must be kept, or the values are undetermined.

    Example
    -------
    >>> import torch
    >>> images = torch.arange(16.0).view(1, 1, 4, 4)  # a linear ramp is its own neighbour mean
    >>> removed = torch.zeros(1, 4, 4, dtype=torch.bool); removed[0, 1:3, 1:3] = True
    >>> torch.allclose(noisy_linear_imputation(images, removed, noise=0.0), images)
    True
    """
    if images.ndim != 4 or removed.shape != (images.shape[0], *images.shape[2:]) or removed.dtype != torch.bool:
        raise ValueError(
            f"expected images (N, C, H, W) and a boolean removal mask (N, H, W); got "
            f"{tuple(images.shape)} and {tuple(removed.shape)} {removed.dtype}"
        )
    return _impute(images, removed, noise, _noise_field(images.shape[1:], seed))


def _impute(images: torch.Tensor, removed: torch.Tensor, noise: float, field: torch.Tensor) -> torch.Tensor:
    filled = [
        _impute_one(image.cpu().double().numpy(), mask.cpu().numpy(), noise, field.numpy())
        for image, mask in zip(images, removed, strict=True)
    ]
    return torch.from_numpy(np.stack(filled)).to(device=images.device, dtype=images.dtype)


def _impute_one(image: np.ndarray, removed: np.ndarray, noise: float, field: np.ndarray) -> np.ndarray:
    """Solve the neighbour equations of one ``(C, H, W)`` image for its ``removed`` ``(H, W)`` pixels."""
    channels, height, width = image.shape
    flat = image.reshape(channels, -1).copy()
    unknown = np.flatnonzero(removed)
    if unknown.size == 0:
        return image.copy()
    if unknown.size == removed.size:
        raise ValueError("cannot impute an image with every pixel removed; keep at least one pixel (percentage < 1)")
    number = np.full(removed.size, -1)
    number[unknown] = np.arange(unknown.size)
    row, col = np.divmod(unknown, width)
    diagonal = np.zeros(unknown.size)
    known_sum = np.zeros((channels, unknown.size))
    a_rows, a_cols, a_weights = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        inside = (row + dy >= 0) & (row + dy < height) & (col + dx >= 0) & (col + dx < width)
        equation = np.flatnonzero(inside)
        neighbour = (row[inside] + dy) * width + col[inside] + dx
        diagonal[equation] += weight
        is_unknown = number[neighbour] >= 0
        a_rows.append(equation[is_unknown])
        a_cols.append(number[neighbour[is_unknown]])
        a_weights.append(np.full(int(is_unknown.sum()), -weight))
        known_sum[:, equation[~is_unknown]] += weight * flat[:, neighbour[~is_unknown]]  # one neighbour per equation
    a_rows.append(np.arange(unknown.size))
    a_cols.append(np.arange(unknown.size))
    a_weights.append(diagonal)
    system = coo_matrix(
        (np.concatenate(a_weights), (np.concatenate(a_rows), np.concatenate(a_cols))),
        shape=(unknown.size, unknown.size),
    ).tocsc()
    solution = splu(system).solve(np.ascontiguousarray(known_sum.T))
    flat[:, unknown] = solution.T + noise * field.reshape(channels, -1)[:, unknown]
    return flat.reshape(image.shape)


def _noise_field(shape: torch.Size, seed: int) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator(seed, torch.device("cpu")), dtype=torch.float64)


def _check_percentages(percentages: Sequence[float]) -> list[float]:
    values = [float(p) for p in percentages] if isinstance(percentages, Sequence) else []
    if not values or not all(0 <= p < 1 for p in values):
        raise ValueError(f"percentages must be a non-empty sequence of fractions in [0, 1); got {percentages!r}")
    return values
