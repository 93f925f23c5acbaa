"""Inputs checked against the model, options checked when a method is built, results detached from the graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import saliencelab as sl
from saliencelab.core import registry

STOCHASTIC = [name for name in sl.available_methods() if "seed" in registry.option_names(registry.get(name))]
"""Every method that takes a seed."""


def conv_net() -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 3)
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net.eval()


def raised(call) -> BaseException:
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return info.value


# --------------------------------------------------------------------------- inputs against the model


def test_a_single_image_without_batch_dimension_says_to_add_one_and_keeps_the_models_error():
    model, image = conv_net(), torch.rand(1, 8, 8)
    error = raised(lambda: sl.explain(model, image, method="gradient"))
    assert isinstance(error, ValueError)
    assert str(error).startswith("the model failed on inputs of shape (1, 8, 8) (RuntimeError: mat1 and mat2")
    assert "its first layer, Conv2d, takes batches of 4 dimensions" in str(error)
    assert str(error).endswith("If this is one sample, add a batch dimension: inputs.unsqueeze(0)")
    assert isinstance(error.__cause__, RuntimeError)  # the model's own error, chained
    a = sl.explain(model, image.unsqueeze(0), method="gradient", target=0)  # the fix works
    assert a.values.shape == (1, 1, 8, 8)


def test_one_feature_vector_for_a_linear_model_says_to_add_a_batch_dimension():
    error = raised(lambda: sl.explain(torch.nn.Linear(3, 2), torch.ones(3), method="integrated_gradients"))
    assert "inputs of shape (3,)" in str(error) and "Linear, takes batches of 2 dimensions" in str(error)
    assert "inputs.unsqueeze(0)" in str(error)


def test_a_batch_keeps_the_models_own_error_without_the_hint():
    model = conv_net()
    with pytest.raises(RuntimeError, match="mat1 and mat2") as info:  # a batch of 16x16 images, not one sample
        sl.explain(model, torch.rand(1, 1, 16, 16), method="gradient")
    assert "unsqueeze" not in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        (torch.float64, "inputs are float64, the model's parameters float32: convert with inputs.to(torch.float32) "
                        "or the model with model.to(torch.float64)"),
        (torch.float16, "inputs are float16, the model's parameters float32: convert with inputs.to(torch.float32) "
                        "or the model with model.to(torch.float16)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "occlusion", "grad_cam"])
def test_inputs_of_another_dtype_than_the_model_are_refused_before_the_method_runs(dtype, message, method):
    model = conv_net()
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    error = raised(lambda: sl.explain(model, torch.rand(1, 1, 8, 8, dtype=dtype), method=method))
    assert isinstance(error, TypeError) and str(error) == message
    assert calls == []  # checked before any model evaluation


def test_inputs_on_another_device_than_the_model_are_refused():
    model = conv_net().to("meta")
    error = raised(lambda: sl.explain(model, torch.rand(1, 1, 8, 8), method="gradient"))
    assert str(error) == (
        "inputs are on cpu, the model's parameters on meta: move them with inputs.to('meta') "
        "or the model with model.to('cpu')"
    )


def test_a_callable_without_parameters_is_not_checked():
    a = sl.explain(lambda x: x.sum(1, keepdim=True) * 2, torch.ones(2, 3, dtype=torch.float64), method="gradient")
    torch.testing.assert_close(a.values, torch.full((2, 3), 2.0, dtype=torch.float64))


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("budget", "kind", "got"),
    [
        ("1GB", TypeError, "got '1GB' (str)"),
        (True, TypeError, "got True (bool)"),
        (float("nan"), ValueError, "got nan"),
        (float("inf"), ValueError, "got inf"),
        (0, ValueError, "at least 1; got 0"),
        (-5, ValueError, "at least 1; got -5"),
        (0.5, ValueError, "at least 1; got 0.5"),
    ],
)
@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "smoothgrad", "occlusion", "grad_cam", "lrp"])
def test_a_bad_memory_budget_fails_when_the_method_is_built_naming_the_option(budget, kind, got, method):
    cls = registry.get(method)
    with pytest.raises(kind) as info:
        cls(conv_net(), memory_budget=budget)
    message = str(info.value)
    assert message.startswith("memory_budget must be a number of bytes (an int such as 2**30 for 1 GiB")
    assert message.endswith(got)


def test_a_memory_budget_may_be_a_float_or_numpy_number_of_bytes():
    assert sl.Gradient(conv_net(), memory_budget=2e9).memory_budget == 2_000_000_000
    assert sl.Gradient(conv_net(), memory_budget=np.int64(4096)).memory_budget == 4096
    assert sl.Gradient(conv_net()).memory_budget is None


@pytest.mark.parametrize(
    ("seed", "kind", "got"),
    [("abc", TypeError, "got 'abc' (str)"), (1.5, TypeError, "got 1.5 (float)"), (True, TypeError, "got True (bool)"),
     (-1, ValueError, "got -1"), (2**64, ValueError, f"got {2**64}")],
)  # fmt: skip
@pytest.mark.parametrize("method", STOCHASTIC)
def test_a_bad_seed_fails_when_any_seeded_method_is_built_naming_the_option(seed, kind, got, method):
    with pytest.raises(kind) as info:
        registry.get(method)(conv_net(), seed=seed)
    assert str(info.value) == f"seed must be an int from 0 to 2**64 - 1, e.g. seed=0; {got}"


def test_every_stochastic_method_is_covered_and_takes_numpy_seeds():
    assert {"integrated_gradients", "smoothgrad", "expected_gradients", "occlusion", "kernel_shap", "rise"} <= set(
        STOCHASTIC
    )
    for method in STOCHASTIC:
        assert registry.get(method)(conv_net(), seed=np.int64(3)).seed == 3


# --------------------------------------------------------------------------- results detached


@pytest.mark.parametrize(
    "method", ["gradient", "gradient_x_input", "integrated_gradients", "deeplift", "occlusion", "grad_cam"]
)
def test_results_are_detached_when_the_inputs_require_gradients(method):
    model = conv_net()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    a = sl.explain(model, x, method=method, target=[0, 2])
    tensors = [a.values, a.delta, a.target, *a.info.values()]
    assert not any(t.requires_grad for t in tensors if isinstance(t, torch.Tensor))
    expected = sl.explain(model, x.detach(), method=method, target=[0, 2])
    np.testing.assert_allclose(a.values.numpy(), expected.values.numpy(), rtol=1e-6, atol=1e-7)
    assert x.grad is None  # the caller's tensor gained no gradient


def test_tensors_in_info_are_detached_through_containers():
    x = torch.ones(2, requires_grad=True)
    a = sl.Attribution(x * 2, (x * 3).abs(), "m", None, {"steps": [x.sum()], "pair": (x, 1), "n": 4})
    assert not a.values.requires_grad and not a.delta.requires_grad
    assert not a.info["steps"][0].requires_grad and not a.info["pair"][0].requires_grad
    assert a.info["pair"][1] == 1 and a.info["n"] == 4
