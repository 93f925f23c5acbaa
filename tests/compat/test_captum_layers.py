"""saliencelab.compat.captum's Layer* and Neuron* classes against Captum 0.9, in float64 on random-weight models.

Tolerances say where Captum rounds to float32 (quadrature step sizes, perturbation results).
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
"""Relative tolerance where Captum rounds to float32."""


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()


def cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(36, 3)).double().eval()


def rows(seed: int = 1) -> torch.Tensor:
    return torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def images(seed: int = 2) -> torch.Tensor:
    return torch.randn(3, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


TARGETS = torch.tensor([0, 2, 1, 1])


def close(ours: torch.Tensor, theirs: torch.Tensor, relative: float) -> None:
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=0, atol=relative * float(theirs.abs().max()) + 1e-15)


@pytest.mark.parametrize("layer_index, to_input", [(1, False), (3, False), (2, True)])
def test_layer_integrated_gradients_equals_captum(layer_index, to_input):
    model, x = mlp(), rows()
    before = snapshot(model)
    options = {"target": TARGETS, "baselines": 0.2, "n_steps": 24, "attribute_to_layer_input": to_input}
    ours, our_delta = attr.LayerIntegratedGradients(model, model[layer_index]).attribute(
        x, return_convergence_delta=True, **options
    )
    theirs, their_delta = captum_attr.LayerIntegratedGradients(model, model[layer_index]).attribute(
        x, return_convergence_delta=True, **options
    )
    close(ours, theirs, CAPTUM_FLOAT32)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=CAPTUM_FLOAT32 * float(theirs.abs().max()))
    assert_unchanged(model, before)


@pytest.mark.parametrize("multiply_by_inputs", [True, False])
@pytest.mark.parametrize("to_input", [False, True])
def test_layer_gradient_x_activation_equals_captum(multiply_by_inputs, to_input):
    model, x = mlp(), rows()
    ours = attr.LayerGradientXActivation(model, model[2], multiply_by_inputs=multiply_by_inputs).attribute(
        x, TARGETS, attribute_to_layer_input=to_input
    )
    theirs = captum_attr.LayerGradientXActivation(model, model[2], multiply_by_inputs=multiply_by_inputs).attribute(
        x, TARGETS, attribute_to_layer_input=to_input
    )
    close(ours, theirs, 1e-15)


@pytest.mark.parametrize("model, inputs, layer_index, target", [(mlp(), rows(), 1, TARGETS), (cnn(), images(), 1, 2)])
def test_layer_deeplift_equals_captum(model, inputs, layer_index, target):
    layer = model[layer_index]
    ours, our_delta = attr.LayerDeepLift(model, layer).attribute(inputs, 0.1, target, return_convergence_delta=True)
    theirs, their_delta = captum_attr.LayerDeepLift(model, layer).attribute(
        inputs, 0.1, target, return_convergence_delta=True
    )
    close(ours, theirs, 1e-13)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=1e-12)


def test_layer_deeplift_shap_equals_captum():
    model, x = mlp(), rows()
    background = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ours = attr.LayerDeepLiftShap(model, model[3]).attribute(x, background, TARGETS)
    theirs = captum_attr.LayerDeepLiftShap(model, model[3]).attribute(x, background, TARGETS)
    close(ours, theirs, 1e-13)


def test_layer_gradient_shap_on_a_linear_model_equals_captum():
    """Linear before and after the layer: every draw gives the same values, so the random draws do not matter."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3)).double()
    reference = torch.randn(1, 5, dtype=torch.float64)
    ours = attr.LayerGradientShap(model, model[0]).attribute(rows(), reference, n_samples=4, target=TARGETS)
    theirs = captum_attr.LayerGradientShap(model, model[0]).attribute(rows(), reference, n_samples=4, target=TARGETS)
    close(ours, theirs, 1e-14)


def test_layer_lrp_equals_captum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    x = rows()
    ours = attr.LayerLRP(model, model[2]).attribute(x, TARGETS)
    theirs = captum_attr.LayerLRP(model, model[2]).attribute(x, TARGETS)
    close(ours, theirs, 1e-13)


@pytest.mark.parametrize(
    "selector",
    [3, (5,), (slice(1, 4),), lambda activation: activation[:, 2] - activation[:, 0]],
    ids=["int", "tuple", "slice", "callable"],
)
@pytest.mark.parametrize("name", ["NeuronGradient", "NeuronGuidedBackprop", "NeuronDeepLift"])
def test_neuron_gradient_methods_equal_captum(name, selector):
    model, x = mlp(), rows()
    if name == "NeuronGuidedBackprop":  # guided backprop is defined on ReLU networks: explain a unit before the tanh
        layer = model[2]
    else:
        layer = model[3]
    ours = getattr(attr, name)(model, layer).attribute(x, selector)
    theirs = getattr(captum_attr, name)(model, layer).attribute(x, selector)
    close(ours, theirs, 1e-13)


