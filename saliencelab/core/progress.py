"""One progress bar per long call: on a terminal after a couple of seconds, never in logs or tests unless asked.

Every method's rows run through :meth:`~saliencelab.methods.base.Method.run_chunked`,
so one bar there covers the gradient, path, reference and relevance methods;
the perturbation methods label theirs. A bar opened inside another (SmoothGrad
around its base method, a check around a method) stays hidden: the outer one
already reports the call.

Example
-------
>>> with progress_bar("demo", 10, progress=False) as advance:
...     advance(10)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DELAY = 2.0
"""Seconds before an automatic bar appears: a call that finishes sooner shows none."""

_SHOWING: ContextVar[bool] = ContextVar("saliencelab_progress_showing", default=False)


@contextmanager
def progress_bar(description: str, total: int, progress: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A bar over ``total`` rows: ``progress=True`` always, ``False`` never, ``None`` on a terminal after :data:`DELAY`.

    Yields ``advance(rows)``. Inside another bar of this thread, nothing is drawn.

    Example
    -------
    >>> with progress_bar("outer", 2, progress=False) as advance:
    ...     advance(1)
    """
    if _SHOWING.get():
        yield _ignore
        return
    forced = progress is True
    if not (forced or (progress is None and sys.stderr.isatty())):
        yield _ignore  # no bar is built: this runs on every call of every method
        return
    from tqdm.auto import tqdm  # imported when a bar is drawn: most calls draw none

    bar = tqdm(total=total, desc=description, unit="row", leave=False, delay=0 if forced else DELAY)
    token = _SHOWING.set(True)
    try:
        yield bar.update
    finally:
        _SHOWING.reset(token)
        bar.close()


def _ignore(rows: int) -> None:
    """Advance no bar."""
