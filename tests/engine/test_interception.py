"""The interception engine sees operations whatever their spelling, refuses what it has no rule for,
and leaves no trace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import conv_net

import saliencelab as sl
from saliencelab.engine import Interception, modified_backward
from saliencelab.engine.ops import ELEMENTWISE_ACTIVATIONS

SPELLINGS = ["module", "functional", "torch", "method", "reused", "inplace"]


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet", "gradient"])
@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_every_relu_spelling_gives_the_same_map(method, spelling, images):
    reference = sl.explain(conv_net("module"), images, method=method, target=2).values
    other = sl.explain(conv_net(spelling), images, method=method, target=2).values
    torch.testing.assert_close(other, reference, rtol=0, atol=0)


def test_guided_and_deconv_really_differ_from_the_gradient(images):
    model = conv_net("reused")
    gradient = sl.explain(model, images, method="gradient", target=2).values
    for method in ("guided_backprop", "deconvnet"):
        modified = sl.explain(model, images, method=method, target=2).values
        assert (modified - gradient).abs().max() > 1e-3


def _record(fn, *args):
    seen = []

    class Recorder(Interception):
        def dispatch(self, call):
            seen.append((call.name, call.inplace))
            return call.genuine()

    recorder = Recorder({}, method="test")
    with recorder:
        fn(*(recorder.mark(arg) for arg in args))
    return seen


@pytest.mark.parametrize(
    "expression, expected",
    [
        (lambda a, b: a - b, ("sub", False)),
        (lambda a, b: a * b, ("mul", False)),
        (lambda a, b: 1 - a, ("rsub", False)),
        (lambda a, b: a + b, ("add", False)),
        (lambda a, b: 2 + a, ("add", False)),
        (lambda a, b: a / b, ("div", False)),
        (lambda a, b: -a, ("neg", False)),
        (lambda a, b: a @ b.T, ("matmul", False)),
        (lambda a, b: torch.sub(a, b), ("sub", False)),
        (lambda a, b: a.clone().sub_(b), ("sub", True)),
        (lambda a, b: a.clone().mul_(b), ("mul", True)),
        (lambda a, b: F.relu(a), ("relu", False)),
        (lambda a, b: torch.relu_(a.clone()), ("relu", True)),
        (lambda a, b: F.relu(a.clone(), inplace=True), ("relu", True)),
        (lambda a, b: F.leaky_relu(a.clone(), 0.1, True), ("leaky_relu", True)),
        (lambda a, b: a > 0, ("gt", False)),
        (lambda a, b: a <= b, ("le", False)),
        (lambda a, b: ~(a > 0), ("bitwise_not", False)),
        (lambda a, b: torch.clip(a, min=0), ("clamp", False)),
        (lambda a, b: a.T, ("T", False)),
    ],
)
def test_operator_spellings_have_canonical_names(expression, expected):
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    assert expected in _record(expression, a, b)


def test_in_place_rule_keeps_in_place_semantics():
    deconv = modified_backward(lambda grad, out: grad.clamp(min=0))
    mode = Interception({"relu": deconv}, method="deconvnet", passes=frozenset({"mul"}))
    x = mode.mark(torch.tensor([-1.0, 2.0], requires_grad=True))
    with mode:
        hidden = x * 1
        result = hidden.relu_()
    assert result is hidden
    assert hidden.tolist() == [0.0, 2.0]
    (grad,) = torch.autograd.grad(hidden, x, torch.tensor([3.0, -1.0]))
    assert grad.tolist() == [3.0, 0.0]


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
@pytest.mark.parametrize("activation", [F.gelu, torch.sigmoid, torch.tanh, F.silu, F.elu, F.leaky_relu])
def test_modified_methods_refuse_activations_they_have_no_rule_for(method, activation):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Identity(), torch.nn.Linear(4, 2))
    model[1].forward = activation
    with pytest.raises(sl.UnsupportedOperationError) as error:
        sl.explain(model, torch.randn(2, 3), method=method, target=0)
    assert error.value.method == method
    assert error.value.operation in ELEMENTWISE_ACTIVATIONS
    assert "ReLU" in str(error.value)


def test_gradient_runs_on_any_activation():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU(), torch.nn.Linear(4, 2))
    x = torch.randn(2, 3, requires_grad=True)
    expected = torch.autograd.grad(model(x)[:, 1].sum(), x)[0]
    torch.testing.assert_close(sl.explain(model, x.detach(), method="gradient", target=1).values, expected)


def test_mode_is_gone_after_a_call_that_raises():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GELU(), torch.nn.Linear(4, 2))
    with pytest.raises(sl.UnsupportedOperationError):
        sl.explain(model, torch.randn(2, 3), method="guided_backprop", target=0)
    assert not torch.overrides._is_torch_function_mode_enabled()
