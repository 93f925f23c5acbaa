"""The finite and constant-map checks of every call: one reduction each, the same verdicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import saliencelab as sl
from saliencelab.core.attribution import Attribution
from saliencelab.methods.base import check_inputs, checked_result


class _NanGradientForSecondSample(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x).sum(1, keepdim=True)  # d sqrt(x)/dx at 0 is Inf


def test_a_non_finite_gradient_is_an_error_naming_where():
    x = torch.tensor([[1.0, 4.0], [1.0, 0.0]])
    with pytest.raises(sl.NonFiniteResultError, match=r"1 NaN or Inf values \(first at index \(1, 1\)\)"):
        sl.explain(_NanGradientForSecondSample(), x, method="gradient")


def test_a_non_finite_delta_with_finite_values_is_an_error():
    a = Attribution(torch.tensor([[1.0, 2.0]]), torch.tensor([float("inf")]), "demo", None)
    with pytest.raises(sl.NonFiniteResultError, match="completeness errors"):
        checked_result(a)


def test_constant_maps_are_flagged_and_live_ones_not():
    with pytest.warns(sl.DegenerateMapWarning, match="input 0 "):
        a = checked_result(Attribution(torch.tensor([[3.0, 3.0], [1.0, 2.0]]), None, "demo", None))
    assert a.info["degenerate"].tolist() == [True, False]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_finite_inputs_whose_sum_overflows_are_accepted(dtype):
    big = torch.finfo(dtype).max
    x = torch.full((1, 4), big, dtype=dtype)
    assert not torch.isfinite(x.sum()) and check_inputs(x) is x
    x[0, 2] = float("nan")
    with pytest.raises(ValueError, match=r"1 NaN or Inf values \(first at index \(0, 2\)\)"):
        check_inputs(x)
