"""Verdicts: pass, fail or inconclusive from a stated interval; degenerate maps fail every check."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

import saliencelab as sl
from saliencelab.evaluate.faithfulness import Curve
from saliencelab.evaluate.randomization import model_randomization
from saliencelab.report import Analysis, MethodResult, Thresholds, analyse, verdict_table, verdicts
from saliencelab.report.checks import summary
from saliencelab.zoo.architectures import DigitsCNN

FRACTIONS = torch.linspace(0, 1, 3)


def curves(*rows: tuple[float, float, float]) -> Curve:
    """Curves over 3 equal steps: the AUC of (a, b, c) is (a + 2b + c) / 4."""
    return Curve(torch.tensor(rows, dtype=torch.float64), FRACTIONS)


def randomised(*per_input_by_step: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": range(1, len(per_input_by_step) + 1),
            "layer": [f"layer{i}" for i in range(len(per_input_by_step))],
            "similarity": [float(np.mean(s)) for s in per_input_by_step],
            "per_sample": list(per_input_by_step),
        }
    )


def analysis_with(inputs: int = 4, degenerate: list[bool] | None = None, **result: object) -> Analysis:
    found = Analysis("t", "", torch.rand(inputs, 1, 4, 4), torch.zeros(inputs, dtype=torch.long), ["x"] * inputs)
    found.rankings = 2  # two random rankings per input, each with AUC 0.5
    flat = (1.0, 0.5, 0.0)
    found.random_deletion = curves(*[flat] * (2 * inputs))
    found.random_insertion = curves(*[flat[::-1]] * (2 * inputs))
    flags = torch.tensor(degenerate if degenerate is not None else [False] * inputs)
    found.methods["m"] = MethodResult(torch.rand(inputs, 1, 4, 4), 0.1, flags, **result)
    return found


@pytest.mark.parametrize(
    ("result", "check", "outcome"),
    [
        ({"randomization": randomised([0.1, 0.2, 0.1, 0.2], [0.0, 0.1, 0.2, 0.1])}, "model randomisation", "pass"),
        ({"randomization": randomised([0.9, 0.8, 0.9, 0.7], [0.8, 0.9, 0.6, 0.9])}, "model randomisation", "fail"),
        ({"randomization": randomised([0.1, 0.9, 0.2, 0.8])}, "model randomisation", "inconclusive"),
        ({"data_randomization": torch.tensor([0.1, 0.15, 0.2, 0.1])}, "data randomisation", "pass"),
        ({"data_randomization": torch.tensor([0.9, 0.85, 0.8, 0.95])}, "data randomisation", "fail"),
        ({"deletion": curves(*[(1.0, 0.0, 0.0)] * 4)}, "deletion", "pass"),  # AUC 0.25 below 0.5, every input
        ({"deletion": curves(*[(1.0, 1.0, 0.0)] * 4)}, "deletion", "fail"),  # AUC 0.75: worse than chance
        ({"deletion": curves(*[(1.0, 0.5, 0.0)] * 4)}, "deletion", "fail"),  # equal to chance: below the margin
        ({"deletion": curves(*[(1.0, 0.0, 0.0), (1.0, 1.0, 0.0)] * 2)}, "deletion", "inconclusive"),
        ({"insertion": curves(*[(0.0, 1.0, 1.0)] * 4)}, "insertion", "pass"),
        ({"insertion": curves(*[(0.0, 0.0, 1.0)] * 4)}, "insertion", "fail"),
        ({"delta": 1e-2}, "completeness", "pass"),
        ({"delta": 1.01e-2}, "completeness", "fail"),
    ],
)
def test_each_verdict_is_its_stated_comparison(result, check, outcome):
    found = verdicts(analysis_with(**result), "m")
    assert list(found) == [check]
    assert found[check].outcome == outcome, found[check]


def test_the_interval_and_p_value_are_the_paired_t_tests():
    gains = np.array([0.05, 0.25, 0.15, 0.3, 0.1])  # AUC improvements on chance, per input
    rows = [(1.0, 0.5 - g, 0.0) for g in gains]  # AUC (1 + 2(0.5 - g)) / 4 = 0.5 - g/2
    verdict = verdicts(analysis_with(inputs=5, deletion=curves(*rows)), "m")["deletion"]
    halved = gains / 2
    low, high = stats.t.interval(0.95, 4, loc=halved.mean(), scale=stats.sem(halved))
    assert (verdict.effect, verdict.low, verdict.high) == pytest.approx((halved.mean(), low, high), abs=1e-12)
    expected = stats.ttest_1samp(halved, 0.01, alternative="greater").pvalue
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)
    assert verdict.per_input == pytest.approx(tuple(halved), abs=1e-12)
    assert "paired t-test" in verdict.test and "2 seeded random pixel rankings" in verdict.test


def test_one_input_gives_no_interval_so_statistical_checks_are_inconclusive():
    found = verdicts(analysis_with(inputs=1, deletion=curves((1.0, 0.0, 0.0))), "m")["deletion"]
    assert found.outcome == "inconclusive" and "at least two" in found.reason
    assert math.isinf(found.low) and math.isinf(found.high)


def test_thresholds_are_the_users_to_set():
    analysis = analysis_with(deletion=curves(*[(1.0, 0.0, 0.0)] * 4))  # a gain of 0.25 on every input
    assert verdicts(analysis, "m")["deletion"].outcome == "pass"
    assert verdicts(analysis, "m", Thresholds(margin=0.3))["deletion"].outcome == "fail"
    with pytest.raises(ValueError, match="confidence"):
        Thresholds(confidence=1.0)


def test_a_degenerate_map_fails_every_check_with_that_reason():
    analysis = analysis_with(
        degenerate=[False, True, False, False],
        randomization=randomised([0.1, 0.2, 0.1, 0.2]),
        data_randomization=torch.tensor([0.1, 0.15, 0.2, 0.1]),
        deletion=curves(*[(1.0, 0.0, 0.0)] * 4),
        insertion=curves(*[(0.0, 1.0, 1.0)] * 4),
        delta=0.0,
    )
    found = verdicts(analysis, "m")
    assert len(found) == 5
    for verdict in found.values():
        assert verdict.outcome == "fail" and verdict.reason == "degenerate map (constant) on input 1 (1 of 4)"


def dead_model() -> nn.Module:
    """Every output is 0 whatever the input: ReLU after a negative bias, so every gradient is 0."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU())
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.fill_(-1.0)
    return model


