"""Difference propagation: DeepLIFT's linear, Rescale and RevealCancel rules on any graph.

A :class:`DifferenceMode` carries, for every tensor that depends on the input, its
value at the reference and its difference from it (split into positive and
negative parts for RevealCancel), through every operation the model calls,
whichever way it calls it. The differences are built from the input's difference
with every multiplier detached, so one backward pass gives the multipliers and
summation-to-delta holds by construction.
"""

from saliencelab.engine.difference.difference import Difference, Settings, attach, difference_of, split
from saliencelab.engine.difference.mode import DifferenceMode

__all__ = ["Difference", "DifferenceMode", "Settings", "attach", "difference_of", "split"]