def test_neuron_selectors_index_a_convolution_map():
    model, x = cnn(), images()
    for selector in [(2, 3, 1), (1, slice(0, 3), slice(2, 4))]:
        ours = attr.NeuronGradient(model, model[1]).attribute(x, selector)
        theirs = captum_attr.NeuronGradient(model, model[1]).attribute(x, selector)
        close(ours, theirs, 1e-15)


def test_neuron_integrated_gradients_equals_captum():
    model, x = mlp(), rows()
    ours = attr.NeuronIntegratedGradients(model, model[3]).attribute(x, 2, baselines=0.1, n_steps=24)
    theirs = captum_attr.NeuronIntegratedGradients(model, model[3]).attribute(x, 2, baselines=0.1, n_steps=24)
    close(ours, theirs, CAPTUM_FLOAT32)


def test_neuron_feature_ablation_equals_captum():
    model, x = mlp(), rows()
    mask = torch.tensor([[0, 0, 1, 2, 2]])
    ours = attr.NeuronFeatureAblation(model, model[3]).attribute(x, 4, baselines=0.3, feature_mask=mask)
    theirs = captum_attr.NeuronFeatureAblation(model, model[3]).attribute(x, 4, baselines=0.3, feature_mask=mask)
    close(ours, theirs, CAPTUM_FLOAT32)  # Captum keeps ablation results in float32


def test_neuron_input_is_refused_by_name():
    model, x = mlp(), rows()
    with pytest.raises(NotImplementedError, match="attribute_to_neuron_input"):
        attr.NeuronGradient(model, model[2]).attribute(x, 1, attribute_to_neuron_input=True)


class TextNet(nn.Module):
    """Token ids through an embedding, a padding mask as an extra argument, mean of tanh, a dense layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 6)
        self.fc = nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.embedding(ids) * mask[..., None]).mean(dim=1))


def test_layer_integrated_gradients_at_an_embedding_from_token_ids_equals_captum():
    """The usual text recipe: token ids in, reference ids as baselines, a padding mask as a forward argument."""
    torch.manual_seed(0)
    model = TextNet().double()
    ids = torch.randint(1, 20, (3, 7), generator=torch.Generator().manual_seed(5))
    mask = torch.ones(3, 7, dtype=torch.float64)
    mask[0, 5:] = 0
    reference = torch.zeros_like(ids)
    options = {"target": 1, "additional_forward_args": (mask,), "n_steps": 30, "return_convergence_delta": True}
    ours, our_delta = attr.LayerIntegratedGradients(model, model.embedding).attribute(ids, reference, **options)
    theirs, their_delta = captum_attr.LayerIntegratedGradients(model, model.embedding).attribute(
        ids, reference, **options
    )
    assert ours.shape == (3, 7, 6)
    close(ours, theirs, CAPTUM_FLOAT32)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=CAPTUM_FLOAT32 * float(theirs.abs().max()))


@pytest.mark.parametrize("to_input", [False, True])
def test_layer_lrp_delta_equals_captum(to_input):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    ours, our_delta = attr.LayerLRP(model, model[2]).attribute(
        rows(), 1, return_convergence_delta=True, attribute_to_layer_input=to_input
    )
    theirs, their_delta = captum_attr.LayerLRP(model, model[2]).attribute(
        rows(), 1, return_convergence_delta=True, attribute_to_layer_input=to_input
    )
    close(ours, theirs, 1e-13)
    torch.testing.assert_close(our_delta, their_delta, rtol=0, atol=1e-13)  # Captum's sign: f(x) − Σ relevance


def test_layer_deeplift_shap_delta_is_per_sample():
    model, x = mlp(), rows()
    background = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, delta = attr.LayerDeepLiftShap(model, model[3]).attribute(x, background, 1, return_convergence_delta=True)
    assert delta.shape == (4,) and float(delta.abs().max()) < 1e-13  # Captum's has one per (sample, baseline)


def test_layer_attribution_with_two_inputs_equals_captum():
    torch.manual_seed(0)
    dense_x, dense_y, head = nn.Linear(4, 6).double(), nn.Linear(3, 6).double(), nn.Linear(6, 3).double()
    hidden = nn.Tanh()
    model = lambda x, y: head(hidden(dense_x(x) + dense_y(y)))  # noqa: E731
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 4, dtype=torch.float64, generator=generator), torch.randn(4, 3, dtype=torch.float64)
    ours = attr.LayerIntegratedGradients(model, hidden).attribute((x, y), (0.1, 0.0), TARGETS, n_steps=24)
    theirs = captum_attr.LayerIntegratedGradients(model, hidden).attribute((x, y), (0.1, 0.0), TARGETS, n_steps=24)
    close(ours, theirs, CAPTUM_FLOAT32)
