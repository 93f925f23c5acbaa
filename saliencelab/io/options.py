"""Turning the command line's strings into method names, options, targets and baselines."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from saliencelab.core import registry
from saliencelab.core.baselines import PRESETS, BaselineSpec
from saliencelab.io.errors import BadOptionError, MissingFileError, UnknownMethodError
from saliencelab.io.files import load_saved


def check_methods(names: Sequence[str]) -> list[str]:
    """The method names, each checked against the registry; ``a,b`` splits into two.

    Example
    -------
    >>> check_methods(["gradient,integrated_gradients", "lrp"])
    ['gradient', 'integrated_gradients', 'lrp']
    >>> check_methods(["gradiant"])
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.UnknownMethodError: unknown method 'gradiant'; close matches: gradient, ...
    """
    methods = [name.strip() for item in names for name in item.split(",") if name.strip()]
    available = registry.available_methods()
    for name in methods:
        if name not in available:
            close = difflib.get_close_matches(name, available, n=4, cutoff=0.5)
            hint = f"close matches: {', '.join(close)}" if close else "no close match"
            raise UnknownMethodError(f"unknown method {name!r}; {hint}. `saliencelab methods` lists them all")
    return methods


def parse_value(text: str) -> Any:
    """An option's value: a bool (``true``/``false``, any case), JSON (numbers, lists, ``null``...) or the string.

    Example
    -------
    >>> [parse_value(t) for t in ["64", "0.15", "True", "[1, 2]", "null", "features.3"]]
    [64, 0.15, True, [1, 2], None, 'features.3']
    """
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def method_options(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each method's options from ``KEY=VALUE`` items.

    ``METHOD.KEY=VALUE`` goes to that method only; ``KEY=VALUE`` goes to every
    method that takes ``KEY``, and is an error when none does.

    Example
    -------
    >>> method_options(["steps=16", "smoothgrad.samples=8"], ["gradient", "integrated_gradients", "smoothgrad"])
    {'gradient': {}, 'integrated_gradients': {'steps': 16}, 'smoothgrad': {'steps': 16, 'samples': 8}}
    """
    options: dict[str, dict[str, Any]] = {method: {} for method in methods}
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise BadOptionError(f"--option takes KEY=VALUE (or METHOD.KEY=VALUE); got {item!r}")
        scope, dot, name = key.rpartition(".")
        if dot and scope not in options:
            raise BadOptionError(
                f"--option {item!r} names the method {scope!r}, which is not among {', '.join(methods)}"
            )
        takers = [scope] if dot else [m for m in methods if _takes(m, name)]
        if not takers:
            listed = "; ".join(f"{m}: {', '.join(registry.option_names(registry.get(m)))}" for m in methods)
            raise BadOptionError(f"no chosen method takes the option {name!r}. Their options are {listed}")
        for method in takers:
            options[method][name] = parse_value(text)
    return options


def _takes(method: str, option: str) -> bool:
    try:
        registry.check_options(registry.get(method), {option: None})
    except TypeError:
        return False
    return True


def parse_target(text: str) -> int | None:
    """``argmax`` (None: each sample's predicted class) or a class index.

    Example
    -------
    >>> parse_target("3"), parse_target("argmax")
    (3, None)
    """
    if text == "argmax":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadOptionError(f"--target takes a class index or 'argmax'; got {text!r}") from None


def parse_baseline(text: str | None) -> BaselineSpec:
    """A baseline preset, a number, or a tensor read from a ``.npy``/``.pt`` file.

    Example
    -------
    >>> parse_baseline("blur"), parse_baseline("0.5"), parse_baseline(None)
    ('blur', 0.5, None)
    """
    if text is None or text in PRESETS:
        return text
    try:
        return float(text)
    except ValueError:
        pass
    path = Path(text)
    if path.suffix.lower() not in (".npy", ".pt", ".pth"):
        raise BadOptionError(
            f"--baseline takes {', '.join(PRESETS)}, a number, or a .npy/.pt file of a baseline; got {text!r}"
        )
    if not path.is_file():
        raise MissingFileError(f"baseline file {path} does not exist")
    baseline = load_saved(path, "baseline file")
    if not isinstance(baseline, torch.Tensor):
        raise BadOptionError(f"{path} holds a {type(baseline).__name__}; save the baseline as one tensor")
    return baseline
