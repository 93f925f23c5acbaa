"""Several inputs, dict inputs, forward arguments, hidden layers, neurons and token ids, against Captum 0.9.0.

Every comparison runs in float64 on random-weight models at matching settings.
Tolerances: 1e-10 where both libraries compute the same sums (gradients, the
same Gauss-Legendre nodes, DeepLIFT's Rescale rule); equality to 1e-12 between
two saliencelab spellings of the same computation.
"""

from __future__ import annotations

import threading

import pytest
import torch
from captum.attr import (
    DeepLift,
    FeatureAblation,
    InputXGradient,
    IntegratedGradients,
    LayerDeepLift,
    LayerDeepLiftShap,
    LayerFeatureAblation,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    LayerLRP,
    NeuronDeepLift,
    NeuronFeatureAblation,
    NeuronGradient,
    NeuronGuidedBackprop,
    NeuronIntegratedGradients,
)
from torch import nn

import saliencelab as sl
from saliencelab.core.structure import InputStructure

TIGHT = 1e-10
CAPTUM_WEIGHTS = 2e-7
"""Relative tolerance against Captum's Integrated Gradients: it casts its quadrature weights to float32
(``torch.tensor(step_sizes).float()``), a relative error of up to 6e-8 per weight in a float64 run."""


class ImageAndTable(nn.Module):
    """A conv branch for an image and a dense branch for a table, joined; ``mask`` scales the table (keyword-only)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.table = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(3 * 16 + 5, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, image: torch.Tensor, table: torch.Tensor, *, mask: torch.Tensor | None = None) -> torch.Tensor:
        rows = self.table(table if mask is None else table * mask)
        return self.head(torch.cat([self.conv(image), rows], dim=1))


def seeded(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.fixture
def net() -> ImageAndTable:
    torch.manual_seed(0)
    return ImageAndTable().double().eval()


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return seeded(1, 3, 1, 4, 4), seeded(2, 3, 4)


@pytest.fixture
def references() -> tuple[torch.Tensor, torch.Tensor]:
    return seeded(3, 3, 1, 4, 4), seeded(4, 3, 4)


def close(ours, theirs, tolerance: float = TIGHT, relative: float = 0.0) -> None:
    """Equal up to ``tolerance + relative · max |theirs|``, part by part."""
    ours, theirs = (
        (ours,) if isinstance(ours, torch.Tensor) else ours,
        (theirs,) if isinstance(theirs, torch.Tensor) else theirs,
    )
    assert len(ours) == len(theirs)
    for mine, peer in zip(ours, theirs, strict=True):
        assert mine.shape == peer.shape
        allowed = tolerance + relative * peer.abs().max().item()
        assert (mine - peer).abs().max().item() <= allowed, ((mine - peer).abs().max().item(), allowed)


def test_integrated_gradients_of_two_inputs_equal_captums_and_sum_to_the_difference(net, inputs, references):
    ours = sl.explain(net, inputs, method="integrated_gradients", target=1, baseline=references, steps=40)
    theirs = IntegratedGradients(net).attribute(inputs, baselines=references, target=1, n_steps=40)
    close(ours.values, theirs, relative=CAPTUM_WEIGHTS)
    assert isinstance(ours.values, tuple) and ours.values[0].shape == (3, 1, 4, 4)
    gap = (net(*inputs) - net(*references))[:, 1]
    assert ((sum(v.flatten(1).sum(1) for v in ours.values) - gap).abs() - ours.delta).abs().max() < 1e-12


def test_deeplift_of_two_inputs_equals_captums_and_is_exact(net, inputs, references):
    ours = sl.explain(net, inputs, method="deeplift", target=2, baseline=references)
    theirs = DeepLift(net).attribute(inputs, baselines=references, target=2)
    close(ours.values, theirs)
    assert ours.delta.max() < 1e-12  # summation-to-delta over both inputs, random references


def test_gradient_x_input_of_two_inputs_equals_captums(net, inputs):
    close(
        sl.explain(net, inputs, method="gradient_x_input", target=0).values,
        InputXGradient(net).attribute(inputs, target=0),
    )


def test_gradient_shap_of_two_inputs_is_the_packed_single_input_computation(net, inputs, references):
    """Captum draws its own random numbers; the relation that holds exactly: several inputs are the one packed input."""
    structure = InputStructure.of(inputs)

    def packed_model(flat: torch.Tensor) -> torch.Tensor:
        image, table = flat.split([16, 4], dim=1)
        return net(image.reshape(-1, 1, 4, 4), table)

    refs = (sl.references(references[0]), sl.references(references[1]))
    ours = sl.explain(net, inputs, method="gradient_shap", target=1, baseline=refs, samples=16, seed=3)
    flat = sl.explain(
        packed_model, structure.pack(inputs), method="gradient_shap", target=1,
        baseline=sl.references(structure.pack(references)), samples=16, seed=3,
    )  # fmt: skip
    close(ours.values, structure.unpack(flat.values), 1e-12)
    close(ours.delta, flat.delta, 1e-12)  # the completeness error is over both inputs together


def test_dict_inputs_and_a_keyword_only_forward_argument(net, inputs, references):
    mask = seeded(5, 3, 4).abs()
    named = {"image": inputs[0], "table": inputs[1]}
    ours = sl.explain(
        net, named, method="integrated_gradients", target=1, steps=30, forward_args={"mask": mask},
        baseline={"image": references[0], "table": 0.0},
    )  # fmt: skip
    assert set(ours.values) == {"image", "table"}

    def positional(image, table, mask):
        return net(image, table, mask=mask)

    theirs = IntegratedGradients(positional).attribute(
        inputs, baselines=(references[0], 0.0), target=1, n_steps=30, additional_forward_args=(mask,)
    )
    close((ours.values["image"], ours.values["table"]), theirs, relative=CAPTUM_WEIGHTS)


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "shapley_sampling", "feature_ablation"])
def test_a_forward_argument_with_a_row_per_sample_follows_its_sample(net, inputs, method):
    """The mask of sample i goes with every row evaluated for sample i (path steps, ablations, permutations)."""
    mask = seeded(6, 3, 4).abs()
    together = sl.explain(net, inputs, method=method, target=1, forward_args={"mask": mask})
    for i in range(3):
        alone = sl.explain(
            net,
            tuple(part[i : i + 1] for part in inputs),
            method=method,
            target=1,
            forward_args={"mask": mask[i : i + 1]},
        )
        close(tuple(part[i : i + 1] for part in together.values), alone.values, 1e-9)


def test_feature_ablation_of_two_inputs_equals_captums(net, inputs):
    ours = sl.explain(net, inputs, method="feature_ablation", target=2)
    close(ours.values, FeatureAblation(net).attribute(inputs, target=2))


@pytest.mark.parametrize(("layer", "layer_input"), [("head.0", False), ("head.0", True), ("table.0", False)])
def test_layer_integrated_gradients_equal_captums_and_are_complete(net, inputs, references, layer, layer_input):
    module = net.get_submodule(layer)
    ours = sl.explain(
        net, inputs, method="integrated_gradients", target=0, baseline=references, layer=layer,
        layer_input=layer_input, steps=40,
    )  # fmt: skip
    theirs = LayerIntegratedGradients(net, module).attribute(
        inputs, baselines=references, target=0, n_steps=40, attribute_to_layer_input=layer_input
    )
    close(ours.values, theirs, relative=CAPTUM_WEIGHTS)


@pytest.mark.parametrize("multiply", [True, False])
def test_layer_gradient_x_activation_and_the_layer_gradient(net, inputs, multiply):
    method = "gradient_x_input" if multiply else "gradient"
    ours = sl.explain(net, inputs, method=method, target=1, layer="head.0")
    theirs = LayerGradientXActivation(net, net.head[0], multiply_by_inputs=multiply).attribute(inputs, target=1)
    close(ours.values, theirs)


def test_layer_deeplift_and_deepshap_equal_captums_and_sum_to_the_difference(net, inputs, references):
    ours = sl.explain(net, inputs, method="deeplift", target=1, baseline=references, layer="head.0")
    close(ours.values, LayerDeepLift(net, net.head[0]).attribute(inputs, references, target=1))
    gap = (net(*inputs) - net(*references))[:, 1]
    assert (ours.values.flatten(1).sum(1) - gap).abs().max() < 1e-12
    background = (seeded(7, 4, 1, 4, 4), seeded(8, 4, 4))
    shap = sl.explain(
        net, inputs, method="deepshap", target=1, layer="head.0",
        baseline=(sl.references(background[0]), sl.references(background[1])),
    )  # fmt: skip
    close(shap.values, LayerDeepLiftShap(net, net.head[0]).attribute(inputs, background, target=1))


def test_layer_lrp_with_the_epsilon_rule_equals_captums():
    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = seeded(9, 4, 6)
    ours = sl.explain(mlp, x, method="lrp", target=2, layer="2", rule="epsilon", epsilon=1e-9)
    theirs = LayerLRP(mlp, mlp[2]).attribute(x, target=2)  # Captum's default: the ε rule, ε = 1e-9, biases absorb
    close(ours.values, theirs)


def test_layer_feature_ablation_replaces_activations_by_zero_as_captums(net, inputs):
    ours = sl.explain(net, inputs, method="feature_ablation", target=0, layer="head.1")
    close(ours.values, LayerFeatureAblation(net, net.head[1]).attribute(inputs, target=0))


@pytest.mark.parametrize(
    ("method", "peer", "options"),
    [
        ("gradient", NeuronGradient, {}),
        ("integrated_gradients", NeuronIntegratedGradients, {"steps": 30}),
        ("deeplift", NeuronDeepLift, {}),
        ("guided_backprop", NeuronGuidedBackprop, {}),
        ("feature_ablation", NeuronFeatureAblation, {}),
    ],
)
def test_neuron_targets_equal_captums_neuron_classes(net, inputs, references, method, peer, options):
    kwargs = {"baselines": references} if method in ("integrated_gradients", "deeplift") else {}
    if method == "integrated_gradients":
        kwargs["n_steps"] = 30
    ours = sl.explain(
        net, inputs, method=method, target=sl.neuron("head.0", 3),
        baseline=references if "baselines" in kwargs else None, **options,
    )  # fmt: skip
    theirs = peer(net, net.head[0]).attribute(inputs, neuron_selector=(3,), **kwargs)
    close(ours.values, theirs, relative=CAPTUM_WEIGHTS if method == "integrated_gradients" else 0.0)


def test_a_neuron_given_by_a_callable_and_its_errors(net, inputs):
    by_callable = sl.explain(net, inputs, method="gradient", target=sl.neuron("head.0", lambda a: a[:, 3]))
    by_index = sl.explain(net, inputs, method="gradient", target=sl.neuron(net.head[0], 3))
    close(by_callable.values, by_index.values, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        sl.explain(net, inputs, method="gradient", target=sl.neuron("head.0", 8))
    with pytest.raises(ValueError, match="one per dimension"):
        sl.explain(net, inputs, method="gradient", target=sl.neuron("head.0", (1, 2)))


class Bag(nn.Module):
    """Token ids through an embedding, a tanh and a masked mean."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding, self.head = nn.Embedding(30, 6), nn.Linear(6, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head((torch.tanh(self.embedding(ids)) * mask[..., None]).mean(1))


