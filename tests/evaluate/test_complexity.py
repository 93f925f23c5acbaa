"""Sparseness (Gini index) and entropy: closed forms, zero maps, aggregation, errors."""

from __future__ import annotations

import math

import pytest
import torch

import saliencelab as sl
from saliencelab.evaluate.complexity import entropy, sparseness


@pytest.mark.parametrize("n", [2, 7, 64])
def test_gini_and_entropy_closed_forms(n):
    uniform = torch.full((1, n), 3.0)
    one_hot = torch.zeros(1, n)
    one_hot[0, n // 2] = -5.0  # the sign does not matter: |a| is measured
    assert sparseness(uniform).tolist() == [0.0]
    assert sparseness(one_hot).item() == pytest.approx(1 - 1 / n, abs=1e-12)
    assert entropy(uniform).item() == pytest.approx(math.log(n), abs=1e-12)
    assert entropy(one_hot).tolist() == [0.0]


def test_worked_values():
    # Gini of 1, 2, 3, 4: Σ (2i − n − 1) a_i / (n Σa) = (−3·1 − 1·2 + 1·3 + 3·4) / (4·10) = 0.25
    a = torch.tensor([[4.0, -1.0, 3.0, 2.0]])
    assert sparseness(a).item() == pytest.approx(0.25, abs=1e-12)
    p = torch.tensor([4.0, 1.0, 3.0, 2.0]) / 10
    assert entropy(a).item() == pytest.approx(float(-(p * p.log()).sum()), abs=1e-6)
    # two of four equal values: the Gini index is 1/2, the entropy log 2
    half = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert sparseness(half).item() == pytest.approx(0.5, abs=1e-12)
    assert entropy(half).item() == pytest.approx(math.log(2), abs=1e-12)


def test_all_zero_maps_count_as_constant_not_nan():
    zeros = torch.zeros(2, 3, 4, 4)
    assert sparseness(zeros).tolist() == [0.0, 0.0]
    assert entropy(zeros).tolist() == pytest.approx([math.log(48)] * 2, abs=1e-12)


def test_per_sample_and_channel_aggregation():
    maps = torch.zeros(2, 3, 2, 2)
    maps[0] = 1.0  # uniform over 12 values and over 4 pixels
    maps[1, :, 0, 0] = torch.tensor([1.0, -2.0, 3.0])  # one pixel: one-hot after aggregation
    assert entropy(maps, aggregate="sum_abs").tolist() == pytest.approx([math.log(4), 0.0], abs=1e-12)
    assert sparseness(maps, aggregate="sum_abs").tolist() == pytest.approx([0.0, 0.75], abs=1e-12)
    assert entropy(maps)[0].item() == pytest.approx(math.log(12), abs=1e-12)
    explained = sl.explain(torch.nn.Linear(4, 1), torch.ones(2, 4), method="gradient")
    assert sparseness(explained).shape == (2,)
    assert torch.equal(sparseness(explained), sparseness(explained.values))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        sparseness(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="batch dimension"):
        entropy(torch.ones(5))
    with pytest.raises(TypeError, match="tensor or an Attribution"):
        entropy([[1.0, 2.0]])
    with pytest.raises(ValueError, match="unknown channel aggregation"):
        sparseness(torch.ones(1, 3, 2, 2), aggregate="mean")
