"""Reading saved tensors and state dicts (``.npy``, ``.pt``/``.pth``, ``.safetensors``) without running their code.

``torch.load`` runs with ``weights_only=True`` and ``np.load`` with
``allow_pickle=False``: a file that would need to run pickled code to load is
refused, and the error says how to save the data instead, never to turn the
protection off. A truncated or corrupt file is a
:class:`~saliencelab.io.errors.MissingFileError` (exit code 3) that names the file.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliencelab.io.errors import MissingFileError, first_line

_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")


def load_saved(path: str | Path, what: str) -> Any:
    """What ``path`` holds: a ``.npy`` array as a tensor, a ``.safetensors`` dict, or a ``torch.save`` object.

    Parameters
    ----------
    path:
        An existing file.
    what:
        What it is for the user (``"input"``, ``"weights file"``...), to name it in errors.

    Raises
    ------
    MissingFileError
        The file is truncated or corrupt, or holds pickled objects that would
        run code to load (a pickled class or function, a NumPy object array).

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "x.pt"
    >>> torch.save({"w": torch.ones(2)}, path)
    >>> load_saved(path, "weights file")
    {'w': tensor([1., 1.])}
    >>> torch.save(print, path)
    >>> load_saved(path, "weights file")
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.MissingFileError: refused the weights file ...: it holds pickled Python objects ...
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise _refused(path, what, error) from None
    except ValueError as error:
        if "allow_pickle" in str(error):  # a NumPy object array: loading it unpickles
            raise _refused(path, what, error) from None
        raise _unreadable(path, what, error) from None
    except Exception as error:  # numpy, torch and safetensors raise many types for a truncated or corrupt file
        raise _unreadable(path, what, error) from None


def _refused(path: Path, what: str, error: Exception) -> MissingFileError:
    """The error for a file whose loading would run pickled code: what it asked for and how to save plain data."""
    found = _GLOBAL.search(str(error))
    asked = f" (it asks for {found.group(1)})" if found else ""
    return MissingFileError(
        f"refused the {what} {path}: it holds pickled Python objects{asked}, and loading them could run code. "
        "Save plain tensors instead: torch.save(tensor, path), torch.save(model.state_dict(), path), "
        "np.save(path, array) or safetensors"
    )


def _unreadable(path: Path, what: str, error: Exception) -> MissingFileError:
    """The error for a truncated or corrupt file, quoting the reader's first line."""
    reason = first_line(error).split(". ")[0]
    cause = type(error).__name__ + (f": {reason}" if reason != type(error).__name__ else "")
    return MissingFileError(
        f"cannot read the {what} {path}: it is truncated, corrupt or not a {_writer(path)} file ({cause})"
    )


def _writer(path: Path) -> str:
    return {".npy": "np.save", ".safetensors": "safetensors"}.get(path.suffix.lower(), "torch.save")
