"""The axiom table: seed 002's property table computed, and each check's positive and negative witness.

The table's numbers come from float64 witnesses, so exact properties are asserted
to 1e-12 and the checks' own tolerances are those documented in
saliencelab.evaluate.axioms (1e-9 round-off; 0.1 for continuity and completeness).
"""

from __future__ import annotations

import pytest
import torch

import saliencelab as sl
from saliencelab.evaluate import axioms, witnesses
from saliencelab.evaluate.axioms import (
    PROPERTIES,
    axiom_table,
    check_completeness,
    check_continuity,
    check_implementation_invariance,
    check_input_invariance,
    check_linearity,
    check_sensitivity,
    check_specificity,
    check_symmetry,
)

SEED_002 = {
    # 002_7d5c35c1670a97af.txt, "Summary": Yes -> True, No -> False, blank cells left out
    "gradient": dict(
        sensitivity=False,
        specificity=True,
        continuity=False,
        completeness=False,
        implementation_invariance=True,
        symmetry=True,
        linearity=True,
    ),
    "guided_backprop": dict(
        sensitivity=False, specificity=True, continuity=False, completeness=False, symmetry=True, linearity=True
    ),
    "deeplift": dict(
        sensitivity=True, continuity=True, completeness=True, implementation_invariance=False, symmetry=True
    ),
    "integrated_gradients": dict(
        sensitivity=True,
        specificity=True,
        continuity=True,
        completeness=True,
        implementation_invariance=True,
        symmetry=True,
        linearity=True,
    ),
}

SEED_003_INPUT_INVARIANCE = {
    # 003_93e53510d49e5202.txt (Kindermans et al.): the gradient is the same for both networks,
    # DeepLIFT and IG (with their fixed zero reference) change
    "gradient": True,
    "deeplift": False,
    "integrated_gradients": False,
}


@pytest.fixture(scope="module")
def table():
    return axiom_table(list(SEED_002))


@pytest.mark.parametrize(("method", "prop"), [(m, p) for m, cells in SEED_002.items() for p in cells])
def test_seed_002_property_table_is_reproduced_cell_by_cell(table, method, prop):
    assert table.loc[prop, method] is SEED_002[method][prop]


def test_seed_003_input_invariance_row(table):
    for method, expected in SEED_003_INPUT_INVARIANCE.items():
        assert table.loc["input_invariance", method] is expected
    assert table.loc["input_invariance", "guided_backprop"] is True  # it changes only the backward of ReLUs


def test_table_shape_and_attrs(table):
    assert list(table.index) == list(PROPERTIES) and list(table.columns) == list(SEED_002)
    assert table.attrs["missing"] == {}
    assert table.attrs["tolerance"]["completeness"] == 0.1 and table.attrs["tolerance"]["symmetry"] == 1e-9
    measured = table.attrs["measured"]
    assert measured.loc["completeness", "deeplift"] < 1e-12
    assert measured.loc["continuity", "gradient"] == 1.0  # the gradient's jump at the kink (seed 001)


def test_same_seed_same_table_and_another_seed_the_same_answers(table):
    again = axiom_table(list(SEED_002))
    assert again.equals(table) and again.attrs["measured"].equals(table.attrs["measured"])
    other = axiom_table(list(SEED_002), seed=1)
    for method, cells in SEED_002.items():
        for prop, expected in cells.items():
            assert other.loc[prop, method] is expected, (prop, method)


# --- sensitivity: 1 − ReLU(1 − x) at x = 0.5, 2, 3, reference 0 (seeds 001 and 002)


def test_sensitivity_gradient_saturates_integrated_gradients_does_not():
    gradient = check_sensitivity("gradient")
    assert not gradient and gradient.measured == 0.0  # the gradient is exactly 0 for x > 1
    for method in ("integrated_gradients", "deeplift"):
        result = check_sensitivity(method)
        # one feature: completeness makes the attribution the whole change, share 1
        assert result and result.measured == pytest.approx(1.0, abs=1e-3)


