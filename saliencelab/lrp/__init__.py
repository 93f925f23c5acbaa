"""Layer-wise relevance propagation: the rule protocol and its rules, composites, batch-norm merging, the engine.

The AttnLRP rules for transformers (softmax, products of activations, layer and
RMS norm, fused attention) are in :mod:`saliencelab.lrp.attention`; the
``"transformer"`` composite turns them on.

A rule is a :class:`RelevanceRule` (built in: :func:`rule` by name, or the
classes :class:`Epsilon`, :class:`ZPlus`, ...; or your own subclass); a
:class:`Composite` says which rule each layer gets.
"""

from saliencelab.lrp.composites import COMPOSITES, Composite, standard_composite
from saliencelab.lrp.rules import (
    RULE_NAMES,
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Layer,
    Pass,
    RelevanceRule,
    WSquare,
    ZBox,
    ZPlus,
    rule,
    share,
)

__all__ = [
    "COMPOSITES",
    "RULE_NAMES",
    "AlphaBeta",
    "Composite",
    "Epsilon",
    "Flat",
    "Gamma",
    "Layer",
    "Pass",
    "RelevanceRule",
    "WSquare",
    "ZBox",
    "ZPlus",
    "rule",
    "share",
    "standard_composite",
]
