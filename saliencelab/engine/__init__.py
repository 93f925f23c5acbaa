"""The rule engine: replaces the backward pass of chosen operations while a method runs.

Operations are intercepted by one :class:`Interception` (a
:class:`torch.overrides.TorchFunctionMode`), so a rule applies whichever way the
model calls the operation (``nn.ReLU``, ``F.relu``, ``torch.relu``,
``Tensor.relu``, ``relu_``, a module reused twice) and nothing is registered on
the model. A model whose operations the engine cannot see
(TorchScript; the layers of a ``torch.export`` graph) is refused while a method
needs to see them (:func:`require_sight`).
"""

from saliencelab.engine.backward import Propagate, PropagateKnowingOutput, gated_backward, modified_backward
from saliencelab.engine.gates import gate_rules, linear_products
from saliencelab.engine.intercept import Call, Interception, OpRule, is_marked, map_tensors, tensors_in
from saliencelab.engine.ops import (
    DATA_MOVEMENT,
    ELEMENTWISE_ACTIVATIONS,
    LINEAR,
    PRODUCTS,
    QUERIES,
    ROUTING,
    op_name,
)
from saliencelab.engine.sight import OpaqueModelError, opaque_kind, require_sight
from saliencelab.engine.watch import watching_modules

__all__ = [
    "DATA_MOVEMENT",
    "ELEMENTWISE_ACTIVATIONS",
    "LINEAR",
    "PRODUCTS",
    "QUERIES",
    "ROUTING",
    "Call",
    "Interception",
    "OpRule",
    "OpaqueModelError",
    "Propagate",
    "PropagateKnowingOutput",
    "gate_rules",
    "gated_backward",
    "is_marked",
    "linear_products",
    "map_tensors",
    "modified_backward",
    "op_name",
    "opaque_kind",
    "require_sight",
    "tensors_in",
    "watching_modules",
]
