"""The public contract: explain, available_methods, classes, errors, and the model left untouched."""

from __future__ import annotations

import pytest
import torch
from helpers import TrainingModeNet, assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl

GRADIENT_FAMILY = [
    "deconvnet",
    "expected_gradients",
    "gradient",
    "gradient_shap",
    "gradient_x_input",
    "guided_backprop",
    "integrated_gradients",
    "smoothgrad",
]
OPTIONS = {
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 3},
    "expected_gradients": {"samples": 3, "baseline": torch.zeros(2, 3, 8, 8)},
    "gradient_shap": {"samples": 3, "baseline": torch.zeros(2, 3, 8, 8)},
}


def test_available_methods_lists_the_gradient_family():
    assert set(GRADIENT_FAMILY) <= set(sl.available_methods())
    assert sl.available_methods() == sorted(sl.available_methods())


@pytest.mark.parametrize("method", GRADIENT_FAMILY)
def test_every_method_is_also_a_class(method, images):
    from saliencelab.core import registry

    cls = registry.get(method)
    assert getattr(sl, cls.__name__) is cls
    model = conv_net("module")
    options = dict(OPTIONS.get(method, {}))
    baseline = options.pop("baseline", None)
    by_name = sl.explain(model, images, method=method, target=1, baseline=baseline, **options)
    by_class = cls(model, **options)(images, target=1, baseline=baseline)
    assert by_name.method == method
    torch.testing.assert_close(by_name.values, by_class.values, rtol=0, atol=0)
    assert by_name.values.shape == images.shape and by_name.values.dtype == images.dtype
    assert torch.equal(by_name.target, torch.ones(4, dtype=torch.long))


@pytest.mark.parametrize("method", GRADIENT_FAMILY)
@pytest.mark.parametrize("training", [False, True])
def test_the_model_is_left_exactly_as_it_was(method, training, images):
    model = TrainingModeNet().train(training)
    model.body.fc1.register_forward_hook(lambda module, args, output: None)
    model.body.conv1.weight.grad = torch.ones_like(model.body.conv1.weight)
    before = snapshot(model)
    options = dict(OPTIONS.get(method, {}))
    baseline = options.pop("baseline", None)
    with pytest.warns(UserWarning, match="training mode") if training else _no_warning():
        sl.explain(model, images, method=method, target=0, baseline=baseline, **options)
    assert_unchanged(model, before)


@pytest.mark.parametrize("method", GRADIENT_FAMILY)
def test_the_model_is_left_as_it_was_when_a_call_raises(method, images):
    model = TrainingModeNet().train()
    before = snapshot(model)
    options = dict(OPTIONS.get(method, {}))
    baseline = options.pop("baseline", None)
    with pytest.raises(ValueError, match="out of range"), pytest.warns(UserWarning):
        sl.explain(model, images, method=method, target=7, baseline=baseline, **options)
    assert_unchanged(model, before)


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def test_unknown_method_lists_the_available_ones():
    with pytest.raises(ValueError) as error:
        sl.explain(nn.Linear(2, 2), torch.randn(1, 2), method="integrated_gradient")
    message = str(error.value)
    assert "integrated_gradients" in message and "guided_backprop" in message and "Did you mean" in message


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(TypeError, match="stepz.*steps"):
        sl.explain(nn.Linear(2, 2), torch.randn(1, 2), method="integrated_gradients", stepz=3)


@pytest.mark.parametrize(
    "target, message",
    [(5, "out of range"), (-1, "out of range"), ([0, 1, 2], "3 targets for 2 samples"), (1.5, "int")],
)
def test_bad_targets(target, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sl.explain(nn.Linear(3, 5), torch.randn(2, 3), method="gradient", target=target)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs(bad):
    x = torch.randn(2, 3)
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf.*\(1, 2\)"):
        sl.explain(nn.Linear(3, 2), x, method="gradient")


def test_baseline_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"does not broadcast.*sl.references"):
        sl.explain(nn.Linear(3, 2), torch.randn(2, 3), method="integrated_gradients", baseline=torch.zeros(4))


def test_baseline_for_a_method_without_one():
    with pytest.raises(ValueError, match="takes no baseline"):
        sl.explain(nn.Linear(3, 2), torch.randn(2, 3), method="gradient", baseline=0.0)


def test_output_that_a_class_target_cannot_index():
    model = nn.Conv2d(3, 4, 1)  # a segmentation-like output (N, 4, H, W)
    with pytest.raises(ValueError, match=r"shape \(N, C\).*callable target"):
        sl.explain(model, torch.randn(2, 3, 5, 5), method="gradient", target=1)
    result = sl.explain(model, torch.randn(2, 3, 5, 5), method="gradient", target=lambda out: out[:, 1].sum((1, 2)))
    torch.testing.assert_close(result.values[0, :, 0, 0], model.weight.detach()[1, :, 0, 0] * 1.0)


def test_model_that_does_not_return_a_tensor():
    with pytest.raises(ValueError, match="not a tensor"):
        sl.explain(lambda x: {"logits": x}, torch.randn(2, 3), method="gradient")


def test_inputs_without_batch_or_of_integer_dtype():
    with pytest.raises(TypeError, match="floating-point"):
        sl.explain(nn.Linear(3, 2), torch.ones(2, 3, dtype=torch.long), method="gradient")
    with pytest.raises(ValueError, match="batch"):
        sl.explain(nn.Linear(3, 2), torch.randn(0, 3), method="gradient")


def test_feature_names_travel_with_a_tabular_result_and_are_checked():
    model = torch.nn.Linear(3, 2)
    a = sl.explain(model, torch.ones(2, 3), method="gradient", target=0, feature_names=("age", "income", "debt"))
    assert a.info["feature_names"] == ["age", "income", "debt"]
    with pytest.raises(ValueError, match="2 names for 3 features"):
        sl.explain(model, torch.ones(2, 3), method="gradient", target=0, feature_names=["age", "income"])
    with pytest.raises(ValueError, match="tabular inputs"):
        sl.explain(torch.nn.Flatten(), torch.ones(2, 1, 3), method="gradient", target=0, feature_names=list("abc"))