def test_integrated_gradients_at_the_embedding_from_token_ids_equal_layer_integrated_gradients():
    torch.manual_seed(2)
    bag = Bag().double()
    ids = torch.randint(1, 30, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 7, dtype=torch.float64)
    mask[0, 5:] = 0
    ours = sl.explain(
        bag, ids, method="integrated_gradients", target=2, baseline=0, layer="embedding", steps=40, forward_args=(mask,)
    )
    theirs = LayerIntegratedGradients(bag, bag.embedding).attribute(
        ids, baselines=torch.zeros_like(ids), target=2, n_steps=40, additional_forward_args=(mask,)
    )
    close(ours.values, theirs, relative=CAPTUM_WEIGHTS)
    tokens = sl.text.token_scores(ours)
    assert tokens.shape == (3, 7) and tokens[0, 5:].abs().max() < 1e-12  # masked tokens get nothing
    gap = (bag(ids, mask) - bag(torch.zeros_like(ids), mask))[:, 2]
    assert (tokens.sum(1) - gap).abs().max() < 1e-6  # 40 Gauss-Legendre nodes on a tanh network


def test_perturbation_methods_replace_token_ids_by_the_baseline_id_and_return_floats():
    torch.manual_seed(2)
    bag = Bag().double()
    ids = torch.randint(1, 30, (2, 5), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 5, dtype=torch.float64)
    ours = sl.explain(bag, ids, method="occlusion", target=1, baseline=0, window=1, forward_args=(mask,))
    assert ours.values.dtype == torch.float64 and ours.values.shape == (2, 5)  # the model's dtype
    expected = torch.stack(
        [bag(ids, mask)[:, 1] - bag(ids.index_fill(1, torch.tensor([t]), 0), mask)[:, 1] for t in range(5)], dim=1
    )
    assert (ours.values - expected).abs().max() < 1e-12
    with pytest.raises(TypeError, match="embedding layer"):
        sl.explain(bag, ids, method="gradient", target=1, forward_args=(mask,))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda net, x: sl.explain(net, (x[0], x[1][:2]), method="gradient"), ValueError, "batch size"),
        (lambda net, x: sl.explain(net, x, method="guided_grad_cam"), ValueError, "needs one input tensor"),
        (lambda net, x: sl.explain(net, x, method="rise"), ValueError, "needs one input tensor"),
        (
            lambda net, x: sl.explain(net, x, method="integrated_gradients", baseline=(0.0,)),
            ValueError,
            "one entry per",
        ),
        (lambda net, x: sl.explain(net, x, method="integrated_gradients", baseline=x[0]), ValueError, "ambiguous"),
        (lambda net, x: sl.explain(net, x, method="gradient", layer="nope"), ValueError, "no layer named"),
        (lambda net, x: sl.explain(net, x[0], method="rise", layer="head.0"), TypeError, "layer"),
        (lambda net, x: sl.explain(net, [x[0], "text"], method="gradient"), TypeError, "forward_args"),
    ],
)
def test_bad_structures_get_clear_errors(net, inputs, call, error, message):
    with pytest.raises(error, match=message):
        call(net, inputs)


