"""A grid of attribution maps: rows are inputs, columns are methods."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch


def to_map(values: torch.Tensor) -> np.ndarray:
    """One 2-D map per sample: the channel sum of ``(N, C, H, W)`` values, as numpy ``(N, H, W)``.

    Example
    -------
    >>> to_map(torch.ones(2, 3, 4, 5)).shape
    (2, 4, 5)
    """
    if values.ndim != 4:
        raise ValueError(f"expected attributions of shape (N, C, H, W); got {tuple(values.shape)}")
    return values.detach().sum(dim=1).cpu().numpy()


def grid(
    images: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    row_labels: list[str] | None = None,
    percentile: float = 99.0,
) -> Path:
    """Save a figure with the inputs in the first column and one column per method.

    Maps are signed: red is positive, blue negative, white zero, each column
    scaled to the ``percentile`` of its absolute values so one outlier does not
    wash out the map. An all-zero map draws as white.

    Example
    -------
    >>> import tempfile, os
    >>> x = torch.rand(2, 1, 8, 8)
    >>> out = grid(x, {"gradient": torch.randn(2, 1, 8, 8)}, os.path.join(tempfile.mkdtemp(), "g.png"))
    >>> out.exists()
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = images.shape[0]
    columns = len(maps) + 1
    figure, axes = plt.subplots(n, columns, figsize=(1.6 * columns, 1.6 * n), squeeze=False)
    pictures = to_map(images)
    for row in range(n):
        axes[row, 0].imshow(pictures[row], cmap="gray")
        if row_labels:
            axes[row, 0].set_ylabel(row_labels[row], fontsize=8)
    for column, (name, values) in enumerate(maps.items(), start=1):
        drawn = to_map(values)
        limit = float(np.percentile(np.abs(drawn), percentile)) or 1.0
        for row in range(n):
            axes[row, column].imshow(drawn[row], cmap="bwr", vmin=-limit, vmax=limit)
        axes[0, column].set_title(name.replace("_", " "), fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
