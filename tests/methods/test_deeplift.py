"""DeepLIFT: the seeds' worked examples, exact summation-to-delta on many graphs, Captum agreement."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import InvarianceF, InvarianceG, assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl

RULES = ["rescale", "reveal_cancel"]


# --- the seeds' worked examples -------------------------------------------------------------


class ShiftedRelu(nn.Module):
    """f(x) = max(0, x − 10) (seed 001, example 1)."""

    def forward(self, x):
        return F.relu(x - 10)


class MinModules(nn.Module):
    """o = min(i1, i2) = i1 − ReLU(i1 − i2) with an nn.ReLU and a linear layer (seed 001, example 2)."""

    def __init__(self):
        super().__init__()
        self.difference = nn.Linear(2, 1, bias=False)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.difference.weight.copy_(torch.tensor([[1.0, -1.0]]))

    def forward(self, x):
        return x[:, :1] - self.relu(self.difference(x))


class MinFunctional(nn.Module):
    """The same network written with tensor operations and F.relu."""

    def forward(self, x):
        i1, i2 = x[:, 0:1], x[:, 1:2]
        return i1 - F.relu(i1 - i2)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_shifted_relu_gives_epsilon(rule, eps):
    """Seed 001: at x = 10 + ε with reference 0 the contribution is ε (the gradient×input gives 10 + ε)."""
    x = torch.tensor([[10 + eps]], dtype=torch.float64)
    a = sl.DeepLift(ShiftedRelu(), rule=rule)(x)
    assert a.values.item() == pytest.approx(eps, rel=1e-12)


@pytest.mark.parametrize("model", [MinModules(), MinFunctional()], ids=["modules", "functional"])
@pytest.mark.parametrize("i1, i2", [(3.0, 1.0), (5.0, 4.5), (0.7, 0.2)])
def test_min_example(model, i1, i2):
    """Seed 001: for i1 > i2 > 0, Rescale gives (0, i2) and RevealCancel (i2/2, i2/2)."""
    x = torch.tensor([[i1, i2]], dtype=torch.float64)
    rescale = sl.DeepLift(model.double())(x).values
    reveal = sl.DeepLift(model.double(), rule="reveal_cancel")(x).values
    torch.testing.assert_close(rescale, torch.tensor([[0.0, i2]], dtype=torch.float64))
    torch.testing.assert_close(reveal, torch.tensor([[i2 / 2, i2 / 2]], dtype=torch.float64))


def test_min_example_other_order():
    """Seed 001: when i1 < i2 both inputs get i1/2 under RevealCancel."""
    x = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    reveal = sl.DeepLift(MinFunctional(), rule="reveal_cancel")(x).values
    torch.testing.assert_close(reveal, torch.tensor([[0.5, 0.5]], dtype=torch.float64))


def test_deeplift_is_not_implementation_invariant():
    """Seed 001 at x = (3, 1), reference 0: f gives (1.5, −0.5), g gives (2, −1); IG gives (1.5, −0.5) for both."""
    x = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    grid = torch.linspace(-3, 3, 25, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    torch.testing.assert_close(InvarianceF()(points), InvarianceG()(points))
    torch.testing.assert_close(sl.DeepLift(InvarianceF())(x).values, torch.tensor([[1.5, -0.5]], dtype=torch.float64))
    torch.testing.assert_close(sl.DeepLift(InvarianceG())(x).values, torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    for model in (InvarianceF(), InvarianceG()):
        ig = sl.IntegratedGradients(model, steps=2000, integration="riemann_middle")(x).values
        torch.testing.assert_close(ig, torch.tensor([[1.5, -0.5]], dtype=torch.float64), atol=2e-3, rtol=0)


# --- exact summation-to-delta on many graphs --------------------------------------------------


class FunctionalStack(nn.Module):
    """Conv-ReLU-MaxPool twice, written with F.conv2d, torch.relu, Tensor.max_pool2d-free calls."""

    def __init__(self, classes=4):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(6, 3, 3, 3) / 3), nn.Parameter(torch.randn(6) / 3)
        self.w2, self.b2 = nn.Parameter(torch.randn(8, 6, 3, 3) / 4), nn.Parameter(torch.randn(8) / 3)
        self.w3 = nn.Parameter(torch.randn(classes, 8 * 2 * 2) / 4)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(F.conv2d(x, self.w1, self.b1, padding=1)), 2)
        x = F.max_pool2d(F.conv2d(x, self.w2, self.b2, padding=1).relu(), 3, stride=2, padding=1)
        return x.flatten(1) @ self.w3.t()


class ModuleStack(nn.Module):
    """Conv-ReLU-MaxPool blocks as modules, overlapping pooling windows and ceil mode."""

    def __init__(self, classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(6, 8, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, classes))

    def forward(self, x):
        return self.head(self.features(x))


class ReusedModules(nn.Module):
    """One ReLU and one MaxPool2d module, each called twice."""

    def __init__(self, classes=4):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
        self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 2 * 2, classes)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


class Residual(nn.Module):
    """Two residual blocks written ``out = relu(bn(conv(x)) + x)`` with in-place ``+=`` in one of them."""

    def __init__(self, classes=4):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.conv1, self.bn1 = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(6, classes)
        for bn in (self.bn1, self.bn2):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.normal_()
            bn.bias.data.normal_()

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.relu(self.bn1(self.conv1(x)) + x)
        out = self.bn2(self.conv2(x))
        out += x
        x = self.relu(out)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class MixedChain(nn.Module):
    """Linear layers separated by ReLU, tanh, sigmoid, ELU, softplus, GELU, SiLU and LeakyReLU."""

    def __init__(self, classes=4):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(3 * 8 * 8, 12)] + [nn.Linear(12, 12) for _ in range(7)])
        self.out = nn.Linear(12, classes)
        self.acts = [torch.relu, torch.tanh, torch.sigmoid, F.elu, F.softplus, F.gelu, F.silu, nn.LeakyReLU(0.1)]

    def forward(self, x):
        x = x.flatten(1)
        for layer, act in zip(self.layers, self.acts, strict=True):
            x = act(layer(x) * 2)
        return self.out(x)


GRAPHS = {
    "conv_relu_maxpool_modules": ModuleStack,
    "conv_relu_maxpool_functional": FunctionalStack,
    "reused_relu_and_maxpool": ReusedModules,
    "residual_batchnorm": Residual,
    "mixed_chain": MixedChain,
    "relu_spelled_as_methods": lambda: conv_net("method", classes=4),
    "relu_inplace_reused": lambda: conv_net("inplace", classes=4),
    "vision_transformer": lambda: sl.zoo.load("vit_tiny_shaped", num_classes=4, image_size=8, seed=1),
}


def _relative_gap(model, attribution, x, refs, target):
    with torch.no_grad():
        difference = model(x)[:, target] - model(refs)[:, target]
    gap = (attribution.values.flatten(1).sum(1) - difference).abs()
    return (gap / difference.abs().clamp(min=1e-3)).max().item()


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("graph", GRAPHS)
def test_summation_to_delta_is_exact(graph, rule):
    """Σ C = f(x) − f(x′) to 1e-6 relative in float64, every class, random weights and random references."""
    torch.manual_seed(3)
    model = GRAPHS[graph]().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    refs = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    for target in range(4):
        a = sl.DeepLift(model, rule=rule)(x, target=target, baseline=refs)
        assert _relative_gap(model, a, x, refs, target) < 1e-6
        assert a.delta.max() < 1e-9


@pytest.mark.parametrize("rule", RULES)
def test_float32_summation_to_delta(rule):
    """In float32 the gap is rounding only: below 1e-4 relative on the conv-pool stack."""
    torch.manual_seed(4)
    model = ModuleStack().eval()
    x, refs = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    a = sl.DeepLift(model, rule=rule)(x, target=1, baseline=refs)
    assert _relative_gap(model, a, x, refs, 1) < 1e-4


# --- rules on their own ---------------------------------------------------------------------


def test_gradient_fallback_when_the_difference_vanishes():
    """Where Δz = 0 the multiplier is the derivative: the sigmoid's 1/4 at 0, so inputs still get credit."""
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Sigmoid(), nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].weight.fill_(2.0)
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # Δz = 0 at the sigmoid
    a = sl.DeepLift(model)(x)
    torch.testing.assert_close(a.values, torch.tensor([[0.5, -0.5]], dtype=torch.float64))