# --- specificity: a dummy feature read by the first layer and cancelled by the second


def test_specificity_the_witness_does_not_depend_on_its_dummy_feature():
    net = witnesses.dummy_feature_net()
    x = torch.randn(16, 3, dtype=torch.float64)
    moved = x.clone()
    moved[:, 2] += torch.randn(16, dtype=torch.float64) * 10
    assert net[0].weight[:, 2].abs().min() > 1e-3  # the first layer does read it
    torch.testing.assert_close(net(moved), net(x), atol=1e-12, rtol=0)


def test_specificity_gradient_passes_an_input_echo_fails():
    result = check_specificity("gradient")
    assert result and result.measured < 1e-12
    echo = check_specificity(lambda model, inputs, target: inputs)
    assert not echo and echo.measured > 0.01


# --- continuity: max(0, x1 + x2 − 10) across the kink at x1 = 10 (seed 001)


def test_continuity_gradient_x_input_jumps_by_ten_deeplift_is_continuous():
    jump = check_continuity("gradient_x_input")
    assert not jump and jump.measured == pytest.approx(10.01, abs=1e-12)  # (10 + 0.01)·1 − 0 at h = 0.01
    smooth = check_continuity("deeplift")
    assert smooth and smooth.measured == pytest.approx(0.01, abs=1e-12)  # = f(10.01) − f(9.99)


def test_continuity_is_checked_on_the_implementation_right_riemann_sums_jump():
    """A right Riemann sum includes α = 1: at x1 = 10.01 its last node alone crosses the kink, IG = 10.01/50."""
    assert check_continuity("integrated_gradients")
    right = check_continuity(("integrated_gradients", {"integration": "riemann_right", "steps": 50}))
    assert not right and right.measured == pytest.approx(10.01 / 50, abs=1e-12)


# --- completeness: random-weight MLP, random references


def test_completeness_deeplift_exact_gradient_x_input_not():
    assert check_completeness("deeplift").measured < 1e-12
    result = check_completeness("integrated_gradients")
    assert result and result.measured < 0.05
    assert not check_completeness("gradient_x_input")


# --- implementation invariance: the IG paper's two networks (seed 001)


def test_the_witness_pair_is_the_seed_pair_and_computes_one_function():
    points = torch.rand(64, 2, dtype=torch.float64) * 8 - 4
    f, g = witnesses.InvarianceF(), witnesses.InvarianceG()
    x1, x2 = points[:, 0], points[:, 1]
    seed_f = torch.relu(torch.relu(x1) - 1 - torch.relu(x2))  # seed 001's two spellings, written out
    seed_g = torch.relu(torch.relu(x1 - 1) - torch.relu(x2))
    torch.testing.assert_close(f(points)[:, 0], seed_f, atol=0, rtol=0)
    torch.testing.assert_close(g(points)[:, 0], seed_g, atol=0, rtol=0)
    torch.testing.assert_close(f(points), g(points), atol=1e-15, rtol=0)


def test_implementation_invariance_deeplift_fails_with_the_seed_001_numbers():
    x = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    on_f = sl.explain(witnesses.InvarianceF(), x, method="deeplift", target=0).values
    on_g = sl.explain(witnesses.InvarianceG(), x, method="deeplift", target=0).values
    assert on_f.tolist() == [[1.5, -0.5]] and on_g.tolist() == [[2.0, -1.0]]  # seed 001
    result = check_implementation_invariance("deeplift")
    assert not result and result.measured >= 0.5 / 1.5
    ig = check_implementation_invariance("integrated_gradients")
    assert ig and ig.measured < 1e-12


# --- symmetry: a symmetric network with no symmetric unit


def test_symmetry_integrated_gradients_keeps_it_an_asymmetric_method_and_sampling_do_not():
    assert check_symmetry("integrated_gradients").measured < 1e-12
    weighted = check_symmetry(lambda model, inputs, target: inputs * torch.tensor([1.0, 2.0, 1.0]))
    assert not weighted and weighted.measured == pytest.approx(0.5, rel=1e-12)  # |x − 2x| / max |2x|
    assert not check_symmetry(("smoothgrad", {"samples": 8}))  # noise drawn per feature


