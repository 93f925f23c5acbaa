"""Refusing models that the engine cannot see into, instead of silently giving other numbers.

The engine sees a model's operations through a ``TorchFunctionMode`` and its
layers through module hooks, both in Python. A TorchScript model
(``torch.jit.script``, ``torch.jit.trace``, ``torch.jit.load``) runs its
operations and submodules in C++: no mode sees them and no hook fires, so a
method that replaces or records operations would return, without an error, the
plain gradient or some other number. A ``torch.export`` graph
(``torch.export.load(path).module()``) calls ATen operations from Python, which
the modes see (:func:`~saliencelab.engine.op_name` names them), but never calls
its submodules, so module hooks see no layer.

:func:`require_sight` watches, while a method runs, every module the model
calls from Python while something intercepts (an interception holds the module
hooks for it: :func:`~saliencelab.engine.watch.hold_hooks`). It raises :class:`OpaqueModelError` when such a model runs
while something that needs to see inside it is active: a saliencelab
interception (for TorchScript; incremental occlusion's patched maps run under
one too) or a saliencelab module watcher in the same thread
(:func:`~saliencelab.engine.watch.watching_modules`, for both). The same model run for its outputs
and gradients alone is left alone: gradient, integrated gradients, occlusion
and the sampling methods work on it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from saliencelab.engine.watch import watches_inside, watching_modules
from saliencelab.errors import UnsupportedOperationError

TORCHSCRIPT = "TorchScript (torch.jit.script, torch.jit.trace or torch.jit.load)"
EXPORTED = "torch.export graph (torch.export.load(...).module())"

_ALTERNATIVES = (
    "Pass the eager nn.Module the model was made from (load the same weights into it), or use a method that "
    "needs only the model's outputs and gradients (gradient, gradient_x_input, integrated_gradients, "
    "smoothgrad over one of them, occlusion, kernel_shap, lime, rise, ...)"
)


class OpaqueModelError(UnsupportedOperationError):
    """A method needs to see inside a model that hides its operations or layers from Python.

    Attributes
    ----------
    method:
        The method's name.
    operation:
        What kind of model it is (:data:`TORCHSCRIPT` or :data:`EXPORTED`).

    Example
    -------
    >>> error = OpaqueModelError("guided_backprop", TORCHSCRIPT, "replaces the backward of operations")
    >>> str(error).split(":")[0]
    'guided_backprop cannot see inside this TorchScript (torch.jit.script, torch.jit.trace or torch.jit.load) model'
    """

    def __init__(self, method: str, kind: str, needs: str) -> None:
        hidden = (
            "TorchScript runs the model's operations and layers in C++, where no rule reaches them"
            if kind == TORCHSCRIPT
            else "the graph calls its operations directly, never through its submodules"
        )
        message = (
            f"{method} cannot see inside this {kind} model: it {needs}, and {hidden}, so it would silently "
            f"give other numbers. {_ALTERNATIVES}"
        )
        NotImplementedError.__init__(self, message)
        self.operation = kind
        self.method = method


def opaque_kind(module: object) -> str | None:
    """:data:`TORCHSCRIPT`, :data:`EXPORTED` or None (a model whose operations and layers run in Python).

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> opaque_kind(net) is None, opaque_kind(torch.jit.script(net)) == TORCHSCRIPT
    (True, True)
    >>> exported = torch.export.export(net, (torch.zeros(1, 2),)).module()
    >>> opaque_kind(exported) == EXPORTED
    True
    """
    if isinstance(module, torch.jit.ScriptModule):
        return TORCHSCRIPT
    if isinstance(module, torch.fx.GraphModule) and any(
        isinstance(node.target, torch._ops.OpOverload) for node in module.graph.nodes
    ):
        return EXPORTED
    return None


@contextmanager
def require_sight(method: str) -> Iterator[None]:
    """Within the block, an opaque model run while ``method`` intercepts raises :class:`OpaqueModelError`.

    Example
    -------
    >>> from saliencelab.engine import Interception
    >>> scripted = torch.jit.script(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    >>> with require_sight("gradient"):
    ...     scripted(torch.ones(1, 2)).shape  # no interception: the model runs
    torch.Size([1, 2])
    >>> with require_sight("guided_backprop"), Interception({}, method="guided_backprop"):
    ...     scripted(torch.ones(1, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    saliencelab.engine.sight.OpaqueModelError: guided_backprop cannot see inside this TorchScript ...
    """

    def check(module: nn.Module, args: tuple) -> None:
        kind = opaque_kind(module)
        if kind is None:
            return
        needs = _what_intercepts(hooks_only=kind == EXPORTED)
        if needs:
            raise OpaqueModelError(method, kind, needs)

    # Unless something intercepts already, the check waits for an interception or a watcher to install the hooks:
    # a model run for its outputs and gradients alone keeps PyTorch's fast path for module calls.
    with watching_modules(before=check, sees_inside=False, installs=bool(_what_intercepts(hooks_only=False))):
        yield


def _what_intercepts(hooks_only: bool) -> str:
    """What of saliencelab's is watching the model's inside now, in words ('' for nothing)."""
    if watches_inside():
        return "watches the model's layers with module hooks (a CAM layer, LRP's per-layer rules)"
    if hooks_only:
        return ""
    ours = [mode for mode in torch.overrides._get_current_function_mode_stack() if _ours(type(mode))]
    return ours[-1].sight_reason if ours else ""


def _ours(thing: object) -> bool:
    return str(getattr(thing, "__module__", None) or "").startswith("saliencelab.")
