"""The rule engine: replaces the backward pass of chosen operations while a method runs.

Operations are intercepted with a :class:`torch.overrides.TorchFunctionMode`, so a
rule applies whichever way the model calls the operation (``nn.ReLU``, ``F.relu``,
``torch.relu``, ``Tensor.relu``, ``relu_``, a module reused twice) and nothing is
registered on the model.
"""

from saliencelab.engine.mode import Propagate, Rule, RuleMode, modified_backward
from saliencelab.engine.ops import ELEMENTWISE_ACTIVATIONS, op_name

__all__ = ["ELEMENTWISE_ACTIVATIONS", "Propagate", "Rule", "RuleMode", "modified_backward", "op_name"]
