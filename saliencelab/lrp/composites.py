"""Composites: which LRP rule each linear layer gets, by layer name, type or position.

A composite maps ``"dense"`` (``linear``), ``"conv"`` (convolutions and transposed
convolutions), module classes, or dotted module names to rules
(:class:`~saliencelab.lrp.RelevanceRule` instances, built in or your own), with a
rule for the first linear layer of the forward pass (the input layer) and a
default. Name beats type beats the default; ``first`` beats everything.

Example
-------
>>> from saliencelab.lrp import Composite, rule
>>> mine = Composite({"conv": rule("gamma", gamma=0.1), "dense": rule("epsilon", epsilon=0.01)})
>>> mine.rule_for("conv2d", "features.0", None, position=3)
Gamma(gamma=0.1)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from saliencelab.lrp.rules import AlphaBeta, Epsilon, Flat, Gamma, RelevanceRule, ZBox, ZPlus

CONVOLUTIONS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
LAYER_OPS = frozenset({"linear"} | CONVOLUTIONS)
"""The layer operations a composite chooses a rule for: dense layers and convolutions."""
DENSE = frozenset({"linear", "matmul", "mm", "bmm", "einsum"})
"""Operations of the ``"dense"`` family: a dense layer, or a product with one constant factor (``x @ W``)."""

FAMILIES = ("dense", "conv")


@dataclass(frozen=True)
class Composite:
    """Rules for the linear layers of a model.

    ``layers`` keys: ``"dense"``, ``"conv"``, an ``nn.Module`` subclass, or a
    dotted module name (as in ``model.named_modules()``; only for a model that
    is an ``nn.Module``). ``first`` applies to the first linear layer (with
    weights) of the forward pass. Every value is a
    :class:`~saliencelab.lrp.RelevanceRule`. ``attention=True`` adds the
    AttnLRP rules for softmax, products of two activations, layer and RMS norm
    and fused attention (:mod:`saliencelab.lrp.attention`); without them
    those operations raise :class:`~saliencelab.UnsupportedOperationError`.

    Example
    -------
    >>> from saliencelab.lrp import rule
    >>> Composite({"dense": "epsilon"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: the composite's rule for 'dense' is a str, not a RelevanceRule; ...
    """

    layers: dict[object, RelevanceRule] = field(default_factory=dict)
    first: RelevanceRule | None = None
    default: RelevanceRule = field(default_factory=Epsilon)
    attention: bool = False

    def __post_init__(self) -> None:
        chosen = {**self.layers, "first": self.first, "default": self.default}
        for key, value in chosen.items():
            if value is not None and not isinstance(value, RelevanceRule):
                raise TypeError(
                    f"the composite's rule for {key!r} is a {type(value).__name__}, not a RelevanceRule; "
                    "use saliencelab.lrp.rule(name, ...) or an instance of your RelevanceRule subclass"
                )

    @property
    def names_layers(self) -> bool:
        """True when a key is a module class or a dotted name: choosing a rule then needs the calling module.

        Example
        -------
        >>> from saliencelab.lrp import rule
        >>> Composite({"dense": rule("epsilon")}).names_layers, Composite({nn.Conv2d: rule("zplus")}).names_layers
        (False, True)
        """
        return any(key not in FAMILIES for key in self.layers)

    @property
    def dotted_names(self) -> list[str]:
        """The keys that are dotted module names (they need the model to be an ``nn.Module``).

        Example
        -------
        >>> from saliencelab.lrp import rule
        >>> Composite({"features.0": rule("flat"), nn.Linear: rule("epsilon")}).dotted_names
        ['features.0']
        """
        return [key for key in self.layers if isinstance(key, str) and key not in FAMILIES]

    def rule_for(self, op: str, module_name: str | None, module: nn.Module | None, position: int) -> RelevanceRule:
        """The rule of the ``position``-th linear layer, the operation ``op`` called inside ``module``."""
        if position == 0 and self.first is not None:
            return self.first
        if module_name is not None and module_name in self.layers:
            return self.layers[module_name]
        for key, chosen in self.layers.items():
            if isinstance(key, type) and module is not None and isinstance(module, key):
                return chosen
        family = "conv" if op in CONVOLUTIONS else "dense" if op in DENSE else None
        return self.layers.get(family, self.default)


def epsilon_plus(*, epsilon: float = 1e-6) -> Composite:
    """ε on dense layers, z⁺ on convolutions."""
    return Composite({"dense": Epsilon(epsilon), "conv": ZPlus()})


def epsilon_alpha2_beta1(*, epsilon: float = 1e-6) -> Composite:
    """ε on dense layers, α=2 β=1 on convolutions."""
    return Composite({"dense": Epsilon(epsilon), "conv": AlphaBeta(2.0, 1.0)})


def epsilon_plus_flat(*, epsilon: float = 1e-6) -> Composite:
    """:func:`epsilon_plus` with the flat rule on the input layer."""
    return Composite({"dense": Epsilon(epsilon), "conv": ZPlus()}, first=Flat())


def epsilon_alpha2_beta1_flat(*, epsilon: float = 1e-6) -> Composite:
    """:func:`epsilon_alpha2_beta1` with the flat rule on the input layer."""
    return Composite({"dense": Epsilon(epsilon), "conv": AlphaBeta(2.0, 1.0)}, first=Flat())


def epsilon_gamma_box(*, low: Any, high: Any, epsilon: float = 1e-6, gamma: float = 0.25) -> Composite:
    """ε on dense layers, γ on convolutions, z^B with the bounds ``low``/``high`` on the input layer."""
    return Composite({"dense": Epsilon(epsilon), "conv": Gamma(gamma)}, first=ZBox(low, high))


def transformer(*, epsilon: float = 1e-6) -> Composite:
    """AttnLRP (Achtibat et al. 2024): ε on dense layers, the attention rules on softmax, products and norms.

    Example
    -------
    >>> transformer(epsilon=0.01)
    Composite(layers={'dense': Epsilon(epsilon=0.01)}, first=None, default=Epsilon(epsilon=1e-06), attention=True)
    """
    return Composite({"dense": Epsilon(epsilon)}, attention=True)


STANDARD: dict[str, Callable[..., Composite]] = {
    "epsilon_plus": epsilon_plus,
    "epsilon_alpha2_beta1": epsilon_alpha2_beta1,
    "epsilon_gamma_box": epsilon_gamma_box,
    "epsilon_plus_flat": epsilon_plus_flat,
    "epsilon_alpha2_beta1_flat": epsilon_alpha2_beta1_flat,
    "transformer": transformer,
}
"""The standard composites (Kohlbrenner et al. 2020, Montavon et al. 2019; Achtibat et al. 2024 for
``"transformer"``), built from their options."""

COMPOSITES = tuple(STANDARD)
"""Names accepted by ``composite=``."""


def standard_composite(name: str, **options: Any) -> Composite:
    """The standard composite ``name`` built with ``options``; an option it does not use is a ``TypeError``.

    Example
    -------
    >>> standard_composite("epsilon_plus", epsilon=0.1).layers["dense"]
    Epsilon(epsilon=0.1)
    >>> standard_composite("epsilon_plus", gamma=0.5)
    Traceback (most recent call last):
    ...
    TypeError: the epsilon_plus composite takes ['epsilon']; it does not use ['gamma']
    """
    if name not in STANDARD:
        raise ValueError(f"unknown composite {name!r}; choose one of {COMPOSITES} or a Composite")
    build = STANDARD[name]
    takes = inspect.signature(build).parameters
    unused = sorted(set(options) - set(takes))
    if unused:
        raise TypeError(f"the {name} composite takes {sorted(takes)}; it does not use {unused}")
    missing = [key for key, p in takes.items() if p.default is inspect.Parameter.empty and options.get(key) is None]
    if missing:
        raise ValueError(f"the {name} composite needs {' and '.join(f'{key}=' for key in missing)} (the input bounds)")
    return build(**options)
