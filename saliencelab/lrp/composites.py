"""Composites: which LRP rule each linear operation gets, by layer name, type or position.

A composite maps ``"dense"`` (``linear``), ``"conv"`` (convolutions and transposed
convolutions), module classes, or dotted module names to rules, with a rule for
the first linear operation of the forward pass (the input layer) and a default.
Name beats type beats the default; ``first`` beats everything.

Example
-------
>>> from saliencelab.lrp import Composite, rule
>>> mine = Composite({"conv": rule("gamma", gamma=0.1), "dense": rule("epsilon", epsilon=0.01)})
>>> mine.rule_for("conv2d", "features.0", None, position=3).name
'gamma'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from saliencelab.lrp.rules import Rule, rule

CONVOLUTIONS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})


@dataclass(frozen=True)
class Composite:
    """Rules for the linear operations of a model.

    ``layers`` keys: ``"dense"``, ``"conv"``, an ``nn.Module`` subclass, or a
    dotted module name (as in ``model.named_modules()``). ``first`` applies to
    the first linear operation (with weights) of the forward pass.
    """

    layers: dict[object, Rule] = field(default_factory=dict)
    first: Rule | None = None
    default: Rule = field(default_factory=lambda: rule("epsilon"))

    @property
    def names_layers(self) -> bool:
        """True when a key is a module class or a dotted name: choosing a rule then needs the calling module.

        Example
        -------
        >>> Composite({"dense": rule("epsilon")}).names_layers, Composite({nn.Conv2d: rule("zplus")}).names_layers
        (False, True)
        """
        return any(key not in ("dense", "conv") for key in self.layers)

    def rule_for(self, op: str, module_name: str | None, module: nn.Module | None, position: int) -> Rule:
        """The rule of the ``position``-th linear operation ``op``, called inside ``module``."""
        if position == 0 and self.first is not None:
            return self.first
        if module_name is not None and module_name in self.layers:
            return self.layers[module_name]
        for key, chosen in self.layers.items():
            if isinstance(key, type) and module is not None and isinstance(module, key):
                return chosen
        family = "conv" if op in CONVOLUTIONS else "dense" if op == "linear" else None
        return self.layers.get(family, self.default)


def standard_composites(low: object = None, high: object = None) -> dict[str, Composite]:
    """The standard composites (Kohlbrenner et al. 2020, Montavon et al. 2019); ``low``/``high`` bound z^B."""
    epsilon, zplus = rule("epsilon", epsilon=1e-6), rule("zplus")
    alpha2_beta1, flat = rule("alpha_beta", alpha=2.0, beta=1.0), rule("flat")
    composites = {
        "epsilon_plus": Composite({"dense": epsilon, "conv": zplus}),
        "epsilon_alpha2_beta1": Composite({"dense": epsilon, "conv": alpha2_beta1}),
        "epsilon_plus_flat": Composite({"dense": epsilon, "conv": zplus}, first=flat),
        "epsilon_alpha2_beta1_flat": Composite({"dense": epsilon, "conv": alpha2_beta1}, first=flat),
    }
    if low is not None and high is not None:
        box = rule("zbox", low=low, high=high)
        composites["epsilon_gamma_box"] = Composite({"dense": epsilon, "conv": rule("gamma", gamma=0.25)}, first=box)
    return composites


COMPOSITES = (
    "epsilon_plus",
    "epsilon_alpha2_beta1",
    "epsilon_gamma_box",
    "epsilon_plus_flat",
    "epsilon_alpha2_beta1_flat",
)
"""Names accepted by ``composite=`` (``epsilon_gamma_box`` takes its bounds from ``low``/``high``)."""
