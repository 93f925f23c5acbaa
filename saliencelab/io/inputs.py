"""Reading the inputs to explain: images (Pillow) and tensor files (``.npy``, ``.pt``).

An image is read in grey or RGB, resized to ``size`` (bilinear with antialiasing,
in torch), scaled to [0, 1] (8-bit values divided by 255, 16-bit grey by 65535)
and then normalised by ``(x - mean) / std`` when those are given. A tensor file
holds one sample ``(C, H, W)`` or a batch ``(N, C, H, W)`` of floating-point
values that the model takes as they are: no resizing, no normalisation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from saliencelab.io.errors import BadOptionError, InputShapeError, MissingFileError, first_line
from saliencelab.io.files import load_saved
from saliencelab.methods.base import check_inputs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
TENSOR_SUFFIXES = (".npy", ".pt", ".pth")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")


@dataclass(frozen=True)
class LoadedInput:
    """One input file, ready for the model.

    Attributes
    ----------
    path:
        The file it came from.
    inputs:
        What the model receives, ``(N, C, H, W)``.
    display:
        The same samples in [0, 1] for drawing, ``(N, C, H, W)``: an image before
        normalisation, a tensor scaled per sample from its minimum to its maximum.
    """

    path: Path
    inputs: torch.Tensor
    display: torch.Tensor


def load_input(
    path: str | Path,
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
) -> LoadedInput:
    """Read an image or a tensor file as a batch for the model.

    Parameters
    ----------
    path:
        An image (``.png``, ``.jpg``, ...) or a tensor file (``.npy``, ``.pt``).
    channels, size, mean, std:
        For images only (see :func:`read_image` and :func:`normalise`).
    dtype:
        The floating dtype the model computes in; tensors are cast to it.

    Example
    -------
    >>> import tempfile
    >>> from PIL import Image
    >>> path = Path(tempfile.mkdtemp()) / "grey.png"
    >>> Image.fromarray(np.array([[0, 255], [51, 102]], dtype=np.uint8)).save(path)
    >>> loaded = load_input(path, mean=[0.5], std=[0.5])
    >>> loaded.inputs
    tensor([[[[-1.0000,  1.0000],
              [-0.6000, -0.2000]]]])
    >>> loaded.display
    tensor([[[[0.0000, 1.0000],
              [0.2000, 0.4000]]]])
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"input {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        image = read_image(path, channels=channels, size=size).to(dtype)[None]
        return LoadedInput(path, normalise(image, mean, std), image)
    if suffix in TENSOR_SUFFIXES:
        batch = read_tensor(path).to(dtype)
        return LoadedInput(path, batch, _min_max(batch))
    raise MissingFileError(
        f"cannot read {path}: inputs are images ({', '.join(IMAGE_SUFFIXES)}) or tensors ({', '.join(TENSOR_SUFFIXES)})"
    )


def read_image(path: str | Path, *, channels: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """An image as a ``(C, H, W)`` float tensor in [0, 1].

    Parameters
    ----------
    path:
        Any image Pillow reads. Transparency is dropped. An image of more
        than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels is refused before it is
        decoded (a decompression bomb).
    channels:
        1 for grey (Pillow's ITU-R 601-2 luma), 3 for RGB, None for the image's
        own kind (grey for grey images, RGB otherwise).
    size:
        ``(H, W)`` to resize to (bilinear, antialiased); None keeps the image's size.

    Example
    -------
    >>> import tempfile
    >>> from PIL import Image
    >>> path = Path(tempfile.mkdtemp()) / "red.png"
    >>> Image.new("RGB", (4, 2), (255, 0, 0)).save(path)
    >>> read_image(path).shape, read_image(path, channels=1, size=(1, 1)).item()
    (torch.Size([3, 2, 4]), 0.2980392277240753)
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey), 3 (RGB) or None; got {channels}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = _pixels(image, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MissingFileError(
            f"refused the image {path}: {first_line(error).split(', could be')[0]} (Pillow's guard against "
            "decompression bombs); shrink it to about the size the model takes before explaining it"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        raise MissingFileError(f"cannot read the image {path}: {error}") from None
    if size is not None and tuple(size) != tuple(pixels.shape[1:]):
        pixels = F.interpolate(pixels[None], size=tuple(size), mode="bilinear", antialias=True, align_corners=False)[0]
    return pixels


def _pixels(image, channels: int | None) -> torch.Tensor:
    """The image's pixels in [0, 1], ``(C, H, W)``."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = torch.from_numpy(np.asarray(image, dtype=np.float32) / 65535.0)[None]
        return grey.expand(3, -1, -1).clone() if channels == 3 else grey
    if channels is None:
        channels = 1 if image.mode in ("1", "L", "LA") else 3
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array[None] if channels == 1 else array.transpose(2, 0, 1).copy())


