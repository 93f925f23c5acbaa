"""Meaningful Perturbation's score (Fong & Vedaldi 2017): it must not saturate on confident models."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import conv_net

import saliencelab as sl
from saliencelab.core.targets import Target
from saliencelab.demo import DEMO_OPTIONS
from saliencelab.methods.perturbation.meaningful_perturbation import SCORES, target_score


class Scaled(torch.nn.Module):
    """A classifier whose logits are multiplied by ``factor`` (large: its softmax rounds to exactly 1.0)."""

    def __init__(self, model: torch.nn.Module, factor: float) -> None:
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * self.model(x)


def test_log_odds_is_the_logit_of_the_probability():
    logits = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.2, -1.0]], dtype=torch.float64)
    target = Target(classes=torch.tensor([0, 2]))
    p = logits.softmax(dim=1)[[0, 1], [0, 2]]
    # float64 on logits of order 1: the closed form log(p / (1 − p)) is exact to rounding
    torch.testing.assert_close(target_score(logits, target, "log_odds"), (p / (1 - p)).log())
    torch.testing.assert_close(target_score(logits, target, "log_probability"), p.log())
    torch.testing.assert_close(target_score(logits, target, "probability"), p)
    torch.testing.assert_close(target_score(logits, target, "logit"), logits[[0, 1], [0, 2]])


def test_saturated_model_gets_a_nonzero_map():
    model = Scaled(conv_net("module", seed=3), 1000.0)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        output = model(x)
    target = output.argmax(dim=1)
    assert bool((output.softmax(dim=1).max(dim=1).values == 1.0).all())  # saturated in float32
    options = {"method": "meaningful_perturbation", "target": target, "steps": 30, "resolution": 4}
    a = sl.explain(model, x, **options)
    assert a.info["score"] == "log_odds" and bool(a.info["mask_moved"].all())
    assert bool((a.values.flatten(1).amax(dim=1) > 0.5).all())
    for score in ("probability", "log_probability"):  # the old default, and the log-probability: gradient 1 - p = 0
        with pytest.warns(UserWarning, match="did not move.*use score='log_odds' or 'logit'"):
            stuck = sl.explain(model, x, score=score, **options)
        assert not bool(stuck.info["mask_moved"].any()) and bool((stuck.values == 0).all())
    logit = sl.explain(model, x, score="logit", **options)
    assert bool((logit.values.flatten(1).amax(dim=1) > 0.5).all())


def test_every_demo_digit_gets_a_nonzero_map():
    """The demo's digits 0-5 (first test image of each class) under the demo's options: the old probability
    score left digits 0, 3 and 4 (p > 0.99998) with an all-zero map."""
    model = sl.zoo.load("digits_cnn")
    _, _, x_test, y_test = sl.zoo.dataset("digits")
    picks = torch.stack([(y_test == digit).nonzero()[0, 0] for digit in range(6)])
    a = sl.explain(
        model,
        x_test[picks],
        method="meaningful_perturbation",
        target=y_test[picks],
        progress=False,
        **DEMO_OPTIONS["meaningful_perturbation"],
    )
    deleted = a.values.flatten(1)
    assert bool((deleted.amax(dim=1) > 0.5).all())
    assert bool(a.info["mask_moved"].all())
    assert bool((deleted.mean(dim=1) < 0.75).all())  # still a selective deletion, not the whole image


def test_a_mask_that_cannot_move_is_flagged_and_warned_about():
    def constant(x):
        return torch.tensor([[2.0, 0.0]]).expand(x.shape[0], 2)

    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match=r"inputs \[0, 1, 2\] \(3 of 3\).*Raise steps or lr, lower area"):
        a = sl.explain(constant, x, method="meaningful_perturbation", target=0, steps=10, resolution=4)
    assert a.info["mask_moved"].tolist() == [False, False, False]
    assert bool((a.values == 0).all())


def test_softmax_flag_is_deprecated_for_score():
    model = conv_net("module", seed=1)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    options = {"method": "meaningful_perturbation", "target": 0, "steps": 2, "resolution": 4}
    for softmax, score in ((True, "probability"), (False, "logit")):
        with pytest.warns(FutureWarning, match=f"pass score='{score}'"):
            old = sl.explain(model, x, softmax=softmax, **options)
        new = sl.explain(model, x, score=score, **options)
        assert old.info["score"] == score and torch.equal(old.values, new.values)
    with pytest.raises(TypeError, match="cannot be combined"):
        sl.explain(model, x, softmax=True, score="logit", **options)
    with pytest.raises(ValueError, match="score must be one of"):
        sl.explain(model, x, score="margin", **options)
    assert SCORES[0] == "log_odds"


def test_class_scores_need_a_class_target():
    model = conv_net("module", seed=1)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    raw = sl.explain(model, x, method="meaningful_perturbation", target=lambda out: out[:, 0], steps=2, resolution=4)
    assert raw.info["score"] == "logit"
    with pytest.raises(ValueError, match="score='log_odds' needs a class target.*use score='logit'"):
        sl.explain(model, x, method="meaningful_perturbation", target=lambda out: out[:, 0], score="log_odds", steps=2)
    assert math.isfinite(float(raw.info["scores"][0]))
