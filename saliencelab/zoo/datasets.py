"""Small datasets that ship with the zoo's dependencies (no downloads)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import torch

__all__ = ["DIGITS_SEED", "DIGITS_TEST_FRACTION", "available_datasets", "dataset"]

DIGITS_SEED: int = 0
DIGITS_TEST_FRACTION: float = 0.25

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@cache  # functools.lru_cache(maxsize=None)
def _digits_arrays() -> Arrays:
    """Load scikit-learn's digits and split them; arrays are cached read-only."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels,
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SEED,
        stratify=labels,
    )
    arrays = (x_train, y_train, x_test, y_test)
    for array in arrays:
        array.setflags(write=False)
    return arrays


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


_DATASETS: dict[str, Callable[[], Split]] = {"digits": digits}


def available_datasets() -> list[str]:
    """Return the sorted names accepted by :func:`dataset`.

    Examples
    --------
    >>> available_datasets()
    ['digits']
    """
    return sorted(_DATASETS)


def dataset(name: str) -> Split:
    """Return the named dataset as ``(X_train, y_train, X_test, y_test)`` tensors.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the available names.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = dataset("digits")
    >>> int(y_train.max())
    9
    """
    try:
        factory = _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available datasets: {', '.join(available_datasets())}") from None
    return factory()
