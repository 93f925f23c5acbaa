"""Read what the plots accept into one layout: attributions as ``(N, C, H, W)``, images as RGB in ``[0, 1]``.

Layout rule
-----------
- A torch tensor is always channel-first: ``(N, C, H, W)`` (a batch; plots of one
  map take sample 0), ``(C, H, W)``, ``(1, H, W)`` or ``(H, W)``. So a batch of
  maps already reduced to ``(N, H, W)`` would be read as one sample of ``N``
  channels: give it back its channel axis, ``maps[:, None]``.
- A numpy array is ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``. A 3-D array is told
  apart by its channel axis, which must have 1, 3 or 4 entries on exactly one
  side: ``(3, 224, 200)`` is CHW, ``(224, 200, 3)`` is HWC. Where both ends or
  neither end could be the channel axis (``(3, 5, 4)``, ``(8, 8, 8)``) the array
  is refused with a ``ValueError``: pass ``torch.from_numpy(a)`` for a CHW array
  or ``torch.from_numpy(a).permute(2, 0, 1)`` for an HWC one.

Image display rule
------------------
An image (1, 3 or 4 channels; a fourth, alpha, channel is dropped) is shown as
RGB in ``[0, 1]``: ``uint8`` values are divided by 255; other values already in
``[0, 1]`` are shown as they are; values in ``[0, 255]`` are divided by 255;
anything else (a normalised input with negative values) is min-max rescaled over
the whole image, all channels together, so a constant such image shows black.

Example
-------
>>> import numpy as np
>>> tuple(values_batch(np.zeros((224, 200, 3))).shape)
(1, 3, 224, 200)
>>> display_image(torch.full((1, 2, 2), 255.0))[0, 0].tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

CHANNEL_SIZES = (1, 3, 4)


def values_batch(values: Any) -> torch.Tensor:
    """Return attributions as a float64 CPU tensor ``(N, C, H, W)`` (one sample: ``N = 1``).

    Accepts an :class:`~saliencelab.Attribution`, a torch tensor or a numpy array
    under the module's layout rule, and refuses NaN or infinite values.

    Example
    -------
    >>> tuple(values_batch(torch.ones(5, 7)).shape)
    (1, 1, 5, 7)
    """
    from saliencelab.core.attribution import Attribution

    if isinstance(values, Attribution):
        values = values.values
    if isinstance(values, torch.Tensor):
        batch = _tensor_batch(values)
    elif isinstance(values, np.ndarray):
        batch = _numpy_sample(values).unsqueeze(0)
    else:
        raise TypeError(
            f"expected a torch tensor, a numpy array or an Attribution; got {type(values).__name__}. "
            "Convert it with numpy.asarray(...) first."
        )
    if batch.is_complex():
        raise TypeError(f"expected real numbers; got dtype {batch.dtype}")
    batch = batch.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(batch).all():
        raise ValueError(
            "the map holds NaN or infinite values, which have no colour; find where the method produced them "
            "(torch.isfinite(values)) rather than plotting them"
        )
    return batch


def values_sample(values: Any) -> torch.Tensor:
    """Return one sample's attributions as ``(1, C, H, W)``: sample 0 of a batch.

    Example
    -------
    >>> tuple(values_sample(torch.ones(4, 3, 5, 6)).shape)
    (1, 3, 5, 6)
    """
    return values_batch(values)[:1]


def display_image(image: Any) -> np.ndarray:
    """Return one image as an ``(H, W, 3)`` float array in ``[0, 1]`` under the display rule.

    A batch (a 4-D tensor) gives its sample 0; a single channel is repeated into grey RGB.

    Example
    -------
    >>> display_image(np.array([[0, 255]], dtype=np.uint8))[0, :, 0].tolist()
    [0.0, 1.0]
    >>> display_image(torch.tensor([[-1.0, 3.0]]))[0, :, 0].tolist()
    [0.0, 1.0]
    """
    raw = image.dtype == torch.uint8 if isinstance(image, torch.Tensor) else getattr(image, "dtype", None) == np.uint8
    pixels = values_sample(image)[0]
    if pixels.shape[0] not in CHANNEL_SIZES:
        raise ValueError(
            f"an image needs 1, 3 or 4 channels; got {pixels.shape[0]} (shape {tuple(pixels.shape)} read as C, H, W). "
            "A torch image of shape (H, W, C) needs .permute(2, 0, 1)."
        )
    pixels = pixels[:3].expand(3, -1, -1).numpy().transpose(1, 2, 0)
    low, high = float(pixels.min()), float(pixels.max())
    if raw or (low >= 0.0 and 1.0 < high <= 255.0):
        return pixels / 255.0
    if low >= 0.0 and high <= 1.0:
        return pixels.copy()
    return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)


def _tensor_batch(values: torch.Tensor) -> torch.Tensor:
    if values.ndim == 2:
        return values[None, None]
    if values.ndim == 3:
        return values[None]
    if values.ndim == 4:
        if values.shape[0] == 0:
            raise ValueError("the batch is empty: there is no sample to draw")
        return values
    raise ValueError(
        f"expected a tensor of shape (N, C, H, W), (C, H, W) or (H, W); got {tuple(values.shape)}. "
        "Attributions of non-image inputs have no heatmap: plot them as bars or lines."
    )


def _numpy_sample(values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind not in "biuf":
        raise TypeError(f"expected an array of real numbers; got dtype {values.dtype}")
    array = np.ascontiguousarray(values)
    if array.ndim == 2:
        return torch.from_numpy(array)[None]
    if array.ndim != 3:
        raise ValueError(
            f"expected a numpy array of shape (H, W), (C, H, W) or (H, W, C); got {array.shape}. "
            "Pass a batch as a torch tensor (N, C, H, W)."
        )
    first, last = array.shape[0] in CHANNEL_SIZES, array.shape[2] in CHANNEL_SIZES
    if first and not last:
        return torch.from_numpy(array)
    if last and not first:
        return torch.from_numpy(array).permute(2, 0, 1)
    raise ValueError(
        f"cannot tell whether the numpy array of shape {array.shape} is (C, H, W) or (H, W, C): the channel axis "
        f"must have 1, 3 or 4 entries on exactly one side. Pass torch.from_numpy(a) for a (C, H, W) array or "
        "torch.from_numpy(a).permute(2, 0, 1) for an (H, W, C) one (torch tensors are always read as (C, H, W))."
    )
