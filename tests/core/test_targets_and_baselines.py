"""Target and baseline resolution."""

from __future__ import annotations

import pytest
import torch

from saliencelab.core.baselines import gaussian_blur, references, resolve_baseline
from saliencelab.core.targets import prepare_target, resolve_target


def test_target_forms():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 1.0]])
    assert resolve_target(None, logits).classes.tolist() == [1, 0]
    assert resolve_target(2, logits).classes.tolist() == [2, 2]
    assert resolve_target([0, 2], logits).classes.tolist() == [0, 2]
    assert resolve_target(torch.tensor([2, 1]), logits).classes.tolist() == [2, 1]
    fn = resolve_target(lambda out: out.sum(1), logits)
    assert fn.scores(logits).tolist() == [4.0, 3.0]


def test_rows_repeat_the_target_of_their_sample():
    target = prepare_target([4, 7], n=2)
    assert target.rows(torch.tensor([1, 1, 0])).classes.tolist() == [7, 7, 4]


def test_one_output_per_sample_needs_no_target():
    output = torch.tensor([0.5, -1.0])
    assert resolve_target(None, output).scores(output).tolist() == [0.5, -1.0]


def test_callable_target_must_return_one_score_per_sample():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        resolve_target(lambda out: out, torch.zeros(2, 3)).scores(torch.zeros(2, 3))


def test_presets_are_per_sample_and_per_channel():
    x = torch.stack([torch.arange(8.0).reshape(2, 2, 2), 10 + torch.arange(8.0).reshape(2, 2, 2)])
    minimum = resolve_baseline("min", x).tensor[:, 0]
    assert minimum[0, 0].unique().tolist() == [0.0] and minimum[0, 1].unique().tolist() == [4.0]
    assert minimum[1, 0].unique().tolist() == [10.0]
    mean = resolve_baseline("mean", x).tensor[:, 0]
    assert mean[1, 1].unique().tolist() == [15.5]
    uniform = resolve_baseline("uniform", x, seed=1).tensor[:, 0]
    assert bool(((uniform[0] >= 0) & (uniform[0] <= 7)).all()) and bool(((uniform[1] >= 10) & (uniform[1] <= 17)).all())
    assert torch.equal(uniform, resolve_baseline("uniform", x, seed=1).tensor[:, 0])


def test_blur_keeps_the_mean_and_smooths():
    image = torch.zeros(1, 1, 16, 16)
    image[..., ::2, :] = 1.0  # stripes: the highest frequency
    blurred = gaussian_blur(image, sigma=2.0)
    assert float(blurred.mean()) == pytest.approx(0.5, abs=0.02)
    assert float(blurred.std()) < 0.05 * float(image.std())


def test_references_and_distributions():
    x = torch.randn(3, 2, 4)
    refs = torch.randn(5, 2, 4)
    assert resolve_baseline(references(refs), x).tensor.shape == (1, 5, 2, 4)
    assert resolve_baseline(refs, x, distribution=True).tensor.shape == (1, 5, 2, 4)
    with pytest.raises(ValueError, match="does not broadcast"):
        resolve_baseline(refs, x)
    with pytest.raises(ValueError, match="feature shape"):
        resolve_baseline(references(torch.randn(5, 3)), x)


def test_bad_baselines():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="unknown baseline preset 'black'"):
        resolve_baseline("black", x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        resolve_baseline(torch.tensor([0.0, float("nan"), 0.0]), x)
    with pytest.raises(ValueError, match="blur"):
        resolve_baseline("blur", x)
    with pytest.raises(TypeError, match="baseline must be"):
        resolve_baseline(object(), x)


@pytest.mark.parametrize("method", ["expected_gradients", "gradient_shap", "prediction_difference"])
@pytest.mark.parametrize("wrap", [lambda t: t, references], ids=["tensor", "references"])
def test_an_empty_reference_batch_is_refused_with_what_to_pass(method, wrap):
    import saliencelab as sl

    with pytest.raises(ValueError, match=r"reference batch is empty \(shape \(0, 3\)\).*at least one reference"):
        sl.explain(torch.nn.Linear(3, 2), torch.randn(2, 3), method=method, target=0, baseline=wrap(torch.zeros(0, 3)))


def test_an_empty_baseline_tensor_is_refused_for_one_baseline_methods():
    import saliencelab as sl

    with pytest.raises(ValueError, match=r"reference batch is empty \(shape \(0, 3\)\)"):
        sl.explain(torch.nn.Linear(3, 2), torch.randn(2, 3), method="integrated_gradients", baseline=torch.zeros(0, 3))


@pytest.mark.parametrize(
    "method", ["gradient", "integrated_gradients", "smoothgrad", "occlusion", "expected_gradients"]
)
@pytest.mark.parametrize(
    "target",
    [lambda out: torch.log(out[:, 0]), lambda out: out[:, 0] / (out[:, 0] > 0)],
    ids=["nan", "inf"],
)
def test_a_callable_target_with_non_finite_scores_is_refused_naming_the_samples(method, target):
    import saliencelab as sl

    # sample 1 has log(-1) = NaN and -1/0 = -Inf at the input and near it; sample 0 is finite
    x = torch.tensor([[5.0, 6.0], [-1.0, 0.0]])
    options = {"baseline": torch.full((3, 2), 4.0)} if method == "expected_gradients" else {}
    if method == "integrated_gradients":
        options = {"baseline": torch.tensor([4.0, 5.0])}  # the path of sample 0 stays finite, that of 1 does not
    with pytest.raises(ValueError, match=r"target callable returned NaN or Inf scores for samples \[1\]"):
        sl.explain(torch.nn.Identity(), x, method=method, target=target, **options)
