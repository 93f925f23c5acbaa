"""Loading a model from a SPEC string, and its weights from a file.

A SPEC is one of

- ``zoo:NAME``: a model of :mod:`saliencelab.zoo` (``zoo:digits_cnn``), with
  keyword arguments after commas (``zoo:digits_cnn,labels=shuffled``,
  ``zoo:resnet18_shaped,num_classes=10``);
- ``module:factory`` or ``path/to/file.py:factory``: an importable callable that
  takes no arguments and returns a ``torch.nn.Module`` (a dotted attribute such
  as ``module:Builder.build`` works too; an ``nn.Module`` instance is taken as it
  is). A module name is looked up on ``sys.path`` and in the current folder;
- a ``.pt2`` file written by ``torch.export.save``; export it with a dynamic
  batch dimension, since methods run batches of many sizes;
- any other file: a TorchScript archive written by ``torch.jit.save``.

The model is put in eval mode (an exported program keeps the mode it was exported
in). Weights are a state dict saved with ``torch.save`` (read with
``weights_only=True``) or a ``.safetensors`` file.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from functools import reduce
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliencelab.io.errors import MissingFileError, ModelSpecError, WeightsError, first_line
from saliencelab.io.files import load_saved


def load_model(spec: str, weights: str | Path | None = None) -> nn.Module:
    """The model that ``spec`` names, with ``weights`` loaded, in eval mode.

    Parameters
    ----------
    spec:
        ``zoo:NAME``, ``module:factory``, ``path/to/file.py:factory``, a ``.pt2``
        ``torch.export`` archive or a TorchScript file (see the module docstring).
    weights:
        Optional state dict file (``torch.save`` or ``.safetensors``) to load
        into the model, strictly: every key and shape must match.

    Raises
    ------
    MissingFileError, ModelSpecError, WeightsError
        With a message that says what to change.

    Example
    -------
    >>> model = load_model("zoo:digits_cnn")
    >>> type(model).__name__, model.training
    ('DigitsCNN', False)
    >>> load_model("torch.nn:Identity")
    Identity()
    >>> load_model("zoo:resnet18_shaped,num_classes=10,in_channels=1").fc.out_features
    10
    """
    if spec.startswith("zoo:"):
        model = _from_zoo(spec[len("zoo:") :])
    elif _is_factory(spec):
        model = _from_factory(spec)
    else:
        model = _from_file(Path(spec))
    if weights is not None:
        load_weights(model, weights)
    return _in_eval_mode(model)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load the state dict in ``path`` into ``model``, strictly (every key and shape must match).

    Example
    -------
    >>> import tempfile
    >>> source, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> path = Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save(source.state_dict(), path)
    >>> load_weights(target, path)
    >>> torch.equal(source.weight, target.weight)
    True
    """
    path = _existing(path, "weights file")
    state = load_saved(path, "weights file")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = f" (its keys: {', '.join(map(str, list(state)[:8]))})" if isinstance(state, Mapping) else ""
        raise WeightsError(
            f"{path} holds a {type(state).__name__}{keys}, not a state dict of tensors; "
            "save model.state_dict() itself, not a checkpoint that wraps it"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())
        raise WeightsError(f"the weights in {path} do not fit the model: {detail}") from None


def input_channels(model: nn.Module) -> int | None:
    """The input channels of the model's first 4-D weight (its first convolution), or None without one.

    Example
    -------
    >>> input_channels(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 1, 3)))
    3
    >>> input_channels(torch.nn.Linear(4, 2)) is None
    True
    """
    return next((p.shape[1] for p in model.parameters() if p.ndim == 4), None)


def _is_factory(spec: str) -> bool:
    module, colon, attribute = spec.rpartition(":")
    return bool(colon and module) and all(part.isidentifier() for part in attribute.split("."))


def _from_zoo(spec: str) -> nn.Module:
    from saliencelab import zoo
    from saliencelab.io.options import parse_value

    name, *pairs = spec.split(",")
    keywords = dict(pair.partition("=")[::2] for pair in pairs)
    try:
        return zoo.load(name, **{key: parse_value(value) for key, value in keywords.items()})
    except (ValueError, TypeError) as error:
        raise ModelSpecError(f"zoo:{spec}: {error}") from None


def _from_factory(spec: str) -> nn.Module:
    where, _, attribute = spec.rpartition(":")
    module = _import(where)
    try:
        factory = reduce(getattr, attribute.split("."), module)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        close = difflib.get_close_matches(attribute, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; its callables: {', '.join(names[:12])}"
        raise ModelSpecError(f"{where} has no attribute {attribute!r}{hint}") from None
    if isinstance(factory, nn.Module):
        return factory
    if not callable(factory):
        raise ModelSpecError(f"{spec} is a {type(factory).__name__}, not a callable that returns a model")
    try:
        model = factory()
    except Exception as error:  # the user's factory may raise anything; report it, not a traceback
        raise ModelSpecError(
            f"calling {spec}() raised {type(error).__name__}: {first_line(error)}; "
            "the factory must build the model without arguments"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _import(where: str) -> Any:
    is_path = where.endswith(".py") or "/" in where or os.sep in where
    try:
        if is_path:
            return _import_file(_existing(where, "model file"))
        with _on_path(os.getcwd()):
            return importlib.import_module(where)
    except MissingFileError:
        raise
    except ModuleNotFoundError as error:
        if error.name and where.startswith(error.name):
            raise ModelSpecError(
                f"no module named {where!r}; give its file as path/to/file.py:factory, "
                "or run from its folder, or add that folder to PYTHONPATH"
            ) from None
        raise ModelSpecError(f"importing {where} failed: {error}") from None
    except Exception as error:  # an error in the user's module: report it, not a traceback
        raise ModelSpecError(f"importing {where} raised {type(error).__name__}: {first_line(error)}") from None


def _import_file(path: Path) -> Any:
    name = f"_saliencelab_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelSpecError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _on_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added:
            sys.path.remove(folder)


def _from_file(path: Path) -> nn.Module:
    path = _existing(path, "model file")
    if path.suffix == ".pt2":
        try:
            with _logging_off():
                return torch.export.load(path).module()
        except Exception as error:  # torch raises several types for a file that is not an archive
            raise ModelSpecError(
                f"{path} is not a torch.export archive that this torch version reads ({type(error).__name__}); "
                "write it with torch.export.save"
            ) from None
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as error:  # torch raises several types for a file that is not an archive
        raise ModelSpecError(
            f"{path} is not a TorchScript archive ({first_line(error)}); save the model with "
            "torch.jit.save(torch.jit.script(model), path) or torch.export.save (as .pt2), or give its "
            "architecture as module:factory and a state dict file as --weights"
        ) from None


@contextlib.contextmanager
def _logging_off() -> Iterator[None]:
    """Keep a library's logged tracebacks off the user's terminal; its exception still says what failed."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _in_eval_mode(model: nn.Module) -> nn.Module:
    try:
        return model.eval()
    except NotImplementedError:  # an exported program: its mode was fixed when it was exported
        return model


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    return path
