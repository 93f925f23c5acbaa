"""The browser explorer of a data-set run: a local web page over ``sl.load_run``'s runs.

``sl.explore(run)`` (or ``saliencelab explore RUN``) starts a small web app on
this machine (127.0.0.1, a free port) and returns once it listens; open the
printed address in any browser. The page is plain HTML, CSS and JavaScript
shipped in this package: nothing is fetched from elsewhere and no notebook
extension is involved. :func:`saliencelab.explore.export.export` (``--export
DIR``) writes the same pages as a static folder.

Pages: the sample grid (filters, sorting), a sample (its input and every
method's map under shared controls, its checks, its nearest samples by map
similarity), the methods (each metric's distribution, rank agreement), SpRAy
(clusters per class) and token heatmaps for text runs.

Importing this package imports neither Starlette nor uvicorn; they load when a
server starts. ``saliencelab.explore`` is both this package and, called, the
:func:`explore` function (``sl.explore(run)``).

Example
-------
>>> import saliencelab as sl
>>> from saliencelab.explore.synthetic import synthetic_run
>>> running = sl.explore(synthetic_run(8), quiet=True)
>>> running.url.startswith("http://127.0.0.1:")
True
>>> running.stop()
"""

from __future__ import annotations

import os
import sys
import types
import webbrowser
from typing import Any

from saliencelab.explore.server import LOOPBACK, RunningServer, host_notice


def explore(
    run_or_path: Any,
    port: int | None = None,
    open_browser: bool = False,
    *,
    host: str = LOOPBACK,
    quiet: bool = False,
) -> RunningServer:
    """Serve the explorer of a run and return the running server (``.url``, ``.stop()``, ``.wait()``).

    Parameters
    ----------
    run_or_path:
        A ``Run`` (``sl.load_run(path)``, or any object with its attributes) or the path of a run store.
    port:
        The port; None takes a free one.
    open_browser:
        Also open the page in the default browser.
    host:
        The address to listen on; anything but a loopback address makes the run readable from other machines.
    quiet:
        Print nothing (by default the address and who can reach it are printed).

    Example
    -------
    >>> explore(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: the explorer needs a run from sl.load_run(path); <object object at ...> has no attribute 'path' ...
    """
    from saliencelab.explore.app import create_app
    from saliencelab.explore.server import start

    app = create_app(load(run_or_path))
    running = start(app, host, port)
    if not quiet:
        print(f"saliencelab explorer: {running.url}  ({host_notice(host)})", flush=True)
    if open_browser:
        webbrowser.open(running.url)
    return running


def load(run_or_path: Any) -> Any:
    """The run itself, or ``sl.load_run(path)`` for a path.

    Example
    -------
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> run = synthetic_run(2)
    >>> load(run) is run
    True
    """
    if isinstance(run_or_path, (str, os.PathLike)):
        from saliencelab import load_run

        return load_run(run_or_path)
    return run_or_path


class _CallableModule(types.ModuleType):
    """``saliencelab.explore(...)`` calls :func:`explore`, while ``saliencelab.explore.app`` etc. stay modules."""

    def __call__(self, *args: Any, **kwargs: Any) -> RunningServer:
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
