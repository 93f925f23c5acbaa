"""The perturbation family and the public contract: names, classes, seeds, chunking, model untouched, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import TrainingModeNet, assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl

REFERENCES = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(5))
OPTIONS = {
    "occlusion": {"window": 3, "stride": 2},
    "feature_ablation": {"feature_mask": "grid"},
    "shapley_sampling": {"samples": 2, "feature_mask": "grid"},
    "kernel_shap": {"samples": 70, "feature_mask": "grid"},
    "lime": {"samples": 40, "feature_mask": "grid"},
    "rise": {"samples": 30, "grid": 3},
    "prediction_difference": {"window": 2, "stride": 2, "samples": 3, "baseline": REFERENCES},
    "meaningful_perturbation": {"steps": 5, "resolution": 4},
}
METHODS = sorted(OPTIONS)
STOCHASTIC = ["shapley_sampling", "kernel_shap", "lime", "rise", "prediction_difference"]


def run(method: str, model, inputs, **extra):
    options = {**OPTIONS[method], **extra}
    baseline = options.pop("baseline", None)
    target = options.pop("target", 1)
    return sl.explain(model, inputs, method=method, target=target, baseline=baseline, **options)


def test_every_method_is_registered_and_exported():
    from saliencelab.core import registry

    assert set(METHODS) <= set(sl.available_methods())
    for method in METHODS:
        cls = registry.get(method)
        assert getattr(sl, cls.__name__) is cls and cls.source and cls.description


@pytest.mark.parametrize("method", METHODS)
def test_by_name_and_by_class_agree_and_values_have_the_inputs_shape(method, images):
    from saliencelab.core import registry

    model = conv_net("module", seed=31)
    by_name = run(method, model, images)
    options = dict(OPTIONS[method])
    baseline = options.pop("baseline", None)
    by_class = registry.get(method)(model, **options)(images, target=1, baseline=baseline)
    assert torch.equal(by_name.values, by_class.values)
    assert by_name.values.shape == images.shape and by_name.values.dtype == images.dtype
    assert by_name.method == method and by_name.target.tolist() == [1, 1, 1, 1]
    assert bool(torch.isfinite(by_name.values).all()) and by_name.values.abs().sum() > 0


@pytest.mark.parametrize("method", STOCHASTIC)
def test_the_same_seed_gives_bit_identical_results_and_another_seed_others(method, images):
    model = conv_net("module", seed=32)
    first = run(method, model, images, seed=7)
    again = run(method, model, images, seed=7)
    other = run(method, model, images, seed=8)
    assert torch.equal(first.values, again.values)
    assert not torch.equal(first.values, other.values)


@pytest.mark.parametrize("method", METHODS)
def test_results_do_not_depend_on_chunking_or_the_rest_of_the_batch(method, images):
    model = conv_net("module", seed=33)
    whole = run(method, model, images)
    chunked = run(method, model, images, memory_budget=30_000)
    alone = torch.cat([run(method, model, images[i : i + 1]).values for i in range(len(images))])
    torch.testing.assert_close(chunked.values, whole.values, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(alone, whole.values, rtol=1e-4, atol=1e-6)


def test_evaluations_run_in_chunks_that_fit_the_memory_budget(images):
    from saliencelab.core.batching import ActivationMeter
    from saliencelab.methods.perturbation.scoring import ROW_COPIES

    model = conv_net("module", seed=34)
    with ActivationMeter() as meter, torch.inference_mode():  # as the method measures a row
        model(images[:1])
    own = ROW_COPIES * images[0].numel() * images.element_size()  # the row, its baseline, its mask, its copy
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    budget = (meter.bytes + own) * 9
    sl.explain(model, images, method="occlusion", target=0, window=2, stride=2, memory_budget=budget)
    assert max(seen) == 8  # 64 window rows need 8 chunks of at most 9: evened out to 8 each
    assert sum(seen) == 1 + 4 + 4 * 16  # one row measured, the clean inputs, 16 windows for each of 4 samples


class _InferenceChecked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = conv_net("module", seed=35)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(torch.is_inference_mode_enabled())
        return self.body(x)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "meaningful_perturbation"])
def test_forward_passes_run_in_inference_mode(method, images):
    model = _InferenceChecked()
    result = run(method, model, images)
    assert model.modes and all(model.modes)
    assert not result.values.is_inference()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("training", [False, True])
def test_the_model_is_left_exactly_as_it_was(method, training, images):
    model = TrainingModeNet().train(training)
    model.body.fc1.register_forward_hook(lambda module, args, output: None)
    model.body.conv1.weight.grad = torch.ones_like(model.body.conv1.weight)
    before = snapshot(model)
    if training:
        with pytest.warns(UserWarning, match="training mode"):
            run(method, model, images)
    else:
        run(method, model, images)
    assert_unchanged(model, before)


@pytest.mark.parametrize("method", METHODS)
def test_the_model_is_left_as_it_was_when_a_call_raises(method, images):
    model = TrainingModeNet().eval()
    model.body.fc1.register_forward_hook(lambda module, args, output: None)
    before = snapshot(model)
    with pytest.raises(ValueError, match="out of range"):
        run(method, model, images, target=99)
    assert_unchanged(model, before)


def test_progress_bars_are_quiet_unless_asked(images, capsys):
    model = conv_net("module", seed=36)
    sl.explain(model, images, method="occlusion", target=0, window=1, stride=1)  # 1,024 rows, not a terminal
    assert capsys.readouterr().err == ""
    sl.explain(model, images, method="occlusion", target=0, window=1, stride=1, progress=True)
    assert "occlusion" in capsys.readouterr().err


@pytest.mark.parametrize(
    "method, options, error, message",
    [
        ("shapley_sampling", {"samples": 0}, ValueError, "samples must be an int >= 1"),
        ("kernel_shap", {"samples": -3}, ValueError, "samples must be an int >= 1"),
        ("rise", {"samples": 0}, ValueError, "samples must be an int >= 1"),
        ("rise", {"keep": 1.5}, ValueError, "keep must be a number in"),
        ("rise", {"grid": 9}, ValueError, "more than the input's spatial size"),
        ("prediction_difference", {"samples": 0}, ValueError, "samples must be an int >= 1"),
        ("prediction_difference", {"sampling": "gibbs"}, ValueError, "unknown sampling"),
        ("meaningful_perturbation", {"steps": 0}, ValueError, "steps must be an int >= 1"),
        ("meaningful_perturbation", {"resolution": 9}, ValueError, "exceed the input's spatial size"),
        ("meaningful_perturbation", {"area": -1.0}, ValueError, "area must be a non-negative number"),
        ("lime", {"seed": 1.5}, TypeError, "seed must be an int"),
        ("occlusion", {"progress": "yes"}, TypeError, "progress must be"),
        ("occlusion", {"steps": 3}, TypeError, "does not take the option"),
    ],
)
def test_bad_options_are_clear_errors(method, options, error, message, images):
    with pytest.raises(error, match=message):
        sl.explain(conv_net(), images, method=method, target=0, **options)


def test_bad_inputs_are_clear_errors(images):
    model = conv_net()
    with pytest.raises(ValueError, match="NaN"):
        sl.explain(model, images * float("nan"), method="occlusion", target=0)
    with pytest.raises(ValueError, match="draws references from a distribution"):
        sl.explain(model, images, method="prediction_difference", target=0)
    with pytest.raises(ValueError, match="rise needs inputs"):
        sl.explain(nn.Linear(4, 2), torch.randn(2, 4), method="rise", target=0)
    with pytest.raises(ValueError, match="does not broadcast"):
        sl.explain(model, images, method="occlusion", target=0, baseline=torch.zeros(5))
