"""Tests for saliencelab.zoo: datasets, shipped weights and architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliencelab import zoo
from saliencelab.zoo.architectures import VGG, BasicBlock, DigitsCNN

N_DIGITS = 1797
N_TRAIN = 1347
N_TEST = 450
RESNET18_PARAMS = 11_689_512
VGG16_PARAMS = 138_357_544


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, ...]:
    return zoo.dataset("digits")


@pytest.fixture(scope="module")
def digits_cnn() -> nn.Module:
    return zoo.load("digits_cnn")


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return zoo.load("resnet18_shaped")


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    return zoo.load("vgg16_shaped", num_classes=1000, seed=0)


# --- dataset -----------------------------------------------------------------


def test_digits_shapes_dtypes_and_range(digits: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = digits
    assert x_train.shape == (N_TRAIN, 1, 8, 8)
    assert x_test.shape == (N_TEST, 1, 8, 8)
    assert y_train.shape == (N_TRAIN,)
    assert y_test.shape == (N_TEST,)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    for x in (x_train, x_test):
        assert x.min().item() == 0.0
        assert x.max().item() == 1.0
        # pixel values are multiples of 1/16
        assert torch.equal(x * 16, (x * 16).round())
    assert set(y_train.tolist()) == set(y_test.tolist()) == set(range(10))


def test_digits_split_is_deterministic(digits: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = digits
    # fingerprint of the fixed split (train_test_split, test_size=0.25, random_state=0)
    assert y_train[:12].tolist() == [7, 3, 6, 6, 7, 6, 7, 9, 2, 9, 0, 9]
    assert y_test[:12].tolist() == [2, 0, 4, 9, 4, 1, 2, 4, 6, 7, 9, 1]
    assert (x_train.double().sum() * 16).item() == 421_005
    assert (x_test.double().sum() * 16).item() == 140_713
    again = zoo.dataset("digits")
    for a, b in zip(digits, again, strict=True):
        assert torch.equal(a, b)


def test_digits_split_is_stratified(digits: tuple[torch.Tensor, ...]) -> None:
    _, y_train, _, y_test = digits
    train_counts = torch.bincount(y_train, minlength=10)
    test_counts = torch.bincount(y_test, minlength=10)
    total = train_counts + test_counts
    assert total.sum().item() == N_DIGITS
    assert total.min().item() >= 174  # smallest digits class has 174 samples
    expected = total.double() * N_TEST / N_DIGITS
    assert (test_counts.double() - expected).abs().max().item() <= 1.0
    assert test_counts.min().item() >= 43


def test_digits_train_test_disjoint(digits: tuple[torch.Tensor, ...]) -> None:
    x_train, _, x_test, _ = digits
    train_rows = {tuple(row.tolist()) for row in x_train.flatten(1)}
    test_rows = {tuple(row.tolist()) for row in x_test.flatten(1)}
    # sklearn digits contains no duplicate images, so the split has no overlap
    assert len(train_rows) == N_TRAIN
    assert len(test_rows) == N_TEST
    assert train_rows.isdisjoint(test_rows)


def test_digits_returns_fresh_tensors() -> None:
    x_train, y_train, _, _ = zoo.dataset("digits")
    x_train.fill_(-1.0)
    y_train.fill_(-1)
    x_again, y_again, _, _ = zoo.dataset("digits")
    assert x_again.min().item() == 0.0
    assert y_again.min().item() == 0


def test_unknown_dataset_names_available() -> None:
    assert zoo.available_datasets() == [
        "breast_cancer",
        "cluttered_digits",
        "digits",
        "lfw_faces",
        "watermarked_digits",
    ]
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*digits"):
        zoo.dataset("mnist")


# --- digits_cnn ----------------------------------------------------------------


def test_digits_cnn_is_eval_and_trainable_params(digits_cnn: nn.Module) -> None:
    assert isinstance(digits_cnn, DigitsCNN)
    assert not digits_cnn.training
    assert all(not m.training for m in digits_cnn.modules())
    assert all(p.requires_grad for p in digits_cnn.parameters())
    assert sum(p.numel() for p in digits_cnn.parameters()) == 38_282


def test_digits_cnn_test_accuracy(digits_cnn: nn.Module, digits: tuple[torch.Tensor, ...]) -> None:
    _, _, x_test, y_test = digits
    with torch.no_grad():
        logits = digits_cnn(x_test)
    assert logits.shape == (N_TEST, 10)
    accuracy = (logits.argmax(1) == y_test).double().mean().item()
    assert accuracy >= 0.95


def test_digits_cnn_load_is_reproducible(digits_cnn: nn.Module) -> None:
    other = zoo.load("digits_cnn")
    assert other is not digits_cnn
    first, second = digits_cnn.state_dict(), other.state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key])
        assert first[key].data_ptr() != second[key].data_ptr()


def test_digits_cnn_weights_metadata() -> None:
    from importlib.resources import as_file

    from safetensors import safe_open

    resource = zoo.weights_file("digits_cnn")
    assert resource.is_file()
    assert 100_000 < len(resource.read_bytes()) < 1_000_000
    with as_file(resource) as path, safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    assert float(metadata["test_accuracy"]) >= 0.95
    assert metadata["seed"] == "0"
    assert metadata["torch_version"]


def test_digits_cnn_rejects_kwargs() -> None:
    with pytest.raises(TypeError):
        zoo.load("digits_cnn", num_classes=3)


# --- resnet18_shaped -------------------------------------------------------------


def test_resnet18_parameter_count(resnet: nn.Module) -> None:
    assert sum(p.numel() for p in resnet.parameters()) == RESNET18_PARAMS
    blocks = [m for m in resnet.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    convs = [m for m in resnet.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 16 + 3  # stem, two per block, three projections


def test_resnet18_output_shape_and_eval(resnet: nn.Module) -> None:
    assert not resnet.training
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = resnet(x)
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()


def test_resnet18_kwargs_seed_and_global_rng(resnet: nn.Module) -> None:
    rng_state = torch.get_rng_state()
    small = zoo.load("resnet18_shaped", num_classes=10, in_channels=1, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)  # global RNG untouched
    assert not small.training
    assert small.fc.out_features == 10
    assert small.conv1.in_channels == 1
    expected = RESNET18_PARAMS - 512 * 990 - 990 - 2 * 64 * 7 * 7
    assert sum(p.numel() for p in small.parameters()) == expected
    same = zoo.load("resnet18_shaped", num_classes=10, in_channels=1, seed=3)
    for a, b in zip(small.parameters(), same.parameters(), strict=True):
        assert torch.equal(a, b)
    # the fixture was built with seed 0: same shapes, different values
    seed0 = resnet.layer4[1].conv2.weight
    assert small.layer4[1].conv2.weight.shape == seed0.shape
    assert not torch.equal(small.layer4[1].conv2.weight, seed0)


def test_resnet18_block_reuses_one_relu(resnet: nn.Module) -> None:
    block = resnet.layer1[0]
    relus = [m for m in block.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 1 and relus[0] is block.relu
    assert block.relu.inplace
    calls: list[tuple[int, ...]] = []
    handle = block.relu.register_forward_hook(lambda m, i, o: calls.append(tuple(o.shape)))
    try:
        with torch.no_grad():
            resnet(torch.zeros(1, 3, 32, 32))
    finally:
        handle.remove()
    assert calls == [(1, 64, 8, 8), (1, 64, 8, 8)]


def test_every_block_relu_called_twice(resnet: nn.Module) -> None:
    counts: dict[str, int] = {}
    handles = []
    for name, module in resnet.named_modules():
        if isinstance(module, BasicBlock):

            def hook(m: nn.Module, i: object, o: object, name: str = name) -> None:
                counts[name] = counts.get(name, 0) + 1

            handles.append(module.relu.register_forward_hook(hook))
    try:
        with torch.no_grad():
            resnet(torch.zeros(1, 3, 32, 32))
    finally:
        for handle in handles:
            handle.remove()
    assert len(counts) == 8
    assert set(counts.values()) == {2}


# --- vgg16_shaped ----------------------------------------------------------------


def test_vgg16_parameter_count_and_layout(vgg: nn.Module) -> None:
    assert isinstance(vgg, VGG)
    assert sum(p.numel() for p in vgg.parameters()) == VGG16_PARAMS
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.features) == 5
    linears = [m for m in vgg.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(25088, 4096), (4096, 4096), (4096, 1000)]
    # torchvision's vgg16 state-dict keys
    assert {k for k in vgg.state_dict() if k.startswith("classifier")} == {
        f"classifier.{i}.{p}" for i in (1, 4, 7) for p in ("weight", "bias")
    }
    # He (fan-out) conv weights: std sqrt(2 / (9 * out_channels)); biases drawn (not zero)
    conv = convs[-1]
    assert abs(conv.weight.std().item() / (2 / (9 * 512)) ** 0.5 - 1) < 0.01
    assert conv.bias.abs().max().item() > 0


def test_vgg16_output_shape_eval_and_dropout_off(vgg: nn.Module) -> None:
    assert not vgg.training
    assert all(not m.training for m in vgg.modules())
    assert all(p.requires_grad for p in vgg.parameters())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = vgg(x)
        again = vgg(x)
        features = vgg.avgpool(vgg.features(x))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()
    assert torch.equal(out, again)  # eval mode: dropout is the identity
    # 32x32 -> 1x1 after five pools; the adaptive pool repeats it to 7x7
    assert features.shape == (2, 512, 7, 7)
    assert torch.equal(features, features[:, :, :1, :1].expand_as(features))
    # the logits depend on the input (random weights must not collapse the signal)
    assert (out[0] - out[1]).abs().max().item() > 1e-3


def test_vgg16_kwargs_seed_and_global_rng(vgg: nn.Module) -> None:
    rng_state = torch.get_rng_state()
    small = zoo.load("vgg16_shaped", num_classes=10, in_channels=1, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)  # global RNG untouched
    assert not small.training
    assert small.classifier[-1].out_features == 10
    assert small.features[0].in_channels == 1
    expected = VGG16_PARAMS - 4096 * 990 - 990 - 2 * 64 * 3 * 3
    assert sum(p.numel() for p in small.parameters()) == expected
    same = zoo.load("vgg16_shaped", num_classes=10, in_channels=1, seed=3)
    for a, b in zip(small.parameters(), same.parameters(), strict=True):
        assert torch.equal(a, b)
    # the fixture was built with seed 0: same shapes, different values
    seed0 = vgg.features[-3].weight
    assert small.features[-3].weight.shape == seed0.shape
    assert not torch.equal(small.features[-3].weight, seed0)


def test_vgg16_seed_zero_is_the_default_and_reproducible(vgg: nn.Module) -> None:
    default = zoo.load("vgg16_shaped")
    first, second = vgg.state_dict(), default.state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_vgg_rejects_bad_layout() -> None:
    with pytest.raises(ValueError, match="layout entries"):
        VGG((64, "A"))
    with pytest.raises(TypeError):
        zoo.load("vgg16_shaped", depth=19)


def test_unknown_model_names_available() -> None:
    assert zoo.available_models() == [
        "breast_cancer_mlp",
        "cluttered_digits_cnn",
        "digits_cnn",
        "lfw_cnn",
        "minilm",
        "resnet18_shaped",
        "vgg16_shaped",
        "vit_tiny_shaped",
        "watermarked_digits_cnn",
    ]
    with pytest.raises(ValueError, match=r"unknown model 'vgg16'.*digits_cnn.*resnet18_shaped"):
        zoo.load("vgg16")


@pytest.mark.parametrize("class_token", [True, False])
def test_vit_tiny_shaped_is_deterministic_and_per_sample(class_token) -> None:
    net = zoo.load("vit_tiny_shaped", class_token=class_token, seed=3)
    again = zoo.load("vit_tiny_shaped", class_token=class_token, seed=3)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(out, again(x))
        torch.testing.assert_close(out[1:2], net(x[1:2]), rtol=1e-5, atol=1e-6)
    tokens = 64 + int(class_token)
    assert net.pos_embed.shape == (1, tokens, 64)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        zoo.VisionTransformer(image_size=30, patch_size=4)
