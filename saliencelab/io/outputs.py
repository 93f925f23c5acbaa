"""Writing attributions: raw values (``.npy``, ``.pt``) and overlay PNGs, all or nothing.

Output paths are checked before any method runs (:func:`check_output_folder`,
:func:`check_output_file`), and a folder of results is written in a hidden
staging folder that is moved into place only when everything in it is written
(:func:`staged_folder`): a run that fails part-way leaves no folder that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from saliencelab.io.errors import OutputError

FORMATS = ("npy", "pt")
STAGING_PREFIX = ".saliencelab-partial-"
"""The name with which staging folders start; one left behind is from a run that was killed."""


def check_output_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path``, if a folder can be written there (it exists as a folder, or can be created); else an OutputError.

    The check creates and removes an empty folder where the results would go.

    Example
    -------
    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "results"
    >>> _ = file.write_text("")
    >>> check_output_folder(file)
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.OutputError: --out .../results is an existing file; give a folder (or a new name) ...
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is an existing file; give a folder (or a new name) for the results")
    _probe(_nearest_existing(path), path, flag)
    return path


def check_output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path``, if a file can be written there (its folder exists and is writable); else an OutputError.

    Example
    -------
    >>> import tempfile
    >>> check_output_file(Path(tempfile.mkdtemp()) / "missing" / "table.csv")
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.OutputError: --out .../table.csv: the folder .../missing does not exist; create it first
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'table.csv'}")
    if not path.parent.is_dir():
        raise OutputError(f"{flag} {path}: the folder {path.parent} does not exist; create it first")
    _probe(path.parent, path, flag)
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    return next(folder for folder in (path, *path.parents) if folder.exists())


def _probe(folder: Path, path: Path, flag: str) -> None:
    """An OutputError unless a folder can be created in ``folder`` (where ``path`` will be written)."""
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: {folder} is a file, not a folder; choose another path")
    try:
        _new_stage(folder).rmdir()
    except OSError as error:
        raise OutputError(
            f"{flag} {path}: cannot write in {folder} ({error.strerror or error}); choose a folder you can write to"
        ) from None


@contextlib.contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """A hidden staging folder whose files move into ``out`` when the block ends without an error.

    On an error (or a generator closed early) the staging folder is removed and
    ``out`` is left as it was. When ``out`` does not exist yet the staging folder
    is renamed to it in one step; otherwise each file moves to its place in ``out``
    (replacing a file of the same name), so other files in ``out`` stay.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "results"
    >>> with staged_folder(out) as stage:
    ...     _ = (stage / "a.txt").write_text("done")
    ...     out.exists()
    False
    >>> [p.name for p in out.iterdir()]
    ['a.txt']
    """
    out = Path(out)
    stage = _new_stage(_nearest_existing(out))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _publish(stage, out)


def _new_stage(folder: Path) -> Path:
    """A new, empty staging folder in ``folder``, with the permissions of any new folder (the umask's)."""
    stage = folder / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    stage.mkdir()
    return stage


def _publish(stage: Path, out: Path) -> None:
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        stage.rename(out)
        return
    for file in sorted(p for p in stage.rglob("*") if p.is_file()):
        target = out / file.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
    shutil.rmtree(stage)


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
