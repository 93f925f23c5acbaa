"""Watching a model's modules during one call, in the calling thread only.

Methods need to know which layer an operation runs in (LRP composites by layer
name), to read or replace one layer's output (the CAMs, layer attribution) and
to notice an opaque model (:func:`~saliencelab.engine.require_sight`). Hooks
registered on the user's modules would change the model while the call runs,
and PyTorch's global module hooks fire in every thread's forward passes. Here a
single pair of global hooks is installed only while some thread watches, and
it dispatches each module call to the watchers of the thread that made it:
another thread's forward pass, and anything that runs after the block, see
nothing of it.

The hooks send every module call of the process through PyTorch's slow path.
A watcher that matters only while the engine intercepts (the check for opaque
models) is registered with ``installs=False``: it costs nothing until an
interception of its thread holds the hooks (:func:`hold_hooks`) or another
watcher installs them.

Example
-------
>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
>>> seen = []
>>> with watching_modules(before=lambda module, args: seen.append(type(module).__name__)):
...     _ = net(torch.ones(1, 2))
>>> seen
['Sequential', 'Linear', 'ReLU']
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.modules import module as module_globals

Before = Callable[[nn.Module, tuple], None]
After = Callable[[nn.Module, tuple, Any], Any]


@dataclass(frozen=True)
class _Watcher:
    before: Before | None
    after: After | None
    sees_inside: bool


_local = threading.local()
_lock = threading.Lock()
_handles: list[Any] = []
_active = 0


def _watchers() -> list[_Watcher]:
    watchers = getattr(_local, "watchers", None)
    if watchers is None:
        watchers = _local.watchers = []
    return watchers


def _dispatch_before(module: nn.Module, args: tuple) -> None:
    for watcher in tuple(getattr(_local, "watchers", ())):
        if watcher.before is not None:
            watcher.before(module, args)


def _dispatch_after(module: nn.Module, args: tuple, output: Any) -> Any:
    replaced = None
    for watcher in tuple(getattr(_local, "watchers", ())):
        if watcher.after is not None:
            result = watcher.after(module, args, output if replaced is None else replaced)
            if result is not None:
                replaced = result
    return replaced


def _install() -> None:
    global _active
    with _lock:
        if _active == 0:
            _handles.append(module_globals.register_module_forward_pre_hook(_dispatch_before))
            _handles.append(module_globals.register_module_forward_hook(_dispatch_after, always_call=True))
        _active += 1


def _uninstall() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            while _handles:
                _handles.pop().remove()


def hold_hooks() -> bool:
    """Install the hooks for this thread's watchers, if it has any; returns whether it did.

    An interception calls it when it starts, so that watchers registered with
    ``installs=False`` see the modules that run under it; :func:`release_hooks`
    with the value returned undoes it.

    Example
    -------
    >>> hold_hooks()  # no watcher in this thread: nothing to install
    False
    >>> with watching_modules(before=lambda module, args: None, installs=False):
    ...     held = hold_hooks()
    ...     release_hooks(held)
    >>> held
    True
    """
    if not getattr(_local, "watchers", None):
        return False
    _install()
    return True


def release_hooks(held: bool) -> None:
    """Undo one :func:`hold_hooks` that returned ``held``.

    Example
    -------
    >>> release_hooks(hold_hooks())
    """
    if held:
        _uninstall()


@contextmanager
def watching_modules(
    *, before: Before | None = None, after: After | None = None, sees_inside: bool = True, installs: bool = True
) -> Iterator[None]:
    """Within the block, call ``before(module, args)`` and ``after(module, args, output)`` around every
    module that this thread runs.

    ``after`` runs also when the module raised (``output`` is then None); a
    value it returns replaces the module's output, as a forward hook's does.
    ``sees_inside`` says that the watcher needs the model's layers to run in
    Python (it is what :func:`~saliencelab.engine.require_sight` refuses
    opaque models for); a watcher that only looks for opaque models passes False.
    ``installs=False``: the watcher sees module calls only while the hooks are
    installed for another reason (another watcher, or :func:`hold_hooks`).

    Example
    -------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> def double_relu(module, args, output):
    ...     return output * 2 if isinstance(module, nn.ReLU) else None
    >>> with watching_modules(after=double_relu):
    ...     inside = net(torch.ones(1, 2))
    >>> torch.equal(inside, 2 * net(torch.ones(1, 2)))
    True
    """
    watcher = _Watcher(before, after, sees_inside)
    if installs:
        _install()
    watchers = _watchers()
    watchers.append(watcher)
    try:
        yield
    finally:
        watchers.remove(watcher)
        if installs:
            _uninstall()


def watches_inside() -> bool:
    """Whether this thread has a watcher that needs to see the model's layers.

    Example
    -------
    >>> with watching_modules(before=lambda module, args: None):
    ...     watches_inside()
    True
    >>> watches_inside()
    False
    """
    return any(watcher.sees_inside for watcher in getattr(_local, "watchers", ()))