def test_the_model_is_untouched_by_layer_and_neuron_calls_even_when_they_raise(net, inputs):
    before = {name: value.clone() for name, value in net.state_dict().items()}
    sl.explain(net, inputs, method="integrated_gradients", target=1, layer="head.0", steps=8)
    sl.explain(net, inputs, method="deeplift", target=sl.neuron("head.0", 1))
    with pytest.raises(ValueError):
        sl.explain(net, inputs, method="gradient", target=sl.neuron("head.0", 99))
    assert all(torch.equal(before[name], value) for name, value in net.state_dict().items())
    assert not net._forward_hooks and not net.head[0]._forward_hooks and not net.training
    assert not torch.nn.modules.module._global_forward_hooks  # the per-thread watcher is gone too


def test_layer_attributions_in_two_threads_equal_those_in_one(net, inputs, references):
    expected = sl.explain(net, inputs, method="integrated_gradients", target=1, layer="head.0", steps=16).values
    found: list[torch.Tensor] = []

    def run() -> None:
        found.append(sl.explain(net, inputs, method="integrated_gradients", target=1, layer="head.0", steps=16).values)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and all(torch.equal(values, expected) for values in found)


def test_inside_no_grad_and_inference_mode_the_numbers_do_not_change(net, inputs, references):
    expected = sl.explain(net, inputs, method="deeplift", target=1, baseline=references, layer="head.0").values
    with torch.no_grad():
        assert torch.equal(
            sl.explain(net, inputs, method="deeplift", target=1, baseline=references, layer="head.0").values, expected
        )
    with torch.inference_mode():
        x, refs = tuple(p.clone() for p in inputs), tuple(p.clone() for p in references)
        assert torch.equal(
            sl.explain(net, x, method="deeplift", target=1, baseline=refs, layer="head.0").values, expected
        )


