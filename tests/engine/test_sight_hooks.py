"""The opaque-model check holds PyTorch's global module hooks only while something intercepts."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_globals

import saliencelab as sl
from saliencelab.engine import Interception, require_sight

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class Recorder(nn.Module):
    """Records, at each forward, whether global module hooks are installed; calls ``inner`` (not registered)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 3)
        self.hidden = [inner]  # a plain list: not a submodule, invisible to model.modules()
        self.hooked: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.hooked.append(bool(module_globals._global_forward_pre_hooks))
        return self.hidden[0](torch.relu(self.layer(x)))


def _no_global_hooks() -> bool:
    return not module_globals._global_forward_pre_hooks and not module_globals._global_forward_hooks


def test_a_gradient_runs_the_model_without_global_hooks_and_a_rule_method_with_them():
    model = Recorder(nn.Linear(3, 2))
    sl.explain(model, torch.ones(1, 4), method="gradient", target=0)
    assert model.hooked == [False] and _no_global_hooks()
    sl.explain(model, torch.ones(1, 4), method="guided_backprop", target=0)
    assert model.hooked == [False, True] and _no_global_hooks()


def test_a_scripted_module_that_is_no_submodule_is_still_refused_under_a_rule():
    model = Recorder(torch.jit.script(nn.Linear(3, 2)))
    with pytest.raises(sl.UnsupportedOperationError, match="^guided_backprop cannot see inside this TorchScript"):
        sl.explain(model, torch.ones(1, 4), method="guided_backprop", target=0)
    assert _no_global_hooks()
    assert sl.explain(model, torch.ones(1, 4), method="gradient", target=0).values.shape == (1, 4)


def test_an_interception_active_before_the_check_is_seen_too():
    scripted = torch.jit.script(nn.Linear(2, 2))
    with pytest.raises(sl.UnsupportedOperationError, match="^demo cannot see inside"):
        with Interception({}, method="demo"), require_sight("demo"):
            scripted(torch.ones(1, 2))
    with require_sight("demo"):
        assert _no_global_hooks()
        with Interception({}, method="demo"):
            assert not _no_global_hooks()
        assert _no_global_hooks()
