"""LRP and Deep Taylor: closed forms, LRP-0 = gradient × input, conservation, the seeds' networks, composites."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import InvarianceF, InvarianceG, assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl
from saliencelab.lrp import Composite, rule

D = torch.float64


def _linear(seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 3, bias=bias)).double()


def _out_relevance(model, x, target):
    with torch.no_grad():
        return model(x)[:, target]


def test_epsilon_closed_form_on_a_linear_layer():
    """R_i = x_i w_ti / (z_t + ε sign z_t) · z_t with the bias absorbed in z_t."""
    model = _linear()
    x = torch.randn(4, 5, dtype=D)
    w, b = model[0].weight[1], model[0].bias[1]
    z = x @ w + b
    for eps in (1e-9, 0.5):
        a = sl.LRP(model, rule="epsilon", epsilon=eps)(x, target=1)
        expected = x * w * (z / (z + eps * torch.sign(z))).unsqueeze(1)
        torch.testing.assert_close(a.values, expected.detach())
    ignored = sl.LRP(model, rule="epsilon", epsilon=1e-12, bias="ignore")(x, target=1)
    torch.testing.assert_close(ignored.values, (x * w * (z / (x @ w)).unsqueeze(1)).detach())


@pytest.mark.parametrize(
    "name, params",
    [
        ("zplus", {}),
        ("alpha_beta", {"alpha": 2.0, "beta": 1.0}),
        ("gamma", {"gamma": 0.5}),
        ("flat", {}),
        ("wsquare", {}),
    ],
)
def test_rules_closed_forms_on_a_conv_layer(name, params):
    """Each rule against its formula written with the layer's Jacobian (bias ignored, float64)."""
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 1, 3, bias=False).double()
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(4, 1, bias=False)).double()
    model[2].weight.data.fill_(1.0)  # the output is the sum of the conv outputs: R_j = z_j
    x = torch.randn(3, 2, 4, 4, dtype=D)
    comp = Composite(layers={"conv": rule(name, **params), "dense": rule("epsilon", epsilon=0.0)})
    ours = sl.LRP(model, composite=comp, bias="ignore")(x, target=0).values
    patches = F.unfold(x, 3)  # (N, 2*9, 4): x_i for each output j
    w = conv.weight.reshape(-1, 1)
    z = (patches * w).sum(1, keepdim=True)  # R_j = z_j

    def share(contrib):
        total = contrib.sum(1, keepdim=True)
        return contrib / (total + torch.where(total >= 0, 1e-6, -1e-6)) * z  # the rules' stabilizer

    if name == "zplus":
        part = patches.clamp(min=0) * w.clamp(min=0) + patches.clamp(max=0) * w.clamp(max=0)
        r = share(part)
    elif name == "alpha_beta":
        pos = patches.clamp(min=0) * w.clamp(min=0) + patches.clamp(max=0) * w.clamp(max=0)
        neg = patches.clamp(min=0) * w.clamp(max=0) + patches.clamp(max=0) * w.clamp(min=0)
        r = 2 * share(pos) - share(neg)
    elif name == "gamma":  # sign-aware: boost the contributions that agree with the output's sign
        up, down = patches.clamp(min=0), patches.clamp(max=0)
        agree = up * (w + 0.5 * w.clamp(min=0)) + down * (w + 0.5 * w.clamp(max=0))
        oppose = up * (w + 0.5 * w.clamp(max=0)) + down * (w + 0.5 * w.clamp(min=0))
        r = torch.where(z > 0, share(agree), share(oppose))
    elif name == "flat":
        r = share(torch.ones_like(patches))
    else:
        r = share(torch.ones_like(patches) * w**2)
    expected = F.fold(r, (4, 4), 3)
    torch.testing.assert_close(ours, expected)


def test_lrp0_equals_gradient_times_input_on_relu_nets():
    model = conv_net("functional", classes=4).double()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    lrp0 = sl.LRP(model, rule="epsilon", epsilon=0.0)(x, target=2).values
    gxi = sl.GradientXInput(model)(x, target=2).values
    torch.testing.assert_close(lrp0, gxi, rtol=1e-8, atol=1e-10)


class ResidualBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        self.bn.running_mean.normal_()
        self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        h = F.relu(self.bn(self.conv1(x)))
        h = F.relu(self.conv2(h) + h)
        return self.fc(F.avg_pool2d(h, 2).flatten(1))


