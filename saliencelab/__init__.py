"""saliencelab: attribute PyTorch predictions to their inputs, and check the explanations.

Example
-------
>>> import torch, saliencelab as sl
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> a = sl.explain(model, torch.randn(2, 4), method="gradient", target=0)
>>> a.values.shape
torch.Size([2, 4])
"""

from saliencelab import lrp, methods
from saliencelab.api import available_methods, explain
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import References, references
from saliencelab.core.layers import neuron
from saliencelab.core.registry import classes as _registered_classes
from saliencelab.errors import DegenerateMapWarning, NonFiniteResultError, UnsupportedOperationError

__version__ = "0.1.0"

globals().update(_registered_classes())  # every method class, registered once (saliencelab.methods)

__all__ = [
    *_registered_classes(),
    "Attribution",
    "References",
    "DegenerateMapWarning",
    "NonFiniteResultError",
    "UnsupportedOperationError",
    "available_methods",
    "explain",
    "evaluate",
    "explore",
    "genomics",
    "lrp",
    "methods",
    "neuron",
    "references",
    "report",
    "run",
    "load_run",
    "runs",
    "text",
    "viz",
    "zoo",
]


_LAZY_MODULES = ("evaluate", "explore", "genomics", "report", "runs", "text", "viz", "zoo")
"""Subpackages imported on first use, keeping ``import saliencelab`` light (``sl.explore(run)`` is callable)."""


def __getattr__(name: str):
    """Import the subpackages of :data:`_LAZY_MODULES` on first use, and ``run``/``load_run`` from the runs."""
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"saliencelab.{name}")
    if name in ("run", "load_run"):
        return getattr(importlib.import_module("saliencelab.runs"), name)
    raise AttributeError(f"module 'saliencelab' has no attribute {name!r}")
