"""The method registry: every name that :func:`saliencelab.explain` accepts."""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from saliencelab.methods.base import Method

M = TypeVar("M", bound="type[Method]")
_METHODS: dict[str, type[Method]] = {}


def register(cls: M) -> M:
    """Class decorator: make a method available under its ``name``.

    Example
    -------
    >>> from saliencelab.methods.base import Method
    >>> get("gradient").name
    'gradient'
    """
    if cls.name in _METHODS:
        raise ValueError(f"a method named {cls.name!r} is already registered")
    _METHODS[cls.name] = cls
    return cls


def _registered() -> dict[str, type[Method]]:
    """Every registered method, importing the modules that register them on first use."""
    import saliencelab.lrp  # noqa: F401  (LRP and its relatives)
    import saliencelab.methods  # noqa: F401  (every other method)

    return _METHODS


def available_methods() -> list[str]:
    """Every method name, sorted.

    Example
    -------
    >>> import saliencelab as sl
    >>> "integrated_gradients" in sl.available_methods()
    True
    """
    return sorted(_registered())


def classes() -> dict[str, type[Method]]:
    """Every registered method class by its class name: what ``saliencelab`` exports.

    Example
    -------
    >>> import saliencelab as sl
    >>> classes()["IntegratedGradients"] is sl.IntegratedGradients
    True
    """
    return {cls.__name__: cls for cls in _registered().values()}


def get(name: str) -> type[Method]:
    """The class registered as ``name``; a ``ValueError`` listing the names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"method must be a method name (str); got {type(name).__name__}")
    if name not in _registered():
        close = difflib.get_close_matches(name, _METHODS, n=1)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown method {name!r}.{suggestion} Available methods: {', '.join(available_methods())}")
    return _METHODS[name]


def option_names(cls: type[Method]) -> list[str]:
    """The keyword options a method's constructor takes (besides the model).

    Example
    -------
    >>> option_names(get("gradient"))
    ['memory_budget']
    """
    return [p.name for p in _parameters(cls) if p.kind == p.KEYWORD_ONLY]


@functools.cache
def _parameters(cls: type[Method]) -> tuple[inspect.Parameter, ...]:
    """The parameters of ``cls.__init__``, read once per class (explain checks them on every call)."""
    return tuple(inspect.signature(cls.__init__).parameters.values())


def check_options(cls: type[Method], options: dict) -> None:
    """A ``TypeError`` naming the options that ``cls`` does not take, and those it does.

    A method whose constructor takes ``**options`` passes them on and checks them there.
    """
    if any(p.kind == p.VAR_KEYWORD for p in _parameters(cls)):
        return
    known = option_names(cls)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(
            f"{cls.name} does not take the option(s) {', '.join(unknown)}; its options are: {', '.join(known)}"
        )
