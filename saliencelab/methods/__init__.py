"""Attribution methods, one module per family. Importing this package registers them.

A method is registered once, by :func:`~saliencelab.core.registry.register` on
its class; ``saliencelab`` exports every registered class under its class name.
"""

from saliencelab.methods import cam, deeplift, gradient, lrp, noise, path, pattern, perturbation

__all__ = ["cam", "deeplift", "gradient", "lrp", "noise", "path", "pattern", "perturbation"]
