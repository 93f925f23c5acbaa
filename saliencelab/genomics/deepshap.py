"""DeepSHAP for one-hot sequences: shuffled references and hypothetical contributions.

For a model of one-hot DNA the references are dinucleotide shuffles of each
input (:func:`~saliencelab.genomics.dinucleotide_shuffle`), so every sample has
its own K references. Besides the contributions, motif discovery tools (e.g.
TF-MoDISco) want *hypothetical contributions*: at each position, the score each
of the four bases would get if it were the base there, from the same
multipliers: ``h[l, b] = mean_k ( m_k[l, b] − Σ_b′ m_k[l, b′] · r_k[l, b′] )``.
At the base actually present, ``h`` equals that position's contribution.
"""

from __future__ import annotations

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import references
from saliencelab.core.targets import TargetSpec
from saliencelab.genomics.shuffle import dinucleotide_shuffle
from saliencelab.methods.deeplift import Combine, DeepShap


def shuffled_references(onehot: torch.Tensor, n: int, seed: int = 0, alphabet_axis: int = -1) -> torch.Tensor:
    """``n`` dinucleotide shuffles of each sequence of a batch, shape ``(N, n, *onehot.shape[1:])``.

    ``alphabet_axis`` is the axis of the four bases in ``onehot`` (``-1`` for
    ``(N, L, 4)``, ``1`` for ``(N, 4, L)``). Sample i uses ``seed + i``.

    Example
    -------
    >>> x = torch.eye(4)[torch.tensor([[0, 1, 2, 3, 0, 1]])]  # one sequence, (1, 6, 4)
    >>> refs = shuffled_references(x, n=3)
    >>> refs.shape, bool((refs.sum(dim=2) == x.sum(dim=1)).all())  # base counts kept
    (torch.Size([1, 3, 6, 4]), True)
    """
    axis = alphabet_axis % onehot.ndim
    if onehot.ndim != 3 or axis == 0 or onehot.shape[axis] != 4:
        raise ValueError(
            f"one-hot sequences must have shape (N, L, 4) or (N, 4, L) with alphabet_axis naming the axis of "
            f"the 4 bases; got shape {tuple(onehot.shape)} and alphabet_axis={alphabet_axis}"
        )
    rows = onehot if axis == 2 else onehot.transpose(1, 2)
    shuffles = torch.stack([dinucleotide_shuffle(seq, n, seed + i) for i, seq in enumerate(rows)])
    return shuffles if axis == 2 else shuffles.transpose(2, 3)


def hypothetical_contributions(alphabet_axis: int = -1) -> Combine:
    """A ``combine`` for :class:`~saliencelab.DeepLift` that gives hypothetical contributions.

    Example
    -------
    >>> m, x, r = torch.tensor([[[1.0, 2.0, 0.0, -1.0]]]), torch.tensor([[[0.0, 1, 0, 0]]]), torch.full((1, 1, 4), 0.25)
    >>> hypothetical_contributions()(m, x, r)  # m minus Σ m·r = m − 0.5
    tensor([[[ 0.5000,  1.5000, -0.5000, -1.5000]]])
    """

    def combine(multipliers: torch.Tensor, inputs: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        return multipliers - (multipliers * refs).sum(dim=alphabet_axis, keepdim=True)

    return combine


def deepshap(
    model: torch.nn.Module,
    onehot: torch.Tensor,
    target: TargetSpec = None,
    *,
    shuffles: int = 20,
    seed: int = 0,
    alphabet_axis: int = -1,
    hypothetical: bool = False,
    rule: str = "rescale",
    memory_budget: int | None = None,
) -> Attribution:
    """DeepSHAP of one-hot sequences against ``shuffles`` dinucleotide shuffles of each.

    Returns the contributions (``delta`` measured against the mean output on the
    shuffles) or, with ``hypothetical=True``, the hypothetical contributions
    (``delta`` is ``None``).

    Example
    -------
    >>> _ = torch.manual_seed(0)
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Flatten(), nn.Linear(78, 1))
    >>> x = torch.eye(4)[torch.randint(4, (2, 30))].transpose(1, 2)  # (N, 4, L)
    >>> a = deepshap(model, x, alphabet_axis=1, shuffles=10)
    >>> bool(a.delta.max() < 1e-4)
    True
    """
    refs = shuffled_references(onehot, shuffles, seed, alphabet_axis)
    combine = hypothetical_contributions(alphabet_axis) if hypothetical else None
    method = DeepShap(model, rule=rule, combine=combine, memory_budget=memory_budget)
    return method(onehot, target=target, baseline=references(refs, per_sample=True))
