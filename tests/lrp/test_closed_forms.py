"""The rules' closed forms give the numbers of the autograd path they stand in for.

Dense layers, layer norm and products of two activations are transposed in
closed form (``Layer.backward``, ``matmul_transposed``, ``mul_transposed``) and
an unmodified dense layer reuses its forward output as ``z``. Each is compared
in float64 with the same rule run through autograd: they differ only by the
order of floating-point sums, far below the 1e-10 relative tolerance used
here; a wrong transpose or a stale ``z`` is off by more than 1e-2.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliencelab as sl
from saliencelab.lrp.attention import matmul_transposed, mul_transposed, uniform_relevance
from saliencelab.lrp.rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Layer,
    WSquare,
    ZBox,
    ZPlus,
    dense_backward,
    stabilized,
)

D = torch.float64
RULES = [Epsilon(), Epsilon(epsilon=0.0), ZPlus(), AlphaBeta(), Gamma(), ZBox(low=-3.0, high=3.0), Flat(), WSquare()]


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def close(got: torch.Tensor, want: torch.Tensor) -> bool:
    return torch.allclose(got, want, rtol=1e-10, atol=1e-12 * want.abs().max().item())


@pytest.mark.parametrize("rule", RULES, ids=lambda r: repr(r))
@pytest.mark.parametrize("with_bias", [False, True])
def test_a_dense_layer_in_closed_form_gives_the_autograd_relevance(rule, with_bias):
    x, w, r = randn(3, 2, 5), randn(4, 5, seed=1), randn(3, 2, 4, seed=2)
    b = randn(4, seed=3) if with_bias else None
    by_autograd = rule.relevance(x, r, Layer(F.linear, w, b, tuple(x.shape)))
    closed = rule.relevance(x, r, Layer(F.linear, w, b, tuple(x.shape), backward=dense_backward))
    known_output = Layer(F.linear, w, b, tuple(x.shape), backward=dense_backward, output=F.linear(x, w, b))
    assert close(closed, by_autograd)
    assert close(rule.relevance(x, r, known_output), by_autograd)


@pytest.mark.parametrize(
    ("product", "transposed", "shapes"),
    [
        (torch.matmul, matmul_transposed, [(2, 3, 4), (4, 5)]),  # the second factor broadcast over the batch
        (torch.matmul, matmul_transposed, [(2, 1, 3, 4), (1, 2, 4, 5)]),
        (torch.mul, mul_transposed, [(2, 3, 4), (3, 1)]),
    ],
)
def test_a_product_in_closed_form_gives_the_autograd_relevance(product, transposed, shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1], seed=1)
    z = product(a, b)
    r = randn(*z.shape, seed=2)
    want = uniform_relevance(product, a, b, r, 1e-6)
    for given in (None, z):
        got = uniform_relevance(product, a, b, r, 1e-6, transposed=transposed, z=given)
        assert all(g.shape == t.shape and close(g, w) for g, w, t in zip(got, want, (a, b), strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_stabilized_is_z_plus_the_stabilizer_with_the_sign_of_z(dtype):
    z = torch.tensor([-2.0, -1e-9, -0.0, 0.0, 1e-9, 3.0, float("inf"), float("-inf")], dtype=dtype)
    z = torch.cat([z, torch.randn(1000, generator=torch.Generator().manual_seed(0)).to(dtype)])
    plus, minus = torch.tensor(1e-6, dtype=dtype), torch.tensor(-1e-6, dtype=dtype)
    got = stabilized(z, 1e-6)
    assert got.dtype == dtype and torch.equal(got, z + torch.where(z >= 0, plus, minus))
    assert stabilized(torch.tensor([float("nan")], dtype=dtype), 1e-6).isnan().all()


class Written(nn.Module):
    """Dense layers whose outputs are changed in place after their rules saw them, or the same out of place.

    With ``product``, the two layers' outputs are multiplied (a rule of the transformer composite only).
    """

    def __init__(self, in_place: bool, product: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first, self.second, self.head = nn.Linear(6, 8), nn.Linear(6, 8), nn.Linear(8, 3)
        self.in_place, self.product = in_place, product

    def forward(self, x):
        h, g = self.first(x), self.second(x)
        join = torch.mul if self.product else torch.add
        if self.in_place:
            h.mul_(2.0)
            joined = join(h, g)
            joined.add_(1.0)
            return self.head(joined.relu_())
        return self.head((join(h * 2.0, g) + 1.0).relu())


@pytest.mark.parametrize(("composite", "product"), [(None, False), ("transformer", False), ("transformer", True)])
def test_an_output_overwritten_in_place_is_not_read_as_z(composite, product):
    """The rules read a layer's saved output only while it is unchanged; otherwise they compute it again."""
    x = randn(4, 6)
    options = {"stabilizer": 1e-12} if composite is None else {"composite": composite}
    in_place = sl.LRP(Written(True, product).double().eval(), **options)(x, target=1).values
    out_of_place = sl.LRP(Written(False, product).double().eval(), **options)(x, target=1).values
    assert close(in_place, out_of_place)


class DenseNorm(nn.Module):
    """A dense layer with a batch norm straight after it, and a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.dense, self.bn, self.head = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)
        with torch.no_grad():
            self.bn.running_mean.normal_()
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(-1.5, 1.5)
            self.bn.bias.normal_()

    def forward(self, x):
        return self.head(self.bn(self.dense(x)))


def test_a_merged_dense_layer_does_not_read_its_unmerged_output_as_z():
    model = DenseNorm().double().eval()
    by_hand = copy.deepcopy(model)
    scale = model.bn.weight / torch.sqrt(model.bn.running_var + model.bn.eps)
    with torch.no_grad():
        by_hand.dense.weight.mul_(scale[:, None])
        by_hand.dense.bias.copy_(scale * model.dense.bias + model.bn.bias - model.bn.running_mean * scale)
    by_hand.bn = nn.Identity()
    x = randn(4, 5)
    merged = sl.LRP(model, rule="epsilon", batch_norm="merge", stabilizer=1e-12)(x, target=0).values
    want = sl.LRP(by_hand, rule="epsilon", stabilizer=1e-12)(x, target=0).values
    assert close(merged, want)
