"""The difference engine: exact maxima, coverage of operations, and the errors for what it cannot do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliencelab as sl
from saliencelab.engine.difference.maximum import envelope, max_fractions


def _numeric_fractions(values, refs, points=200_001):
    """Fractions of [0, 1] on which each line is the maximum, on a fine grid."""
    t = torch.linspace(0, 1, points, dtype=torch.float64)
    lines = refs.unsqueeze(-1) + t * (values - refs).unsqueeze(-1)  # (m, k, points)
    winner = lines.argmax(dim=1)
    return F.one_hot(winner, values.shape[1]).double().mean(dim=1)


@pytest.mark.parametrize("k", [2, 3, 9])
def test_envelope_fractions_match_a_fine_grid(k):
    torch.manual_seed(k)
    values, refs = torch.randn(40, k, dtype=torch.float64), torch.randn(40, k, dtype=torch.float64)
    exact = envelope(values, refs)
    torch.testing.assert_close(exact, _numeric_fractions(values, refs), atol=2e-5, rtol=0)
    change = values.amax(1) - refs.amax(1)
    torch.testing.assert_close((exact * (values - refs)).sum(1), change, atol=1e-12, rtol=0)


def test_max_fractions_route_unchanged_winners_and_skip_padding():
    values = torch.tensor([[1.0, 5.0, -torch.inf], [0.0, 2.0, 1.0]])
    refs = torch.tensor([[0.0, 3.0, -torch.inf], [4.0, 0.0, 0.0]])
    fractions = max_fractions(values, refs)
    torch.testing.assert_close(fractions[0], torch.tensor([0.0, 1.0, 0.0]))  # same winner at both ends
    torch.testing.assert_close(fractions[1], torch.tensor([2 / 3, 1 / 3, 0.0]))  # crossing at t = 2/3


class Single(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x).flatten(1).sum(1, keepdim=True)


POOLS = {
    "max_pool1d_dilated_ceil": (lambda x: F.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True), (2, 3, 11)),
    "max_pool2d_overlapping": (lambda x: F.max_pool2d(x, 3, 2, padding=1), (2, 3, 7, 7)),
    "max_pool2d_ceil_indices": (lambda x: nn.MaxPool2d(2, ceil_mode=True, return_indices=True)(x)[0], (2, 2, 5, 5)),
    "max_pool3d": (lambda x: F.max_pool3d(x, 2), (2, 1, 4, 4, 4)),
    "amax": (lambda x: x.amax(dim=(2, 3)), (2, 3, 4, 4)),
    "max_dim": (lambda x: x.max(dim=-1).values, (2, 3, 5)),
    "min_dim_keepdim": (lambda x: torch.min(x, dim=1, keepdim=True)[0], (2, 4, 3)),
    "amin": (lambda x: torch.amin(x, dim=-1, keepdim=True), (2, 6)),
    "maximum_minimum": (lambda x: torch.maximum(x[:, :2], x[:, 2:]) + torch.minimum(x[:, :2], 0.5 * x[:, 2:]), (2, 4)),
}


@pytest.mark.parametrize("name", POOLS)
def test_maxima_equal_their_exact_path_integral(name):
    """A lone maximum: DeepLIFT's shares are the exact integrated gradient (checked with 8k midpoints)."""
    fn, shape = POOLS[name]
    torch.manual_seed(1)
    x, ref = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    model = Single(fn)
    ours = sl.DeepLift(model)(x, baseline=ref)
    ig = sl.IntegratedGradients(model, steps=8_000, integration="riemann_middle")(x, baseline=ref).values
    torch.testing.assert_close(ours.values, ig, atol=1e-3, rtol=0)
    assert ours.delta.max() < 1e-12


