"""Feature ablation: replace one feature group at a time by the baseline.

Each feature group g (see :mod:`~saliencelab.methods.perturbation.masks`;
default: every input element on its own) is replaced by the baseline while the
rest of the input is kept, and every element of g receives
``f(x) − f(x with g ablated)``. This is the convention of Captum's
``FeatureAblation`` and of erasure (Li, Monroe & Jurafsky 2016); with sliding
windows instead of groups it is occlusion (Zeiler & Fergus 2014). A sample
with G groups costs G model evaluations: the ablated copies of every sample
run as rows of one batch, in chunks under the memory budget.
"""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.targets import Target
from saliencelab.methods.perturbation.base import PerturbationMethod
from saliencelab.methods.perturbation.coalitions import score_coalitions
from saliencelab.methods.perturbation.masks import MaskSpec, feature_groups


def all_but_one(groups: int, ablated: torch.Tensor) -> torch.Tensor:
    """Keep-masks ``(rows, groups)`` that keep every group except ``ablated[r]`` in row r.

    Example
    -------
    >>> all_but_one(3, torch.tensor([0, 2])).tolist()
    [[False, True, True], [True, True, False]]
    """
    return torch.arange(groups, device=ablated.device) != ablated[:, None]


@register
class FeatureAblation(PerturbationMethod):
    """The change of the score when one feature group is replaced by the baseline.

    Parameters
    ----------
    model:
        The model to explain.
    feature_mask:
        The feature groups (see :mod:`saliencelab.methods.perturbation.masks`):
        ``None`` (default: every element is its own group), integer group ids
        broadcastable to the inputs (``(1, ...)`` or fewer dimensions: shared by
        every sample; ``(N, ...)``: one grouping per sample), a callable,
        ``"slic"`` or ``"grid"``. Every element belongs to exactly one group:
        the ids need not be contiguous, and a sample's groups are the ids it holds.
    seed:
        Seed of the ``"uniform"`` baseline preset (ablation itself draws nothing).
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    The baseline (default ``"zeros"``) gives the ablated values: a number, a
    tensor broadcastable to the inputs or a preset name. Every element of
    group g gets ``f(x) − f(x with g ablated)``, the same value for the whole
    group (the sum of a map counts each group's value once per element).

    Integer inputs (token ids) are ablated to the baseline's id and get
    floating-point values. With several inputs (a tuple or dict) the groups are
    those of the inputs packed side by side, each flattened: ``feature_mask``
    then has shape ``(1 or N, D)``, D the total number of features, and a group
    may span several inputs.

    ``delta`` is None: ablation has no completeness property. The group values
    sum to ``f(x) − f(baseline)`` when the model is additive over the groups
    (then they are its Shapley values), not in general: an interaction between
    groups is counted in several groups or in none. ``info["groups"]`` holds each
    sample's number of groups and ``info["group_values"]`` its values, group ids
    in increasing order.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = lambda x: (x[:, 0] * x[:, 1] + x[:, 2])[:, None]  # an interaction and an additive term
    >>> a = sl.FeatureAblation(model)(torch.tensor([[2.0, 3.0, 5.0]]))
    >>> a.values.tolist()  # the product vanishes when either factor is ablated: it counts in both
    [[6.0, 6.0, 5.0]]
    >>> a.info["group_values"][0].sum().item(), 11.0 - 0.0  # so the values overshoot f(x) - f(0)
    (17.0, 11.0)
    """

    structured_inputs = True
    integer_inputs = True

    name = "feature_ablation"
    description = "Feature ablation: change of the score when each feature group is replaced by the baseline"
    source = "Zeiler & Fergus 2014 (occlusion); Li, Monroe & Jurafsky 2016 (erasure)"
    quick_options = {"feature_mask": "grid"}

    def __init__(
        self,
        model: Any,
        *,
        feature_mask: MaskSpec = None,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.feature_mask = feature_mask

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        groups = feature_groups(self.feature_mask, inputs)
        reference = self.one_baseline(baseline, inputs)
        f_x, target = self.clean(inputs, target)
        scores, table = score_coalitions(self, inputs, reference, groups, target, groups.counts, all_but_one, "groups")
        group_values = [f_x[i] - table.block(scores, i) for i in range(inputs.shape[0])]
        values = groups.spread(group_values, tuple(inputs.shape[1:]))
        info = {"groups": torch.tensor(groups.counts), "group_values": group_values}
        dtype = inputs.dtype if inputs.is_floating_point() else torch.get_default_dtype()  # token ids: float values
        return Attribution(values.to(dtype), None, self.name, target.public(), info)