def test_reveal_cancel_zero_difference_linear_case():
    """Seed 002: a neuron with Δx = 0 passes 0.5·w to both parts, so cancelling inputs still get contributions."""

    class Cancel(nn.Module):
        def forward(self, x):
            h = x[:, 0:1] - x[:, 1:2]  # Δh = 0 at x = (1, 1): h⁺ = 1, h⁻ = −1
            return F.relu(2 * h + x[:, 2:3])

    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    a = sl.DeepLift(Cancel(), rule="reveal_cancel")(x)
    assert a.values.sum().item() == pytest.approx(1.0)
    assert a.values[0, 0].item() == pytest.approx(-a.values[0, 1].item())
    assert a.values[0, 0].item() != 0


def test_product_of_two_inputs_is_the_shapley_split():
    """y = a·b: each factor gets half of the product's change with the other factor averaged (exact)."""

    class Product(nn.Module):
        def forward(self, x):
            return (x[:, 0] * x[:, 1]).unsqueeze(1)

    x, ref = torch.tensor([[2.0, 3.0]]).double(), torch.tensor([[1.0, -1.0]]).double()
    a = sl.DeepLift(Product())(x, baseline=ref)
    torch.testing.assert_close(a.values, torch.tensor([[(2 - 1) * (3 - 1) / 2, (3 + 1) * (2 + 1) / 2]]).double())
    assert a.values.sum().item() == pytest.approx(6 - (-1))


