"""Tests for zoo.dataset("breast_cancer"): scikit-learn's table, split and standardised with the training statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from saliencelab import zoo

N_TRAIN = 426
N_TEST = 143


@pytest.fixture(scope="module")
def table() -> tuple[torch.Tensor, ...]:
    return zoo.dataset("breast_cancer")


@pytest.fixture(scope="module")
def reference() -> list[np.ndarray]:
    """scikit-learn's own split of the raw table: x_train, x_test, y_train, y_test (float64)."""
    data = load_breast_cancer()
    return train_test_split(data.data, data.target, test_size=0.25, random_state=0, stratify=data.target)


def test_shapes_dtypes_and_stratified_classes(table: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = table
    assert x_train.shape == (N_TRAIN, 30) and x_test.shape == (N_TEST, 30)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    # 212 malignant (0) and 357 benign (1): 37.3 % of each split is malignant
    assert torch.bincount(y_train).tolist() == [159, 267]
    assert torch.bincount(y_test).tolist() == [53, 90]


def test_standardised_with_the_training_split_only(table: tuple[torch.Tensor, ...], reference) -> None:
    """Training columns have mean 0 and (population) std 1; the test split uses the same mean and std."""
    x_train, _, x_test, _ = table
    raw_train, raw_test = reference[0], reference[1]
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    # float32 rounding of standardised values of magnitude <= 12: about 1e-6 each
    np.testing.assert_allclose(x_train.numpy(), (raw_train - mean) / std, atol=1e-5)
    np.testing.assert_allclose(x_test.numpy(), (raw_test - mean) / std, atol=1e-5)
    assert x_train.double().mean(dim=0).abs().max().item() < 1e-6
    assert torch.allclose(x_train.double().std(dim=0, correction=0), torch.ones(30, dtype=torch.float64), atol=1e-6)
    assert x_test.double().mean(dim=0).abs().max().item() > 0.01  # not standardised on itself


def test_feature_statistics_map_back_to_the_raw_measurements(table: tuple[torch.Tensor, ...], reference) -> None:
    x_train, y_train, x_test, y_test = table
    mean, std = zoo.feature_statistics("breast_cancer")
    assert mean.shape == std.shape == (30,) and mean.dtype == torch.float32
    # float32: relative error about 1e-7 per operation on raw values up to 4254 (worst area)
    np.testing.assert_allclose((x_train * std + mean).numpy(), reference[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose((x_test * std + mean).numpy(), reference[1], rtol=1e-5, atol=1e-5)
    assert np.array_equal(y_train.numpy(), reference[2]) and np.array_equal(y_test.numpy(), reference[3])
    mean.fill_(0.0)  # new tensors on each call
    assert zoo.feature_statistics("breast_cancer")[0].abs().min() > 0


def test_feature_names_are_scikit_learns() -> None:
    names = zoo.feature_names("breast_cancer")
    assert names == [str(name) for name in load_breast_cancer().feature_names]
    assert len(names) == len(set(names)) == 30 and all(type(name) is str for name in names)
    for name in ("digits", "nope"):
        message = rf"dataset '{name}' has no feature names.*tabular datasets: breast_cancer"
        with pytest.raises(ValueError, match=message):
            zoo.feature_names(name)
    with pytest.raises(ValueError, match=r"dataset 'lfw_faces' has no feature statistics"):
        zoo.feature_statistics("lfw_faces")


def test_split_is_deterministic_and_fresh(table: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = table
    # fingerprint of the fixed split (train_test_split, test_size=0.25, random_state=0, stratified)
    assert y_train[:12].tolist() == [1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0]
    assert y_test[:12].tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]
    assert x_test.double().sum().item() == pytest.approx(77.591777, abs=1e-4)
    again = zoo.dataset("breast_cancer")
    for a, b in zip(table, again, strict=True):
        assert torch.equal(a, b)
    again[0].fill_(0.0)
    assert torch.equal(zoo.dataset("breast_cancer")[0], x_train)
