"""How each trained zoo model is made: architecture, data set and hyper-parameters per label version.

:func:`saliencelab.zoo.load` reads the shipped weights through these recipes,
and :mod:`saliencelab.zoo.train` follows them to rebuild the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import nn

from .architectures import BreastCancerMLP, ClutteredDigitsCNN, DigitsCNN, FacesCNN
from .datasets import check_labels

__all__ = ["RECIPES", "Recipe", "TrainConfig", "recipe", "weights_name"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (see :func:`saliencelab.zoo.train.train`).

    Parameters
    ----------
    seed : int, default 0
        Seed for initialisation and batch shuffling.
    epochs : int, default 30
        Passes over the training split.
    batch_size : int, default 32
        Mini-batch size.
    lr : float, default 1e-3
        Adam learning rate.

    Examples
    --------
    >>> TrainConfig(epochs=2).epochs
    2
    """

    seed: int = 0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3


@dataclass(frozen=True)
class Recipe:
    """A trained zoo model: its architecture, its data set and a :class:`TrainConfig` per label version.

    Parameters
    ----------
    architecture : callable
        Builds the untrained network (no arguments).
    dataset : str
        Name for :func:`saliencelab.zoo.dataset`.
    configs : mapping of str to TrainConfig
        One entry per label version the model ships with (``"true"``, ``"shuffled"``).

    Examples
    --------
    >>> recipe("lfw_cnn").dataset
    'lfw_faces'
    >>> recipe("digits_cnn").config("shuffled").epochs
    60
    """

    architecture: Callable[[], nn.Module]
    dataset: str
    configs: Mapping[str, TrainConfig]

    def config(self, labels: str) -> TrainConfig:
        """Return the hyper-parameters for ``labels``; ``ValueError`` if this model has no such version.

        Examples
        --------
        >>> recipe("digits_cnn").config("true").lr
        0.001
        """
        return self.configs[check_labels(labels, tuple(self.configs))]


RECIPES: dict[str, Recipe] = {
    # Shuffled labels: 426 permuted labels are memorised (training accuracy 0.99) in 300 epochs at lr 1e-2, 2 s.
    "breast_cancer_mlp": Recipe(
        BreastCancerMLP, "breast_cancer", {"true": TrainConfig(), "shuffled": TrainConfig(epochs=300, lr=1e-2)}
    ),
    # No shuffled-label twin: memorising 5388 permuted labels would need a longer run or a larger network.
    "cluttered_digits_cnn": Recipe(ClutteredDigitsCNN, "cluttered_digits", {"true": TrainConfig(epochs=20)}),
    # Shuffled labels: among the few settings tried, the one with the highest training accuracy (memorisation of the
    # permuted labels) in the shortest run, at most about a minute on one thread; the architectures are unchanged.
    "digits_cnn": Recipe(DigitsCNN, "digits", {"true": TrainConfig(), "shuffled": TrainConfig(epochs=60, lr=2e-3)}),
    # The digits with a planted shortcut (a watermark on 40 % of the 7s), for data-set analyses such as SpRAy.
    "watermarked_digits_cnn": Recipe(DigitsCNN, "watermarked_digits", {"true": TrainConfig()}),
    "lfw_cnn": Recipe(
        FacesCNN,
        "lfw_faces",
        {"true": TrainConfig(batch_size=16), "shuffled": TrainConfig(epochs=100, batch_size=32, lr=5e-3)},
    ),
}


def recipe(name: str) -> Recipe:
    """Return the recipe of the trained zoo model ``name``.

    Raises
    ------
    ValueError
        If ``name`` has no shipped weights; the message lists the trained models.

    Examples
    --------
    >>> recipe("digits_cnn").architecture.__name__
    'DigitsCNN'
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"no trained zoo model {name!r}; trained models: {', '.join(sorted(RECIPES))}") from None


def weights_name(name: str, labels: str = "true") -> str:
    """Return the stem of the weights file of model ``name`` trained on ``labels``.

    Examples
    --------
    >>> weights_name("digits_cnn"), weights_name("lfw_cnn", "shuffled")
    ('digits_cnn', 'lfw_cnn_shuffled')
    """
    recipe(name).config(labels)
    return name if labels == "true" else f"{name}_{labels}"
