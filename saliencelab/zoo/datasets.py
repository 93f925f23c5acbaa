"""Small datasets that ship with the zoo's dependencies (no downloads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import torch

from ..core.sampling import generator

__all__ = [
    "DIGITS_SEED",
    "DIGITS_TEST_FRACTION",
    "LABELS",
    "LABEL_SEED",
    "LFW_SEED",
    "LFW_TEST_FRACTION",
    "available_datasets",
    "check_labels",
    "dataset",
    "digits",
    "lfw_faces",
]

DIGITS_SEED: int = 0
DIGITS_TEST_FRACTION: float = 0.25
LFW_SEED: int = 0
LFW_TEST_FRACTION: float = 0.25
LABELS: tuple[str, ...] = ("true", "shuffled")
"""Label versions: ``"true"`` as published; ``"shuffled"``: training labels permuted (Adebayo et al., 2018)."""
LABEL_SEED: int = 0
"""Seed of the permutation of the training labels for ``labels="shuffled"``."""

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _split(images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int) -> Arrays:
    """Stratified train/test split with scikit-learn; the arrays are made read-only (they are cached)."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    arrays = (x_train, y_train, x_test, y_test)
    for array in arrays:
        array.setflags(write=False)
    return arrays


@cache  # functools.lru_cache(maxsize=None)
def _digits_arrays() -> Arrays:
    """Load scikit-learn's digits and split them."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    return _split(images, data.target.astype(np.int64), DIGITS_TEST_FRACTION, DIGITS_SEED)


@cache
def _lfw_arrays() -> Arrays:
    """Load scikit-image's LFW subset (the first 100 images are faces, the other 100 not) and split it."""
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float32)[:, None, :, :]
    labels = (np.arange(len(images)) < len(images) // 2).astype(np.int64)
    return _split(images, labels, LFW_TEST_FRACTION, LFW_SEED)


def _to_tensors(arrays: Arrays) -> Split:
    x_train, y_train, x_test, y_test = (torch.from_numpy(a.copy()) for a in arrays)
    return x_train, y_train, x_test, y_test


def digits() -> Split:
    """Return the scikit-learn 8x8 digits as a fixed stratified train/test split.

    1797 images, 10 classes; 25 % go to the test set (stratified by class,
    ``random_state=0``), so the split is the same on every machine.

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        Images are float32 of shape ``(N, 1, 8, 8)`` in ``[0, 1]``; labels are
        int64 of shape ``(N,)``. 1347 training and 450 test samples. Each call
        returns new tensors, so they may be modified freely.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = digits()
    >>> tuple(X_train.shape), X_train.dtype, tuple(y_test.shape)
    ((1347, 1, 8, 8), torch.float32, (450,))
    """
    return _to_tensors(_digits_arrays())


def lfw_faces() -> Split:
    """Return scikit-image's LFW subset (faces and non-faces) as a fixed stratified split.

    ``skimage.data.lfw_subset()``: 200 grey 25x25 crops from the Labeled Faces
    in the Wild data set; its first 100 images are faces (label 1), the other
    100 are background crops of the same photographs (label 0). 25 % go to the
    test set (stratified by class, ``random_state=0``): 150 training images
    (75 faces) and 50 test images (25 faces).

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        Images are float32 of shape ``(N, 1, 25, 25)`` in ``[0, 1]``; labels are
        int64 of shape ``(N,)``, 1 = face, 0 = non-face. Each call returns new
        tensors.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = lfw_faces()
    >>> tuple(X_train.shape), tuple(X_test.shape), int(y_train.sum()), int(y_test.sum())
    ((150, 1, 25, 25), (50, 1, 25, 25), 75, 25)
    """
    return _to_tensors(_lfw_arrays())


_DATASETS: dict[str, Callable[[], Split]] = {"digits": digits, "lfw_faces": lfw_faces}


def available_datasets() -> list[str]:
    """Return the sorted names accepted by :func:`dataset`.

    Examples
    --------
    >>> available_datasets()
    ['digits', 'lfw_faces']
    """
    return sorted(_DATASETS)


def check_labels(labels: object, allowed: Sequence[str] = LABELS, owner: str = "") -> str:
    """Return ``labels`` if it is one of ``allowed``, else raise ``ValueError`` naming the allowed values.

    Parameters
    ----------
    labels : object
        The value passed as ``labels=``.
    allowed : sequence of str, default :data:`LABELS`
        The label versions on offer.
    owner : str, default ""
        What offers them (a model's name), for the message.

    Examples
    --------
    >>> check_labels("shuffled")
    'shuffled'
    >>> check_labels("random", owner="model 'digits_cnn'")
    Traceback (most recent call last):
    ...
    ValueError: labels='random' is not available for model 'digits_cnn'; use one of: 'true', 'shuffled'
    """
    if not isinstance(labels, str) or labels not in allowed:
        where = f" for {owner}" if owner else ""
        choices = ", ".join(repr(value) for value in allowed)
        raise ValueError(f"labels={labels!r} is not available{where}; use one of: {choices}")
    return labels


def _shuffled(labels: torch.Tensor) -> torch.Tensor:
    """Permute ``labels`` with a generator seeded by :data:`LABEL_SEED` (class counts are kept)."""
    return labels[torch.randperm(len(labels), generator=generator(LABEL_SEED, labels.device))]


def dataset(name: str, labels: str = "true") -> Split:
    """Return the named dataset as ``(X_train, y_train, X_test, y_test)`` tensors.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`.
    labels : {"true", "shuffled"}, default "true"
        ``"shuffled"`` permutes ``y_train`` with the fixed seed
        :data:`LABEL_SEED` (the data randomisation test of Adebayo et al.,
        2018); images, ``X_test`` and ``y_test`` stay as they are. These are the
        labels that ``zoo.load(model, labels="shuffled")`` was trained on.

    Raises
    ------
    ValueError
        If ``name`` or ``labels`` is unknown; the message lists the available values.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = dataset("digits")
    >>> int(y_train.max())
    9
    >>> _, y_shuffled, _, y_test_again = dataset("digits", labels="shuffled")
    >>> torch.equal(y_shuffled.sort().values, y_train.sort().values), torch.equal(y_test_again, y_test)
    (True, True)
    >>> bool((y_shuffled == y_train).double().mean() < 0.2)
    True
    """
    try:
        factory = _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available datasets: {', '.join(available_datasets())}") from None
    check_labels(labels, owner=f"dataset {name!r}")
    x_train, y_train, x_test, y_test = factory()
    if labels == "shuffled":
        y_train = _shuffled(y_train)
    return x_train, y_train, x_test, y_test
