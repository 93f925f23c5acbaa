"""saliencelab.compat.captum with a tuple of inputs, additional_forward_args and FeatureAblation, against Captum 0.9.

float64 throughout; tolerances say where Captum rounds to float32.
"""

from __future__ import annotations

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch import nn

import saliencelab.compat.captum as attr

captum_attr = pytest.importorskip("captum.attr")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CAPTUM_FLOAT32 = 1e-6
"""Relative tolerance where Captum rounds to float32 (quadrature step sizes, perturbation results)."""


class TwoInputs(nn.Module):
    """Two inputs meeting in a hidden ReLU layer; a per-sample scale passed as an extra, non-attributed argument."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 6)
        self.b = nn.Linear(3, 6)
        self.relu = nn.ReLU()
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        return self.out(self.relu(self.a(x) + self.b(y))) * scale


def two_inputs() -> TwoInputs:
    torch.manual_seed(0)
    return TwoInputs().double().eval()


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 4, dtype=torch.float64, generator=generator)
    y = torch.randn(4, 3, dtype=torch.float64, generator=generator)
    scale = torch.rand(4, 1, dtype=torch.float64, generator=generator) + 0.5
    return x, y, scale


TARGETS = torch.tensor([0, 2, 1, 1])


def assert_parts_close(ours, theirs, atol: float) -> None:
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    for mine, captum in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, captum.to(mine.dtype), rtol=0, atol=atol)


@pytest.mark.parametrize("name", ["Saliency", "InputXGradient", "GuidedBackprop", "Deconvolution"])
def test_gradient_family_with_two_inputs_and_a_forward_argument_equals_captum(name):
    model, (x, y, scale) = two_inputs(), batch()
    before = snapshot(model)
    ours = getattr(attr, name)(model).attribute((x, y), target=TARGETS, additional_forward_args=(scale,))
    theirs = getattr(captum_attr, name)(model).attribute((x, y), target=TARGETS, additional_forward_args=(scale,))
    assert_parts_close(ours, theirs, atol=1e-15)  # the same backward pass
    assert_unchanged(model, before)


def test_integrated_gradients_with_a_baseline_per_input_equals_captum():
    model, (x, y, scale) = two_inputs(), batch()
    baselines = (0.1, torch.zeros(1, 3, dtype=torch.float64))
    ours, our_delta = attr.IntegratedGradients(model).attribute(
        (x, y), baselines, TARGETS, scale, n_steps=24, return_convergence_delta=True
    )
    theirs, their_delta = captum_attr.IntegratedGradients(model).attribute(
        (x, y), baselines, TARGETS, scale, n_steps=24, return_convergence_delta=True
    )
    scale_of_values = max(float(part.abs().max()) for part in theirs)
    assert_parts_close(ours, theirs, atol=CAPTUM_FLOAT32 * scale_of_values)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=CAPTUM_FLOAT32 * scale_of_values)


def test_deeplift_and_deeplift_shap_with_two_inputs_equal_captum():
    model, (x, y, scale) = two_inputs(), batch()
    ours, delta = attr.DeepLift(model).attribute(
        (x, y), target=TARGETS, additional_forward_args=(scale,), return_convergence_delta=True
    )
    theirs = captum_attr.DeepLift(model).attribute((x, y), target=TARGETS, additional_forward_args=(scale,))
    assert_parts_close(ours, theirs, atol=1e-14)
    assert float(delta.abs().max()) < 1e-13
    generator = torch.Generator().manual_seed(2)
    background = (
        torch.randn(5, 4, dtype=torch.float64, generator=generator),
        torch.randn(5, 3, dtype=torch.float64, generator=generator),
    )
    ours, delta = attr.DeepLiftShap(model).attribute(
        (x, y), background, TARGETS, (scale,), return_convergence_delta=True
    )
    theirs = captum_attr.DeepLiftShap(model).attribute((x, y), background, TARGETS, (scale,))
    assert_parts_close(ours, theirs, atol=1e-14)
    assert delta.shape == (4,) and float(delta.abs().max()) < 1e-13


@pytest.mark.parametrize("name", ["DeepLift", "DeepLiftShap"])
def test_deeplift_multipliers_with_two_inputs_equal_captum(name):
    model, (x, y, scale) = two_inputs(), batch()
    baselines = (0.3 * x[:2], y[:2]) if name == "DeepLiftShap" else None
    ours = getattr(attr, name)(model, multiply_by_inputs=False).attribute((x, y), baselines, TARGETS, (scale,))
    theirs = getattr(captum_attr, name)(model, multiply_by_inputs=False).attribute((x, y), baselines, TARGETS, (scale,))
    assert_parts_close(ours, theirs, atol=1e-14)


def test_gradient_shap_with_two_inputs_on_a_linear_model_equals_captum():
    torch.manual_seed(0)
    dense_x, dense_y = nn.Linear(4, 3).double(), nn.Linear(3, 3).double()
    model = lambda x, y: dense_x(x) + dense_y(y)  # noqa: E731  (additive: the values are exact whatever the draws)
    x, y, _ = batch()
    reference = (torch.randn(1, 4, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64))
    ours = attr.GradientShap(model).attribute((x, y), reference, n_samples=3, target=TARGETS)
    theirs = captum_attr.GradientShap(model).attribute((x, y), reference, n_samples=3, target=TARGETS)
    assert_parts_close(ours, theirs, atol=1e-14)


class JoinedInputs(nn.Module):
    """Bias-free dense layers on two inputs, joined by concatenation or by a sum, then a ReLU and a dense layer."""

    def __init__(self, join: str) -> None:
        super().__init__()
        self.join = join
        self.a = nn.Linear(4, 6, bias=False)
        self.b = nn.Linear(3, 6, bias=False)
        self.relu = nn.ReLU()
        self.out = nn.Linear(12 if join == "cat" else 6, 3, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(y)
        return self.out(self.relu(torch.cat([a, b], dim=1) if self.join == "cat" else a + b))


def test_lrp_with_two_concatenated_inputs_equals_captum():
    torch.manual_seed(0)
    model, (x, y, _) = JoinedInputs("cat").double(), batch()
    ours, our_delta = attr.LRP(model).attribute((x, y), target=TARGETS, return_convergence_delta=True)
    theirs, their_delta = captum_attr.LRP(model).attribute((x, y), target=TARGETS, return_convergence_delta=True)
    assert_parts_close(ours, theirs, atol=1e-14)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=1e-13)


def test_lrp_conserves_relevance_at_a_sum_where_captum_does_not():
    """Captum's hooks give each summand of ``a(x) + b(y)`` the whole relevance of the sum; saliencelab splits it
    in proportion to the summands, so without biases the relevance is conserved up to the ε = 1e-9 stabiliser."""
    torch.manual_seed(0)
    model, (x, y, _) = JoinedInputs("sum").double(), batch()
    _, our_delta = attr.LRP(model).attribute((x, y), target=TARGETS, return_convergence_delta=True)
    _, their_delta = captum_attr.LRP(model).attribute((x, y), target=TARGETS, return_convergence_delta=True)
    assert float(our_delta.abs().max()) < 1e-7
    assert float(their_delta.abs().max()) > 1e-2


@pytest.mark.parametrize(
    "baselines, feature_mask",
    [
        (None, None),
        ((0.2, 0.0), None),
        (None, (torch.tensor([[0, 0, 1, 2]]), torch.tensor([[2, 3, 3]]))),  # group 2 spans both inputs
    ],
)
def test_feature_ablation_with_two_inputs_equals_captum(baselines, feature_mask):
    model, (x, y, scale) = two_inputs(), batch()
    ours = attr.FeatureAblation(model).attribute((x, y), baselines, TARGETS, (scale,), feature_mask)
    theirs = captum_attr.FeatureAblation(model).attribute((x, y), baselines, TARGETS, (scale,), feature_mask)
    # Captum keeps ablation results in float32
    assert_parts_close(ours, theirs, atol=CAPTUM_FLOAT32 * max(float(part.abs().max()) for part in theirs))


def test_feature_ablation_with_one_input_and_a_mask_equals_captum():
    model, (x, _, _) = two_inputs(), batch()
    mask = torch.tensor([0, 1, 1, 0])
    ours = attr.FeatureAblation(model.a).attribute(x, target=TARGETS, feature_mask=mask, baselines=0.5)
    theirs = captum_attr.FeatureAblation(model.a).attribute(x, target=TARGETS, feature_mask=mask, baselines=0.5)
    torch.testing.assert_close(ours, theirs.double(), rtol=0, atol=CAPTUM_FLOAT32 * float(theirs.abs().max()))


@pytest.mark.parametrize("name, n_samples", [("ShapleyValueSampling", 3), ("KernelShap", 30)])
def test_sampling_methods_with_two_inputs_on_an_additive_model_equal_captum(name, n_samples):
    weights = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    model = lambda x, y: x @ weights + y[:, :2]  # noqa: E731  (additive over the groups: every estimate is exact)
    x, y, _ = batch()
    mask = (torch.tensor([[0, 0, 1, 2]]), torch.tensor([[2, 3, 3]]))
    ours = getattr(attr, name)(model).attribute((x, y), target=TARGETS % 2, feature_mask=mask, n_samples=n_samples)
    theirs = getattr(captum_attr, name)(model).attribute(
        (x, y), target=TARGETS % 2, feature_mask=mask, n_samples=n_samples
    )
    # Captum keeps float32 results; its KernelSHAP fits its surrogate in float32 (about 1e-6 relative)
    assert_parts_close(ours, theirs, atol=1e-5 * max(float(part.abs().max()) for part in theirs))


def test_noise_tunnel_with_two_inputs_repeats_the_forward_argument_per_copy():
    """A linear map of (x, y) scaled by a per-sample forward argument: the gradient is exact on every copy,
    so SmoothGrad of Saliency equals |scale · w| only if each copy got its own sample's scale."""
    torch.manual_seed(0)
    dense_x, dense_y = nn.Linear(4, 3).double(), nn.Linear(3, 3).double()
    model = lambda x, y, scale: (dense_x(x) + dense_y(y)) * scale  # noqa: E731
    x, y, scale = batch()
    smooth = attr.NoiseTunnel(attr.Saliency(model)).attribute(
        (x, y), nt_samples=5, stdevs=(0.1, 0.3), target=TARGETS, additional_forward_args=(scale,)
    )
    expected = (scale * dense_x.weight.detach()[TARGETS]).abs(), (scale * dense_y.weight.detach()[TARGETS]).abs()
    assert_parts_close(smooth, expected, atol=1e-15)


def test_a_baseline_tuple_of_the_wrong_length_is_an_error():
    model, (x, y, _) = two_inputs(), batch()
    with pytest.raises(ValueError, match="baselines has 3 entries for 2 inputs"):
        attr.IntegratedGradients(model).attribute((x, y), baselines=(0.0, 0.0, 0.0), target=0)


def test_noise_tunnel_repeats_per_sample_arguments_of_one_sample_too():
    """One sample: Captum repeats every tensor forward argument for the copies, whatever its first dimension."""
    torch.manual_seed(0)
    dense = nn.Linear(4, 3).double()
    model = lambda x, scale: dense(x) * scale.reshape(len(x), 1)  # noqa: E731  (one scale per row, or an error)
    x, _, scale = batch()
    values = attr.NoiseTunnel(attr.InputXGradient(model)).attribute(
        x[:1], nt_samples=4, stdevs=0.0, target=torch.tensor([2]), additional_forward_args=scale[:1]
    )
    torch.testing.assert_close(values, x[:1] * scale[:1] * dense.weight.detach()[2], rtol=0, atol=1e-15)
