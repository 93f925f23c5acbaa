"""What the perturbation methods share: seed and progress options, one baseline per sample."""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core.baselines import BaselineSpec, resolve_baseline
from saliencelab.core.structure import rows_of
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_seed
from saliencelab.methods.base import Method, checked_output
from saliencelab.methods.perturbation.incremental import Incremental, Patched
from saliencelab.methods.perturbation.scoring import MakeRows, clean_scores, evaluate_rows


def check_fraction(value: object, what: str, low: float = 0.0, high: float = 1.0, open_low: bool = True) -> float:
    """``value`` as a float in ``(low, high]`` (``[low, high]`` with ``open_low=False``).

    Example
    -------
    >>> check_fraction(0.5, "keep")
    0.5
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{what} must be a number in {bracket}{low}, {high}]; got {value!r}")
    return float(value)


class PerturbationMethod(Method):
    """Base of the methods that only evaluate the model on perturbed inputs.

    Parameters shared by all of them: ``seed`` (every random draw comes from a
    generator seeded with it, shared by all samples of the batch, so a sample's
    result depends only on that sample and the seed), ``progress`` (``None``:
    a progress bar on a terminal for long runs; ``True``/``False``: always/never)
    and ``memory_budget`` (bytes; perturbed copies run in chunks under it).
    """

    takes_baseline = True

    def __init__(
        self, model: Any, *, seed: int = 0, progress: bool | None = None, memory_budget: int | None = None
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if progress is not None and not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None (automatic); got {progress!r}")
        self.seed = check_seed(seed)
        self.progress = progress

    def forward(self, x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        """The model's output for ``x`` (a tensor or a :class:`Patched` batch), checked to be one row per input row."""
        if not isinstance(x, Patched):
            return super().forward(x, samples)
        with Incremental(), rows_of(samples):
            output = self.model(x)
        if isinstance(output, Patched):
            output = output.materialize()
        return checked_output(output, x.shape[0])

    def clean(self, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        """The unperturbed scores ``f(x)`` (float64) and the target bound to the model's output."""
        return clean_scores(self, inputs, target)

    def evaluate(
        self, like: torch.Tensor, total_rows: int, make_rows: MakeRows, target: Target, what: str = ""
    ) -> torch.Tensor:
        """Scores of ``total_rows`` perturbed rows (see :func:`evaluate_rows`)."""
        description = f"{self.name} ({what})" if what else self.name
        return evaluate_rows(self, like, total_rows, make_rows, target, progress=self.progress, description=description)

    def one_baseline(self, baseline: BaselineSpec, inputs: torch.Tensor) -> torch.Tensor:
        """The baseline as ``(1, *features)`` (shared) or ``(N, *features)``: one reference per sample.

        Removed features take the baseline's values. A batch of K references is
        refused: these methods replace features by one reference, not a distribution.
        """
        refs = resolve_baseline(baseline, inputs, seed=self.seed)
        if refs.k != 1:
            raise ValueError(
                f"{self.name} replaces removed features by one baseline per sample; got {refs.k} references. "
                "Pass a tensor broadcastable to the inputs, a number or a preset name"
            )
        return refs.tensor[:, 0]


def sample_rows(reference: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Rows of a ``(1 or N, *features)`` tensor for the samples ``sample``.

    Example
    -------
    >>> sample_rows(torch.zeros(1, 3), torch.tensor([4, 2])).shape
    torch.Size([2, 3])
    """
    if reference.shape[0] == 1:
        return reference.expand(len(sample), *reference.shape[1:])
    return reference[sample]
