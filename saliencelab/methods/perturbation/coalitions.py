"""Scoring coalitions of feature groups: the inputs with some groups kept, the rest at the baseline.

Shapley sampling, KernelSHAP and LIME all score coalitions. Each sample ``i``
has ``G_i`` groups (see :mod:`~saliencelab.methods.perturbation.masks`) and its
own number of coalitions ``rows_per_sample[i]``; a method says which groups
its ``local``-th coalition keeps through ``choose(G, local) -> (rows, G) bool``.
The draws behind ``choose`` depend only on ``G`` and the seed, so samples with
the same number of groups share them and a sample's result never depends on
the rest of the batch. All coalitions of all samples run as rows of one
batched evaluation under the memory budget.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from saliencelab.core.targets import Target
from saliencelab.methods.perturbation.base import PerturbationMethod, sample_rows
from saliencelab.methods.perturbation.masks import Groups

Choose = Callable[[int, torch.Tensor], torch.Tensor]


class RowTable:
    """Consecutive blocks of rows, one block per sample.

    Example
    -------
    >>> table = RowTable([2, 0, 3])
    >>> table.total, [t.tolist() for t in table.locate(torch.arange(5))]
    (5, [[0, 0, 2, 2, 2], [0, 1, 0, 1, 2]])
    """

    def __init__(self, rows_per_sample: list[int]) -> None:
        sizes = torch.tensor(rows_per_sample, dtype=torch.long)
        self.ends = torch.cumsum(sizes, 0)
        self.starts = self.ends - sizes
        self.total = int(self.ends[-1]) if len(sizes) else 0

    def locate(self, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample of each row and its index within the sample's block."""
        ends = self.ends.to(row.device)
        sample = torch.searchsorted(ends, row, right=True)
        return sample, row - self.starts.to(row.device)[sample]

    def block(self, scores: torch.Tensor, sample: int) -> torch.Tensor:
        """The rows of ``sample`` in a vector indexed like the table."""
        return scores[int(self.starts[sample]) : int(self.ends[sample])]


def score_coalitions(
    method: PerturbationMethod,
    inputs: torch.Tensor,
    reference: torch.Tensor,
    groups: Groups,
    target: Target,
    rows_per_sample: list[int],
    choose: Choose,
    what: str = "coalitions",
) -> tuple[torch.Tensor, RowTable]:
    """Scores of every sample's coalitions (float64, indexed by the returned :class:`RowTable`).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from saliencelab.core.targets import Target
    >>> from saliencelab.methods.perturbation.masks import feature_groups
    >>> model = torch.nn.Linear(3, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 2.0, 4.0]]))
    >>> x = torch.ones(1, 3)
    >>> keep_one = lambda G, local: torch.nn.functional.one_hot(local, G).bool()  # coalition j keeps group j
    >>> method = sl.ShapleySampling(model)
    >>> scores, _ = score_coalitions(method, x, torch.zeros(1, 3), feature_groups(None, x), Target(), [3], keep_one)
    >>> scores.tolist()
    [1.0, 2.0, 4.0]
    """
    table = RowTable(rows_per_sample)
    counts = torch.tensor(groups.counts, dtype=torch.long, device=inputs.device)
    widest = max(groups.counts)
    feature_shape = inputs.shape[1:]

    def make_rows(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sample, local = table.locate(row)
        chosen = torch.zeros((len(row), widest), dtype=torch.bool, device=inputs.device)
        row_counts = counts[sample]
        for g in row_counts.unique().tolist():
            these = row_counts == g
            chosen[these, :g] = choose(g, local[these]).to(inputs.device)
        keep = groups.present(chosen, sample).view(len(row), *feature_shape)
        return torch.where(keep, inputs[sample], sample_rows(reference, sample)), sample

    return method.evaluate(inputs, table.total, make_rows, target, what), table


def baseline_scores(
    method: PerturbationMethod, inputs: torch.Tensor, reference: torch.Tensor, target: Target
) -> torch.Tensor:
    """Each sample's score at its baseline, ``f(baseline)``, float64 ``(N,)``."""
    n = inputs.shape[0]
    return method.evaluate(inputs, n, lambda row: (sample_rows(reference, row), row), target, "baseline")
