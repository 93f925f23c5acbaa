"""Incremental re-inference for occlusion: equal to plain batches on every supported operation and model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import conv_net
from torch import nn

import saliencelab as sl
from saliencelab.methods.perturbation.incremental import Incremental, Patched, inside

captum_attr = pytest.importorskip("captum.attr")


def patched(seed: int = 0, rows: int = 5, channels: int = 3, size: int = 12, box: int = 4) -> Patched:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(2, channels, size, size, generator=g)
    sample = torch.randint(0, 2, (rows,), generator=g)
    patch = torch.randn(rows, channels, box, box, generator=g)
    top = torch.randint(-box + 1, size, (rows,), generator=g)  # boxes may reach past every edge
    left = torch.randint(-box + 1, size, (rows,), generator=g)
    return Patched(base, sample, patch, top, left)


def test_materialize_writes_each_box_over_its_samples_clean_map():
    p, original = patched(), patched()
    dense = p.materialize()
    for r in range(len(p.sample)):
        expected = original.base[original.sample[r]].clone()
        top, left = int(original.top[r]), int(original.left[r])
        for i in range(4):
            for j in range(4):
                if 0 <= top + i < 12 and 0 <= left + j < 12:
                    expected[:, top + i, left + j] = original.patch[r, :, i, j]
        assert torch.equal(dense[r], expected)


@pytest.mark.parametrize(
    "op",
    [
        lambda x, w: F.conv2d(x, w[0], w[1], stride=1, padding=1),
        lambda x, w: F.conv2d(x, w[0], None, stride=2, padding=3),
        lambda x, w: F.conv2d(x, w[0], w[1], stride=(2, 1), padding=(0, 2), dilation=2),
        lambda x, w: F.conv2d(x, w[2], None, padding=1, groups=3),
        lambda x, w: F.max_pool2d(x, 3, 2, 1),
        lambda x, w: F.max_pool2d(x, 2),
        lambda x, w: F.batch_norm(x, w[3], w[4], w[5], w[6], False, 0.1, 1e-5),
        lambda x, w: torch.relu(x),
        lambda x, w: F.relu(x, inplace=True),
        lambda x, w: x.relu(),
        lambda x, w: F.conv2d(x, w[0], w[1], padding=1) + F.conv2d(x, w[7], None, stride=1),  # different boxes
    ],
)
def test_each_supported_operation_equals_it_on_the_materialised_maps(op):
    g = torch.Generator().manual_seed(1)
    weights = [
        torch.randn(4, 3, 3, 3, generator=g),
        torch.randn(4, generator=g),
        torch.randn(6, 1, 3, 3, generator=g),
        torch.randn(3, generator=g),
        torch.rand(3, generator=g) + 0.5,
        torch.randn(3, generator=g),
        torch.randn(3, generator=g),
        torch.randn(4, 3, 1, 1, generator=g),
    ]
    for seed in range(3):
        expected = op(patched(seed).materialize().clone(), weights)
        with Incremental():
            result = op(patched(seed), weights)
        result = result.materialize() if isinstance(result, Patched) else result
        torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_shape_only_operations_see_the_full_maps():
    """The interception runs zeros_like and friends unchanged, on the patched value itself."""
    with Incremental():
        zeros, ones = torch.zeros_like(patched()), patched().new_ones(2)
    assert torch.equal(zeros, torch.zeros(5, 3, 12, 12)) and torch.equal(ones, torch.ones(2))


def test_other_operations_run_on_the_materialised_maps():
    p = patched()
    expected = torch.sigmoid(patched().materialize()).mean(dim=(2, 3))
    with Incremental():
        result = torch.sigmoid(p).mean(dim=(2, 3))
    torch.testing.assert_close(result, expected, rtol=0, atol=0)
    q = patched()
    assert q.shape == (5, 3, 12, 12) and q.dim() == 4 and q.size(1) == 3
    torch.testing.assert_close(q.flatten(1), patched().materialize().flatten(1), rtol=0, atol=0)


@pytest.mark.parametrize("relu", ["module", "functional", "torch", "method", "reused", "inplace"])
def test_occlusion_is_the_same_with_and_without_it_on_every_relu_spelling(relu, images):
    model = conv_net(relu, seed=3, size=16)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for window, stride in ((2, 2), (3, 1), (5, 3)):
        fast = sl.explain(model, x, method="occlusion", target=1, window=window, stride=stride, incremental=True)
        plain = sl.explain(model, x, method="occlusion", target=1, window=window, stride=stride, incremental=False)
        assert fast.info["incremental"] and not plain.info["incremental"]
        torch.testing.assert_close(fast.values, plain.values, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window, stride", [(4, 4), (6, 3), (5, 3)])
def test_a_resnet_gives_captums_values(window, stride):
    # residual sums, a stride-2 7x7 stem, a padded max pool, projection shortcuts, global pooling
    model = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0).eval()
    x = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    ours = sl.explain(model, x, method="occlusion", target=4, window=window, stride=stride, baseline=0.5)
    assert ours.info["incremental"]
    theirs = captum_attr.Occlusion(model).attribute(
        x,
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        target=4,
        baselines=0.5,
        perturbations_per_eval=64,
    )
    with torch.no_grad():
        scale = float(model(x).abs().max())
    # plain batches give Captum's values to the bit here; convolutions on sub-regions round differently,
    # by about 1e-6 of the output's scale after 18 layers
    plain = sl.explain(
        model, x, method="occlusion", target=4, window=window, stride=stride, baseline=0.5, incremental=False
    )
    torch.testing.assert_close(plain.values, theirs, rtol=1e-5, atol=1e-7 * scale)
    torch.testing.assert_close(ours.values, theirs, rtol=1e-5, atol=5e-6 * scale)


class _TypeChecking(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = conv_net("module", seed=4)

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError("this model takes tensors only")
        return self.body(x)


def test_a_model_that_needs_tensors_gets_plain_batches(images):
    model = _TypeChecking()
    auto = sl.explain(model, images, method="occlusion", target=0, window=2, stride=2)
    plain = sl.explain(model.body, images, method="occlusion", target=0, window=2, stride=2, incremental=False)
    assert auto.info["incremental"] is False
    torch.testing.assert_close(auto.values, plain.values, rtol=0, atol=0)
    with pytest.raises(TypeError, match="tensors only"):
        sl.explain(model, images, method="occlusion", target=0, window=2, stride=2, incremental=True)


def test_incremental_needs_images_and_windows_over_all_channels(images):
    with pytest.raises(ValueError, match="windows over all channels"):
        sl.explain(conv_net(), images, method="occlusion", target=0, window=(1, 2, 2), incremental=True)
    with pytest.raises(ValueError, match="images"):
        sl.explain(nn.Linear(6, 2), torch.randn(2, 6), method="occlusion", target=0, window=2, incremental=True)
    tabular = sl.explain(nn.Linear(6, 2), torch.randn(2, 6), method="occlusion", target=0, window=2)
    assert tabular.info["incremental"] is False
    with pytest.raises(TypeError, match="incremental must be"):
        sl.Occlusion(conv_net(), incremental="yes")


@pytest.mark.parametrize(
    "first, size, extent, threshold, expected",
    [
        ([-2, 3, 6], 4, 8, None, ([0, 3, 4], 4)),  # shifted inward at both edges, unchanged inside
        ([0, 4], 4, 8, None, ([0, 4], 4)),  # touching the edges: unchanged
        ([-5, 2], 11, 8, None, ([0, 0], 8)),  # wider than the map: the whole map
        ([-9], 3, 8, None, ([0], 3)),  # (a box entirely outside is moved in, never left out)
        ([-2, 3, 6], 4, 8, 0.25, ([0, 4, 6], 2)),  # cut to ceil(0.25 * 8) = 2 central positions, then inside
        ([1], 5, 8, 0.5, ([1], 4)),  # (5 - 4) // 2 = 0: the central cut leans to the start
        ([2], 3, 8, 0.5, ([2], 3)),  # narrower than the threshold: not cut
        ([3], 4, 8, 0.01, ([4], 1)),  # at least one position
        ([-2, 3], 4, 8, 1.0, ([0, 3], 4)),  # threshold 1: never cut
    ],
)
def test_inside_keeps_boxes_inside_their_maps(first, size, extent, threshold, expected):
    got, kept = inside(torch.tensor(first), size, extent, threshold)
    assert (got.tolist(), kept) == expected
    assert bool((got >= 0).all()) and bool((got + kept <= extent).all())


@pytest.mark.parametrize("op", ["conv", "pool", "add"])
def test_boxes_past_the_edge_are_computed_inside_the_map_only(op):
    """A window at a corner: the new box starts at 0 and ends at the map's edge, and the values stay exact."""
    g = torch.Generator().manual_seed(2)
    weight, bias = torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    base = torch.randn(1, 3, 10, 10, generator=g)
    corners = torch.tensor([0, 7])  # top-left and bottom-right 3x3 windows

    def run(x):
        if op == "conv":
            return F.conv2d(x, weight, bias, padding=2, dilation=2)
        if op == "pool":
            return F.max_pool2d(x, 3, 1, 1)
        return F.conv2d(x, weight, bias, padding=1) + F.conv2d(x, weight, None, padding=1)

    def fresh():
        return Patched(base, torch.tensor([0, 0]), torch.zeros(2, 3, 3, 3), corners, corners)

    expected = run(fresh().materialize().clone())
    with Incremental():
        result = run(fresh())
    assert isinstance(result, Patched)
    height, width = result.base.shape[2:]
    assert bool((result.top >= 0).all()) and bool((result.left >= 0).all())
    assert bool((result.top + result.patch.shape[2] <= height).all())
    assert bool((result.left + result.patch.shape[3] <= width).all())
    torch.testing.assert_close(result.materialize(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.7])
