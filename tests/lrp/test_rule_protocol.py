"""The rule protocol: a user's RelevanceRule runs like a built-in one, and the built-ins are instances of it."""

from __future__ import annotations

import pytest
import torch
from helpers import conv_net
from torch import nn

import saliencelab as sl
from saliencelab.lrp import RULE_NAMES, Composite, Layer, RelevanceRule, rule, share

D = torch.float64


class MyEpsilon(RelevanceRule):
    """LRP-ε written from the protocol's two primitives: the layer and its transpose."""

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon
        self.seen: list[tuple[int, ...]] = []

    def relevance(self, inputs: torch.Tensor, out_relevance: torch.Tensor, layer: Layer) -> torch.Tensor:
        self.seen.append(tuple(layer.weight.shape))
        z = layer(inputs)
        s = out_relevance / (z + self.epsilon * torch.where(z >= 0, 1.0, -1.0))
        return inputs * layer.transpose(s)


class MyZPlus(RelevanceRule):
    """z⁺ written with :func:`share`."""

    def relevance(self, inputs, out_relevance, layer):
        terms = [
            (inputs.clamp(min=0), lambda w: w.clamp(min=0), True),
            (inputs.clamp(max=0), lambda w: w.clamp(max=0), False),
        ]
        return share(out_relevance, layer, terms, layer.stabilizer)


@pytest.mark.parametrize("bias", ["absorb", "ignore"])
def test_a_user_defined_epsilon_matches_the_built_in_one(bias):
    torch.manual_seed(0)
    model = conv_net("functional", classes=4).double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    mine = MyEpsilon(0.25)
    ours = sl.LRP(model, composite=Composite(default=mine), bias=bias)(x, target=2).values
    built_in = sl.LRP(model, rule="epsilon", epsilon=0.25, bias=bias)(x, target=2).values
    torch.testing.assert_close(ours, built_in, rtol=1e-12, atol=1e-14)
    assert len(mine.seen) >= 2 and len(set(mine.seen)) == len(mine.seen)  # it ran on every layer, once each


def test_a_user_rule_mixes_with_built_in_rules_in_a_composite():
    torch.manual_seed(1)
    model = conv_net("module", classes=3).double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=D)
    theirs = Composite({"conv": MyZPlus(), "dense": MyEpsilon(1e-6)})
    built_in = Composite({"conv": rule("zplus"), "dense": rule("epsilon", epsilon=1e-6)})
    torch.testing.assert_close(
        sl.LRP(model, composite=theirs)(x, target=0).values,
        sl.LRP(model, composite=built_in)(x, target=0).values,
        rtol=1e-12,
        atol=1e-14,
    )


def test_the_rule_sees_the_bias_only_when_it_is_absorbed():
    biases: list[object] = []

    class Spy(RelevanceRule):
        def relevance(self, inputs, out_relevance, layer):
            biases.append(layer.bias)
            return sl.lrp.Epsilon().relevance(inputs, out_relevance, layer)

    model = nn.Linear(3, 2).double()
    x = torch.randn(2, 3, dtype=D)
    sl.LRP(model, composite=Composite(default=Spy()), bias="ignore")(x, target=0)
    sl.LRP(model, composite=Composite(default=Spy()), bias="absorb")(x, target=0)
    assert biases[0] is None
    torch.testing.assert_close(biases[1], model.bias.detach())
    assert not biases[1].requires_grad  # a rule cannot reach the model's parameters


def test_built_in_rules_are_instances_of_the_protocol_and_composites_take_only_rules():
    bounds = {"zbox": {"low": 0.0, "high": 1.0}}
    assert all(isinstance(rule(name, **bounds.get(name, {})), RelevanceRule) for name in RULE_NAMES)
    with pytest.raises(TypeError, match="not a RelevanceRule"):
        Composite({"conv": "zplus"})
    with pytest.raises(TypeError, match="not a RelevanceRule"):
        Composite(first=lambda inputs, relevance, layer: relevance)