NETS = {
    "conv_modules": lambda: conv_net("module", classes=3),
    "conv_functional": lambda: conv_net("functional", classes=3),
    "reused_inplace": lambda: conv_net("inplace", classes=3),
    "residual_batchnorm": lambda: ResidualBN().eval(),
}


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("name", ["epsilon", "zplus", "alpha_beta"])
def test_relevance_is_conserved_with_bias_ignored(net, name):
    torch.manual_seed(2)
    model = NETS[net]().double()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    options = {"epsilon": 1e-9} if name == "epsilon" else {}
    a = sl.LRP(model, rule=name, bias="ignore", stabilizer=1e-12, **options)(x, target=1)
    score = _out_relevance(model, x, 1)
    torch.testing.assert_close(a.values.flatten(1).sum(1), score, rtol=1e-5, atol=1e-8)
    assert a.delta.max() < 1e-5 * score.abs().max()


def test_the_ig_paper_networks():
    """Seed 001: LRP (epsilon, bias ignored) gives (1.5, -0.5) on f and (2, -1) on g at x = (3, 1)."""
    x = torch.tensor([[3.0, 1.0]], dtype=D)
    f = sl.LRP(InvarianceF(), rule="epsilon", epsilon=1e-12, bias="ignore", stabilizer=1e-12)(x).values
    g = sl.LRP(InvarianceG(), rule="epsilon", epsilon=1e-12, bias="ignore", stabilizer=1e-12)(x).values
    torch.testing.assert_close(f, torch.tensor([[1.5, -0.5]], dtype=D))
    torch.testing.assert_close(g, torch.tensor([[2.0, -1.0]], dtype=D))


def test_deep_taylor_is_non_negative_and_conserving():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5, bias=False),
        nn.ReLU(),
        nn.Linear(5, 1, bias=False),
    ).double()
    with torch.no_grad():
        model[5].weight.abs_()
    x = torch.rand(4, 1, 8, 8, dtype=D)
    a = sl.DeepTaylor(model, low=0.0, high=1.0, stabilizer=1e-12)(x)
    assert (a.values >= -1e-12).all()
    torch.testing.assert_close(a.values.flatten(1).sum(1), _out_relevance(model, x, 0), rtol=1e-8, atol=1e-10)


class Odd(nn.Module):
    """Flatten, Identity, Conv1d and a sigmoid: what Captum's LRP cannot run."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.body = nn.Sequential(nn.Identity(), nn.Sigmoid(), nn.Flatten(), nn.Linear(3 * 6, 4))

    def forward(self, x):
        return self.body(self.conv(x))


@pytest.mark.parametrize("composite", sl.lrp.COMPOSITES)
def test_every_composite_runs_and_leaves_the_model_untouched(composite):
    torch.manual_seed(4)
    model = Odd().double()
    before = snapshot(model)
    x = torch.rand(2, 2, 8, dtype=D)
    bounds = {"low": 0.0, "high": 1.0} if composite == "epsilon_gamma_box" else {}
    a = sl.LRP(model, composite=composite, **bounds)(x, target=1)
    assert a.values.shape == x.shape and torch.isfinite(a.values).all() and a.values.abs().sum() > 0
    assert_unchanged(model, before)


def test_composites_choose_by_name_type_and_position():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x = torch.randn(2, 4, dtype=D)
    eps0, flat = rule("epsilon", epsilon=0.0), rule("flat")
    by_name = sl.LRP(model, composite=Composite({"2": flat}, default=eps0))(x, target=0).values
    manual = sl.LRP(model, composite=Composite({nn.Linear: eps0}, first=None))(x, target=0).values
    assert not torch.allclose(by_name, manual)
    first_flat = sl.LRP(model, composite=Composite(first=flat, default=eps0))(x, target=0).values
    # flat on the input layer gives every input of a neuron the same share: equal across features
    torch.testing.assert_close(first_flat, first_flat[:, :1].expand_as(first_flat))


def test_unsupported_and_bad_options():
    class Soft(nn.Module):
        def forward(self, x):
            return (x * x).sum(1, keepdim=True)

    with pytest.raises(sl.UnsupportedOperationError, match="'mul'.*products"):
        sl.LRP(Soft())(torch.randn(2, 3))
    with pytest.raises(sl.UnsupportedOperationError, match="'softmax'"):
        sl.LRP(nn.Sequential(nn.Linear(3, 2), nn.Softmax(1)))(torch.randn(2, 3), target=0)
    with pytest.raises(ValueError, match="bias must be one of"):
        sl.LRP(nn.Linear(2, 1), bias="keep")
    with pytest.raises(ValueError, match="low= and high="):
        sl.LRP(nn.Linear(2, 1), composite="epsilon_gamma_box")
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        sl.LRP(nn.Linear(2, 1), rule="alpha_beta", alpha=2.0, beta=2.0)


def test_zbox_closed_form_on_a_linear_layer():
    """z^B: R_i = (x_i w_i − l w_i⁺ − h w_i⁻) / Σ_i' (…) · R with bounds l, h."""
    model = _linear(6, bias=False)
    x = torch.rand(3, 5, dtype=D)
    w = model[0].weight[2]
    a = sl.LRP(model, rule="zbox", low=0.0, high=1.0)(x, target=2).values
    contrib = x * w - 0.0 * w.clamp(min=0) - 1.0 * w.clamp(max=0)
    expected = contrib / (contrib.sum(1, keepdim=True) + 1e-6) * (x @ w).unsqueeze(1)  # the sum is positive here
    torch.testing.assert_close(a, expected.detach())


