"""DeepSHAP: DeepLIFT averaged over a background, exact against the mean background output."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net
from torch import nn

import saliencelab as sl


def _model():
    return conv_net("reused", classes=3).double()


def test_deepshap_is_the_mean_of_deeplift_over_the_background():
    torch.manual_seed(0)
    model = _model()
    x, background = torch.randn(3, 3, 8, 8).double(), torch.randn(5, 3, 8, 8).double()
    shap = sl.DeepShap(model)(x, target=1, baseline=background)
    each = torch.stack([sl.DeepLift(model)(x, target=1, baseline=ref.expand_as(x)).values for ref in background])
    torch.testing.assert_close(shap.values, each.mean(0), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        change = model(x)[:, 1] - model(background)[:, 1].mean()
    torch.testing.assert_close(shap.values.flatten(1).sum(1), change, rtol=1e-9, atol=1e-12)
    assert shap.delta.max() < 1e-10 and shap.info["references"] == 5


def test_deepshap_chunks_do_not_change_the_result():
    torch.manual_seed(1)
    model = _model()
    x, background = torch.randn(4, 3, 8, 8).double(), torch.randn(6, 3, 8, 8).double()
    whole = sl.DeepShap(model)(x, target=0, baseline=background).values
    chunked = sl.DeepShap(model, memory_budget=200_000)(x, target=0, baseline=background).values
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-12)


def test_per_sample_references():
    torch.manual_seed(2)
    model = _model()
    x, refs = torch.randn(2, 3, 8, 8).double(), torch.randn(2, 4, 3, 8, 8).double()
    a = sl.DeepShap(model)(x, target=2, baseline=sl.references(refs, per_sample=True))
    for i in range(2):
        alone = sl.DeepShap(model)(x[i : i + 1], target=2, baseline=refs[i])
        torch.testing.assert_close(a.values[i : i + 1], alone.values, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="per-sample references"):
        sl.DeepShap(model)(x, target=2, baseline=sl.references(refs[:1], per_sample=True))


def test_agrees_with_captum_deepliftshap():
    captum = pytest.importorskip("captum.attr")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3)).double().eval()
    x, background = torch.randn(4, 6).double(), torch.randn(7, 6).double()
    ours = sl.DeepShap(model)(x, target=1, baseline=background).values
    theirs = captum.DeepLiftShap(model).attribute(x, baselines=background, target=1)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_deepshap_needs_a_background():
    with pytest.raises(ValueError, match="baseline= a batch of reference inputs"):
        sl.DeepShap(_model())(torch.randn(2, 3, 8, 8).double(), target=0)
