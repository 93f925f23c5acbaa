"""PatternNet and PatternAttribution: Kindermans' linear toy, the estimators' closed forms, conv patterns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl

D = torch.float64


def _toy(n=20_000, seed=0):
    """x = a_s·y + a_d·ε with signal a_s = (1, 0) and distractor a_d = (1, 1); w = (1, −1) extracts y."""
    g = torch.Generator().manual_seed(seed)
    y, eps = torch.randn(n, 1, generator=g, dtype=D), torch.randn(n, 1, generator=g, dtype=D)
    data = y * torch.tensor([1.0, 0.0], dtype=D) + eps * torch.tensor([1.0, 1.0], dtype=D)
    model = nn.Linear(2, 1, bias=False).double()
    model.weight.data.copy_(torch.tensor([[1.0, -1.0]], dtype=D))
    return model, data


def _cosine(a, b):
    return (F.normalize(a.flatten(1), dim=1) * F.normalize(b.flatten(1), dim=1)).sum(1)


def test_patternnet_recovers_the_signal_where_the_gradient_does_not():
    model, data = _toy()
    x = data[:50]
    signal = sl.PatternNet(model, estimator="linear", fit_data=data)(x).values
    gradient = sl.Gradient(model)(x).values
    direction = torch.tensor([[1.0, 0.0]], dtype=D).expand_as(x)
    assert (_cosine(signal, direction).abs() > 0.999).all()
    assert (_cosine(gradient, direction).abs() < 0.72).all()  # the gradient is (1, −1): 45° off
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(signal[:, 0:1], y, rtol=0.02, atol=0.02)  # the signal is a_s · y


def test_patternattribution_sums_to_the_output_on_the_toy():
    model, data = _toy()
    x = data[:20]
    a = sl.PatternAttribution(model, estimator="linear", fit_data=data)(x).values
    with torch.no_grad():
        torch.testing.assert_close(a.sum(1, keepdim=True), model(x), rtol=1e-6, atol=1e-8)  # wᵀa = 1
    assert a[:, 1].abs().max() < 0.05 * a[:, 0].abs().max()


def test_two_component_estimator_closed_form():
    """For a layer followed by ReLU: a₊ = cov₊[x, y] / (wᵀ cov₊[x, y]) over the samples where y > 0."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    data = torch.randn(500, 4, dtype=D)
    net = sl.PatternNet(model).fit(data)
    w, b = model[0].weight.detach(), model[0].bias.detach()
    y = data @ w.T + b
    for j in range(3):
        on = y[:, j] > 0
        xs, ys = data[on], y[on, j]
        cov = (xs * ys[:, None]).mean(0) - xs.mean(0) * ys.mean()
        torch.testing.assert_close(net.patterns[0][j], cov / (cov @ w[j]))
    # the last layer uses the linear estimator
    h = torch.relu(y)
    out = h @ model[2].weight.detach().T + model[2].bias.detach()
    cov = (out.T @ h) / len(h) - torch.outer(out.mean(0), h.mean(0))
    torch.testing.assert_close(net.patterns[1], cov / (cov * model[2].weight.detach()).sum(1, keepdim=True))


def test_conv_patterns_use_every_patch():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.Flatten(), nn.Linear(3 * 4 * 4, 1)).double()
    data = torch.randn(40, 2, 8, 8, dtype=D)
    net = sl.PatternNet(model, estimator="linear").fit(data)
    patches = F.unfold(data, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 18)
    w = model[0].weight.detach().reshape(3, -1)
    y = patches @ w.T
    cov = (y.T @ patches) / len(patches) - torch.outer(y.mean(0), patches.mean(0))
    torch.testing.assert_close(net.patterns[0], (cov / (cov * w).sum(1, keepdim=True)).reshape(3, 2, 3, 3))


def test_patterns_are_reused_and_the_model_untouched():
    model = conv_net("inplace", classes=3).double()
    data = torch.randn(64, 3, 8, 8, dtype=D)
    before = snapshot(model)
    net = sl.PatternNet(model).fit(data)
    patterns = net.patterns
    first = net(data[:2], target=1).values
    second = net(data[:2], target=1).values
    assert net.patterns is patterns
    torch.testing.assert_close(first, second)
    attribution = sl.explain(model, data[:2], method="pattern_attribution", target=1, fit_data=data)
    assert torch.isfinite(attribution.values).all() and attribution.values.abs().sum() > 0
    assert_unchanged(model, before)


def test_unfitted_and_unsupported():
    with pytest.raises(ValueError, match="fit"):
        sl.PatternNet(nn.Linear(2, 1))(torch.randn(1, 2))
    with pytest.raises(ValueError, match="estimator"):
        sl.PatternNet(nn.Linear(2, 1), estimator="quadratic")
    with pytest.raises(sl.UnsupportedOperationError, match="conv_transpose2d"):
        sl.PatternNet(nn.ConvTranspose2d(1, 1, 2)).fit(torch.randn(3, 1, 4, 4))