def read_tensor(path: str | Path) -> torch.Tensor:
    """A ``.npy`` or ``.pt`` file as a floating-point batch ``(N, C, H, W)`` of finite values.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(path, np.zeros((1, 8, 8), dtype=np.float32))
    >>> read_tensor(path).shape
    torch.Size([1, 1, 8, 8])
    """
    path = Path(path)
    tensor = load_saved(path, "input")
    if not isinstance(tensor, torch.Tensor):
        raise InputShapeError(f"{path} holds a {type(tensor).__name__}; save a single tensor (torch.save(x, path))")
    if not tensor.is_floating_point():
        raise InputShapeError(
            f"{path} holds {tensor.dtype} values; save floating-point values as the model takes them "
            "(for 8-bit pixels: x.astype('float32') / 255)"
        )
    if tensor.ndim not in (3, 4):
        raise InputShapeError(
            f"{path} holds a tensor of shape {tuple(tensor.shape)}; give one sample (C, H, W) or a batch (N, C, H, W)"
        )
    try:
        check_inputs(tensor)
    except ValueError as error:  # NaN or Inf values
        raise InputShapeError(f"{path}: {error}") from None
    return tensor[None] if tensor.ndim == 3 else tensor


def normalise(images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """``(images - mean) / std`` per channel; one value applies to every channel, None leaves it out.

    Example
    -------
    >>> normalise(torch.ones(1, 2, 1, 1), mean=[0.5, 0.25], std=[0.5]).flatten().tolist()
    [1.0, 1.5]
    """
    channels = images.shape[1]
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) not in (1, channels):
            raise BadOptionError(
                f"{name} takes 1 or {channels} values for {channels}-channel images; got {len(values)}"
            )
    if std is not None and any(s <= 0 for s in std):
        raise BadOptionError(f"std values must be positive; got {list(std)}")
    shape = (1, -1, 1, 1)
    if mean is not None:
        images = images - torch.tensor(mean, dtype=images.dtype).reshape(shape)
    if std is not None:
        images = images / torch.tensor(std, dtype=images.dtype).reshape(shape)
    return images


def _min_max(batch: torch.Tensor) -> torch.Tensor:
    """Each sample scaled to [0, 1]; a constant sample becomes zeros."""
    flat = batch.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return ((flat - low[:, None]) / span[:, None]).reshape(batch.shape)


def load_inputs(
    paths: Sequence[str | Path],
    model: torch.nn.Module,
    *,
    grey: bool | None = None,
    size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[LoadedInput]:
    """Read every file for ``model``: images in grey or RGB as its first convolution takes them, in its dtype.

    ``grey`` True or False overrides the model's channels; a model whose first
    convolution takes neither 1 nor 3 channels gets each image in its own kind.

    Example
    -------
    >>> import tempfile
    >>> from PIL import Image
    >>> path = Path(tempfile.mkdtemp()) / "red.png"
    >>> Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    >>> x = load_inputs([path], torch.nn.Conv2d(1, 2, 3).double())[0].inputs
    >>> x.shape, x.dtype
    (torch.Size([1, 1, 8, 8]), torch.float64)
    """
    from saliencelab.io.models import input_channels

    channels = input_channels(model) if grey is None else (1 if grey else 3)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return [
        load_input(path, channels=channels if channels in (1, 3) else None, size=size, mean=mean, std=std, dtype=dtype)
        for path in paths
    ]
