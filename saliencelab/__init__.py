"""saliencelab: attribute PyTorch predictions to their inputs, and check the explanations.

Example
-------
>>> import torch, saliencelab as sl
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> a = sl.explain(model, torch.randn(2, 4), method="gradient", target=0)
>>> a.values.shape
torch.Size([2, 4])
"""

from saliencelab.errors import DegenerateMapWarning as DegenerateMapWarning
from saliencelab.errors import NonFiniteResultError as NonFiniteResultError
from saliencelab.errors import UnsupportedOperationError as UnsupportedOperationError

__version__ = "0.1.0"

_EXPORTS = {
    "explain": "saliencelab.api",
    "available_methods": "saliencelab.api",
    "Attribution": "saliencelab.core.attribution",
    "References": "saliencelab.core.baselines",
    "references": "saliencelab.core.baselines",
    "neuron": "saliencelab.core.layers",
    "run": "saliencelab.runs",
    "load_run": "saliencelab.runs",
}
"""Public names and the module that defines each, imported on first use."""

_SUBPACKAGES = ("evaluate", "explore", "genomics", "lrp", "methods", "report", "runs", "text", "viz", "zoo")
"""Subpackages imported on first use (``sl.explore(run)`` is callable)."""


def _method_classes() -> dict[str, type]:
    """Every method class by its class name, registering the methods (and importing torch) on first use."""
    from saliencelab.core.registry import classes

    return classes()


def __getattr__(name: str):
    """Import what ``name`` needs on first use, so that ``import saliencelab`` (and ``saliencelab --help``) stay light.

    Example
    -------
    >>> import saliencelab as sl
    >>> sl.IntegratedGradients.name
    'integrated_gradients'
    """
    import importlib

    if name in _EXPORTS:
        _method_classes()  # a method named by a string must be registered before it is looked up
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"saliencelab.{name}")
    elif name == "__all__":
        value = sorted({*_method_classes(), *_EXPORTS, *_SUBPACKAGES, "DegenerateMapWarning", "NonFiniteResultError",
                        "UnsupportedOperationError"})  # fmt: skip
    elif name in (classes := _method_classes()):
        value = classes[name]
    else:
        raise AttributeError(f"module 'saliencelab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