class GatedAttention(nn.Module):
    """Products of input-dependent tensors: a sigmoid gate, attention scores, softmax over tokens."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.gate = nn.Linear(4, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):  # x: (N, T, 4)
        scores = self.q(x) @ self.k(x).transpose(1, 2) / 2
        mixed = scores.softmax(dim=-1) @ self.v(x)
        gated = mixed * torch.sigmoid(self.gate(x)) / (1 + x.pow(2))
        return self.out(gated.mean(dim=1))


@pytest.mark.parametrize("rule", RULES)
def test_products_softmax_and_division_are_exact(rule):
    torch.manual_seed(5)
    model = GatedAttention().double()
    x, refs = torch.randn(3, 5, 4).double(), torch.randn(3, 5, 4).double()
    for target in range(3):
        a = sl.DeepLift(model, rule=rule)(x, target=target, baseline=refs)
        assert _relative_gap(model, a, x, refs, target) < 1e-6


def test_softmax_output_keeps_samples_independent():
    """A softmax output: each sample's attribution is the same alone or in any batch (Captum's is not)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4), nn.Softmax(dim=1)).double()
    x, refs = torch.randn(6, 5).double(), torch.randn(6, 5).double()
    together = sl.DeepLift(model)(x, target=2, baseline=refs).values
    for i in range(6):
        alone = sl.DeepLift(model)(x[i : i + 1], target=2, baseline=refs[i : i + 1]).values
        torch.testing.assert_close(alone, together[i : i + 1], rtol=0, atol=1e-12)
    assert _relative_gap(model, sl.DeepLift(model)(x, target=2, baseline=refs), x, refs, 2) < 1e-6


def test_mean_normalize_subtracts_the_mean_over_classes():
    """Seed 001's softmax adjustment: contributions to logit t minus their mean over the classes."""
    torch.manual_seed(7)
    model = ModuleStack().double().eval()
    x, refs = torch.randn(2, 3, 8, 8).double(), torch.randn(2, 3, 8, 8).double()
    per_class = torch.stack([sl.DeepLift(model)(x, target=c, baseline=refs).values for c in range(4)])
    normalised = sl.DeepLift(model, mean_normalize=True)(x, target=1, baseline=refs)
    torch.testing.assert_close(normalised.values, per_class[1] - per_class.mean(0))
    assert normalised.delta.max() < 1e-9
    with pytest.raises(ValueError, match="class target"):
        sl.DeepLift(model, mean_normalize=True)(x, target=lambda out: out.sum(1), baseline=refs)


def test_callable_target_runs_through_the_rules():
    """A callable target (here log-softmax of class 0) is propagated like the model: still exact."""
    torch.manual_seed(8)
    model = MixedChain().double()
    x, refs = torch.randn(2, 3, 8, 8).double(), torch.randn(2, 3, 8, 8).double()
    target = lambda out: out.log_softmax(dim=1)[:, 0]  # noqa: E731
    a = sl.DeepLift(model)(x, target=target, baseline=refs)
    with torch.no_grad():
        difference = target(model(x)) - target(model(refs))
    torch.testing.assert_close(a.values.flatten(1).sum(1), difference)


# --- agreement with Captum where it is right ------------------------------------------------


