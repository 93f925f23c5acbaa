"""Feature masks: which input elements move together as one feature (a group).

``feature_mask`` is given as

- ``None``: every input element is its own feature;
- a tensor of integer group ids broadcastable to the inputs: ``(H, W)`` or
  ``(1, 1, H, W)`` groups pixels with all channels together and is shared by
  every sample, ``(N, 1, H, W)`` gives each sample its own groups;
- a callable ``inputs -> tensor`` of such ids, e.g. the presets :func:`slic`
  (scikit-image SLIC superpixels, per sample) and :func:`grid` (square cells);
- the names ``"slic"`` and ``"grid"`` for those presets with their defaults.

Group ids need not be contiguous: each sample's ids are renumbered 0..G-1 in
increasing order. Every element of a group receives the group's attribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

MaskSpec = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | str | None
PRESETS = ("slic", "grid")


@dataclass(frozen=True)
class Groups:
    """Each sample's features as groups 0..G_i-1.

    ``ids`` has shape ``(1, numel)`` when all samples share the grouping, else
    ``(N, numel)`` (elements flattened row-major); ``counts[i]`` is G_i.

    Example
    -------
    >>> g = feature_groups(torch.tensor([[7, 7, 3]]), torch.zeros(2, 3))
    >>> g.ids.tolist(), g.counts
    ([[1, 1, 0]], [2, 2])
    """

    ids: torch.Tensor
    counts: list[int]

    @property
    def shared(self) -> bool:
        return self.ids.shape[0] == 1

    def of(self, sample: torch.Tensor) -> torch.Tensor:
        """The group ids of the rows' samples, shape ``(rows or 1, numel)``."""
        return self.ids if self.shared else self.ids[sample]

    def present(self, chosen: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Elementwise keep-masks ``(rows, numel)`` from per-group choices ``chosen`` ``(rows, G_max)``."""
        ids = self.of(sample)
        if self.shared:
            return chosen[:, ids[0]]
        return chosen.gather(1, ids)

    def spread(self, group_values: list[torch.Tensor], sample_shape: tuple[int, ...]) -> torch.Tensor:
        """Give every element its group's value: ``group_values[i]`` has shape ``(G_i,)``."""
        rows = []
        for i, values in enumerate(group_values):
            ids = self.ids[0] if self.shared else self.ids[i]
            rows.append(values[ids].reshape(sample_shape))
        return torch.stack(rows)


def feature_groups(feature_mask: MaskSpec, inputs: torch.Tensor) -> Groups:
    """Resolve ``feature_mask`` (see the module docstring) for ``inputs``.

    Example
    -------
    >>> g = feature_groups(torch.tensor([[0, 1], [0, 1]]), torch.zeros(3, 1, 2, 2))
    >>> g.counts, g.shared
    ([2, 2, 2], True)
    """
    n, numel = inputs.shape[0], inputs[0].numel()
    if feature_mask is None:
        return Groups(torch.arange(numel, device=inputs.device)[None], [numel] * n)
    if isinstance(feature_mask, str):
        if feature_mask not in PRESETS:
            raise ValueError(f"unknown feature_mask preset {feature_mask!r}; the presets are {', '.join(PRESETS)}")
        feature_mask = slic() if feature_mask == "slic" else grid()
    if callable(feature_mask) and not isinstance(feature_mask, torch.Tensor):
        produced = feature_mask(inputs)
        if not isinstance(produced, torch.Tensor):
            raise TypeError(f"the feature_mask callable must return a tensor; it returned {type(produced).__name__}")
        feature_mask = produced
    if not isinstance(feature_mask, torch.Tensor):
        raise TypeError(
            "feature_mask must be a tensor of group ids, a callable inputs -> ids, one of "
            f"{', '.join(map(repr, PRESETS))} or None; got {type(feature_mask).__name__}"
        )
    if feature_mask.is_floating_point() or feature_mask.is_complex() or feature_mask.dtype == torch.bool:
        raise TypeError(f"feature_mask must hold integer group ids; got dtype {feature_mask.dtype}")
    try:
        shape = torch.broadcast_shapes(feature_mask.shape, inputs.shape)
    except RuntimeError:
        shape = None
    if shape != inputs.shape:
        raise ValueError(
            f"a feature_mask of shape {tuple(feature_mask.shape)} does not broadcast to the inputs' shape "
            f"{tuple(inputs.shape)}; give group ids of shape {tuple(inputs.shape[1:])} (shared by all samples), "
            f"(N, {', '.join(map(str, inputs.shape[1:]))}) (one grouping per sample) or any shape that broadcasts"
        )
    mask = feature_mask.to(inputs.device)
    shared = mask.ndim < inputs.ndim or mask.shape[0] == 1
    if shared:
        mask = mask.expand(inputs.shape)[:1]
    else:
        mask = mask.expand(inputs.shape)
    ids, counts = [], []
    for row in mask.reshape(mask.shape[0], numel):
        _, inverse = torch.unique(row, return_inverse=True)
        ids.append(inverse)
        counts.append(int(inverse.max()) + 1)
    if shared:
        counts = counts * n
    return Groups(torch.stack(ids), counts)


def slic(segments: int = 50, compactness: float = 10.0, sigma: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Superpixels of each image by scikit-image's SLIC, as a ``feature_mask`` callable.

    For inputs ``(N, C, H, W)``: each image is rescaled to [0, 1] (SLIC's
    ``compactness`` assumes that range), segmented into about ``segments``
    superpixels and returned as ids of shape ``(N, 1, H, W)``: all channels
    of a pixel move together. SLIC is deterministic.

    Example
    -------
    >>> x = torch.zeros(1, 3, 16, 16); x[:, :, :, 8:] = 1.0  # two flat halves
    >>> ids = slic(segments=4, compactness=1.0)(x)
    >>> left, right = set(ids[0, 0, :, :8].flatten().tolist()), set(ids[0, 0, :, 8:].flatten().tolist())
    >>> ids.shape, left.isdisjoint(right)  # no superpixel crosses the edge
    (torch.Size([1, 1, 16, 16]), True)
    """
    if not isinstance(segments, int) or isinstance(segments, bool) or segments < 1:
        raise ValueError(f"segments must be a positive int; got {segments!r}")

    def segment(inputs: torch.Tensor) -> torch.Tensor:
        from skimage.segmentation import slic as skimage_slic

        if inputs.ndim != 4:
            raise ValueError(f"the slic feature mask needs images (N, C, H, W); got shape {tuple(inputs.shape)}")
        masks = []
        for image in inputs.detach().to("cpu", torch.float64).numpy():
            low, high = image.min(), image.max()
            scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
            picture = np.moveaxis(scaled, 0, -1)
            if picture.shape[-1] == 1:
                picture, channel_axis = picture[..., 0], None
            else:
                channel_axis = -1
            labels = skimage_slic(
                picture,
                n_segments=segments,
                compactness=compactness,
                sigma=sigma,
                start_label=0,
                channel_axis=channel_axis,
                convert2lab=False,
            )
            masks.append(torch.from_numpy(np.ascontiguousarray(labels)).long())
        return torch.stack(masks)[:, None].to(inputs.device)

    return segment


def grid(cell: int | tuple[int, ...] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Square cells of ``cell`` elements per spatial side, as a ``feature_mask`` callable.

    Default: an eighth of each spatial size (an 8×8 grid on images). Channels
    move together; the cells are shared by every sample. Cells at the far edge
    are smaller when ``cell`` does not divide the size.

    Example
    -------
    >>> grid(2)(torch.zeros(1, 1, 2, 4))[0, 0].tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    if cell is not None:
        items = cell if isinstance(cell, tuple) else (cell,)
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in items):
            raise ValueError(f"cell must be a positive int or a tuple of positive ints; got {cell!r}")

    def cells(inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim < 3:
            raise ValueError(f"the grid feature mask needs inputs (N, C, *spatial); got shape {tuple(inputs.shape)}")
        spatial = tuple(inputs.shape[2:])
        sizes = tuple(max(1, s // 8) for s in spatial) if cell is None else cell
        sizes = sizes if isinstance(sizes, tuple) else (sizes,) * len(spatial)
        if len(sizes) != len(spatial):
            raise ValueError(f"cell={cell!r} needs one entry per spatial dimension ({len(spatial)})")
        ids = torch.zeros((), dtype=torch.long)
        for extent, size in zip(spatial, sizes, strict=True):
            along = torch.arange(extent) // size
            ids = ids[..., None] * int(along.max() + 1) + along
        return ids.reshape(1, 1, *spatial).to(inputs.device)

    return cells
