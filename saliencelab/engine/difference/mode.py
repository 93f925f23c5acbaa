"""The torch-function mode that propagates differences from the reference through a model."""

from __future__ import annotations

from typing import Any

import torch

from saliencelab.engine.difference.call import DifferenceCall
from saliencelab.engine.difference.composite import DECOMPOSITIONS, Refused
from saliencelab.engine.difference.difference import Settings, attach, difference_of
from saliencelab.engine.difference.table import DIFFERENCE_RULES
from saliencelab.engine.intercept import Interception, tensors_in
from saliencelab.errors import NonFiniteResultError

CASTS = frozenset("to float half bfloat16 type type_as".split())
"""The operations that can convert a difference to a coarser dtype (besides a ``dtype=`` argument)."""


class Precision:
    """The coarsest floating dtype any difference passed through: a model may cast parts of itself to float32.

    Example
    -------
    >>> seen = Precision(torch.float64)
    >>> seen.saw(torch.ones(1, dtype=torch.float32))  # no difference attached: not counted
    >>> seen.eps == torch.finfo(torch.float64).eps
    True
    """

    def __init__(self, dtype: torch.dtype) -> None:
        self.eps = torch.finfo(dtype).eps

    def saw(self, result: Any) -> None:
        """Count the dtypes of the tensors in ``result`` that carry a difference."""
        for tensor in tensors_in(result):
            if tensor.is_floating_point() and difference_of(tensor) is not None:
                self.eps = max(self.eps, torch.finfo(tensor.dtype).eps)


class DifferenceMode(Interception):
    """While active, every operation on a tensor that carries a difference propagates it.

    The :class:`~saliencelab.engine.Interception` whose "depends on the input"
    is "carries a difference from the reference", and whose rules
    (:data:`~saliencelab.engine.difference.table.DIFFERENCE_RULES`) attach the
    output's difference.

    Operations on constants only (parameters, buffers, shapes) run unchanged.
    Layer, group and RMS norms, vector norms and ``F.normalize``, ``addmm`` and
    ``baddbmm``, and attention run as their definitions
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
    whose difference is NaN or Inf raises :class:`~saliencelab.errors.NonFiniteResultError` naming it
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

    def __init__(
        self, settings: Settings, *, method: str, check_finite: bool = False, precision: Precision | None = None
    ) -> None:
        super().__init__(
            DIFFERENCE_RULES,
            method=method,
            hint="DeepLIFT needs an exact rule for every operation between the input and the output; "
            "compute it with supported operations or explain with integrated_gradients",
        )
        self.settings = settings
        self.check_finite = check_finite
        self.precision = precision

    def depends(self, tensor: torch.Tensor) -> bool:
        return difference_of(tensor) is not None

    def mark_result(self, call: DifferenceCall, result: Any) -> None:
        """Nothing to mark: the rules attach each output's difference."""

    def normalise(self, func, args: tuple, kwargs: dict) -> DifferenceCall:
        return DifferenceCall.of(func, args, kwargs, method=self.method, settings=self.settings)

    def dispatch(self, call: DifferenceCall) -> Any:
        """The operation's result, with its difference attached by the operation's rule."""
        if torch.is_grad_enabled():
            result = self._propagate(call)
        else:  # a no_grad block or a custom Function's forward inside the model
            with torch.enable_grad():
                result = self._propagate(call)
        if self.check_finite:
            self._require_finite(call.name, result)
        if self.precision is not None and (call.name in CASTS or call.kwargs.get("dtype") is not None):
            self.precision.saw(result)  # only a cast can lower the precision: mixed dtypes promote upwards
        return result

    def _propagate(self, call: DifferenceCall) -> Any:
        if call.name in DECOMPOSITIONS and not call.inplace:
            with self:
                try:
                    return DECOMPOSITIONS[call.name](*call.args, **call.kwargs)
                except Refused as refusal:
                    raise call.unsupported(str(refusal)) from None
        rule = self.rules.get(call.name)
        if rule is None:
            return self.unlisted(call)
        if not call.inplace:
            return rule(call)
        return self._in_place(rule, call)

    def _require_finite(self, name: str, result: Any) -> None:
        """Raise :class:`~saliencelab.errors.NonFiniteResultError` if a difference in ``result`` is NaN or Inf."""
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
            raise NonFiniteResultError(
                f"{self.method}: the difference from the reference after the operation '{name}' is NaN or Inf; {cause}"
            )

    def _in_place(self, rule, call: DifferenceCall) -> torch.Tensor:
        """Run the out-of-place form, then write its value and difference into the target."""
        target = call.args[0]
        if difference_of(target) is None or target._base is not None:
            raise call.unsupported(
                "an in-place operation on a view or on a tensor that does not depend on the input; "
                "write it out of place"
            )
        result = rule(call.out_of_place())
        with torch.no_grad():
            target.copy_(result)
        return attach(target, difference_of(result))
