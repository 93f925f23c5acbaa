"""The class activation map family and VisualBackProp: one map per sample, ``(N, 1, H, W)``.

Importing this package registers its methods.
"""

from saliencelab.methods.cam import eigen, gradient_weighted, perturbed, visual_backprop

__all__ = ["eigen", "gradient_weighted", "perturbed", "visual_backprop"]
