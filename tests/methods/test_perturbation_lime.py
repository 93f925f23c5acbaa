"""LIME: ranks the contributions of an additive model, groups, surrogates, options."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net

import saliencelab as sl


def test_ranks_the_contributions_of_an_additive_model():
    # f(x) = Σ_i a_i tanh(x_i): the contribution of feature i against baseline 0 is a_i tanh(x_i)
    a = torch.tensor([3.0, -2.0, 0.5, 1.5, -0.8, 2.4, 0.1, -1.1])
    model = lambda x: (a * torch.tanh(x)).sum(dim=1, keepdim=True)  # noqa: E731
    x = torch.tensor([[1.0, 0.5, -2.0, 1.2, 0.9, -0.3, 2.0, -1.5]])
    contributions = (a * torch.tanh(x))[0]
    result = sl.explain(model, x, method="lime", samples=500)
    assert torch.equal(result.values[0].argsort(), contributions.argsort())
    # with almost no penalty the surrogate recovers the contributions themselves
    exact = sl.explain(model, x, method="lime", samples=500, alpha=1e-8)
    torch.testing.assert_close(exact.values[0], contributions, rtol=1e-4, atol=1e-5)
    assert float(exact.info["score"][0]) > 0.999999
    assert exact.delta is None


def test_feature_groups_and_per_sample_independence(images):
    model = conv_net("module", seed=21)
    ids = torch.arange(16).reshape(4, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)
    options = {"method": "lime", "target": 3, "feature_mask": ids, "samples": 64}
    together = sl.explain(model, images, **options)
    alone = torch.cat([sl.explain(model, images[i : i + 1], **options).values for i in range(4)])
    torch.testing.assert_close(together.values, alone, rtol=1e-5, atol=1e-6)
    cells = together.values[:, :, ::2, ::2]  # every element of a 2x2 cell carries the cell's value
    assert torch.equal(together.values, cells.repeat_interleave(2, 2).repeat_interleave(2, 3))
    assert len(together.info["group_values"]) == 4 and together.info["group_values"][0].shape == (16,)


def test_a_custom_scikit_learn_surrogate():
    from sklearn.linear_model import LinearRegression

    model = torch.nn.Linear(5, 1)
    x = torch.randn(2, 5)
    a = sl.explain(model, x, method="lime", samples=100, surrogate=LinearRegression())
    torch.testing.assert_close(a.values, model.weight.detach() * x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"samples": 1}, ValueError, "samples must be an int >= 2"),
        ({"keep": 0.0}, ValueError, "keep must be a number in"),
        ({"kernel_width": -1.0}, ValueError, "kernel_width"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"surrogate": object()}, TypeError, "scikit-learn regressor"),
    ],
)
def test_bad_options_are_clear_errors(options, error, message):
    with pytest.raises(error, match=message):
        sl.Lime(torch.nn.Linear(3, 1), **options)
