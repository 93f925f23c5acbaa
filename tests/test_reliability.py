"""No silent wrong answer, for every registered method: calling contexts, threads, op spellings, non-finite
results, empty reference batches, the model left untouched, determinism and batch independence.

Every test iterates over the registry (``sl.available_methods()``) and runs each method with its own
``quick_options``: a new method is held to all of them without editing a list here.
"""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    QUICK_REFERENCES,
    RELU_SPELLINGS,
    TrainingModeNet,
    assert_unchanged,
    call_options,
    conv_net,
    snapshot,
)
from helpers import explain_quickly as explain
from torch import nn

import saliencelab as sl
from saliencelab.core import registry

METHODS = sl.available_methods()


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return conv_net("module", seed=41)


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(13))


@pytest.fixture(scope="module")
def expected(model, inputs) -> dict[str, torch.Tensor]:
    """Each method's map in an ordinary calling context, computed once."""
    return {method: explain(model, inputs, method).values for method in METHODS}


# ------------------------------------------------------------------------------------------ calling contexts


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_the_same_map_inside_no_grad_and_inference_mode(model, inputs, expected, method, context):
    with context():
        values = explain(model, inputs, method).values
    assert values.abs().sum() > 0 or expected[method].abs().sum() == 0, "an all-zero map"
    torch.testing.assert_close(values, expected[method], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_inputs_made_under_inference_mode_work_outside_it(model, inputs, expected, method):
    with torch.inference_mode():
        frozen = inputs.clone()
    torch.testing.assert_close(explain(model, frozen, method).values, expected[method], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_a_target_made_under_inference_mode_works_outside_it(model, inputs, expected, method):
    with torch.inference_mode():
        classes = torch.ones(inputs.shape[0], dtype=torch.long)  # as a check that binds the argmax there makes it
    torch.testing.assert_close(
        explain(model, inputs, method, target=classes).values, expected[method], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("method", METHODS)
def test_values_are_detached_from_inputs_that_require_grad(model, inputs, method):
    a = explain(model, inputs.clone().requires_grad_(True), method)
    assert not a.values.requires_grad and a.values.grad_fn is None


# ------------------------------------------------------------------------------------------------ threads


@pytest.mark.parametrize("method", METHODS)
def test_two_threads_on_one_model_give_the_sequential_results(inputs, method):
    """``method`` in one thread and a CAM (module watching) or LRP (rules) in another, on the same model."""
    model = conv_net("module", seed=42)
    partner = "lrp" if method in ("grad_cam", "ablation_cam") else "grad_cam"
    sequential = {name: explain(model, inputs, name).values for name in (method, partner)}
    before = snapshot(model)
    results: dict[str, list[torch.Tensor]] = {method: [], partner: []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def loop(name: str) -> None:
        try:
            start.wait()
            for _ in range(3):
                results[name].append(explain(model, inputs, name).values)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=loop, args=(name,)) for name in (method, partner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name, values in results.items():
        assert len(values) == 3
        for value in values:
            torch.testing.assert_close(value, sequential[name], rtol=1e-5, atol=1e-6)
    assert_unchanged(model, before)


# -------------------------------------------------------------------------------------------- op spellings


@pytest.mark.parametrize("spelling", ["nn_threshold", "inplace", "reused", *RELU_SPELLINGS])
@pytest.mark.parametrize("method", METHODS)
def test_every_relu_spelling_gives_the_relu_map_or_a_named_error(inputs, expected, method, spelling):
    try:
        values = explain(conv_net(spelling, seed=41), inputs, method).values
    except sl.UnsupportedOperationError as error:
        assert error.method in (method, "guided_backprop") and error.operation
        return
    torch.testing.assert_close(values, expected[method], rtol=1e-5, atol=1e-6)


RELU_METHODS = [
    "deconvnet",
    "guided_backprop",
    "pattern_net",
    "pattern_attribution",
    "guided_grad_cam",
    "visual_backprop",
]
"""Methods whose rule is defined for ReLU: every spelling of a ReLU is one, never an error."""


@pytest.mark.parametrize("spelling", ["nn_threshold", *RELU_SPELLINGS])
@pytest.mark.parametrize("method", RELU_METHODS)
def test_relu_methods_treat_every_spelling_as_a_relu(inputs, expected, method, spelling):
    values = explain(conv_net(spelling, seed=41), inputs, method).values
    torch.testing.assert_close(values, expected[method], rtol=1e-5, atol=1e-6)


class _Inserted(nn.Module):
    """The ConvNet with one more operation after its first ReLU."""

    def __init__(self, operation) -> None:
        super().__init__()
        self.net = conv_net("module", seed=41)
        self.operation = operation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        h = self.operation(net.act1(net.conv1(x)))
        h = F.max_pool2d(net.act2(net.conv2(h)), 2)
        return net.fc2(net.act3(net.fc1(h.flatten(1))))


NONLINEAR = {
    "logsigmoid": F.logsigmoid,
    "abs": torch.abs,
    "exp": torch.exp,
    "sin": torch.sin,
    "erf": torch.erf,
    "pow": lambda h: h**3,
    "softmax": lambda h: F.softmax(h, dim=1),
    "normalize": lambda h: F.normalize(h, dim=1),
    "product": lambda h: h * h.flip(1),
}
"""Operations that are neither ReLU, linear, data movement nor routing."""


@pytest.mark.parametrize("operation", NONLINEAR)
@pytest.mark.parametrize("method", [m for m in RELU_METHODS if m != "visual_backprop"])
def test_modified_backward_methods_refuse_other_nonlinearities(inputs, method, operation):
    with pytest.raises(sl.UnsupportedOperationError) as error:
        explain(_Inserted(NONLINEAR[operation]), inputs, method)
    assert error.value.method in (method, "guided_backprop")


ROUTING_AND_LINEAR = {
    "cumsum": lambda h: h.cumsum(1),
    "interpolate": lambda h: F.interpolate(F.avg_pool2d(h, 2), scale_factor=2.0, mode="nearest"),
    "sort": lambda h: h.sort(dim=1).values,
    "topk": lambda h: h.topk(3, dim=1).values.repeat(1, 2, 1, 1),
}


@pytest.mark.parametrize("operation", ROUTING_AND_LINEAR)
@pytest.mark.parametrize("method", ["deconvnet", "guided_backprop"])
def test_linear_and_routing_operations_pass_the_modified_gradient(inputs, method, operation):
    """The ReLUs are modules here, which Captum hooks, and the inserted operation passes its plain gradient in
    Captum: the same numbers are the ReLU rule with the operation's own gradient."""
    captum_attr = pytest.importorskip("captum.attr")
    model = _Inserted(ROUTING_AND_LINEAR[operation]).eval()
    peer = {"deconvnet": captum_attr.Deconvolution, "guided_backprop": captum_attr.GuidedBackprop}[method](model)
    expected = peer.attribute(inputs.clone().requires_grad_(True), target=1).detach()
    values = explain(model, inputs, method).values
    assert expected.abs().sum() > 0
    torch.testing.assert_close(values, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ broken results


class _Overflowing(nn.Module):
    """Scores of 1e38 times the ConvNet's: every gradient or difference overflows float32."""

    def __init__(self) -> None:
        super().__init__()
        self.net = conv_net("module", seed=41)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 1e38 * 1e38


@pytest.mark.parametrize("method", METHODS)
def test_nan_or_inf_is_never_returned(inputs, method):
    try:
        a = explain(_Overflowing(), inputs, method)
    except (ValueError, sl.UnsupportedOperationError):
        return
    assert torch.isfinite(a.values).all()
    assert a.delta is None or torch.isfinite(a.delta).all()


@pytest.mark.parametrize("method", [m for m in METHODS if registry.get(m).draws_references])
def test_an_empty_reference_batch_is_a_clear_error(model, inputs, method):
    options, _ = call_options(method)
    with pytest.raises(ValueError, match="empty"):
        sl.explain(model, inputs, method=method, target=1, baseline=QUICK_REFERENCES[:0], **options)


COUNTED = [m for m in METHODS if {"samples", "steps"} & set(registry.option_names(registry.get(m)))]


@pytest.mark.parametrize("method", COUNTED)
def test_an_absurd_number_of_samples_or_steps_is_refused_when_the_method_is_built(model, method):
    """10⁹ model evaluations per input would never finish (or allocate hundreds of GB first): refused at once."""
    cls = registry.get(method)
    option = "samples" if "samples" in registry.option_names(cls) else "steps"
    options, _ = call_options(method)
    with pytest.raises(ValueError, match=f"{option}=1,000,000,000 is more than 1,000,000"):
        cls(model, **{**options, option: 10**9})


# ------------------------------------------------------------------------------------- the model untouched


@pytest.mark.parametrize("method", METHODS)
def test_the_model_is_left_exactly_as_it_was_after_a_call_and_after_an_error(inputs, method):
    model = TrainingModeNet().eval()
    model.body.fc1.register_forward_hook(lambda module, args, output: None)
    model.body.conv1.weight.grad = torch.ones_like(model.body.conv1.weight)
    model.norm.weight.requires_grad_(False)
    before = snapshot(model)
    explain(model, inputs, method)
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match="out of range"):
        explain(model, inputs, method, target=7)
    assert_unchanged(model, before)


# --------------------------------------------------------------------------- determinism, batch independence


@pytest.mark.parametrize("method", METHODS)
def test_the_same_call_twice_gives_bit_identical_results(model, inputs, expected, method):
    assert torch.equal(explain(model, inputs, method).values, expected[method])


@pytest.mark.parametrize("method", METHODS)
def test_a_sample_gets_the_same_map_alone_and_in_a_batch(model, inputs, expected, method):
    alone = explain(model, inputs[1:2], method).values
    torch.testing.assert_close(alone, expected[method][1:2], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ forward arguments


class _Scaled(nn.Module):
    """The ConvNet's output scaled per sample by a forward argument (no default: a dropped argument raises)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.body(x) * scale


@pytest.mark.parametrize("method", METHODS)
def test_a_per_sample_forward_argument_follows_its_sample_in_every_method(model, inputs, method):
    """Each sample's argument reaches every row evaluated for it, or the method refuses forward_args outright."""
    scaled = _Scaled(model)
    scale = torch.tensor([[0.5], [2.0], [1.5]])
    if not registry.get(method).forward_arguments:
        with pytest.raises(ValueError, match="forward_args"):
            explain(scaled, inputs, method, forward_args=(scale,))
        return
    options = {"layer": "body." + next(n for n, _ in model.named_modules() if n.endswith("conv2"))}
    layered = any("layer" in registry.option_names(cls) for cls in registry.get(method).__mro__[:-2])
    together = explain(scaled, inputs, method, forward_args=(scale,), **(options if layered else {})).values
    for i in range(3):
        alone = explain(
            scaled, inputs[i : i + 1], method, forward_args=(scale[i : i + 1],), **(options if layered else {})
        ).values
        assert torch.allclose(together[i : i + 1], alone, rtol=1e-4, atol=1e-6), method
