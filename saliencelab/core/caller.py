"""Where the user's code called saliencelab: so that a warning points at the user's line, not at ours.

Example
-------
>>> user_stacklevel() >= 1
True
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = str(Path(__file__).resolve().parents[1])
"""The folder of the saliencelab package: frames inside it are the library's."""


def user_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called right here, that names the first frame outside saliencelab.

    Example
    -------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("x", stacklevel=user_stacklevel())
    >>> "saliencelab/core" in caught[0].filename
    False
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