# --- linearity: a·f1 + b·f2 with a = 0.7, b = 1.8


def test_linearity_gradient_passes_a_squared_gradient_fails():
    assert check_linearity("gradient").measured < 1e-12

    def squared(model, inputs, target):
        return sl.explain(model, inputs, method="gradient", target=target).values ** 2

    assert not check_linearity(squared)


def test_guided_backprop_is_linear_only_for_positive_weights():
    """Documented in check_linearity: guided backprop discards negative signals at ReLUs."""
    f1, f2 = witnesses.random_mlp((4, 8, 3), 1), witnesses.random_mlp((4, 8, 3), 2)
    x, target = torch.rand(4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0])

    def gbp(model):
        return sl.explain(model, x, method="guided_backprop", target=target).values

    for a, b in [(0.7, 1.8), (2.0, 0.5)]:
        combined = gbp(witnesses.LinearCombination(f1, f2, a, b))
        torch.testing.assert_close(combined, a * gbp(f1) + b * gbp(f2), atol=1e-12, rtol=0)
    negative = gbp(witnesses.LinearCombination(f1, f2, -1.0, 0.0))
    assert (negative + gbp(f1)).abs().max() > 0.1


# --- input invariance: Kindermans et al.'s shifted conv net


def test_input_invariance_gradient_passes_gradient_x_input_fails():
    assert check_input_invariance("gradient").measured < 1e-12
    result = check_input_invariance("gradient_x_input")
    assert not result and result.measured > 0.1


# --- methods as names, pairs and callables; missing cells; errors


def test_custom_callables_with_and_without_a_baseline(table):
    def my_ig(model, inputs, target, baseline):
        return sl.explain(model, inputs, method="integrated_gradients", target=target, baseline=baseline).values

    def my_gradient(model, inputs, target):
        return sl.explain(model, inputs, method="gradient", target=target).values

    custom = axiom_table([my_ig, my_gradient])
    assert custom["my_ig"].equals(table["integrated_gradients"])
    assert custom["my_gradient"].equals(table["gradient"])


def test_options_pair_gets_its_own_column():
    result = axiom_table(["integrated_gradients", ("integrated_gradients", {"integration": "riemann_right"})])
    assert list(result.columns) == ["integrated_gradients", "integrated_gradients(integration=riemann_right)"]
    assert result.loc["continuity"].tolist() == [True, False]


def test_a_method_that_cannot_run_on_a_witness_is_a_missing_cell_with_its_reason():
    result = axiom_table(["grad_cam"])
    assert result.loc["input_invariance", "grad_cam"] is True  # the conv witness; the CAM layer's input is unshifted
    assert result.loc[list(PROPERTIES[:-1]), "grad_cam"].isna().all()
    assert "spatial dimensions" in result.attrs["missing"][("sensitivity", "grad_cam")]
    assert len(result.attrs["missing"]) == len(PROPERTIES) - 1


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="sets the baseline itself"):
        axiom_table([("integrated_gradients", {"baseline": "zeros"})])
    with pytest.raises(ValueError, match="unknown method"):
        axiom_table(["gradients"])
    with pytest.raises(TypeError, match="does not take the option"):
        axiom_table([("gradient", {"steps": 3})])
    with pytest.raises(ValueError, match="same label"):
        axiom_table(["gradient", "gradient"])
    with pytest.raises(TypeError, match="list of method names"):
        axiom_table("gradient")
    with pytest.raises(TypeError, match="name, options"):
        axiom_table([("gradient", "x", 1)])


def test_checks_cover_every_property():
    assert list(axioms.CHECKS) == list(PROPERTIES)
    assert all(check.__doc__ and "Witness" in check.__doc__ for check in axioms.CHECKS.values())
