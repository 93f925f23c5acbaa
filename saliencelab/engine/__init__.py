"""The rule engine: replaces the backward pass of chosen operations while a method runs.

Operations are intercepted with a :class:`torch.overrides.TorchFunctionMode`, so a
rule applies whichever way the model calls the operation (``nn.ReLU``, ``F.relu``,
``torch.relu``, ``Tensor.relu``, ``relu_``, a module reused twice) and nothing is
registered on the model. A model whose operations the engine cannot see
(TorchScript; the layers of a ``torch.export`` graph) is refused while a method
needs to see them (:func:`require_sight`).
"""

from saliencelab.engine.mode import Propagate, Rule, RuleMode, modified_backward
from saliencelab.engine.ops import ELEMENTWISE_ACTIVATIONS, op_name
from saliencelab.engine.sight import OpaqueModelError, opaque_kind, require_sight

__all__ = [
    "ELEMENTWISE_ACTIVATIONS",
    "OpaqueModelError",
    "Propagate",
    "Rule",
    "RuleMode",
    "modified_backward",
    "op_name",
    "opaque_kind",
    "require_sight",
]
