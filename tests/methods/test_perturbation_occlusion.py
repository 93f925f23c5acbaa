"""Occlusion: agreement with Captum on tiling and overlapping windows, no wrap-around, closed forms, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot

import saliencelab as sl

captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.parametrize(
    "window, stride",
    [
        (2, 2),  # tiling
        (4, 4),  # tiling, 4 windows
        (3, 1),  # overlapping
        (3, 2),  # overlapping, the last window cut off at the edge
        (5, 3),  # overlapping, cut off
        ((2, 3), (1, 2)),  # different per spatial dimension
        (8, 8),  # one window: the whole image
    ],
)
def test_equals_captum(window, stride, images):
    model = conv_net("module", seed=3)
    target = torch.tensor([0, 1, 2, 3])
    ours = sl.explain(model, images, method="occlusion", target=target, window=window, stride=stride)
    w = window if isinstance(window, tuple) else (window, window)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    theirs = captum_attr.Occlusion(model).attribute(
        images, sliding_window_shapes=(3, *w), strides=(3, *s), target=target, baselines=0.0
    )
    torch.testing.assert_close(ours.values, theirs, rtol=1e-5, atol=1e-7)
    assert ours.delta is None and ours.method == "occlusion"


def test_equals_captum_with_channel_windows_and_a_tensor_baseline(images):
    model = conv_net("module", seed=4)
    baseline = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    options = {"window": (1, 3, 2), "stride": (1, 2, 1), "baseline": baseline}
    ours = sl.explain(model, images, method="occlusion", target=2, **options)
    theirs = captum_attr.Occlusion(model).attribute(
        images, sliding_window_shapes=(1, 3, 2), strides=(1, 2, 1), target=2, baselines=baseline
    )
    torch.testing.assert_close(ours.values, theirs, rtol=1e-5, atol=1e-7)


def test_additive_model_with_one_element_windows_gives_w_times_x_minus_baseline():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 2)
    x, baseline = torch.randn(3, 6), torch.randn(1, 6)
    values = sl.explain(model, x, method="occlusion", target=1, window=1, stride=1, baseline=baseline).values
    torch.testing.assert_close(values, model.weight.detach()[1] * (x - baseline), rtol=1e-5, atol=1e-6)


def test_each_element_gets_the_mean_over_the_windows_covering_it():
    # f = x_0 only; windows of 2 with stride 1 over 4 features: windows {0,1}, {1,2}, {2,3}
    model = lambda x: x[:, :1]  # noqa: E731
    x = torch.tensor([[6.0, 1.0, 1.0, 1.0]])
    values = sl.explain(model, x, method="occlusion", window=2, stride=1).values
    # element 0: only window {0,1} (change 6); element 1: {0,1} and {1,2} (6 and 0); elements 2, 3: 0
    assert values.tolist() == [[6.0, 3.0, 0.0, 0.0]]


def test_windows_do_not_wrap_around_the_edge():
    # the model looks at the first column only; windows at the last columns must not reach it
    model = lambda x: x[:, :, :, 0].sum(dim=(1, 2))[:, None]  # noqa: E731
    x = torch.ones(1, 1, 6, 6)
    values = sl.explain(model, x, method="occlusion", window=3, stride=1).values[0, 0]
    assert values[:, 3:].abs().max() == 0
    assert values[:, 0].min() > 0


def test_default_window_and_stride():
    model = conv_net("module", seed=5, size=16)
    x = torch.randn(1, 3, 16, 16)
    a = sl.explain(model, x, method="occlusion", target=0)
    assert a.info["window"] == (3, 2, 2) and a.info["stride"] == (1, 1, 1)
    theirs = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, 2, 2), strides=(3, 1, 1), target=0)
    torch.testing.assert_close(a.values, theirs, rtol=1e-5, atol=1e-7)


def test_results_do_not_depend_on_chunking_or_the_rest_of_the_batch(images):
    model = conv_net("module", seed=6)
    whole = sl.explain(model, images, method="occlusion", target=1, window=3, stride=1)
    chunked = sl.explain(model, images, method="occlusion", target=1, window=3, stride=1, memory_budget=20_000)
    options = {"method": "occlusion", "target": 1, "window": 3, "stride": 1}
    alone = torch.cat([sl.explain(model, images[i : i + 1], **options).values for i in range(4)])
    torch.testing.assert_close(chunked.values, whole.values, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(alone, whole.values, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"window": 9}, "larger than the input"),
        ({"window": (2, 9)}, "larger than the input"),
        ({"window": 2, "stride": 3}, "stride .* larger than the window"),
        ({"window": (2, 2, 2, 2)}, "has 4 entries"),
        ({"window": 0}, "positive int"),
        ({"window": 2.5}, "positive int"),
        ({"stride": (1, -1)}, "positive int"),
    ],
)
def test_bad_windows_are_clear_errors(options, message, images):
    with pytest.raises(ValueError, match=message):
        sl.explain(conv_net(), images, method="occlusion", target=0, **options)


def test_the_uniform_baseline_is_seeded(images):
    model = conv_net("module", seed=7)
    options = {"method": "occlusion", "target": 0, "window": 4, "stride": 4, "baseline": "uniform"}
    first, again = sl.explain(model, images, seed=1, **options), sl.explain(model, images, seed=1, **options)
    other = sl.explain(model, images, seed=2, **options)
    assert torch.equal(first.values, again.values) and not torch.equal(first.values, other.values)


def test_a_batch_of_references_is_refused(images):
    with pytest.raises(ValueError, match="one baseline per sample"):
        sl.explain(conv_net(), images, method="occlusion", target=0, window=2, baseline=sl.references(images))


def _rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ranks = [v.flatten().double().argsort().argsort().double() for v in (a, b)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def test_the_approximate_mode_at_threshold_1_is_exact_and_below_it_close():
    """Krypton's projective-field thresholding on a ResNet: threshold 1 never cuts a box; 0.8 and 0.6 do, with
    the errors measured here (64x64, window 8, stride 4: max |diff| 0.002 and 0.36 of the exact map's largest value,
    Spearman 0.99997 and 0.955)."""
    model = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0).eval()
    before = snapshot(model)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    options = {"method": "occlusion", "target": 4, "window": 8, "stride": 4}
    exact = sl.explain(model, x, **options)
    scale = float(exact.values.abs().max())
    one = sl.explain(model, x, approximate=True, threshold=1, **options)
    torch.testing.assert_close(one.values, exact.values, rtol=1e-5, atol=1e-6 * scale)
    assert one.info["threshold"] == 1.0 and "threshold" not in exact.info
    for threshold, max_error, spearman in ((0.8, 0.01, 0.999), (0.6, 0.5, 0.9)):
        approximate = sl.explain(model, x, approximate=True, threshold=threshold, **options)
        error = float((approximate.values - exact.values).abs().max()) / scale
        assert 0 < error < max_error
        assert _rank_correlation(approximate.values, exact.values) > spearman
    assert_unchanged(model, before)


def test_the_approximate_mode_defaults_and_leaves_the_model_unchanged_on_errors(images):
    model = conv_net("module", seed=3)
    method = sl.Occlusion(model, window=2, approximate=True)
    assert method.threshold == sl.methods.perturbation.occlusion.APPROXIMATE_THRESHOLD and method.incremental
    before = snapshot(model)
    values = method(images, target=0).values
    assert values.shape == images.shape
    with pytest.raises(ValueError, match="windows over all channels"):
        sl.explain(model, images, method="occlusion", target=0, window=(1, 2, 2), approximate=True)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"approximate": True, "incremental": False}, ValueError, "cannot go with incremental=False"),
        ({"threshold": 0.5}, ValueError, "pass approximate=True"),
        ({"threshold": 0.5, "approximate": False}, ValueError, "pass approximate=True"),
        ({"approximate": True, "threshold": 0}, ValueError, r"threshold must be a number in \(0"),
        ({"approximate": True, "threshold": 1.5}, ValueError, r"threshold must be a number in \(0"),
        ({"approximate": True, "threshold": -0.2}, ValueError, r"threshold must be a number in \(0"),
        ({"approximate": True, "threshold": "0.4"}, ValueError, r"threshold must be a number in \(0"),
        ({"approximate": True, "threshold": True}, ValueError, r"threshold must be a number in \(0"),
        ({"approximate": 1}, TypeError, "approximate must be True or False"),
    ],
)
def test_bad_approximate_options_are_clear_errors(options, error, message):
    with pytest.raises(error, match=message):
        sl.Occlusion(conv_net(), window=2, **options)


def test_the_approximate_mode_needs_one_image_input():
    model = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0).eval()

    class Two(torch.nn.Module):
        def forward(self, a, b):
            return model(a + b)

    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match="approximate=True needs one image input"):
        sl.explain(Two(), (x, x), method="occlusion", target=0, window=4, approximate=True)
    with pytest.raises(ValueError, match="incremental=True needs one image input"):
        sl.explain(Two(), (x, x), method="occlusion", target=0, window=4, incremental=True)
