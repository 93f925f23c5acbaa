"""RISE: randomized input sampling (Petsiuk et al. 2018).

Each of ``samples`` masks is a random binary grid of ``grid`` cells per
spatial side (a cell kept with probability ``keep``), upsampled (bi)linearly to
``(grid + 1)`` cells of size ``ceil(size / grid)`` and cropped at a random
shift of up to one cell, so the soft masks are smooth and not aligned to the
cells. The input is blended with the baseline, ``m·x + (1 − m)·baseline``
(baseline zeros: the masked product of the paper), and the saliency of an
element is ``Σ_i f(masked_i) m_i / (samples · keep)``: the expected score
when the element is kept. Masks are generated chunk by chunk from their cells
and shifts, never stored at full size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count
from saliencelab.methods.perturbation.base import PerturbationMethod, check_fraction, sample_rows

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class RiseMasks:
    """The seeded random masks of RISE for one spatial shape.

    Example
    -------
    >>> masks = RiseMasks((8, 8), samples=3, grid=2, keep=0.5, seed=0)
    >>> m = masks.at(torch.arange(3))
    >>> m.shape, bool(((m >= 0) & (m <= 1)).all())
    (torch.Size([3, 1, 8, 8]), True)
    """

    def __init__(self, spatial: tuple[int, ...], samples: int, grid: int, keep: float, seed: int) -> None:
        if len(spatial) not in _MODES:
            raise ValueError(f"rise needs 1 to 3 spatial dimensions (N, C, *spatial); got {len(spatial)}")
        if any(grid > s for s in spatial):
            raise ValueError(f"rise: grid={grid} cells is more than the input's spatial size {spatial}")
        rng = generator(seed, torch.device("cpu"))
        self.spatial = spatial
        cells = torch.rand((samples, 1) + (grid,) * len(spatial), generator=rng, dtype=torch.float32)
        self.cells = cells < keep  # drawn in float32 whatever the default dtype: the seed alone fixes the masks
        self.cell_size = tuple(math.ceil(s / grid) for s in spatial)
        self.shifts = torch.stack([torch.randint(0, c, (samples,), generator=rng) for c in self.cell_size], dim=1)

    def at(self, index: torch.Tensor, device=None, dtype=torch.float32) -> torch.Tensor:
        """The masks ``index``, shape ``(rows, 1, *spatial)``."""
        cells = self.cells[index.cpu()].to(device=device, dtype=dtype)
        grid = cells.shape[2]
        size = tuple((grid + 1) * c for c in self.cell_size)
        up = F.interpolate(cells, size=size, mode=_MODES[len(self.spatial)], align_corners=False).clamp_(0, 1)
        shifts = self.shifts[index.cpu()]
        out = []
        for row in range(len(index)):
            window = tuple(slice(int(o), int(o) + s) for o, s in zip(shifts[row], self.spatial, strict=True))
            out.append(up[(row, slice(None), *window)])
        return torch.stack(out)


@register
class Rise(PerturbationMethod):
    """RISE saliency from random smooth masks.

    Parameters
    ----------
    model:
        The model to explain.
    samples:
        Number of random masks (the paper uses 4000 on ImageNet).
    grid:
        Cells per spatial side of the low-resolution masks (the paper's s = 7).
    keep:
        Probability that a cell is kept (the paper's p = 0.5).
    seed:
        Seed of the masks, shared by every sample.
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    Inputs are ``(N, C, *spatial)`` with 1 to 3 spatial dimensions; every
    channel of a position gets the same value. ``delta`` is None.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = lambda x: x[:, :, :4].sum(dim=(1, 2, 3))[:, None]  # looks at the top half only
    >>> a = sl.Rise(model, samples=200, grid=4)(torch.ones(1, 1, 8, 8))
    >>> bool(a.values[0, 0, :4].mean() > a.values[0, 0, 4:].mean())
    True
    """

    name = "rise"
    description = "RISE: the score averaged over random smooth masks, weighted by each mask"
    source = "Petsiuk et al. 2018"
    centred_display = True  # every value is near the mean score: the picture shows the difference from it
    quick_options = {"samples": 30, "grid": 3}

    def __init__(
        self,
        model: Any,
        *,
        samples: int = 2000,
        grid: int = 7,
        keep: float = 0.5,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.samples = check_count(samples, "samples")
        self.grid = check_count(grid, "grid")
        self.keep = check_fraction(keep, "keep")

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        if inputs.ndim < 3:
            raise ValueError(f"rise needs inputs (N, C, *spatial); got shape {tuple(inputs.shape)}")
        masks = RiseMasks(tuple(inputs.shape[2:]), self.samples, self.grid, self.keep, self.seed)
        reference = self.one_baseline(baseline, inputs)
        _, target = self.clean(inputs, target)
        n, count = inputs.shape[0], self.samples

        def make_rows(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            sample, which = row // count, row % count
            m = masks.at(which, inputs.device, inputs.dtype)
            return m * inputs[sample] + (1 - m) * sample_rows(reference, sample), sample

        scores = self.evaluate(inputs, n * count, make_rows, target, "masks").reshape(n, count)
        saliency = torch.zeros((n, 1, *inputs.shape[2:]), dtype=torch.float64, device=inputs.device)
        for first in range(0, count, 256):  # a fixed order of sums, whatever the chunking of the model
            which = torch.arange(first, min(first + 256, count))
            m = masks.at(which, inputs.device, inputs.dtype).to(torch.float64)
            saliency += torch.einsum("nk,k...->n...", scores[:, which], m)
        saliency /= count * self.keep
        values = saliency.expand_as(inputs).to(inputs.dtype).contiguous()
        return Attribution(values, None, self.name, target.public(), {"samples": count})