def test_transposed_convolution_and_one_dimensional_layers_conserve():
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3),
        nn.ReLU(),
        nn.Unflatten(1, (3, 1)),
        nn.ConvTranspose2d(3, 2, (1, 2), stride=(1, 2)),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 12, 2),
    ).double()
    x = torch.randn(3, 2, 8, dtype=D)
    a = sl.LRP(model, rule="epsilon", bias="ignore", epsilon=1e-12)(x, target=0)
    torch.testing.assert_close(a.values.flatten(1).sum(1), _out_relevance(model, x, 0), rtol=1e-6, atol=1e-9)
    # z+ and alpha-beta conserve only where every neuron has contributions of both signs; here some do not
    for name in ("zplus", "alpha_beta"):
        assert torch.isfinite(sl.LRP(model, rule=name, bias="ignore")(x, target=0).values).all()


def test_a_callable_target_puts_in_each_selected_outputs_share():
    """A linear selection s = Σ_k c_k y_k seeds R_k = c_k y_k: the sum of the per-class maps, conserved to s."""
    torch.manual_seed(4)
    model = conv_net("module", classes=3).double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=D)
    lrp = sl.LRP(model, rule="epsilon", epsilon=1e-12, bias="ignore", stabilizer=1e-12)
    both = lrp(x, target=lambda y: y[:, 0] - 2 * y[:, 2])
    expected = lrp(x, target=0).values - 2 * lrp(x, target=2).values
    torch.testing.assert_close(both.values, expected)
    with torch.no_grad():
        score = model(x)[:, 0] - 2 * model(x)[:, 2]
    torch.testing.assert_close(both.values.sum((1, 2, 3)), score, rtol=1e-8, atol=1e-10)
    assert both.delta.max() < 1e-8


def _folded(model: ResidualBN) -> ResidualBN:
    """A copy of ``model`` with its batch norm folded into ``conv1`` by hand."""
    folded = copy.deepcopy(model)
    bn, conv = folded.bn, folded.conv1
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias.copy_(scale * (conv.bias - bn.running_mean) + bn.bias)
    folded.bn = nn.Identity()
    return folded


@pytest.mark.parametrize("bias", ["absorb", "ignore"])
@pytest.mark.parametrize("name", ["epsilon", "zplus", "alpha_beta", "gamma"])
def test_merging_batch_norm_equals_folding_it_into_the_convolution(name, bias):
    torch.manual_seed(5)
    model = ResidualBN().double().eval()
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.normal_()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    before = snapshot(model)
    options = {"rule": name, "bias": bias, "stabilizer": 1e-12, **({"epsilon": 1e-12} if name == "epsilon" else {})}
    merged = sl.LRP(model, batch_norm="merge", **options)(x, target=1)
    assert_unchanged(model, before)
    folded = sl.LRP(_folded(model), **options)(x, target=1)
    torch.testing.assert_close(merged.values, folded.values, rtol=1e-7, atol=1e-10)
    own_rule = sl.LRP(model, **options)(x, target=1)
    if bias == "absorb" and name != "epsilon":  # z+, αβ, γ see the merged bias as a positive/negative input
        assert not torch.allclose(own_rule.values, merged.values)
    else:  # ε's shares, and every rule's without biases, are unchanged by a positive per-channel scale
        torch.testing.assert_close(own_rule.values, merged.values, rtol=1e-6, atol=1e-9)
    if bias == "ignore" and name == "epsilon":  # (z+, αβ lose an output's relevance where a part is empty)
        assert merged.delta.max() < 1e-6 * _out_relevance(model, x, 1).abs().max()


class PreNormReused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Linear(2 * 6 * 6, 2)

    def forward(self, x):
        z = self.conv(x)
        return self.fc((F.relu(self.bn(z)) + z).flatten(1))


def test_merging_refuses_a_layer_output_used_besides_its_batch_norm():
    model = PreNormReused().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(sl.UnsupportedOperationError, match="merged into"):
        sl.LRP(model, batch_norm="merge")(x, target=0)
    sl.LRP(model, batch_norm="rule")(x, target=0)
    with pytest.raises(ValueError, match="batch_norm must be one of"):
        sl.LRP(model, batch_norm="fold")
