"""Constant maps are flagged on every result and warned about, unless a check judges them itself."""

from __future__ import annotations

import contextlib
import threading
import warnings

import pytest
import torch
from torch import nn

import saliencelab as sl
from saliencelab.core.degenerate import checked_by_caller, degenerate_maps


def half_dead() -> nn.Module:
    """Output 0 is ReLU(-1): always 0, so its gradient is all zero; output 1 is a live linear unit."""
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]))
        model[0].bias.copy_(torch.tensor([-1.0, 0.0]))
    return model


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "occlusion"])
def test_every_result_says_which_maps_are_constant_and_warns(method):
    x = torch.ones(3, 4)
    with pytest.warns(sl.DegenerateMapWarning, match=r"inputs 0, 2 \(2 of 3\)"):
        a = sl.explain(half_dead(), x, method=method, target=torch.tensor([0, 1, 0]))
    assert a.info["degenerate"].tolist() == [True, False, True]


def test_live_maps_are_not_flagged_and_raise_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sl.DegenerateMapWarning)
        a = sl.explain(half_dead(), torch.ones(2, 4), method="gradient", target=1)
    assert a.info["degenerate"].tolist() == [False, False]


def test_a_check_that_judges_maps_itself_silences_the_warning_in_its_own_thread_only():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sl.DegenerateMapWarning)
        with checked_by_caller():
            a = sl.explain(half_dead(), torch.ones(1, 4), method="gradient", target=0)
    assert a.info["degenerate"].tolist() == [True]
    with pytest.warns(sl.DegenerateMapWarning):
        sl.explain(half_dead(), torch.ones(1, 4), method="gradient", target=0)


@pytest.mark.parametrize(
    ("maps", "expected"),
    [
        (torch.zeros(2, 3), [True, True]),
        (torch.tensor([[5.0, 5.0], [5.0, 5.0 * (1 + 2**-20)]]), [True, False]),  # 8 ulps apart is a ranking
        (torch.tensor([[1e-30, 0.0]]), [False]),  # tiny but not constant
        (torch.tensor([[float("inf"), 1.0], [float("nan"), float("nan")]]), [True, True]),
        (torch.tensor([[1.0, float("-inf")], [1.0, float("nan")], [-3e38, 3e38]]), [True, True, False]),
        (torch.tensor([[-2.0, -2.0 * (1 + 2**-21)], [-2.0, -2.0 * (1 + 2**-20)]]), [True, False]),  # 4 and 8 ulps
        (torch.tensor([[1.0, 1.0 + 2**-8], [1.0, 1.0 + 2**-7]], dtype=torch.float16), [True, False]),
        (torch.tensor([[1.0, 1.0 + 2**-5], [1.0, 1.0 + 2**-4]], dtype=torch.bfloat16), [True, False]),
        (torch.tensor([[1.0, 1.0 + 2**-50], [1.0, 1.0 + 2**-49]], dtype=torch.float64), [True, False]),
        (torch.tensor([[1, 1], [1, 2]]), [True, False]),  # integers compared exactly
        (torch.zeros(2, 0), [True, True]),
    ],
)
def test_constant_means_within_rounding_of_the_largest_value(maps, expected):
    assert degenerate_maps(maps).tolist() == expected


def test_a_quiet_check_in_one_thread_leaves_another_threads_warning_alone():
    both_inside = threading.Barrier(2)

    def explain(quiet: bool) -> None:
        with checked_by_caller() if quiet else contextlib.nullcontext():
            both_inside.wait(timeout=30)
            sl.explain(half_dead(), torch.ones(1, 4), method="gradient", target=0)
            both_inside.wait(timeout=30)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=explain, args=(quiet,)) for quiet in (True, False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [w.category for w in caught if issubclass(w.category, sl.DegenerateMapWarning)] == [sl.DegenerateMapWarning]
