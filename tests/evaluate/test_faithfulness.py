"""Deletion, insertion and pixel flipping: hand-computed curves on linear models, endpoints, batching, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_unchanged, conv_net, snapshot

import saliencelab as sl
from saliencelab.core.baselines import gaussian_blur
from saliencelab.evaluate.faithfulness import deletion, insertion, pixel_flipping


def linear(weights: torch.Tensor) -> torch.nn.Module:
    """f(x) = w · flatten(x), no bias: an additive model whose exact attribution is w ⊙ x."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weights.numel(), 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(weights.reshape(1, -1))
    return model.eval()


W4 = torch.tensor([4.0, 3.0, 2.0, 1.0])
X4 = torch.ones(1, 1, 1, 4)
TRUE4 = (W4 * X4).view(1, 1, 1, 4)
REVERSED4 = TRUE4.flip(-1)


def test_deletion_and_insertion_curves_by_hand():
    # f = 4a + 3b + 2c + d at a = b = c = d = 1: deleting the true ranking leaves 10, 6, 3, 1, 0.
    model = linear(W4)
    true = deletion(model, X4, TRUE4, steps=4, score="logit")
    wrong = deletion(model, X4, REVERSED4, steps=4, score="logit")
    assert true.curve.tolist() == [[10.0, 6.0, 3.0, 1.0, 0.0]]
    assert wrong.curve.tolist() == [[10.0, 9.0, 7.0, 4.0, 0.0]]
    assert true.auc.tolist() == [3.75]  # (10/2 + 6 + 3 + 1 + 0/2) / 4
    assert wrong.auc.tolist() == [6.25]
    assert true.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    true_in = insertion(model, X4, TRUE4, steps=4, baseline="zeros", score="logit")
    wrong_in = insertion(model, X4, REVERSED4, steps=4, baseline="zeros", score="logit")
    assert true_in.curve.tolist() == [[0.0, 4.0, 7.0, 9.0, 10.0]]
    assert wrong_in.curve.tolist() == [[0.0, 1.0, 3.0, 6.0, 10.0]]
    assert (true_in.auc.item(), wrong_in.auc.item()) == (6.25, 3.75)


def test_two_steps_over_four_pixels_remove_two_pixels_each():
    result = deletion(linear(W4), X4, TRUE4, steps=2, score="logit", baseline=0.5)
    assert result.curve.tolist() == [[10.0, 10.0 - 3.5, 5.0]]  # 0.5·(4+3) gone, then all at 0.5


def test_true_attribution_beats_random_on_an_additive_model():
    # For f = w·x and a zero baseline, deleting in order of the pixel contributions removes the largest
    # possible sum at every step (rearrangement), so its curve lies under any other ranking's, pointwise.
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(3 * 4 * 4, generator=g)
    model = linear(weights)
    x = torch.randn(16, 3, 4, 4, generator=g)
    true = x * weights.view(1, 3, 4, 4)
    noise = torch.randn(x.shape, generator=g)
    best, rand = (deletion(model, x, a, steps=16, score="logit") for a in (true, noise))
    assert (best.curve <= rand.curve + 1e-5).all()
    assert (best.auc <= rand.auc + 1e-6).all() and (rand.auc - best.auc).mean() > 1.0
    # the closed form: f(x) minus the top-k pixel contributions
    contributions = true.sum(dim=1).flatten(1).sort(dim=1, descending=True).values
    expected = true.sum(dim=(1, 2, 3), keepdim=True).squeeze(-1).squeeze(-1) - torch.cat(
        [torch.zeros(16, 1), contributions.cumsum(dim=1)], dim=1
    )
    torch.testing.assert_close(best.curve, expected.double(), rtol=0, atol=1e-5)
    up_best, up_rand = (insertion(model, x, a, steps=16, baseline="zeros", score="logit") for a in (true, noise))
    assert (up_best.curve >= up_rand.curve - 1e-5).all() and (up_best.auc - up_rand.auc).mean() > 1.0


