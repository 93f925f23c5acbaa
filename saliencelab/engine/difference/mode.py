"""The torch-function mode that propagates differences from the reference through a model."""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from saliencelab.engine.difference.call import Call, tensors_in
from saliencelab.engine.difference.composite import DECOMPOSITIONS
from saliencelab.engine.difference.difference import Settings, attach, difference_of
from saliencelab.engine.difference.table import RULES
from saliencelab.engine.ops import functional_call, op_name, out_of_place
from saliencelab.errors import UnsupportedOperationError

_INPLACE_POSITION = {
    "relu": 1,
    "relu6": 1,
    "selu": 1,
    "leaky_relu": 2,
    "elu": 2,
    "celu": 2,
    "hardtanh": 3,
    "threshold": 3,
    "rrelu": 4,
    "dropout": 3,
    "dropout1d": 3,
    "dropout2d": 3,
    "dropout3d": 3,
    "alpha_dropout": 3,
    "feature_alpha_dropout": 3,
}
"""Position of the ``inplace`` flag of functional operations that take it positionally."""


class DifferenceMode(TorchFunctionMode):
    """While active, every operation on a tensor that carries a difference propagates it.

    Operations on constants only (parameters, buffers, shapes) run unchanged.
    Layer and group norms and attention run as their definitions
    (:mod:`~saliencelab.engine.difference.composite`), each piece by its rule.
    Operations that return no tensor (``size``, ``dim``, ``shape``, ...) are
    answered from the model's own values. Anything else without a rule raises
    :class:`UnsupportedOperationError`.

    Differences always carry autograd history, whatever grad mode the model's own
    code runs under: a ``torch.no_grad()`` block, the forward of a custom
    ``autograd.Function``, or the identity functions that full backward hooks
    (``register_full_backward_hook``) wrap around a module's inputs and outputs.
    The multipliers are the gradient of the differences, never of the model's
    values, so such hooks are not called.

    With ``check_finite``, every operation's result is checked, and the first one
    whose difference is NaN or Inf raises :class:`FloatingPointError` naming it
    (one synchronisation per operation: for diagnosing a result that is not finite).

    Example
    -------
    >>> from saliencelab.engine.difference.difference import Difference, split
    >>> settings = Settings(reveal_cancel=False, threshold=1e-6)
    >>> x = attach(torch.tensor([[3.0]]), Difference(torch.tensor([[-1.0]]), *split(torch.tensor([[4.0]]), settings)))
    >>> with DifferenceMode(settings, method="deeplift"):
    ...     y = torch.relu(x - 1.0) * 2
    >>> difference_of(y).ref, difference_of(y).delta
    (tensor([[0.]]), tensor([[4.]]))
    """

    def __init__(self, settings: Settings, *, method: str, check_finite: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.method = method
        self.check_finite = check_finite

    def __torch_function__(self, func, types, args=(), kwargs=None):
        func, args, kwargs = functional_call(func, args, kwargs or {})
        if not any(difference_of(t) is not None for t in tensors_in((args, kwargs))):
            return func(*args, **kwargs)
        name, inplace = op_name(func)
        if name == "__get__":
            name = getattr(getattr(func, "__self__", None), "__name__", name)
        with torch.enable_grad():
            result = self._propagate(func, name, inplace, args, kwargs)
        if self.check_finite:
            self._require_finite(name, result)
        return result

    def _propagate(self, func, name: str, inplace: bool, args: tuple, kwargs: dict) -> Any:
        """The operation's result, with its difference attached by the operation's rule."""
        position = _INPLACE_POSITION.get(name)
        positional = position is not None and len(args) > position and args[position] is True
        inplace = inplace or kwargs.get("inplace") is True or positional
        if name in DECOMPOSITIONS and not inplace:
            with self:
                return DECOMPOSITIONS[name](*args, **kwargs)
        rule = RULES.get(name)
        if rule is None:
            return self._answer(func, name, args, kwargs, inplace)
        if not inplace:
            return rule(Call(func, name, args, kwargs, self.settings, self.method))
        return self._in_place(rule, func, name, args, kwargs, position if positional else None)

    def _require_finite(self, name: str, result: Any) -> None:
        """Raise :class:`FloatingPointError` if a difference in ``result`` is NaN or Inf."""
        for tensor in tensors_in(result):
            diff = difference_of(tensor)
            if diff is None or all(bool(torch.isfinite(part).all()) for part in diff.parts):
                continue
            rule = "reveal_cancel" if self.settings.reveal_cancel else "rescale"
            own = [
                end
                for end, value in (("input", tensor), ("reference", diff.ref))
                if not bool(torch.isfinite(value).all())
            ]
            cause = (
                f"the model's own '{name}' is NaN or Inf at the {' and the '.join(own)}: fix the model or the reference"
                if own
                else f"the {rule} rule's multiplier is not finite there (an infinite slope where the difference "
                f"vanishes, e.g. sqrt at 0, or arithmetic beyond the range of {tensor.dtype}): explain in float64"
                + (", with rule='rescale'" if self.settings.reveal_cancel else "")
                + " or against another reference"
            )
            raise FloatingPointError(
                f"{self.method}: the difference from the reference after the operation '{name}' is NaN or Inf; {cause}"
            )

    def _answer(self, func, name: str, args: tuple, kwargs: dict, inplace: bool) -> Any:
        """Queries that return no tensor are answered; other operations have no rule."""
        if inplace or name == "__setitem__":
            raise UnsupportedOperationError(
                name, self.method, "it writes into an input-dependent tensor in place; write it out of place"
            )
        result = func(*args, **kwargs)
        if tensors_in(result):
            raise UnsupportedOperationError(
                name,
                self.method,
                "DeepLIFT needs an exact rule for every operation between the input and the output; "
                "compute it with supported operations or explain with integrated_gradients",
            )
        return result

    def _in_place(self, rule, func, name: str, args: tuple, kwargs: dict, position: int | None) -> torch.Tensor:
        """Run the out-of-place form, then write its value and difference into the target."""
        target = args[0]
        if difference_of(target) is None or target._base is not None:
            raise UnsupportedOperationError(
                name,
                self.method,
                "an in-place operation on a view or on a tensor that does not depend on the input; "
                "write it out of place",
            )
        if position is not None:
            args = (*args[:position], False, *args[position + 1 :])
        if "inplace" in kwargs:
            kwargs = {**kwargs, "inplace": False}
        else:
            func = out_of_place(func)
        result = rule(Call(func, name, args, kwargs, self.settings, self.method))
        with torch.no_grad():
            target.copy_(result)
        return attach(target, difference_of(result))
