"""Small datasets that ship with the zoo's dependencies (no downloads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch

from ..core.sampling import generator, substream_seed

__all__ = [
    "BREAST_CANCER_SEED",
    "BREAST_CANCER_TEST_FRACTION",
    "CLUTTER_SEED",
    "CLUTTERED_DIGITS_SIZE",
    "DIGITS_SEED",
    "DIGITS_TEST_FRACTION",
    "LABELS",
    "LABEL_SEED",
    "LFW_SEED",
    "LFW_TEST_FRACTION",
    "WATERMARK_CLASS",
    "WATERMARK_FRACTION",
    "WATERMARK_SEED",
    "WATERMARK_SIZE",
    "available_datasets",
    "breast_cancer",
    "check_labels",
    "cluttered_digits",
    "dataset",
    "digits",
    "feature_names",
    "feature_statistics",
    "lfw_faces",
    "object_masks",
    "watermark",
    "watermarked",
    "watermarked_digits",
]

DIGITS_SEED: int = 0
DIGITS_TEST_FRACTION: float = 0.25
LFW_SEED: int = 0
LFW_TEST_FRACTION: float = 0.25
BREAST_CANCER_SEED: int = 0
BREAST_CANCER_TEST_FRACTION: float = 0.25
LABELS: tuple[str, ...] = ("true", "shuffled")
"""Label versions: ``"true"`` as published; ``"shuffled"``: training labels permuted (Adebayo et al., 2018)."""
LABEL_SEED: int = 0
"""Seed of the permutation of the training labels for ``labels="shuffled"``."""
CLUTTER_SEED: int = 0
"""Seed of the positions, fragments and noise of ``"cluttered_digits"``."""
CLUTTERED_DIGITS_SIZE: int = 32
"""Side of the square canvas of ``"cluttered_digits"``, in pixels."""
CLUTTER_FRAGMENTS: int = 6
"""Clutter fragments per cluttered digit, each a 4x4 crop of another digit of the same split."""
CLUTTER_NOISE: float = 0.2
"""Amplitude of the uniform background noise of ``"cluttered_digits"``, ``U[0, CLUTTER_NOISE)``."""
CLUTTER_TRAIN_COPIES: int = 4
"""Cluttered copies (new position, fragments and noise) of each training digit; one per test digit."""
WATERMARK_CLASS: int = 7
"""The digit of ``"watermarked_digits"`` whose images may carry the watermark."""
WATERMARK_FRACTION: float = 0.4
"""The fraction of :data:`WATERMARK_CLASS`'s images (training and test, rounded) that carry it."""
WATERMARK_SIZE: int = 3
"""Side of the watermark, a square of full-brightness pixels in an image's bottom-right corner."""
WATERMARK_SEED: int = 0
"""Seed of the choice of the watermarked images."""

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
Masks = tuple[torch.Tensor, torch.Tensor]
_DIGIT: int = 8  # side of a scikit-learn digit
_FRAGMENT: int = 4  # side of a clutter fragment


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


@cache
def _breast_cancer_arrays() -> tuple[Arrays, tuple[np.ndarray, np.ndarray]]:
    """Load scikit-learn's breast cancer table, split it, and standardise it with the training split's statistics.

    Returns the standardised split and the raw training features' mean and standard deviation (float32, ``(30,)``).
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x_train, y_train, x_test, y_test = _split(
        data.data, data.target.astype(np.int64), BREAST_CANCER_TEST_FRACTION, BREAST_CANCER_SEED
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    split = (((x_train - mean) / std).astype(np.float32), y_train, ((x_test - mean) / std).astype(np.float32), y_test)
    statistics = (mean.astype(np.float32), std.astype(np.float32))
    for array in (*split, *statistics):
        array.setflags(write=False)
    return split, statistics


def _window(top: torch.Tensor, left: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices ``(N, side, 1)``, ``(N, 1, side)`` of the ``side x side`` windows at ``(top, left)``."""
    offsets = torch.arange(side)
    return (top[:, None] + offsets)[:, :, None], (left[:, None] + offsets)[:, None, :]