def test_agrees_with_captum_on_linear_relu_linear():
    captum = pytest.importorskip("captum.attr")
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)).double().eval()
    x, refs = torch.randn(5, 6).double(), torch.randn(5, 6).double()
    ours = sl.DeepLift(model)(x, target=2, baseline=refs).values
    theirs = captum.DeepLift(model).attribute(x, baselines=refs, target=2)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_captum_breaks_completeness_where_we_do_not():
    """Conv-ReLU-MaxPool with random references: Captum's completeness error is large, ours is rounding."""
    captum = pytest.importorskip("captum.attr")
    torch.manual_seed(10)
    model = ModuleStack().double().eval()
    model.features[4].inplace = False  # Captum cannot take in-place ReLUs
    x, refs = torch.randn(4, 3, 8, 8).double(), torch.randn(4, 3, 8, 8).double()
    with torch.no_grad():
        difference = model(x)[:, 0] - model(refs)[:, 0]
    theirs = captum.DeepLift(model).attribute(x, baselines=refs, target=0)
    ours = sl.DeepLift(model)(x, target=0, baseline=refs).values
    assert (ours.flatten(1).sum(1) - difference).abs().max() < 1e-10
    assert (theirs.flatten(1).sum(1) - difference).abs().max() > 1e-3


# --- errors and the model's state ---------------------------------------------------------------


def test_unsupported_operations_raise_naming_the_op():
    class Sorted(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(torch.sort(x).values)

    class Masked(nn.Module):
        def forward(self, x):
            return (x * (x > 0)).sum(1, keepdim=True)

    x = torch.randn(2, 4)
    with pytest.raises(sl.UnsupportedOperationError, match="deeplift.*'sort'"):
        sl.DeepLift(Sorted())(x, target=0)
    with pytest.raises(sl.UnsupportedOperationError, match="'gt'"):
        sl.DeepLift(Masked())(x)


def test_training_mode_batch_norm_and_dropout_raise():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    with pytest.warns(UserWarning), pytest.raises(sl.UnsupportedOperationError, match="model.eval"):
        sl.DeepLift(model)(torch.randn(3, 1, 4, 4), target=0)
    dropout = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.warns(UserWarning), pytest.raises(sl.UnsupportedOperationError, match="model.eval"):
        sl.DeepLift(dropout)(torch.randn(3, 4), target=0)
    assert model.training and dropout.training


@pytest.mark.parametrize("rule", RULES)
def test_model_is_untouched(rule):
    model = Residual().eval()
    before = snapshot(model)
    sl.DeepLift(model, rule=rule)(torch.randn(2, 3, 8, 8), target=1, baseline="blur")
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match="out of range"):
        sl.DeepLift(model, rule=rule)(torch.randn(2, 3, 8, 8), target=9)
    assert_unchanged(model, before)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="rule must be one of"):
        sl.DeepLift(nn.Linear(2, 1), rule="rescal")
    with pytest.raises(ValueError, match="threshold"):
        sl.DeepLift(nn.Linear(2, 1), threshold=-1.0)


def test_operations_outside_torch_are_reported():
    """A NumPy round trip hides part of the model from the rules: the gap is reported, not hidden."""

    class RoundTrip(nn.Module):
        def forward(self, x):
            hidden = torch.from_numpy(torch.tanh(x).detach().numpy().copy())
            return (x + hidden).sum(1, keepdim=True)

    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.warns(UserWarning, match="outside torch operations"):
        a = sl.DeepLift(RoundTrip())(x)
    assert a.delta.max() > 0.1


def test_gradient_fallback_with_a_broadcast_parameter():
    """PReLU's slope is a tensor argument: the fallback differentiates the whole tensor, giving prelu'(0) = a."""
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.PReLU(init=0.25), nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].weight.fill_(2.0)
    a = sl.DeepLift(model)(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(a.values, torch.tensor([[0.5, -0.5]], dtype=torch.float64))


# --- numerical safety: far moves, non-finite results, hooks, empty references -------------------


def _softmax_example(dtype: torch.dtype) -> nn.Module:
    """Linear(2, 3) with weight [[1, 0], [1, .5], [1, -.5]], no bias, then a softmax."""
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Softmax(dim=1)).to(dtype)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.5], [1.0, -0.5]]))
    return model


