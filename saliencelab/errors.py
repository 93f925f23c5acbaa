"""Exceptions raised by saliencelab.

Example
-------
>>> from saliencelab import UnsupportedOperationError
>>> issubclass(UnsupportedOperationError, NotImplementedError)
True
"""

from __future__ import annotations


class UnsupportedOperationError(NotImplementedError):
    """A method's rule table met an operation it has no rule for.

    Raised instead of silently falling back to the plain gradient, which would
    return a plausible but wrong attribution.

    Parameters
    ----------
    operation:
        Canonical name of the torch operation (``"gelu"``, ``"mul"``, ...).
    method:
        Name of the attribution method whose rule table lacks the operation.
    hint:
        What the user can do instead.

    Example
    -------
    >>> err = UnsupportedOperationError("gelu", "guided_backprop", "use method='gradient'")
    >>> "gelu" in str(err) and "guided_backprop" in str(err)
    True
    """

    def __init__(self, operation: str, method: str, hint: str = "") -> None:
        self.operation = operation
        self.method = method
        message = f"{method} has no rule for the operation '{operation}' used by the model"
        if hint:
            message += f": {hint}"
        super().__init__(message)


class NonFiniteResultError(FloatingPointError, ValueError):
    """A method computed NaN or Inf values: raised instead of returning them.

    A ``ValueError`` (the inputs or the model make the result meaningless, as
    for NaN inputs) and a ``FloatingPointError`` (the arithmetic overflowed).

    Example
    -------
    >>> issubclass(NonFiniteResultError, ValueError) and issubclass(NonFiniteResultError, FloatingPointError)
    True
    """


class DegenerateMapWarning(UserWarning):
    """A method returned a constant map (all zero included) for some inputs: it attributes nothing there.

    The map is still returned, flagged in ``Attribution.info["degenerate"]``; every
    check of :mod:`saliencelab.report` fails it.

    Example
    -------
    >>> issubclass(DegenerateMapWarning, UserWarning)
    True
    """


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), to quote in an error.

    Example
    -------
    >>> first_line(RuntimeError("shapes cannot be multiplied\\nmore detail"))
    'shapes cannot be multiplied'
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

