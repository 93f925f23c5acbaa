"""Leaving the user's model exactly as it was.

Methods never write to the model, but a model in training mode updates its
batch-norm statistics on every forward pass, and a bug or an exception must not
leave a hook or a changed flag behind. :func:`preserved` snapshots what a call
could change and puts it back afterwards, whether the call returned or raised.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_MODE_DEPENDENT = (
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
)
"""Modules that compute something else in training mode."""

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_hook_dicts = operator.itemgetter(*_HOOK_DICTS)


@contextmanager
def preserved(model: Any) -> Iterator[None]:
    """Restore the model's hooks, training flags, buffers and parameter flags on exit.

    Buffers are copied only when some module is in training mode (in eval mode
    no forward pass writes to them). Dropout or batch norm in training mode gets
    a warning: they make attributions random and dependent on the batch. The
    module tree is walked once on entry; on exit only what changed is written back.

    Example
    -------
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
    >>> before = net[1].running_mean.clone()
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     with preserved(net):
    ...         _ = net(torch.randn(4, 2))
    >>> torch.equal(net[1].running_mean, before)
    True
    """
    if not isinstance(model, torch.nn.Module):
        yield
        return
    modules = _modules_of(model)
    training = [m.training for m in modules]
    hooks = [_hook_snapshot(m) for m in modules]
    params = [(p, p.requires_grad, p.grad) for m in modules for p in m._parameters.values() if p is not None]
    buffers = _buffer_copies(modules) if any(training) else []
    if any(training) and any(m.training and isinstance(m, _MODE_DEPENDENT) for m in modules):
        warnings.warn(
            "the model is in training mode: dropout and batch statistics make attributions random "
            "and dependent on the rest of the batch; call model.eval() first",
            stacklevel=3,
        )
    try:
        yield
    finally:
        for module, flag, saved in zip(modules, training, hooks, strict=True):
            if module.training is not flag:  # nn.Module's __setattr__ is slow: write only what changed
                module.training = flag
            if _hook_snapshot(module) != saved:
                for name in _HOOK_DICTS:
                    current = module.__dict__.get(name)
                    if current is not None:
                        current.clear()
                        current.update(saved.get(name, {}))
        if buffers:
            with torch.no_grad():
                for buffer, copy in buffers:
                    if not torch.equal(buffer, copy):
                        buffer.copy_(copy)
        for param, requires_grad, grad in params:
            if param.requires_grad != requires_grad:
                param.requires_grad_(requires_grad)
            if param.grad is not grad:
                param.grad = grad


def _modules_of(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Every module of ``model``, each once: ``model.modules()`` without building the dotted names."""
    seen = {id(model)}
    found = [model]
    for module in found:  # grows while it is read: breadth first
        for child in module._modules.values():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                found.append(child)
    return found


def _buffer_copies(modules: list[torch.nn.Module]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each buffer of ``modules`` (a shared one once) with a copy of its values."""
    buffers = {id(b): b for m in modules for b in m._buffers.values() if b is not None}
    return [(b, b.detach().clone()) for b in buffers.values()]


def _hook_snapshot(module: torch.nn.Module) -> dict[str, dict]:
    """Copies of the module's non-empty hook dictionaries, by attribute name ({} for a module without hooks)."""
    attributes = module.__dict__
    try:
        dicts = _hook_dicts(attributes)
    except KeyError:  # a module unpickled from an older torch lacks the newer kinds of hooks
        dicts = tuple(attributes.get(name) for name in _HOOK_DICTS)
    if not any(dicts):  # the usual case, checked without building a dictionary per kind of hook
        return {}
    return {name: dict(hooks) for name, hooks in zip(_HOOK_DICTS, dicts, strict=True) if hooks}
