"""Progress bars: on request for every method, never unasked off a terminal, one at a time when methods nest."""

from __future__ import annotations

import pytest
import torch

import saliencelab as sl


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))


@pytest.mark.parametrize(
    ("method", "options"),
    [("integrated_gradients", {}), ("deeplift", {}), ("lrp", {}), ("gradient", {}), ("occlusion", {"window": 2})],
)
def test_every_method_draws_a_bar_when_asked_and_none_otherwise(model, capsys, method, options):
    x = torch.rand(4, 20)
    sl.explain(model, x, method=method, target=0, progress=True, **options)
    assert f"{method}" in capsys.readouterr().err
    sl.explain(model, x, method=method, target=0, progress=False, **options)
    sl.explain(model, x, method=method, target=0, **options)  # pytest's stderr is not a terminal
    assert capsys.readouterr().err == ""


def test_a_method_inside_another_draws_no_bar_of_its_own(model, capsys):
    sl.explain(model, torch.rand(2, 20), method="smoothgrad", target=0, samples=4, progress=True)
    err = capsys.readouterr().err
    assert "smoothgrad" in err and "gradient:" not in err  # SmoothGrad's base method runs inside its bar


def test_the_setting_belongs_to_the_call_not_to_the_method_object(model, capsys):
    method = sl.IntegratedGradients(model)
    method(torch.rand(2, 20), target=0, progress=True)
    capsys.readouterr()
    method(torch.rand(2, 20), target=0)
    assert capsys.readouterr().err == "" and method.progress is None
