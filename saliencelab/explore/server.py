"""Serve the explorer with uvicorn on a free port, on the loopback address unless told otherwise.

:func:`start` runs the server in a background thread and returns once it
listens, so ``sl.explore(run)`` gives the prompt back (a notebook stays usable)
and the command line waits on it. A host other than a loopback address makes
the run readable by anyone who can reach the machine: :func:`host_notice` says so.

Example
-------
>>> host_notice("127.0.0.1")
'listening on 127.0.0.1 only: other machines cannot reach it'
>>> free_port() > 0
True
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

LOOPBACK = "127.0.0.1"
"""The default address: this machine only."""

STARTUP_SECONDS = 10.0
"""How long :func:`start` waits for the server to listen."""


@dataclass
class RunningServer:
    """A server running in a background thread; :meth:`stop` ends it.

    Example
    -------
    >>> RunningServer("http://127.0.0.1:1/", None, None).url
    'http://127.0.0.1:1/'
    """

    url: str
    server: Any
    thread: threading.Thread | None

    def stop(self) -> None:
        """Stop serving and wait for the thread to end.

        Example
        -------
        >>> from saliencelab.explore.app import create_app
        >>> from saliencelab.explore.synthetic import synthetic_run
        >>> running = start(create_app(synthetic_run(4)))
        >>> running.stop(); running.thread.is_alive()
        False
        """
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join()

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C stops it.

        Example
        -------
        >>> RunningServer("http://127.0.0.1:1/", None, None).wait()  # no thread: returns at once
        """
        try:
            while self.thread is not None and self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on at ``host`` now.

    Example
    -------
    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only.

    Example
    -------
    >>> is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_notice(host: str) -> str:
    """What listening on ``host`` means for who can read the run.

    Example
    -------
    >>> host_notice("0.0.0.0")[:40]
    'warning: listening on 0.0.0.0: anyone wh'
    """
    if is_loopback(host):
        return f"listening on {host} only: other machines cannot reach it"
    return (
        f"warning: listening on {host}: anyone who can reach this machine can read the run "
        "(nothing asks for a password). Leave out --host to listen on 127.0.0.1 only."
    )


def start(app: Any, host: str = LOOPBACK, port: int | None = None) -> RunningServer:
    """Serve ``app`` with uvicorn at ``host:port`` (a free port if None) in a thread; return once it listens.

    Example
    -------
    >>> import urllib.request
    >>> from saliencelab.explore.app import create_app
    >>> from saliencelab.explore.synthetic import synthetic_run
    >>> running = start(create_app(synthetic_run(4)))
    >>> urllib.request.urlopen(running.url + "api/run").status
    200
    >>> running.stop()
    """
    import uvicorn

    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535; got {port}")
    port = free_port(host) if port is None else port
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="saliencelab-explore", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"the explorer could not listen on {host}:{port} (is the port taken? try another --port)")
        time.sleep(0.02)
    shown = f"[{host}]" if ":" in host else host
    return RunningServer(f"http://{shown}:{port}/", server, thread)
