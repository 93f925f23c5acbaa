"""Layer-wise relevance propagation: rules, composites and the relevance engine."""

from saliencelab.lrp.composites import COMPOSITES, Composite
from saliencelab.lrp.rules import RULES, Rule, rule

__all__ = ["COMPOSITES", "RULES", "Composite", "Rule", "rule"]
