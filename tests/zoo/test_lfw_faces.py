"""Tests for zoo.dataset("lfw_faces"): scikit-image's LFW subset as a fixed stratified split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.data import lfw_subset
from sklearn.model_selection import train_test_split

from saliencelab import zoo

N_TRAIN = 150
N_TEST = 50


@pytest.fixture(scope="module")
def faces() -> tuple[torch.Tensor, ...]:
    return zoo.dataset("lfw_faces")


@pytest.fixture(scope="module")
def originals() -> np.ndarray:
    return lfw_subset().astype(np.float32)


def test_shapes_dtypes_and_range(faces: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = faces
    assert x_train.shape == (N_TRAIN, 1, 25, 25)
    assert x_test.shape == (N_TEST, 1, 25, 25)
    assert y_train.shape == (N_TRAIN,)
    assert y_test.shape == (N_TEST,)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    x = torch.cat([x_train, x_test])
    assert x.min().item() == 0.0
    assert x.max().item() == 1.0


def test_images_and_labels_are_skimage_lfw_subset(faces: tuple[torch.Tensor, ...], originals: np.ndarray) -> None:
    """lfw_subset's docstring: the first 100 images are faces (label 1), the other 100 non-faces (label 0)."""
    x_train, y_train, x_test, y_test = faces
    index = {image.tobytes(): i for i, image in enumerate(originals)}
    assert len(index) == 200  # no duplicate images, so every split image has one source index
    sources = [index[image[0].numpy().tobytes()] for image in torch.cat([x_train, x_test])]
    assert sorted(sources) == list(range(200))  # a partition: train and test are disjoint and cover all 200
    expected = torch.tensor([int(i < 100) for i in sources])
    assert torch.equal(torch.cat([y_train, y_test]), expected)


def test_split_is_stratified_and_matches_scikit_learn(faces: tuple[torch.Tensor, ...], originals: np.ndarray) -> None:
    x_train, y_train, x_test, y_test = faces
    assert torch.bincount(y_train).tolist() == [75, 75]
    assert torch.bincount(y_test).tolist() == [25, 25]
    labels = (np.arange(200) < 100).astype(np.int64)
    ref = train_test_split(originals, labels, test_size=0.25, random_state=0, stratify=labels)
    assert np.array_equal(x_train[:, 0].numpy(), ref[0])
    assert np.array_equal(x_test[:, 0].numpy(), ref[1])
    assert np.array_equal(y_train.numpy(), ref[2])
    assert np.array_equal(y_test.numpy(), ref[3])


def test_split_is_deterministic(faces: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = faces
    # fingerprint of the fixed split (train_test_split, test_size=0.25, random_state=0, stratified)
    assert y_train[:12].tolist() == [1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0]
    assert y_test[:12].tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1]
    assert x_train.double().sum().item() == pytest.approx(35244.736022, abs=1e-5)
    assert x_test.double().sum().item() == pytest.approx(11893.503614, abs=1e-5)
    for a, b in zip(faces, zoo.dataset("lfw_faces"), strict=True):
        assert torch.equal(a, b)


def test_returns_fresh_tensors() -> None:
    x_train, y_train, _, _ = zoo.dataset("lfw_faces")
    x_train.fill_(-1.0)
    y_train.fill_(-1)
    x_again, y_again, _, _ = zoo.dataset("lfw_faces")
    assert x_again.min().item() == 0.0
    assert y_again.min().item() == 0