def test_all_zero_maps_of_a_real_analysis_fail_every_check_they_ran():
    """Gradient maps of a dead output are all zero: the old checks passed them on randomisation (similarity
    0) and on completeness (IG's sum 0 equals f(x) - f(0) = 0)."""
    _, _, x, _ = sl.zoo.dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("error", sl.DegenerateMapWarning)  # the analysis judges them itself: no warning
        result = analyse(
            dead_model(),
            x[:4],
            methods={"gradient": {}, "integrated_gradients": {"steps": 8}},
            target=0,
            title="dead",
            shuffled_model=dead_model(),
            progress=False,
        )
    for name in ("gradient", "integrated_gradients"):
        assert result.methods[name].degenerate.all()
        found = verdicts(result, name)
        assert {"model randomisation", "data randomisation", "deletion", "insertion"} <= set(found)
        assert all(v.outcome == "fail" and "degenerate map" in v.reason for v in found.values()), found
    assert verdicts(result, "integrated_gradients")["completeness"].outcome == "fail"


def test_maps_that_are_the_inputs_edge_map_fail_model_randomisation():
    """An explanation that ignores the model (Adebayo et al.'s edge detector) is the check's negative control."""
    model = sl.zoo.load("digits_cnn")
    _, _, x, _ = sl.zoo.dataset("digits")
    x = x[:6]

    def edges(net, inputs, target):
        across = inputs.diff(dim=-1, prepend=inputs[..., :1]).abs()
        return across + inputs.diff(dim=-2, prepend=inputs[..., :1, :]).abs()

    table = model_randomization(model, x, method=edges, progress=False)
    analysis = analysis_with(inputs=6, randomization=table)
    verdict = verdicts(analysis, "m")["model randomisation"]
    assert verdict.outcome == "fail" and verdict.low > 0.5 and verdict.effect == pytest.approx(1.0)


def test_an_untrained_networks_maps_never_pass_deletion_or_insertion():
    """An untrained CNN's outputs barely depend on its input: its maps are no better than chance. The old
    check passed deletion on AUC 0.239 against a random ranking's 0.242."""
    torch.manual_seed(0)
    untrained = DigitsCNN().eval()
    _, _, x, y = sl.zoo.dataset("digits")
    result = analyse(untrained, x[:6], methods={"gradient": {}}, target=y[:6], title="untrained", progress=False)
    found = verdicts(result, "gradient")
    assert found["deletion"].outcome in ("fail", "inconclusive"), found["deletion"]
    assert found["insertion"].outcome in ("fail", "inconclusive"), found["insertion"]


def test_the_table_holds_every_verdict_with_its_numbers():
    analysis = analysis_with(deletion=curves(*[(1.0, 0.0, 0.0)] * 4), delta=0.5)
    table = verdict_table(analysis)
    assert table[["method", "check", "outcome"]].values.tolist() == [
        ["m", "deletion", "pass"],
        ["m", "completeness", "fail"],
    ]
    assert table.loc[0, "effect"] == pytest.approx(0.25) and table.loc[0, "threshold"] == 0.01
    assert {"low", "high", "p_value", "test", "reason", "better"} <= set(table.columns)


def test_summary_lists_passes_failures_then_undecided_checks_in_the_reports_order():
    found = verdicts(
        analysis_with(
            deletion=curves(*[(1.0, 1.0, 0.0)] * 4),
            randomization=randomised([0.1, 0.9, 0.2, 0.8]),
            delta=0.0,
        ),
        "m",
    )
    assert summary(found) == "passes: completeness · fails: deletion · inconclusive: model randomisation"
    assert summary({}) == "no checks ran"