LINEAR_OPS = {
    "conv1d_transpose2d": (
        lambda x, p: F.conv_transpose2d(F.conv1d(x.flatten(2), p[0], p[1]).unsqueeze(2), p[2], stride=2),
        (2, 3, 2, 5),
    ),
    "avg_pools_interpolate": (
        lambda x, p: F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear") + F.adaptive_avg_pool2d(x, 1),
        (2, 3, 6, 6),
    ),
    "cat_constant_token_and_pad": (
        lambda x, p: F.pad(torch.cat([torch.ones(x.shape[0], 1, 4) * 3.0, x.flatten(2)], dim=1), (1, 2), value=7.0),
        (2, 3, 2, 2),
    ),
    "where_masked_fill_constant_mask": (
        lambda x, p: torch.where(p[3], x, 2.0).masked_fill(~p[3], -1.0) * x.exp(),
        (2, 3, 2, 2),
    ),
    "matmul_einsum_free_linear_algebra": (
        lambda x, p: torch.tanh(x.flatten(1) @ p[4]).unsqueeze(1).expand(-1, 2, -1).permute(0, 2, 1).flatten(1),
        (2, 3, 2, 2),
    ),
}


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("name", LINEAR_OPS)
def test_operations_keep_summation_to_delta(name, rule):
    torch.manual_seed(2)
    params = [
        torch.randn(4, 3, 3, dtype=torch.float64),
        torch.randn(4, dtype=torch.float64),
        torch.randn(4, 2, 3, 3, dtype=torch.float64),
        torch.rand(3, 2, 2) > 0.5,
        torch.randn(12, 5, dtype=torch.float64),
    ]
    fn, shape = LINEAR_OPS[name]
    model = Single(lambda x: torch.sigmoid(fn(x, params)))
    x, ref = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    a = sl.DeepLift(model, rule=rule)(x, baseline=ref)
    with torch.no_grad():
        change = (model(x) - model(ref)).squeeze(1)
    torch.testing.assert_close(a.values.flatten(1).sum(1), change, atol=1e-10, rtol=1e-9)


NORMS_AND_ATTENTION = {
    "layer_norm": (lambda x, p: F.layer_norm(x.flatten(1), (12,), p[4][:, 0] + 1, p[4][:, 1]), (2, 3, 2, 2)),
    "group_norm": (lambda x, p: F.group_norm(x, 3, p[1][:3], p[1][1:]).flatten(1), (2, 3, 2, 2)),
    "self_attention": (
        lambda x, p: F.scaled_dot_product_attention(x, x * 2 - 1, x.tanh()).flatten(1),
        (2, 3, 4, 5),
    ),
    "causal_attention_over_heads": (
        lambda x, p: F.scaled_dot_product_attention(x, x.flip(1), x, is_causal=True, scale=0.7).flatten(1),
        (2, 3, 4, 5),
    ),
    "masked_grouped_query_attention": (
        lambda x, p: F.scaled_dot_product_attention(
            x, x[:, :1] * 2, x[:, 1:2], attn_mask=p[3][0, :, :1].expand(4, 4), enable_gqa=True
        ).flatten(1),
        (2, 2, 4, 3),
    ),
    "float_mask_attention": (
        lambda x, p: F.scaled_dot_product_attention(x, x, x, attn_mask=p[4][:4, :4]).flatten(1),
        (2, 4, 3),
    ),
}