def _softmax_rescale_closed_form(x: list[float], target: int) -> list[float]:
    """The Rescale contributions of ``_softmax_example`` from reference 0, in float64 by hand.

    ``C_i = m_p · (W_ti x_i − (ΔL/ΔS) Σ_j (Δe_j/Δz_j) W_ji x_i)`` with ``e = exp z``,
    ``S = Σ e``, ``L = log S`` and ``m_p = Δp_t / Δ(z_t − L)``; moves up to ~700 fit float64.
    """
    weight = [[1.0, 0.0], [1.0, 0.5], [1.0, -0.5]]
    z = [sum(w * v for w, v in zip(row, x, strict=True)) for row in weight]
    e = [math.exp(v) for v in z]
    delta_s, delta_l = sum(e) - 3, math.log(sum(e)) - math.log(3)
    delta_p = e[target] / sum(e) - 1 / 3
    m_p = delta_p / (z[target] - delta_l)
    m_e = [(e[j] - 1) / z[j] for j in range(3)]
    return [
        m_p * (weight[target][i] - delta_l / delta_s * sum(m_e[j] * weight[j][i] for j in range(3))) * x[i]
        for i in range(2)
    ]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float64, 1e-12)])
def test_softmax_when_every_logit_moves_far(dtype, tolerance, rule):
    """Every logit moves by ~200 (float32 exp underflows at ~100): Σ C = softmax(x)₁ − softmax(0)₁ = 0.1731.

    The old shared shift made the reference's exponentials underflow to 0 and returned NaN.
    """
    x = torch.tensor([[200.0, 1.0]], dtype=dtype)
    a = sl.DeepLift(_softmax_example(dtype), rule=rule)(x, target=1, baseline=0.0)
    logits = torch.tensor([200.0, 200.5, 199.5], dtype=torch.float64)
    change = (torch.softmax(logits, 0)[1] - 1 / 3).item()
    assert change == pytest.approx(0.1731, abs=1e-4)
    assert a.values.sum().item() == pytest.approx(change, abs=tolerance)
    expected = torch.tensor([_softmax_rescale_closed_form([200.0, 1.0], 1)], dtype=torch.float64)
    torch.testing.assert_close(a.values.double(), expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("last", [nn.Softmax(dim=1), nn.LogSoftmax(dim=1)], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e5])
def test_softmax_and_log_softmax_sum_to_delta_at_any_scale(scale, last, dtype, rule):
    """Random weights, logits scaled up to 1e5, random references: finite and Σ C = Δ to rounding.

    float64 gaps measured: below 5e-11 at 1e5; float32 below 2e-2 on log-softmax changes of ~5e4.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 5), last).to(dtype)
    with torch.no_grad():
        model[2].weight.mul_(scale)
        model[2].bias.add_(torch.randn(5, dtype=dtype) * scale)
    x, refs = torch.randn(6, 4, dtype=dtype), torch.randn(6, 4, dtype=dtype)
    a = sl.DeepLift(model, rule=rule)(x, target=2, baseline=refs)
    with torch.no_grad():
        change = (model(x)[:, 2] - model(refs)[:, 2]).double()
    assert torch.isfinite(a.values).all()
    gap = (a.values.double().sum(1) - change).abs()
    relative = 1e-12 if dtype == torch.float64 else 1e-5
    assert (gap <= relative * change.abs().clamp(min=1) * 100 + relative).all(), gap.max().item()


class _InfiniteSlope(nn.Module):
    """sqrt(x₀ − x₁): at x = (1, 1) against 0 the difference at the sqrt vanishes where its slope is infinite."""

    def forward(self, x):
        return torch.sqrt(x[:, :1] - x[:, 1:2]) + x[:, 2:3]


@pytest.mark.parametrize("method", ["deeplift", "deepshap"])
def test_a_nan_multiplier_is_an_error_naming_the_operation(method):
    """The old code returned NaN values (and a NaN delta that the inexactness check let pass)."""
    model = _InfiniteSlope()
    x = torch.tensor([[1.0, 1.0, 2.0], [4.0, 0.0, 1.0]], dtype=torch.float64)
    baseline = torch.zeros(1, 3, dtype=torch.float64) if method == "deepshap" else 0.0
    before = snapshot(model)
    with pytest.raises(FloatingPointError, match=rf"{method}: .*'sqrt' is NaN or Inf.*samples \[0\]"):
        sl.explain(model, x, method=method, baseline=baseline)
    assert_unchanged(model, before)


def test_a_model_that_overflows_is_an_error_naming_the_operation():
    """exp(100) is Inf in float32: the model's own overflow is named, never returned as a map."""

    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(100 * x).sum(1, keepdim=True)

    with pytest.raises(FloatingPointError, match="model's own 'exp' is NaN or Inf at the input"):
        sl.DeepLift(Exp())(torch.ones(2, 3))


