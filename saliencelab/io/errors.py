"""What can go wrong when a model, inputs and options come from files and strings.

Every error is a ``ValueError`` whose message says what was wrong and how to fix
it, and carries the ``exit_code`` with which ``saliencelab explain`` stops, so
that scripts can tell the failures apart:

==== ==========================================================================
code meaning
==== ==========================================================================
0    success
1    an unexpected internal error (a bug: please report it)
2    a malformed command line (an unknown flag, a value of the wrong type)
3    a file that is missing, cannot be read (truncated, corrupt) or is refused
     (a pickle whose loading would run code, an image over Pillow's
     decompression-bomb limit): input, model, weights, baseline
4    a model SPEC that does not load (bad module, missing attribute, not
     callable, the factory raised, not a ``torch.nn.Module``, not a TorchScript
     or ``torch.export`` archive, unknown zoo name)
5    weights that do not fit the model (missing or unexpected keys, shapes)
6    an input the model cannot take (its shape, channels or dtype, or NaN or
     Inf values)
7    an unknown method name
8    a bad option value (``--option``, ``--target``, ``--baseline``,
     ``--mean``/``--std``), or a method that rejects its options
9    a method whose rules do not cover an operation of the model
10   an output that cannot be written (``--out`` or ``--report`` is an
     existing file, or its folder is not writable); checked before any
     method runs
==== ==========================================================================

Example
-------
>>> try:
...     raise UnknownMethodError("unknown method 'gradiant'")
... except UserError as error:
...     error.exit_code
7
"""

from __future__ import annotations

from typing import ClassVar

from saliencelab.errors import first_line as first_line  # re-exported: the io modules quote errors


class UserError(ValueError):
    """Base of the errors a user can fix; ``exit_code`` is the command line's exit status."""

    exit_code: ClassVar[int] = 1


class MissingFileError(UserError):
    """A file that is missing, cannot be read, or is refused as unsafe."""

    exit_code = 3


class ModelSpecError(UserError):
    """A model SPEC that does not load."""

    exit_code = 4


class WeightsError(UserError):
    """Weights that do not fit the model."""

    exit_code = 5


class InputShapeError(UserError):
    """An input the model cannot take (its shape, channels, dtype or non-finite values)."""

    exit_code = 6


class UnknownMethodError(UserError):
    """A method name that is not registered."""

    exit_code = 7


class BadOptionError(UserError):
    """An option value that a method or the loader rejects."""

    exit_code = 8


class UnsupportedModelError(UserError):
    """A method whose rule table does not cover an operation of the model."""

    exit_code = 9


class OutputError(UserError):
    """An output path that cannot be written."""

    exit_code = 10


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error",
    2: "malformed command line",
    **{cls.exit_code: cls.__doc__[0].lower() + cls.__doc__[1:].rstrip(".") for cls in UserError.__subclasses__()},
}
"""Each exit status and what it means (for the command's help)."""