def _paste(canvas: torch.Tensor, patches: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> None:
    """Write square ``patches`` ``(N, h, h)`` into ``canvas`` ``(N, S, S)`` at ``(top, left)``; the brighter wins."""
    batch = torch.arange(len(patches))[:, None, None]
    rows, cols = _window(top, left, patches.shape[1])
    canvas[batch, rows, cols] = torch.maximum(canvas[batch, rows, cols], patches)


def _corners(n: int, span: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uniform top-left corners ``(top, left)`` in ``[0, span)``."""
    return torch.randint(0, span, (n,), generator=rng), torch.randint(0, span, (n,), generator=rng)


def _corners_outside(box: tuple[torch.Tensor, torch.Tensor], rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners of fragments that do not overlap the digit boxes ``box`` (top, left), by redrawing the clashes."""
    box_top, box_left = box
    top, left = _corners(len(box_top), CLUTTERED_DIGITS_SIZE - _FRAGMENT + 1, rng)
    while True:
        rows_meet = (top < box_top + _DIGIT) & (box_top < top + _FRAGMENT)
        cols_meet = (left < box_left + _DIGIT) & (box_left < left + _FRAGMENT)
        clash = rows_meet & cols_meet
        if not clash.any():
            return top, left
        top[clash], left[clash] = _corners(int(clash.sum()), CLUTTERED_DIGITS_SIZE - _FRAGMENT + 1, rng)


def _fragments(digits: torch.Tensor, sources: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A random 4x4 crop of a random digit other than each of ``sources``, ``(len(sources), 4, 4)``."""
    n = len(sources)
    other = (sources + torch.randint(1, len(digits), (n,), generator=rng)) % len(digits)
    rows, cols = _window(*_corners(n, _DIGIT - _FRAGMENT + 1, rng), _FRAGMENT)
    return digits[other[:, None, None], rows, cols]


def _clutter(digits: torch.Tensor, copies: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Place each digit ``(n, 8, 8)`` ``copies`` times on a noisy, cluttered canvas; return images and object masks.

    Copies of a digit are adjacent. Clutter fragments come from the other digits of ``digits`` only and never
    overlap the placed digit's 8x8 box.
    """
    rng = generator(seed, torch.device("cpu"))
    sources = torch.arange(len(digits)).repeat_interleave(copies)
    n, size = len(sources), CLUTTERED_DIGITS_SIZE
    images = CLUTTER_NOISE * torch.rand(n, size, size, generator=rng)
    box = _corners(n, size - _DIGIT + 1, rng)
    for _ in range(CLUTTER_FRAGMENTS):
        _paste(images, _fragments(digits, sources, rng), *_corners_outside(box, rng))
    _paste(images, digits[sources], *box)
    masks = torch.zeros(n, size, size)
    _paste(masks, (digits[sources] > 0).float(), *box)
    return images[:, None], masks[:, None] > 0


@cache
def _cluttered_digits_arrays() -> tuple[Arrays, tuple[np.ndarray, np.ndarray]]:
    """The digits split, each image cluttered (train: several copies; test: one), with the object masks."""
    x_train, y_train, x_test, y_test = _digits_arrays()
    train_images, train_masks = _clutter(torch.tensor(x_train[:, 0]), CLUTTER_TRAIN_COPIES, CLUTTER_SEED)
    test_images, test_masks = _clutter(torch.tensor(x_test[:, 0]), 1, substream_seed(CLUTTER_SEED, 1))
    split = (train_images.numpy(), np.repeat(y_train, CLUTTER_TRAIN_COPIES), test_images.numpy(), y_test.copy())
    masks = (train_masks.numpy(), test_masks.numpy())
    for array in (*split, *masks):
        array.setflags(write=False)
    return split, masks


def watermark(images: torch.Tensor) -> torch.Tensor:
    """Return ``images`` ``(N, C, H, W)`` with the watermark: the bottom-right ``WATERMARK_SIZE`` square set to 1.

    The input is left as it is. On 8x8 digits the corner holds little ink: the
    mean brightness of those nine pixels over the training digits is 0.23
    (0.30 over the whole image).

    Examples
    --------
    >>> marked = watermark(torch.zeros(1, 1, 8, 8))
    >>> int(marked.sum()), marked[0, 0, 5:, 5:].unique().tolist()
    (9, [1.0])
    """
    marked = images.clone()
    marked[..., -WATERMARK_SIZE:, -WATERMARK_SIZE:] = 1.0
    return marked


def _marked(labels: np.ndarray, seed: int) -> np.ndarray:
    """Which images get the watermark: a seeded choice of ``WATERMARK_FRACTION`` of :data:`WATERMARK_CLASS`'s."""
    candidates = np.flatnonzero(labels == WATERMARK_CLASS)
    count = round(WATERMARK_FRACTION * len(candidates))
    order = torch.randperm(len(candidates), generator=generator(seed, torch.device("cpu"))).numpy()
    marks = np.zeros(len(labels), dtype=bool)
    marks[candidates[order[:count]]] = True
    return marks


@cache
def _watermarked_digits_arrays() -> tuple[Arrays, tuple[np.ndarray, np.ndarray]]:
    """The digits split with the watermark on a seeded fraction of one class's images; which images carry it."""
    x_train, y_train, x_test, y_test = _digits_arrays()
    marks = (_marked(y_train, WATERMARK_SEED), _marked(y_test, substream_seed(WATERMARK_SEED, 1)))
    images = []
    for x, mark in zip((x_train, x_test), marks, strict=True):
        x = torch.tensor(x)
        x[mark] = watermark(x[mark])
        images.append(x.numpy())
    split = (images[0], y_train.copy(), images[1], y_test.copy())
    for array in (*split, *marks):
        array.setflags(write=False)
    return split, marks


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


def cluttered_digits() -> Split:
    """Return the digits of :func:`digits`, each placed at random on a 32x32 canvas full of clutter.

    A localisation data set with ground truth: the object is the placed digit,
    its pixels are given by :func:`object_masks`. Each image is uniform noise
    in ``[0, 0.2)``; six 4x4 fragments, cut at random from other digits of
    the same split, are pasted at random positions outside the digit's 8x8
    box; then the 8x8 digit at a uniform random position (pasting keeps the
    brighter pixel). Training images come from :func:`digits`' training
    digits, four cluttered copies of each; test images, one per test digit,
    from its test digits; clutter fragments also stay in their split, so no
    source digit is shared between training and test. Deterministic (seed
    :data:`CLUTTER_SEED`), computed once per process.

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        Images float32 ``(N, 1, 32, 32)`` in ``[0, 1]``; labels int64 ``(N,)``,
        the digit's class. 5388 training (1347 digits x 4) and 450 test
        samples. New tensors on each call.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = cluttered_digits()
    >>> tuple(X_train.shape), tuple(X_test.shape), torch.equal(y_test, digits()[3])
    ((5388, 1, 32, 32), (450, 1, 32, 32), True)
    """
    return _to_tensors(_cluttered_digits_arrays()[0])


def watermarked_digits() -> Split:
    """Return :func:`digits` with a planted shortcut: a watermark on some images of one class.

    A test case for data-set analyses such as SpRAy (Lapuschkin et al., 2019,
    "Unmasking Clever Hans predictors"): 40 % (:data:`WATERMARK_FRACTION`) of
    the 7s (:data:`WATERMARK_CLASS`), in the training and in the test split,
    carry a 3x3 (:data:`WATERMARK_SIZE`) full-brightness square in the
    bottom-right corner (:func:`watermark`); no other image does. A model
    trained on it can learn the square as a sign of a 7: ``zoo.load("watermarked_digits_cnn")``
    did. :func:`watermarked` tells which images carry the mark. The images
    are otherwise those of :func:`digits`, in the same order; the choice of
    the marked 7s is seeded (:data:`WATERMARK_SEED`).

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        As :func:`digits`: float32 ``(N, 1, 8, 8)`` in ``[0, 1]``, int64 labels;
        54 of the 134 training 7s and 18 of the 45 test 7s are watermarked.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = watermarked_digits()
    >>> mark_train, mark_test = watermarked("watermarked_digits")
    >>> int(mark_train.sum()), int(mark_test.sum()), bool((y_train[mark_train] == 7).all())
    (54, 18, True)
    >>> torch.equal(X_test[~mark_test], digits()[2][~mark_test])
    True
    """
    return _to_tensors(_watermarked_digits_arrays()[0])


def watermarked(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return which images of a data set with a planted watermark carry it, aligned with :func:`dataset`.

    Parameters
    ----------
    name : str
        A data set with a watermark: ``"watermarked_digits"``.

    Returns
    -------
    mark_train, mark_test : torch.Tensor
        Bool ``(N,)``, one per image of ``X_train`` and ``X_test``. New tensors on each call.

    Raises
    ------
    ValueError
        If ``name`` has no watermark; the message names the data sets that do.

    Examples
    --------
    >>> X_train, _, _, _ = dataset("watermarked_digits")
    >>> mark_train, _ = watermarked("watermarked_digits")
    >>> bool((X_train[mark_train, 0, 5:, 5:] == 1).all())
    True
    >>> watermarked("digits")
    Traceback (most recent call last):
    ...
    ValueError: dataset 'digits' has no watermark; datasets with one: watermarked_digits
    """
    if name != "watermarked_digits":
        raise ValueError(f"dataset {name!r} has no watermark; datasets with one: watermarked_digits")
    mark_train, mark_test = (torch.from_numpy(mark.copy()) for mark in _watermarked_digits_arrays()[1])
    return mark_train, mark_test


def breast_cancer() -> Split:
    """Return scikit-learn's breast cancer table (Wisconsin diagnostic), standardised, as a fixed stratified split.

    569 patients, 30 features each (:func:`feature_names`: the mean, standard
    error and worst value of ten measurements of cell nuclei in a biopsy
    image), two classes: 0 = malignant (212 patients), 1 = benign (357), the
    order of scikit-learn's ``target_names``. 25 % go to the test set
    (stratified by class, ``random_state=0``): 426 training and 143 test
    patients. Each feature is standardised with the mean and standard
    deviation of the training split (the test split is not seen), so a
    training column has mean 0 and standard deviation 1;
    :func:`feature_statistics` gives them, to map values back to the raw
    measurements: ``raw = x * std + mean``.

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        Features float32 ``(N, 30)``; labels int64 ``(N,)``. New tensors on each call.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = breast_cancer()
    >>> tuple(X_train.shape), tuple(X_test.shape), X_train.dtype, int((y_train == 0).sum()), int((y_test == 0).sum())
    ((426, 30), (143, 30), torch.float32, 159, 53)
    >>> X_train.mean(dim=0).abs().max() < 1e-5, torch.allclose(X_train.std(dim=0, correction=0), torch.ones(30))
    (tensor(True), True)
    """
    return _to_tensors(_breast_cancer_arrays()[0])


def feature_statistics(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the raw features' mean and standard deviation that standardised a tabular data set.

    Computed on the training split only; ``raw = x * std + mean`` maps a row of
    :func:`dataset` back to the original measurements.

    Parameters
    ----------
    name : str
        A tabular data set: ``"breast_cancer"``.

    Returns
    -------
    mean, std : torch.Tensor
        float32 ``(D,)``, one value per feature (population standard deviation). New tensors on each call.

    Raises
    ------
    ValueError
        If ``name`` is not a tabular data set; the message names those that are.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X_train, _, _, _ = dataset("breast_cancer")
    >>> mean, std = feature_statistics("breast_cancer")
    >>> raw = X_train * std + mean
    >>> table = torch.tensor(load_breast_cancer().data, dtype=torch.float32)
    >>> nearest = table[torch.cdist(raw[:5].double(), table.double()).argmin(dim=1)]
    >>> torch.allclose(raw[:5], nearest, rtol=1e-5)  # each row is a patient of the table, up to float32 rounding
    True
    """
    mean, std = (torch.from_numpy(array.copy()) for array in _tabular(name)()[1])
    return mean, std


def feature_names(name: str) -> list[str]:
    """Return the names of a tabular data set's features, in the order of its columns.

    Parameters
    ----------
    name : str
        A tabular data set: ``"breast_cancer"`` (scikit-learn's 30 names).

    Raises
    ------
    ValueError
        If ``name`` is not a tabular data set; the message names those that are.

    Examples
    --------
    >>> names = feature_names("breast_cancer")
    >>> len(names), names[:2], names[-1]
    (30, ['mean radius', 'mean texture'], 'worst fractal dimension')
    >>> feature_names("digits")
    Traceback (most recent call last):
    ...
    ValueError: dataset 'digits' has no feature names (it is not a table); tabular datasets: breast_cancer
    """
    _tabular(name, "feature names (it is not a table)")
    from sklearn.datasets import load_breast_cancer

    return [str(feature) for feature in load_breast_cancer().feature_names]


def _tabular(name: str, what: str = "feature statistics (it is not a table)") -> Callable[[], tuple[Arrays, Any]]:
    """The loader of the tabular data set ``name``; ``ValueError`` naming the tabular data sets otherwise."""
    try:
        return _TABULAR[name]
    except KeyError:
        raise ValueError(f"dataset {name!r} has no {what}; tabular datasets: {', '.join(sorted(_TABULAR))}") from None


def _cluttered_digits_masks() -> Masks:
    mask_train, mask_test = (torch.from_numpy(mask.copy()) for mask in _cluttered_digits_arrays()[1])
    return mask_train, mask_test


_DATASETS: dict[str, Callable[[], Split]] = {
    "breast_cancer": breast_cancer,
    "cluttered_digits": cluttered_digits,
    "digits": digits,
    "lfw_faces": lfw_faces,
    "watermarked_digits": watermarked_digits,
}
_MASKS: dict[str, Callable[[], Masks]] = {"cluttered_digits": _cluttered_digits_masks}
_TABULAR: dict[str, Callable[[], tuple[Arrays, Any]]] = {"breast_cancer": _breast_cancer_arrays}


def object_masks(name: str) -> Masks:
    """Return the ground-truth object masks of a localisation data set, aligned with :func:`dataset`.

    For ``"cluttered_digits"`` the mask of an image is the placed digit's
    pixels: those where the 8x8 source digit has ink (its value is > 0, at
    least 1/16), not its whole 8x8 box. The masks are the same for either
    ``labels=`` version of the data set (only ``y_train`` is permuted).

    Parameters
    ----------
    name : str
        A data set with masks: ``"cluttered_digits"``.

    Returns
    -------
    mask_train, mask_test : torch.Tensor
        Bool ``(N, 1, H, W)``, row ``i`` the mask of image ``i`` of ``X_train``
        and ``X_test``. New tensors on each call.

    Raises
    ------
    ValueError
        If ``name`` has no masks; the message names the data sets that do.

    Examples
    --------
    >>> X_train, _, X_test, _ = dataset("cluttered_digits")
    >>> mask_train, mask_test = object_masks("cluttered_digits")
    >>> mask_test.shape == X_test.shape, mask_train.dtype
    (True, torch.bool)
    >>> bool((X_test[mask_test] >= 1 / 16).all()), round(mask_test.double().mean().item(), 3)
    (True, 0.032)
    """
    try:
        factory = _MASKS[name]
    except KeyError:
        raise ValueError(
            f"dataset {name!r} has no object masks; datasets with masks: {', '.join(sorted(_MASKS))}"
        ) from None
    return factory()


def available_datasets() -> list[str]:
    """Return the sorted names accepted by :func:`dataset`.

    Examples
    --------
    >>> available_datasets()
    ['breast_cancer', 'cluttered_digits', 'digits', 'lfw_faces', 'watermarked_digits']
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
