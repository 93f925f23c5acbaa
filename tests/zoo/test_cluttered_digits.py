"""Tests for zoo.dataset("cluttered_digits"), its object masks and the model trained on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saliencelab import zoo
from saliencelab.methods.cam.layers import default_layer
from saliencelab.zoo.architectures import ClutteredDigitsCNN
from saliencelab.zoo.datasets import CLUTTER_NOISE, CLUTTER_TRAIN_COPIES

SIZE = 32
# fingerprint of the generated data (CLUTTER_SEED = 0): pixel sums and mask sizes
CHECKSUMS = {"x_train": 816772.642881, "x_test": 68219.136215, "mask_train": 176116, "mask_test": 14707}


@pytest.fixture(scope="module")
def cluttered() -> tuple[torch.Tensor, ...]:
    return zoo.dataset("cluttered_digits")


@pytest.fixture(scope="module")
def masks() -> tuple[torch.Tensor, torch.Tensor]:
    return zoo.object_masks("cluttered_digits")


def placements(images: torch.Tensor, masks: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """For each sample, the 8x8 windows of its mask that equal the digit's ink pattern: (N, positions) bool."""
    windows = F.unfold(masks.double(), kernel_size=8)  # (N, 64, 25 * 25)
    ink = (digits.flatten(1) > 0).double()[:, :, None]
    return (windows == ink).all(dim=1)


def test_shapes_dtypes_and_range(cluttered: tuple[torch.Tensor, ...], masks: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = cluttered
    mask_train, mask_test = masks
    assert x_train.shape == mask_train.shape == (1347 * CLUTTER_TRAIN_COPIES, 1, SIZE, SIZE)
    assert x_test.shape == mask_test.shape == (450, 1, SIZE, SIZE)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    assert mask_train.dtype == mask_test.dtype == torch.bool
    x = torch.cat([x_train, x_test])
    assert 0.0 <= x.min().item() and x.max().item() == 1.0


def test_each_image_holds_its_digit_where_its_mask_is(
    cluttered: tuple[torch.Tensor, ...], masks: tuple[torch.Tensor, ...]
) -> None:
    """The mask is the ink of digits()'s digit i (test) or i // 4 (train), pasted once; the image shows it there."""
    digit_train, label_train, digit_test, label_test = zoo.dataset("digits")
    x_train, y_train, x_test, y_test = cluttered
    for images, labels, objects, digits, digit_labels, copies in (
        (x_train, y_train, masks[0], digit_train, label_train, CLUTTER_TRAIN_COPIES),
        (x_test, y_test, masks[1], digit_test, label_test, 1),
    ):
        sources = digits.repeat_interleave(copies, dim=0)
        assert torch.equal(labels, digit_labels.repeat_interleave(copies))
        # the mask is exactly one pasted copy of the digit's ink: as many pixels, and one window that matches
        assert torch.equal(objects.flatten(1).sum(1), (sources.flatten(1) > 0).sum(1))
        found = placements(images, objects, sources)
        assert found.any(dim=1).all()
        # at the matching window the image is max(noise, digit): equal to the digit where its ink beats the noise
        position = found.double().argmax(dim=1)
        window = F.unfold(images.double(), kernel_size=8).gather(2, position[:, None, None].expand(-1, 64, 1))[..., 0]
        ink = sources.flatten(1).double()
        assert (window >= ink - 1e-7).all()
        bright = ink >= CLUTTER_NOISE
        assert torch.allclose(window[bright], ink[bright], atol=1e-7)


def test_clutter_stays_outside_the_digit_and_copies_differ(cluttered: tuple[torch.Tensor, ...]) -> None:
    x_train, _, _, _ = cluttered
    first, second = x_train[0::CLUTTER_TRAIN_COPIES], x_train[1::CLUTTER_TRAIN_COPIES]
    assert (first != second).flatten(1).any(dim=1).all()  # each copy has its own position, clutter and noise
    bright = (x_train >= CLUTTER_NOISE).flatten(1).sum(1).double()
    ink = (zoo.dataset("digits")[0] >= CLUTTER_NOISE).flatten(1).sum(1).double()
    # six fragments of up to 16 pixels each add bright pixels beyond the digit's own
    extra = bright - ink.repeat_interleave(CLUTTER_TRAIN_COPIES)
    assert extra.min().item() >= 0 and extra.max().item() <= 6 * 16 and extra.mean().item() > 20


def test_split_is_deterministic_and_returns_fresh_tensors(
    cluttered: tuple[torch.Tensor, ...], masks: tuple[torch.Tensor, ...]
) -> None:
    x_train, y_train, x_test, y_test = cluttered
    assert x_train.double().sum().item() == pytest.approx(CHECKSUMS["x_train"], abs=1e-3)
    assert x_test.double().sum().item() == pytest.approx(CHECKSUMS["x_test"], abs=1e-3)
    assert [int(m.sum()) for m in masks] == [CHECKSUMS["mask_train"], CHECKSUMS["mask_test"]]
    again = zoo.dataset("cluttered_digits")
    for a, b in zip(cluttered, again, strict=True):
        assert torch.equal(a, b)
    again[0].fill_(-1.0)
    fresh_masks = zoo.object_masks("cluttered_digits")
    fresh_masks[1].fill_(False)
    assert zoo.dataset("cluttered_digits")[0].min().item() >= 0.0
    assert torch.equal(zoo.object_masks("cluttered_digits")[1], masks[1])


def test_shuffled_labels_keep_images_and_masks(cluttered: tuple[torch.Tensor, ...]) -> None:
    shuffled = zoo.dataset("cluttered_digits", labels="shuffled")
    for index in (0, 2, 3):
        assert torch.equal(shuffled[index], cluttered[index])
    assert torch.equal(torch.bincount(shuffled[1]), torch.bincount(cluttered[1]))
    assert (shuffled[1] == cluttered[1]).double().mean().item() < 0.2


def test_datasets_without_masks_say_which_have_them() -> None:
    message = r"dataset 'digits' has no object masks; datasets with masks: cluttered_digits"
    with pytest.raises(ValueError, match=message):
        zoo.object_masks("digits")


def test_model_loads_ready_for_cams() -> None:
    model = zoo.load("cluttered_digits_cnn")
    assert isinstance(model, ClutteredDigitsCNN) and not model.training
    assert all(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 23_946
    layers = dict(model.named_modules())
    assert default_layer(model, torch.zeros(1, 1, SIZE, SIZE)) is model.features  # whose last module is features.7
    assert isinstance(layers["features.7"], nn.ReLU)
    with torch.no_grad():
        assert model.features(torch.zeros(1, 1, SIZE, SIZE)).shape == (1, 64, 8, 8)
    with pytest.raises(ValueError, match=r"labels='shuffled' is not available for model 'cluttered_digits_cnn'"):
        zoo.load("cluttered_digits_cnn", labels="shuffled")