def test_curve_endpoints_are_the_input_and_the_baseline(images):
    model = conv_net(seed=3)
    attributions = torch.randn(images.shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        clean = model(images).softmax(dim=1)
        blurred = model(gaussian_blur(images)).softmax(dim=1)
        black = model(torch.zeros_like(images)).softmax(dim=1)
    classes = clean.argmax(dim=1)
    pick = torch.arange(4)
    down = deletion(model, images, attributions, steps=8)
    up = insertion(model, images, attributions, steps=8)
    assert down.curve.shape == up.curve.shape == (4, 9)
    torch.testing.assert_close(down.curve[:, 0], clean[pick, classes].double(), rtol=0, atol=1e-6)
    torch.testing.assert_close(down.curve[:, -1], black[pick, classes].double(), rtol=0, atol=1e-6)
    torch.testing.assert_close(up.curve[:, 0], blurred[pick, classes].double(), rtol=0, atol=1e-6)
    torch.testing.assert_close(up.curve[:, -1], clean[pick, classes].double(), rtol=0, atol=1e-6)


def test_results_do_not_depend_on_chunking_or_the_rest_of_the_batch(images):
    model = conv_net(seed=4)
    attributions = torch.randn(images.shape, generator=torch.Generator().manual_seed(6))
    whole = deletion(model, images, attributions, steps=16)
    chunked = deletion(model, images, attributions, steps=16, memory_budget=20_000)
    alone = torch.cat([deletion(model, images[i : i + 1], attributions[i : i + 1], steps=16).curve for i in range(4)])
    torch.testing.assert_close(chunked.curve, whole.curve, rtol=0, atol=1e-6)
    torch.testing.assert_close(alone, whole.curve, rtol=0, atol=1e-6)


def test_every_row_is_evaluated_once_in_batches_under_inference_mode(images):
    model = conv_net(seed=7)
    rows, modes = [], []

    def hook(module, args):
        rows.append(args[0].shape[0])
        modes.append(torch.is_inference_mode_enabled())

    model.register_forward_pre_hook(hook)
    curve = deletion(model, images, images, steps=10, memory_budget=10**9).curve
    # one row measured for the budget, the 4 clean inputs (which bind the target and are step 0 of the curve),
    # then the 4 x 10 perturbed rows in one chunk: the clean inputs are not run a second time
    assert rows == [1, 4, 40]
    assert all(modes)
    with torch.no_grad():
        clean = model(images).softmax(dim=1)
    torch.testing.assert_close(curve[:, 0], clean.max(dim=1).values.double(), rtol=0, atol=1e-6)
    rows.clear()
    up = insertion(model, images, images, steps=10, baseline="zeros", memory_budget=10**9).curve
    assert rows == [4, 40]  # the clean inputs are the last step of insertion
    torch.testing.assert_close(up[:, -1], curve[:, 0], rtol=0, atol=0)


def test_method_computes_the_attributions_for_the_resolved_target(images):
    model = conv_net(seed=8)
    by_name = deletion(model, images, method="gradient_x_input", steps=8)
    classes = model(images).argmax(dim=1)
    values = sl.explain(model, images, method="gradient_x_input", target=classes).values
    torch.testing.assert_close(by_name.curve, deletion(model, images, values, steps=8).curve, rtol=0, atol=0)
    options = deletion(model, images, method="integrated_gradients", method_options={"steps": 8}, steps=8)
    ig = sl.explain(model, images, method="integrated_gradients", target=classes, steps=8).values
    torch.testing.assert_close(options.curve, deletion(model, images, ig, steps=8).curve, rtol=0, atol=0)


def test_an_attribution_object_is_scored_for_its_own_target(images):
    model = conv_net(seed=9)
    explained = sl.explain(model, images, method="gradient", target=2)
    result = deletion(model, images, explained, steps=4)
    with torch.no_grad():
        expected = model(images).softmax(dim=1)[:, 2].double()
    torch.testing.assert_close(result.curve[:, 0], expected, rtol=0, atol=1e-6)


def test_pixel_flipping_regions_and_aopc_by_hand():
    # 4x4 grey image, 2x2 regions: region sums of w ⊙ x decide the order; perturbing to 0 removes them.
    weights = torch.arange(1.0, 17.0)
    model = linear(weights)
    x = torch.ones(1, 1, 4, 4)
    attributions = x * weights.view(1, 1, 4, 4)
    region_sums = [1 + 2 + 5 + 6, 3 + 4 + 7 + 8, 9 + 10 + 13 + 14, 11 + 12 + 15 + 16]  # 14, 22, 46, 54
    morf = pixel_flipping(model, x, attributions, region=2, baseline=0.0)
    lerf = pixel_flipping(model, x, attributions, region=2, baseline=0.0, order="lerf")
    assert morf.curve.tolist() == [[136.0, 136.0 - 54, 136.0 - 54 - 46, 14.0, 0.0]]
    assert lerf.curve.tolist() == [[136.0, 136.0 - 14, 136.0 - 14 - 22, 54.0, 0.0]]
    assert sum(region_sums) == 136
    assert morf.aopc.tolist() == [(0 + 54 + 100 + 122 + 136) / 5]  # 82.4
    assert lerf.aopc.tolist() == [(0 + 14 + 36 + 82 + 136) / 5]  # 53.6
    assert morf.aopc.item() > lerf.aopc.item()


def test_pixel_flipping_uniform_noise_is_seeded_and_within_each_sample_range(images):
    model = conv_net(seed=10)
    attributions = images.abs()
    a = pixel_flipping(model, images, attributions, region=4, seed=3)
    b = pixel_flipping(model, images, attributions, region=4, seed=3)
    c = pixel_flipping(model, images, attributions, region=4, seed=4)
    assert torch.equal(a.curve, b.curve) and not torch.equal(a.curve, c.curve)
    # fully perturbed: low + (high - low) · U, U = torch.rand((C, H, W)) from the seed, shared by the samples
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    uniform = torch.rand(images.shape[1:], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(images)
        noise = model(low + (high - low) * uniform)
    classes = logits.argmax(dim=1)
    torch.testing.assert_close(a.curve[:, -1], noise[torch.arange(4), classes].double(), rtol=0, atol=1e-5)
    assert a.curve.shape == (4, 5)  # 4 regions of 4x4 in an 8x8 image


def test_the_model_is_left_untouched(images):
    model = conv_net(seed=11)
    before = snapshot(model)
    deletion(model, images, method="gradient", steps=4)
    pixel_flipping(model, images, images, steps=4)
    with pytest.raises(ValueError):
        deletion(model, images, images[:, :, :4], steps=4)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda m, x: deletion(m, x, x[:, :, :4]), ValueError, "do not fit"),
        (lambda m, x: deletion(m, x, x, method="gradient"), TypeError, "either attributions"),
        (lambda m, x: deletion(m, x), TypeError, "either attributions"),
        (lambda m, x: deletion(m, x, x, steps=65), ValueError, "steps must be"),
        (lambda m, x: deletion(m, x, x, steps=0), ValueError, "steps must be"),
        (lambda m, x: deletion(m, x, x, score="prob"), ValueError, "unknown score"),
        (lambda m, x: pixel_flipping(m, x, x, order="up"), ValueError, "unknown order"),
        (lambda m, x: pixel_flipping(m, x, x, region=0), ValueError, "region must be"),
        (lambda m, x: deletion(m, x, x * float("nan")), ValueError, "NaN"),
        (lambda m, x: deletion(m, x[:, 0], x[:, 0]), ValueError, "(N, C, H, W)"),
        (lambda m, x: deletion(m, x, x, baseline=sl.references(x)), ValueError, "one baseline per sample"),
        (lambda m, x: deletion(m, x, x, method_options={"steps": 2}), TypeError, "method_options"),
        (lambda m, x: deletion(lambda v: m(v)[:, :1], x, x), ValueError, "score='logit'"),
    ],
)
def test_bad_arguments_say_what_to_do(images, call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(conv_net(seed=12), images)


def test_table_rows_are_deleted_and_inserted_feature_by_feature():
    """On a linear model without bias, deleting features in the order of their attributions removes w_i x_i at a time.

    Exact in float32 up to summation rounding of five small integers (tolerance 1e-6).
    """
    model = torch.nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 3.0, 0.5, 4.0]]))
    x = torch.tensor([[1.0, 1.0, 1.0, 2.0, 1.0], [2.0, 1.0, 0.0, 1.0, 1.0]])
    contributions = (model.weight * x).detach()  # (2, 5): 1, -2, 3, 1, 4 and 2, -2, 0, 0.5, 4
    shared = {"target": 0, "steps": 5, "baseline": "zeros", "score": "logit"}
    curve = deletion(model, x, contributions, **shared).curve
    order = contributions.sort(dim=1, descending=True).values  # signed "sum": most positive first
    removed = torch.cat([torch.zeros(2, 1), order.cumsum(dim=1)], dim=1)
    expected = (contributions.sum(dim=1, keepdim=True) - removed).double()
    torch.testing.assert_close(curve.double(), expected, atol=1e-6, rtol=0)
    inserted = insertion(model, x, contributions, **shared).curve
    torch.testing.assert_close(inserted.double(), removed.double(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"do not fit table rows of shape \(2, 5\); give one value per feature"):
        deletion(model, x, contributions[:, :4], **shared)
