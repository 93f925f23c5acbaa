"""Input invariance (Kindermans et al. 2017; seed 003): the shifted model and the attribution differences.

Tolerances: the shifted model g must reproduce f to 1e-5 in float32 (a few dozen
roundings of 6e-8 on values of order 1) and 1e-12 in float64; closed forms
(gradient × input and IG on a linear model differ by exactly |w · shift|) to 1e-12.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot
from torch import nn

from saliencelab.evaluate.invariance import ShiftPaddedConv, input_invariance, shifted_model


def _padded_net(dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1)).to(dtype).eval()


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_shifted_conv_net_with_padding_matches_everywhere_including_the_border(dtype, atol):
    f = _padded_net(dtype)
    x = torch.rand(3, 3, 8, 8, dtype=dtype, generator=torch.Generator().manual_seed(1))
    g = shifted_model(f, -1.0, example=x)
    assert isinstance(g[0], ShiftPaddedConv)
    out_f, out_g = f(x), g(x - 1.0)
    torch.testing.assert_close(out_g, out_f, atol=atol, rtol=0)
    torch.testing.assert_close(out_g[..., 0, :], out_f[..., 0, :], atol=atol, rtol=0)  # the border rows
    torch.testing.assert_close(out_g[..., :, -1], out_f[..., :, -1], atol=atol, rtol=0)


def test_naive_bias_folding_fails_at_the_border_only():
    """b' = b − W·s with the zero padding kept (Quantus' construction, DESIGN.md) is wrong exactly on the border."""
    f = nn.Conv2d(3, 2, 3, padding=1).double()
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    shift = -1.0
    naive = copy.deepcopy(f)
    with torch.no_grad():
        naive.bias -= f.weight.sum(dim=(1, 2, 3)) * shift
    error = (naive(x + shift) - f(x)).abs()
    assert error[..., 1:-1, 1:-1].max() < 1e-12
    # at a corner the 5 padded taps of the kernel see 0 instead of the background -1: error |Σ W over them|
    corner_taps = f.weight[:, :, 0, :].sum(dim=(1, 2)) + f.weight[:, :, 1:, 0].sum(dim=(1, 2))
    torch.testing.assert_close(error[0, :, 0, 0], corner_taps.detach().abs(), atol=1e-12, rtol=0)
    assert error[..., 0, :].min() > 1e-3
    good = shifted_model(f, shift, example=x)
    assert (good(x + shift) - f(x)).abs().max() < 1e-12


@pytest.mark.parametrize(
    "options",
    [dict(padding="same"), dict(padding=(1, 2), groups=2), dict(padding=2, padding_mode="reflect"), dict(bias=False)],
)
def test_shifted_convolution_variants_with_a_per_channel_shift(options):
    torch.manual_seed(3)
    f = nn.Sequential(nn.Conv2d(4, 6, 3, **options), nn.ReLU(), nn.Flatten()).double()
    x = torch.rand(2, 4, 7, 7, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    g = shifted_model(f, shift, example=x)
    torch.testing.assert_close(g(x + shift.view(1, 4, 1, 1)), f(x), atol=1e-12, rtol=0)


def test_shifted_mlp_with_flatten_first_and_a_per_feature_shift():
    torch.manual_seed(4)
    f = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    shift = torch.tensor([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]], dtype=torch.float64)
    g = shifted_model(f, shift, example=x)
    torch.testing.assert_close(g(x + shift), f(x), atol=1e-12, rtol=0)
    expected_bias = f[1].bias - f[1].weight @ shift.flatten()
    torch.testing.assert_close(g[1].bias, expected_bias, atol=1e-15, rtol=0)


def test_model_left_untouched():
    model = conv_net()
    before = snapshot(model)
    x = torch.rand(2, 3, 8, 8)
    g = shifted_model(model, torch.tensor([0.1, -0.2, 0.3]), example=x)
    assert_unchanged(model, before)
    assert g.conv1 is not model.conv1 and g.conv2 is not model.conv2
    torch.testing.assert_close(g(x + torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1)), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("relu", ["functional", "reused", "torch"])
def test_every_relu_spelling_of_the_conv_net(relu):
    model = conv_net(relu)
    x = torch.rand(2, 3, 8, 8)
    g = shifted_model(model, -1.0, example=x)
    torch.testing.assert_close(g(x - 1.0), model(x), atol=1e-5, rtol=0)


def test_gradient_is_input_invariant_gradient_x_input_is_not():
    """Seed 003: the gradient is the same for both networks; gradient × input differs by |∇f · shift|."""
    model = conv_net().double()
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert input_invariance(model, x, method="gradient", target=1, shift=-1.0).max() < 1e-12
    grad = torch.func.vmap(torch.func.grad(lambda xi: model(xi[None])[0, 1]))(x)
    expected = grad.abs().flatten(1).amax(dim=1) * 1.0
    difference = input_invariance(model, x, method="gradient_x_input", target=1, shift=-1.0)
    torch.testing.assert_close(difference, expected, atol=1e-12, rtol=0)


def test_integrated_gradients_with_a_zero_baseline_is_not_input_invariant():
    """On a linear model IG = w ⊙ (x − 0), so the shift changes it by exactly |w · shift|."""
    model = nn.Linear(4, 2).double()
    x = torch.rand(3, 4, dtype=torch.float64)
    difference = input_invariance(
        model, x, method="integrated_gradients", target=0, shift=0.5, method_options={"baseline": "zeros", "steps": 8}
    )
    expected = (model.weight[0].abs().max() * 0.5).detach().expand(3)
    torch.testing.assert_close(difference, expected, atol=1e-12, rtol=0)


def test_custom_callable_method():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    x = torch.rand(5, 3, dtype=torch.float64)
    assert torch.equal(input_invariance(model, x, method=lambda m, xs, t: xs, shift=2.0), torch.full((5,), 2.0))


class _ScalesFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def forward(self, x):
        return self.layer(x * 2)


class _Residual(_ScalesFirst):
    def forward(self, x):
        return self.layer(x) + x[:, :2]


class _Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 3)

    def forward(self, x):
        return self.layer(torch.relu(self.layer(x)))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_ScalesFirst(), "first operation on the input is 'mul'"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 1)), "first operation on the input is 'relu'"),
        (_Residual(), "input is used again by 'getitem'"),
        (_Reused(), "called 2 times"),
    ],
)
def test_a_first_operation_that_cannot_absorb_the_shift_is_an_error(model, message):
    with pytest.raises(ValueError, match=message):
        shifted_model(model, 1.0, example=torch.rand(2, 3))


def test_bad_shifts_and_arguments_are_errors():
    conv = nn.Conv2d(3, 2, 3)
    x = torch.rand(1, 3, 5, 5)
    with pytest.raises(ValueError, match="one value per channel: the inputs have 3 channels"):
        shifted_model(conv, torch.ones(2), example=x)
    with pytest.raises(ValueError, match="differs across every pixel of a channel"):
        shifted_model(conv, torch.rand(3, 5, 5), example=x)
    with pytest.raises(ValueError, match="does not broadcast"):
        shifted_model(conv, torch.ones(4, 5, 5), example=x)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        shifted_model(lambda t: t, 1.0, example=x)
    with pytest.raises(TypeError, match="example must be"):
        shifted_model(conv, 1.0, example=torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="shift must be a number"):
        shifted_model(conv, "1", example=x)
