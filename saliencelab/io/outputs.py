"""Writing attributions: raw values (``.npy``, ``.pt``) and overlay PNGs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

FORMATS = ("npy", "pt")


def folder_names(paths: Sequence[Path]) -> list[str]:
    """One output folder name per input: its stem, with ``-2``, ``-3``... for repeated stems.

    Example
    -------
    >>> folder_names([Path("a/cat.png"), Path("b/cat.png"), Path("dog.npy")])
    ['cat', 'cat-2', 'dog']
    """
    seen: Counter[str] = Counter()
    names = []
    for path in paths:
        seen[path.stem] += 1
        names.append(path.stem if seen[path.stem] == 1 else f"{path.stem}-{seen[path.stem]}")
    return names


def write_attribution(
    folder: str | Path,
    method: str,
    values: torch.Tensor,
    display: torch.Tensor,
    formats: Sequence[str] = ("npy",),
) -> list[Path]:
    """Save a batch's attributions as ``METHOD.npy`` (and ``.pt``) and overlays ``METHOD.png``.

    Parameters
    ----------
    folder:
        Created when missing.
    values:
        ``(N, C, H, W)`` or CAM maps ``(N, 1, H, W)``.
    display:
        The samples in display range, ``(N, C, H, W)``; one overlay per sample
        (``METHOD.png`` for one sample, ``METHOD_0.png``, ``METHOD_1.png``... for more).
    formats:
        ``"npy"`` and/or ``"pt"`` for the raw values.

    Returns
    -------
    The written files.

    Example
    -------
    >>> import tempfile
    >>> files = write_attribution(tempfile.mkdtemp(), "gradient", torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    >>> [f.name for f in files]
    ['gradient.npy', 'gradient.png']
    >>> float(np.load(files[0]).sum())
    16.0
    """
    from saliencelab import viz

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = values.detach().cpu()
    files = []
    for fmt in FORMATS:
        if fmt in formats:
            files.append(folder / f"{method}.{fmt}")
            if fmt == "npy":
                np.save(files[-1], raw.numpy())
            else:
                torch.save(raw, files[-1])
    pictures = display.detach().cpu()
    for i in range(raw.shape[0]):
        files.append(folder / (f"{method}.png" if raw.shape[0] == 1 else f"{method}_{i}.png"))
        viz.overlay(pictures[i], raw[i], path=files[-1])
    return files
