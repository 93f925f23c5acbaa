"""Model and data zoo: small datasets and ready-to-attribute models.

Everything here works offline: the digits data come with scikit-learn and
the ``digits_cnn`` weights ship inside the package.

Examples
--------
>>> from saliencelab import zoo
>>> model = zoo.load("digits_cnn")
>>> X_train, y_train, X_test, y_test = zoo.dataset("digits")
>>> model(X_test[:4]).shape
torch.Size([4, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file
from torch import nn

from .architectures import VGG, DigitsCNN, ResNet, resnet18_shaped, vgg16_shaped
from .datasets import available_datasets, dataset
from .vit import VisionTransformer, vit_tiny_shaped

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "DigitsCNN",
    "ResNet",
    "VGG",
    "VisionTransformer",
    "available_datasets",
    "available_models",
    "dataset",
    "load",
    "resnet18_shaped",
    "vgg16_shaped",
    "vit_tiny_shaped",
    "weights_file",
]


def weights_file(name: str) -> Traversable:
    """Return the packaged safetensors file ``weights/<name>.safetensors``.

    Located with :mod:`importlib.resources`, so it also works from an
    installed wheel.

    Examples
    --------
    >>> weights_file("digits_cnn").name
    'digits_cnn.safetensors'
    """
    return resources.files(__name__).joinpath("weights", f"{name}.safetensors")


def _load_digits_cnn() -> DigitsCNN:
    model = DigitsCNN()
    with resources.as_file(weights_file("digits_cnn")) as path:
        state = load_file(path)
    model.load_state_dict(state)
    return model.eval()


def _load_resnet18_shaped(num_classes: int = 1000, in_channels: int = 3, seed: int = 0) -> ResNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet18_shaped(num_classes=num_classes, in_channels=in_channels)
    return model.eval()


def _load_vgg16_shaped(num_classes: int = 1000, in_channels: int = 3, seed: int = 0) -> VGG:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = vgg16_shaped(num_classes=num_classes, in_channels=in_channels)
    return model.eval()


def _load_vit_tiny_shaped(
    num_classes: int = 10, image_size: int = 32, class_token: bool = True, seed: int = 0
) -> VisionTransformer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = vit_tiny_shaped(num_classes=num_classes, image_size=image_size, class_token=class_token)
    return model.eval()


_MODELS: dict[str, Callable[..., nn.Module]] = {
    "digits_cnn": _load_digits_cnn,
    "resnet18_shaped": _load_resnet18_shaped,
    "vgg16_shaped": _load_vgg16_shaped,
    "vit_tiny_shaped": _load_vit_tiny_shaped,
}


def available_models() -> list[str]:
    """Return the sorted names accepted by :func:`load`.

    Examples
    --------
    >>> available_models()
    ['digits_cnn', 'resnet18_shaped', 'vgg16_shaped', 'vit_tiny_shaped']
    """
    return sorted(_MODELS)


def load(name: str, **kwargs: int) -> nn.Module:
    """Build a zoo model and return it in eval mode.

    Parameters
    ----------
    name : str
        ``"digits_cnn"``: :class:`DigitsCNN` with the shipped trained weights
        (no keyword arguments). ``"resnet18_shaped"``: a randomly initialised
        ResNet-18-shaped network; ``"vgg16_shaped"``: a randomly initialised
        VGG-16-shaped network (138M parameters, about 0.5 GB in float32).
        For both, keyword arguments ``num_classes`` (1000), ``in_channels`` (3)
        and ``seed`` (0) make it deterministic without touching the global RNG
        state. ``"vit_tiny_shaped"``: a randomly initialised tiny vision
        transformer (:func:`vit_tiny_shaped`; ``num_classes`` 10,
        ``image_size`` 32, ``class_token`` True, ``seed`` 0).
    **kwargs
        Passed to the model's builder; unexpected ones raise ``TypeError``.

    Returns
    -------
    torch.nn.Module
        The model in eval mode, parameters with ``requires_grad=True``.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the available names.

    Examples
    --------
    >>> import torch
    >>> net = load("resnet18_shaped", num_classes=10, seed=1)
    >>> net.training
    False
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """
    try:
        builder = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(available_models())}") from None
    return builder(**kwargs)