def test_inexactness_check_counts_nan_as_inexact():
    from saliencelab.methods.deeplift import _warn_if_inexact

    nan = torch.tensor([float("nan"), 0.0])
    with pytest.warns(UserWarning, match=r"samples \[0\]"):
        _warn_if_inexact(nan, torch.ones(2), torch.ones(2), torch.finfo(torch.float32).eps)


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
        net[1].weight.uniform_(0.5, 2)
    return net.double().eval()


@pytest.mark.parametrize("rule", RULES)
def test_user_backward_hooks_change_nothing(rule):
    """Full backward (pre-)hooks wrap module inputs and outputs in an identity autograd Function whose
    forward runs without grad: the old code lost the differences there (values 0, delta 0.07).

    Now the values equal those without hooks exactly; the hooks are not called (DeepLIFT
    differentiates its differences, not the model's values) and stay registered.
    """
    net = _bn_net()
    x, refs = torch.randn(2, 1, 6, 6, dtype=torch.float64), torch.randn(2, 1, 6, 6, dtype=torch.float64)
    plain = sl.DeepLift(net, rule=rule)(x, target=0, baseline=refs)
    calls: list[str] = []
    handles = [m.register_full_backward_hook(lambda *_: calls.append("hook")) for m in (net[1], net[2], net)]
    handles.append(net[1].register_full_backward_pre_hook(lambda *_: calls.append("pre")))
    before = snapshot(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hooked = sl.DeepLift(net, rule=rule)(x, target=0, baseline=refs)
    torch.testing.assert_close(hooked.values, plain.values, rtol=0, atol=0)
    assert hooked.delta.max() < 1e-12 and plain.values.abs().sum() > 0.01
    assert calls == []
    assert_unchanged(net, before)
    net(x.requires_grad_(True))[:, 0].sum().backward()  # the hooks still work for the user
    assert sorted(calls) == ["hook", "hook", "hook", "pre"]
    for handle in handles:
        handle.remove()


def test_no_grad_blocks_and_custom_functions_keep_the_differences():
    """Model code that runs without grad (a no_grad block, a custom Function's forward) is still exact."""

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x**3

        @staticmethod
        def backward(ctx, grad):
            raise AssertionError("DeepLIFT must not call the model's backward")

    class Model(nn.Module):
        def forward(self, x):
            with torch.no_grad():
                scale = x.sum(1, keepdim=True)
            return torch.tanh(Cube.apply(x) * scale).sum(1, keepdim=True)

    torch.manual_seed(1)
    x, refs = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    a = sl.DeepLift(Model())(x, baseline=refs)
    change = (Model()(x) - Model()(refs)).squeeze(1)
    torch.testing.assert_close(a.values.sum(1), change, rtol=1e-12, atol=1e-12)


def test_an_empty_reference_batch_is_a_clear_error():
    """DeepSHAP draws from a background of K references; K = 0 used to raise IndexError."""
    model = nn.Linear(3, 2)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"the reference batch is empty.*\(K, 3\) with K >= 1"):
        sl.DeepShap(model)(torch.randn(2, 3), target=0, baseline=torch.zeros(0, 3))
    assert_unchanged(model, before)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "gelu", "silu", "elu", "mish", "logsigmoid"])
def test_elementwise_rules_at_extreme_inputs(name, dtype, rule):
    """Pre-activations of ±3e4 (and a step of 3e-2 at 0): finite, Σ C = Δ to the dtype's rounding
    of the contributions (which cancel: |C| ~ 3e4 for a change of ~0.7)."""
    f = getattr(F, name) if hasattr(F, name) else getattr(torch, name)
    weight = torch.tensor([3e4, -3e4, 3e4], dtype=dtype)
    x = torch.tensor([[1.0, 1.0, 1e-6], [-1.0, 0.5, 0.0]], dtype=dtype)
    refs = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.5, 1e-6]], dtype=dtype)

    def model(t):
        return f(t * weight).sum(1, keepdim=True)

    a = sl.DeepLift(model, rule=rule)(x, baseline=refs)
    change = (model(x) - model(refs)).squeeze(1).double()
    assert torch.isfinite(a.values).all()
    scale = a.values.double().abs().sum(1) + change.abs() + 1
    assert ((a.values.double().sum(1) - change).abs() <= 8 * torch.finfo(dtype).eps * scale).all()
