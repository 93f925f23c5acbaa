"""Gradient, Gradient×Input, DeconvNet and Guided Backprop: closed forms and agreement with Captum."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net

import saliencelab as sl

captum_attr = pytest.importorskip("captum.attr")


def test_gradient_of_a_linear_model_is_its_weight_row():
    model = torch.nn.Linear(5, 3)
    x = torch.randn(4, 5)
    values = sl.explain(model, x, method="gradient", target=[0, 1, 2, 1]).values
    torch.testing.assert_close(values, model.weight.detach()[[0, 1, 2, 1]], rtol=0, atol=0)
    gxi = sl.explain(model, x, method="gradient_x_input", target=2).values
    torch.testing.assert_close(gxi, x * model.weight.detach()[2], rtol=0, atol=0)


def test_guided_backprop_and_deconvnet_closed_form_on_one_hidden_layer():
    # f(x) = v · relu(W x): gradient = W^T (v ⊙ 1[Wx>0]); guided = W^T (relu(v) ⊙ 1[Wx>0]); deconv = W^T relu(v)
    torch.manual_seed(3)
    layer, head = torch.nn.Linear(4, 6, bias=False), torch.nn.Linear(6, 1, bias=False)
    model = torch.nn.Sequential(layer, torch.nn.ReLU(), head)
    x = torch.randn(3, 4)
    w, v = layer.weight.detach(), head.weight.detach()[0]
    active = (x @ w.T > 0).float()
    expected = {
        "gradient": (active * v) @ w,
        "guided_backprop": (active * v.clamp(min=0)) @ w,
        "deconvnet": v.clamp(min=0).expand(3, 6) @ w,
    }
    for method, closed_form in expected.items():
        torch.testing.assert_close(sl.explain(model, x, method=method).values, closed_form)


@pytest.mark.parametrize(
    "method, peer",
    [
        ("gradient", lambda m: (captum_attr.Saliency(m), {"abs": False})),
        ("gradient_x_input", lambda m: (captum_attr.InputXGradient(m), {})),
        ("guided_backprop", lambda m: (captum_attr.GuidedBackprop(m), {})),
        ("deconvnet", lambda m: (captum_attr.Deconvolution(m), {})),
    ],
)
def test_agrees_with_captum_on_a_model_of_relu_modules(method, peer, images):
    # Captum hooks nn.ReLU modules, so conventions match only for a model made of them.
    model = conv_net("module")
    target = torch.tensor([0, 1, 2, 3])
    ours = sl.explain(model, images, method=method, target=target).values
    attribution, options = peer(model)
    theirs = attribution.attribute(images.clone(), target=target, **options)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_argmax_target_is_resolved_and_reported(convnet, images):
    result = sl.explain(convnet, images, method="gradient")
    expected = convnet(images).argmax(dim=1)
    assert torch.equal(result.target, expected)
    explicit = sl.explain(convnet, images, method="gradient", target=expected)
    torch.testing.assert_close(result.values, explicit.values, rtol=0, atol=0)


def test_callable_target_for_a_regression_output(images):
    model = conv_net("module", classes=1)
    scores = lambda out: out[:, 0] * 2  # noqa: E731
    x = images.clone().requires_grad_(True)
    expected = torch.autograd.grad((model(x)[:, 0] * 2).sum(), x)[0]
    result = sl.explain(model, images, method="gradient", target=scores)
    torch.testing.assert_close(result.values, expected)
    assert result.target is scores


@pytest.mark.parametrize("method", ["gradient", "gradient_x_input", "guided_backprop", "deconvnet"])
def test_results_do_not_depend_on_the_rest_of_the_batch_or_the_chunking(method, images):
    model = conv_net("reused")
    whole = sl.explain(model, images, method=method, target=1).values
    alone = torch.cat([sl.explain(model, images[i : i + 1], method=method, target=1).values for i in range(4)])
    tiny_chunks = sl.explain(model, images, method=method, target=1, memory_budget=1).values
    torch.testing.assert_close(alone, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tiny_chunks, whole, rtol=1e-5, atol=1e-6)


def test_values_keep_the_input_dtype():
    model = torch.nn.Linear(3, 2).double()
    result = sl.explain(model, torch.randn(2, 3, dtype=torch.float64), method="gradient", target=0)
    assert result.values.dtype == torch.float64
    assert result.delta is None