class Scaled(nn.Module):
    """A conv net whose output is scaled by a per-sample argument."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.net(x) * scale


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("smoothgrad", {"samples": 4}),  # its base method runs on noisy copies: they follow their samples too
        (
            "prediction_difference",
            {"samples": 3, "baseline": seeded(10, 10, 1, 4, 4)},
        ),  # its references keep their shape
        ("rise", {"samples": 20, "grid": 2}),
    ],
)
def test_forward_arguments_reach_methods_that_run_other_methods_or_draw_references(method, options):
    torch.manual_seed(3)
    model = Scaled().double()
    x, scale = seeded(11, 3, 1, 4, 4), seeded(12, 3, 1).abs() + 0.5
    together = sl.explain(model, x, method=method, target=0, forward_args=(scale,), **options)
    for i in range(3):
        alone = sl.explain(model, x[i : i + 1], method=method, target=0, forward_args=(scale[i : i + 1],), **options)
        close(together.values[i : i + 1], alone.values, 1e-12)


@pytest.mark.parametrize("method", ["smoothgrad", "gradient_shap"])
def test_noise_is_relative_to_each_inputs_own_range(method):
    """An image in [0, 1] and a table in [0, 1000]: pooled ranges would drown the image in the table's noise."""
    seen: list[torch.Tensor] = []

    def model(image: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        seen.append(image.detach().clone())
        return (image.flatten(1).sum(1) + table.sum(1))[:, None]

    image = torch.linspace(0, 1, 16, dtype=torch.float64).reshape(1, 1, 4, 4)
    table = torch.linspace(0, 1000, 3, dtype=torch.float64).reshape(1, 3)
    options = {"baseline": (sl.references(image), sl.references(table))} if method == "gradient_shap" else {}
    sl.explain(model, (image, table), method=method, target=0, samples=400, noise=0.1, **options)
    noisy = torch.cat([batch for batch in seen if len(batch) > 1])
    spread = (noisy - image).std().item() if method == "smoothgrad" else None
    if method == "smoothgrad":
        assert 0.08 < spread < 0.12  # σ = 0.1 × the image's range 1, not × 1000
    else:  # GradientSHAP: points on the path from the image to its own reference, noisy by σ = 0.1
        assert (noisy - image).abs().max().item() < 1.0


@pytest.mark.parametrize("method", ["feature_ablation", "shapley_sampling", "kernel_shap", "lime"])
def test_feature_masks_given_per_input_share_groups_by_id(method):
    """Captum's tuple of masks: the same id in the image and the table is one group."""
    torch.manual_seed(4)
    linear = nn.Linear(7, 2).double()

    def model(image: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return linear(torch.cat([image.flatten(1), table], dim=1))

    inputs = (seeded(13, 3, 1, 2, 2), seeded(14, 3, 3))
    image_mask, table_mask = torch.tensor([[[[0, 0], [1, 1]]]]), torch.tensor([[1, 2, 2]])
    options = {"samples": 64} if method in ("kernel_shap", "lime") else {}
    per_input = sl.explain(model, inputs, method=method, target=1, feature_mask=(image_mask, table_mask), **options)
    packed = sl.explain(
        model, inputs, method=method, target=1, feature_mask=torch.tensor([[0, 0, 1, 1, 1, 2, 2]]), **options
    )
    close(per_input.values, packed.values, 0.0)
    if method == "feature_ablation":
        close(
            per_input.values, FeatureAblation(model).attribute(inputs, target=1, feature_mask=(image_mask, table_mask))
        )
    with pytest.raises(ValueError, match="feature mask of input 1"):
        sl.explain(model, inputs, method=method, target=1, feature_mask=(image_mask, torch.tensor([1, 2])), **options)


def test_grad_cam_of_a_two_input_model_is_the_layers_map_as_captums_layer_grad_cam(net, inputs):
    from captum.attr import LayerGradCam

    ours = sl.explain(net, inputs, method="grad_cam", target=1, layer="conv.1")
    assert isinstance(ours.values, torch.Tensor) and ours.values.shape == (3, 1, 4, 4)  # the layer's, not an input's
    close(ours.values, LayerGradCam(net, net.conv[1]).attribute(inputs, target=1, relu_attributions=True))
    for method in ("layer_cam", "eigen_cam", "ablation_cam"):
        assert sl.explain(net, inputs, method=method, target=1, layer="conv.1").values.shape == (3, 1, 4, 4)
    with pytest.raises(ValueError, match="needs one input tensor"):
        sl.explain(net, inputs, method="score_cam", target=1, layer="conv.1")  # it masks the input with the grid


CAPTUM_FLOAT32 = 1e-7
"""Relative tolerance against Captum's Occlusion, which accumulates its float64 differences in float32."""


@pytest.mark.parametrize(
    ("window", "stride", "peer_window", "peer_stride"),
    [
        (((1, 2, 2), (1,)), ((1, 1, 1), (1,)), ((1, 2, 2), (1,)), ((1, 1, 1), (1,))),  # per input, per dimension
        (((2, 2), 2), ((2, 2), 1), ((1, 2, 2), (2,)), ((1, 2, 2), (1,))),  # per input, spatial sizes and ints
    ],
)
def test_occlusion_slides_a_window_over_each_input_as_captums(net, inputs, window, stride, peer_window, peer_stride):
    from captum.attr import Occlusion

    ours = sl.explain(net, inputs, method="occlusion", target=1, window=window, stride=stride, baseline=(0.5, 0.0))
    theirs = Occlusion(net).attribute(
        inputs, sliding_window_shapes=peer_window, strides=peer_stride, target=1, baselines=(0.5, 0.0)
    )
    close(ours.values, theirs, relative=CAPTUM_FLOAT32)
    named = sl.explain(
        net, {"image": inputs[0], "table": inputs[1]}, method="occlusion", target=1,
        window={"image": window[0], "table": window[1]}, stride={"image": stride[0], "table": stride[1]},
        baseline={"image": 0.5, "table": 0.0},
    )  # fmt: skip
    close(tuple(named.values.values()), ours.values, 0.0)