def test_the_approximate_mode_keeps_the_central_positions_of_each_box(threshold):
    """One convolution, then a sum: the approximate score is the occluded convolution on the kept box, clean
    elsewhere (projective-field thresholding, written out by hand)."""
    import math

    g = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(4, 3, 3, 3, generator=g))
        conv.bias.copy_(torch.randn(4, generator=g))
    model = nn.Sequential(conv, nn.Flatten(), _Sum())
    x = torch.randn(1, 3, 12, 12, generator=g)
    window, stride = 4, 2
    options = {"window": window, "stride": stride, "approximate": True, "threshold": threshold}
    ours = sl.explain(model, x, method="occlusion", target=0, **options)
    assert ours.info["incremental"] and ours.info["threshold"] == threshold
    with torch.no_grad():
        clean = conv(x)[0]
        kept = min(window + 2, max(1, math.ceil(threshold * 12)))
        expected = torch.zeros(12, 12)
        counts = torch.zeros(12, 12)
        for top in range(0, 12 - window + 1, stride):
            for left in range(0, 12 - window + 1, stride):
                occluded = x.clone()
                occluded[..., top : top + window, left : left + window] = 0
                changed = conv(occluded)[0]
                rows = min(max(top - 1 + (window + 2 - kept) // 2, 0), 12 - kept)
                cols = min(max(left - 1 + (window + 2 - kept) // 2, 0), 12 - kept)
                box = (slice(None), slice(rows, rows + kept), slice(cols, cols + kept))
                approximate = clean.clone()
                approximate[box] = changed[box]
                expected[top : top + window, left : left + window] += clean.sum() - approximate.sum()
                counts[top : top + window, left : left + window] += 1
    torch.testing.assert_close(ours.values[0], (expected / counts).expand(3, 12, 12), rtol=1e-4, atol=1e-4)


class _Sum(nn.Module):
    def forward(self, x):
        return x.sum(dim=1, keepdim=True)