@pytest.mark.parametrize("name", NORMS_AND_ATTENTION)
def test_norms_and_attention_by_their_definitions_equal_torch(name):
    """The definitions the difference mode runs give torch's own values (1e-12 in float64)."""
    from saliencelab.engine.difference.composite import DECOMPOSITIONS

    torch.manual_seed(5)
    fn, shape = NORMS_AND_ATTENTION[name]
    params = _params()
    x = torch.randn(shape, dtype=torch.float64)
    with _Decomposed(DECOMPOSITIONS) as decomposed:
        ours = fn(x, params)
    assert decomposed.used and set(decomposed.used) <= set(DECOMPOSITIONS)  # the definitions ran, not torch's ops
    torch.testing.assert_close(ours, fn(x, params), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("name", NORMS_AND_ATTENTION)
def test_norms_and_attention_keep_summation_to_delta(name, rule):
    """Layer and group norms and attention (masks, causal, grouped queries): Σ C = f(x) − f(x′) to 1e-10."""
    torch.manual_seed(6)
    params = _params()
    fn, shape = NORMS_AND_ATTENTION[name]
    model = Single(lambda x: fn(x, params).tanh())
    x, ref = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    a = sl.DeepLift(model, rule=rule)(x, baseline=ref)
    with torch.no_grad():
        change = (model(x) - model(ref)).squeeze(1)
    assert (change.abs() > 1e-3).all()
    torch.testing.assert_close(a.values.flatten(1).sum(1), change, atol=1e-10, rtol=1e-9)


def test_attention_dropout_is_refused_as_random():
    model = Single(lambda x: F.scaled_dot_product_attention(x, x, x, dropout_p=0.1).flatten(1))
    with pytest.raises(sl.UnsupportedOperationError, match="'dropout'.*training mode"):
        sl.DeepLift(model)(torch.randn(2, 3, 4))


def _params():
    return [
        torch.randn(4, 3, 3, dtype=torch.float64),
        torch.randn(4, dtype=torch.float64),
        torch.randn(4, 2, 3, 3, dtype=torch.float64),
        torch.rand(3, 4, 4) > 0.3,
        torch.randn(12, 5, dtype=torch.float64),
    ]


class _Decomposed(torch.overrides.TorchFunctionMode):
    """Runs the named operations as their definitions, everything else unchanged."""

    def __init__(self, decompositions):
        super().__init__()
        self.decompositions = decompositions
        self.used: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.decompositions:
            self.used.append(name)
            func = self.decompositions[name]
        return func(*args, **(kwargs or {}))


class Writes(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):
        h = x * 2
        if self.how == "setitem":
            h[:, 0] = 0.0
        elif self.how == "view":
            h.view(-1).relu_()
        elif self.how == "buffer":
            return torch.zeros(x.shape[0], 3).add_(h)
        return h.sum(1, keepdim=True)


@pytest.mark.parametrize("how, op", [("setitem", "__setitem__"), ("view", "relu"), ("buffer", "add")])
def test_writes_it_cannot_follow_raise(how, op):
    with pytest.raises(sl.UnsupportedOperationError, match=f"'{op}'.*in.place"):
        sl.DeepLift(Writes(how))(torch.randn(2, 3))


@pytest.mark.parametrize(
    "fn, op, why",
    [
        (lambda x: torch.softmax(x, dim=0), "softmax", "batch dimension"),
        (lambda x: torch.div(x, 2.0, rounding_mode="floor"), "div", "piecewise constant"),
        (lambda x: x.cumprod(dim=1), "cumprod", "exact rule"),
        (lambda x: torch.pow(x, x), "pow", "two input-dependent"),
        (lambda x: x.amax() + x, "amax", "give dim"),
    ],
)
def test_operations_without_rules_raise(fn, op, why):
    with pytest.raises(sl.UnsupportedOperationError, match=f"'{op}'.*{why}"):
        sl.DeepLift(Single(fn))(torch.randn(2, 3))


def test_queries_and_shape_only_operations_pass():
    def fn(x):
        assert x.shape[1] == 3 and x.dim() == 2 and x.size(1) == 3 and len(x) == x.shape[0]
        return x + torch.zeros_like(x) + x.new_ones(x.shape)

    a = sl.DeepLift(Single(fn))(torch.ones(2, 3), baseline=torch.zeros(2, 3))
    torch.testing.assert_close(a.values, torch.ones(2, 3))


def test_unbatched_pooling_input_raises():
    with pytest.raises(sl.UnsupportedOperationError, match="unbatched"):
        sl.DeepLift(Single(lambda x: F.max_pool2d(x.reshape(2, 2, 2), 2)))(torch.randn(1, 8))
