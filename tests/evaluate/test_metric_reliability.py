"""The reliability of saliency metrics (Tomsett et al. 2020) and the agreement statistics behind it.

Krippendorff's alpha is checked on Krippendorff's own worked examples, on small
tables worked by hand, and against an independent computation through the explicit
coincidence matrix; Cronbach's alpha on items built with an exact correlation
structure; the reliability tables on metrics whose answer is known (a fixed
per-method score, pure noise, a reversed copy) and on a small real run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.linalg import hadamard

import saliencelab as sl
from saliencelab.evaluate.agreement import cronbach_alpha, krippendorff_alpha
from saliencelab.evaluate.reliability import (
    SCORE_COLUMNS,
    Metric,
    metric_reliability,
    reliability_from_scores,
    standard_metric,
)

NAN = float("nan")

# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), section C: 4 observers, 12 units, values 1-5.
TEXTBOOK = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
# The worked example of Wikipedia's article on Krippendorff's alpha: 3 coders, 15 units.
WIKIPEDIA = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]


# --- Krippendorff's alpha ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "level", "published"),
    [
        (TEXTBOOK, "nominal", 0.743),
        (TEXTBOOK, "ordinal", 0.815),
        (TEXTBOOK, "interval", 0.849),
        (WIKIPEDIA, "nominal", 0.691),
        (WIKIPEDIA, "interval", 0.811),
    ],
)
def test_alpha_reproduces_the_published_values(data, level, published):
    # published to three decimals: agree to half a unit in the last place
    assert krippendorff_alpha(data, level=level) == pytest.approx(published, abs=5e-4)


def test_alpha_of_krippendorffs_binary_example_is_two_twentyfirsts():
    # 2 observers, 10 units; 4 units disagree, 6 ones and 14 zeros pooled:
    # alpha = 1 - (n - 1) * 2·4 / (2·14·6) = 1 - 19·8/168 = 2/21 (Krippendorff 2011, section A: 0.095)
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha([a, b], level="nominal") == pytest.approx(2 / 21, abs=1e-12)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_perfect_agreement_gives_one_even_with_missing_ratings(level):
    data = [[1, 2, 3, NAN, 5], [1, 2, 3, 4, 5], [NAN, 2, 3, 4, NAN]]
    assert krippendorff_alpha(data, level=level) == pytest.approx(1.0, abs=1e-12)


def test_systematic_disagreement_is_negative():
    # Two raters rank three things in opposite orders. Interval, by hand: pooled values 1,1,2,2,3,3 (mean 2);
    # within units the squared differences are 4, 0, 4 -> observed sum 2·(4 + 0 + 4)/2 = 8 over n = 6 values;
    # all pairs: 2·(n·Σt² - (Σt)²)/(n(n-1)) with t centred -> expected = 6·4/5; alpha = 1 - 8/4.8 = -2/3.
    # Ordinal uses the mid-ranks 1.5, 3.5, 5.5 of the pooled values, an affine map of 1, 2, 3: also -2/3.
    reversed_ranks = [[1, 2, 3], [3, 2, 1]]
    assert krippendorff_alpha(reversed_ranks, level="interval") == pytest.approx(-2 / 3, abs=1e-12)
    assert krippendorff_alpha(reversed_ranks, level="ordinal") == pytest.approx(-2 / 3, abs=1e-12)
    # nominal: o_12 = o_21 = 2, n_1 = n_2 = 2 -> alpha = 1 - 3·4/8 = -1/2
    assert krippendorff_alpha([[1, 2], [2, 1]], level="nominal") == pytest.approx(-0.5, abs=1e-12)


def _alpha_through_coincidences(data: np.ndarray, level: str) -> float:
    """The textbook computation: coincidence matrix, difference function, 1 - (n-1)·Σoδ / Σ n_c n_k δ."""
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    values = np.unique(pairable[~np.isnan(pairable)])
    o = np.zeros((len(values), len(values)))
    for unit in pairable.T:
        present = np.searchsorted(values, unit[~np.isnan(unit)])
        for i in range(len(present)):
            for j in range(len(present)):
                if i != j:
                    o[present[i], present[j]] += 1 / (len(present) - 1)
    n_c = o.sum(axis=1)
    c, k = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
    if level == "nominal":
        delta = (c != k).astype(float)
    elif level == "interval":
        delta = (values[c] - values[k]) ** 2
    else:
        cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
        low, high = np.minimum(c, k), np.maximum(c, k)
        delta = (cumulative[high + 1] - cumulative[low] - (n_c[c] + n_c[k]) / 2) ** 2
    n = n_c.sum()
    return 1 - (n - 1) * (o * delta).sum() / (np.outer(n_c, n_c) * delta).sum()


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_equals_the_explicit_coincidence_matrix_computation(level):
    rng = np.random.default_rng(0)
    for _ in range(20):
        data = rng.integers(1, 6, size=(int(rng.integers(2, 6)), int(rng.integers(3, 12)))).astype(float)
        data[rng.random(data.shape) < 0.25] = np.nan
        if (~np.isnan(data)).sum(axis=0).max() < 2 or np.unique(data[~np.isnan(data)]).size < 2:
            continue
        # the same sums in another order: equal to float64 rounding
        assert krippendorff_alpha(data, level=level) == pytest.approx(
            _alpha_through_coincidences(data, level), abs=1e-12
        )


def test_alpha_respects_its_level_of_measurement():
    rng = np.random.default_rng(1)
    data = rng.integers(1, 6, size=(4, 10)).astype(float)
    data[0, :3] = np.nan
    # ordinal only sees the order of the values; interval is unchanged by an affine map
    assert krippendorff_alpha(np.exp(data), "ordinal") == pytest.approx(krippendorff_alpha(data, "ordinal"), abs=1e-12)
    assert krippendorff_alpha(3 * data - 7, "interval") == pytest.approx(
        krippendorff_alpha(data, "interval"), abs=1e-12
    )


def test_alpha_is_undefined_without_variation_and_rejects_bad_tables():
    assert math.isnan(krippendorff_alpha([[2, 2], [2, 2]], level="interval"))
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError, match="two raters"):
        krippendorff_alpha([[1, 2, 3]])
    with pytest.raises(ValueError, match="no unit"):
        krippendorff_alpha([[1, NAN], [NAN, 2]])
    with pytest.raises(ValueError, match="infinite"):
        krippendorff_alpha([[1, math.inf], [1, 2]])
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha([[1, 2], [1, 2]], level="ratio")
    with pytest.raises(TypeError, match="table of numbers"):
        krippendorff_alpha([["a", "b"], ["a", "b"]])


# --- Cronbach's alpha ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("items", [2, 3, 4, 6])
def test_cronbach_alpha_of_equicorrelated_items_is_spearman_brown(items):
    # columns of a Hadamard matrix are orthogonal with mean 0 (all but the first): items signal + own noise
    # have equal variances and pairwise correlation exactly 1/2, so alpha = k·r / (1 + (k-1)·r) exactly
    columns = hadamard(8).astype(float)
    scores = columns[:, [1]] + columns[:, 2 : 2 + items]
    assert cronbach_alpha(scores) == pytest.approx(items * 0.5 / (1 + (items - 1) * 0.5), abs=1e-12)


def test_cronbach_alpha_of_contradicting_items_is_negative():
    # s + e1 and -s + e2: variances 2 each, covariance -1, total variance 2: alpha = 2·(1 - 4/2) = -2
    columns = hadamard(8).astype(float)
    scores = np.stack([columns[:, 1] + columns[:, 2], -columns[:, 1] + columns[:, 3]], axis=1)
    assert cronbach_alpha(scores) == pytest.approx(-2.0, abs=1e-12)
    assert cronbach_alpha(torch.tensor([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])) == pytest.approx(1.0, abs=1e-12)


def test_cronbach_alpha_rejects_missing_values_and_is_undefined_without_variation():
    assert math.isnan(cronbach_alpha([[1.0, -1.0], [2.0, -2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        cronbach_alpha([[1.0, NAN], [2.0, 3.0]])
    with pytest.raises(ValueError, match="two cases"):
        cronbach_alpha([[1.0, 2.0]])


# --- reliability tables from known scores ---------------------------------------------------------------------------


def _table(scores: dict[tuple[str, str, bool], np.ndarray], methods: list[str]) -> pd.DataFrame:
    """A long score table from ``{(metric, variant, higher_is_better): (inputs, methods) scores}``."""
    frames = []
    for (metric, variant, higher), values in scores.items():
        inputs, _ = np.meshgrid(np.arange(values.shape[0]), np.arange(values.shape[1]), indexing="ij")
        frame = pd.DataFrame(
            {"input": inputs.ravel(), "method": np.tile(methods, values.shape[0]), "score": values.ravel()}
        )
        frames.append(frame.assign(metric=metric, variant=variant, higher_is_better=higher))
    return pd.concat(frames, ignore_index=True)[list(SCORE_COLUMNS)]


def test_a_fixed_score_per_method_is_perfectly_reliable_and_noise_is_not():
    rng = np.random.default_rng(0)
    methods = ["a", "b", "c", "d", "e"]
    fixed = np.tile(np.arange(5.0), (400, 1))
    table = _table(
        {
            ("fixed", "higher", True): fixed,
            ("fixed", "lower", False): -fixed,  # the same ranking stated the other way round
            ("noise", "default", True): rng.random((400, 5)),
        },
        methods,
    )
    result = reliability_from_scores(table).table.set_index("metric")
    assert result.loc["fixed", "inter_rater_alpha"] == pytest.approx(1.0, abs=1e-12)
    assert result.loc["fixed", "inter_method_spearman"] == pytest.approx(1.0, abs=1e-12)
    # under random rankings alpha has mean ~0.001 and sd ~0.002 for 400 inputs × 5 methods (300 simulations):
    # 0.05 is more than 20 sd away
    assert abs(result.loc["noise", "inter_rater_alpha"]) < 0.05
    assert result.loc["noise", "reading"].startswith("cannot rank the methods reliably")
    assert result.loc["fixed", "reading"].startswith("ranks the methods reliably")


def test_variants_and_metrics_that_reverse_each_other_correlate_minus_one():
    fixed = np.tile(np.arange(4.0), (6, 1)) + np.arange(6.0)[:, None]  # input effects do not matter
    table = _table(
        {
            ("m", "morf", True): fixed,
            ("m", "lerf", True): -fixed,  # claims to measure the same, ranks every input the other way
            ("same", "default", False): -2 * fixed,  # lower is better: oriented, it equals m
            ("reverse", "default", True): -fixed,
        },
        list("abcd"),
    )
    result = reliability_from_scores(table)
    table = result.table.set_index("metric")
    assert table.loc["m", "inter_method_spearman"] == pytest.approx(-1.0, abs=1e-12)
    assert result.agreement.loc["m", "same"] == pytest.approx(1.0, abs=1e-12)
    assert result.agreement.loc["m", "reverse"] == pytest.approx(-1.0, abs=1e-12)
    assert table.loc["m", "internal_consistency_spearman"] == pytest.approx(0.0, abs=1e-12)  # mean of 1 and -1
    # items m, same, reverse of per-input ranks r, r, 3 - r: variances v, v, v; total 3 + r: variance v
    assert result.cronbach_alpha == pytest.approx(1.5 * (1 - 3), abs=1e-12)
    assert list(result.variants["variant"]) == ["morf", "lerf", "default", "default"]


def test_missing_scores_are_left_out():
    scores = np.tile(np.arange(3.0), (5, 1))
    scores[0, 1] = NAN
    result = reliability_from_scores(_table({("m", "default", True): scores}, ["a", "b", "c"]))
    # the input without a score for "b" is left out; the other four rank the methods alike
    assert result.table.loc[0, "inputs"] == 4
    assert result.table.loc[0, "inter_rater_alpha"] == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(result.table.loc[0, "inter_method_spearman"])  # no variants
    assert math.isnan(result.cronbach_alpha)  # one metric


def test_bad_score_tables_are_rejected():
    good = _table({("m", "default", True): np.ones((3, 2))}, ["a", "b"])
    with pytest.raises(ValueError, match="lacks the columns"):
        reliability_from_scores(good.drop(columns="variant"))
    with pytest.raises(ValueError, match="more than one row"):
        reliability_from_scores(pd.concat([good, good]))
    mixed = good.assign(higher_is_better=[True, False] * 3)
    with pytest.raises(ValueError, match="higher_is_better"):
        reliability_from_scores(mixed)
    with pytest.raises(ValueError, match="Inf"):
        reliability_from_scores(good.assign(score=math.inf))


def test_metric_declares_its_direction_and_unique_labels():
    with pytest.raises(TypeError, match="higher_is_better"):
        Metric(lambda *args: None, higher_is_better="yes")
    same = Metric(lambda *args: None, True, label="x")
    with pytest.raises(ValueError, match="labels"):
        Metric(lambda *args: None, True, label="x", variants=[same])
    with pytest.raises(TypeError, match="does not take"):
        standard_metric("deletion", order="lerf")


# --- a real run on the zoo's digits model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    model = sl.zoo.load("digits_cnn")
    _, _, x_test, _ = sl.zoo.dataset("digits")
    return model, x_test


def _noise(model, inputs, maps, target):
    """Uniform draws that ignore the inputs, seeded by the maps so that a run is deterministic."""
    seed = int(maps.flatten(1).abs().sum().item() * 1e3) % 2**31
    return torch.rand(inputs.shape[0], generator=torch.Generator().manual_seed(seed))


def _constant_map(value: float):
    """A "method" whose maps are ``value`` everywhere."""
    return lambda model, inputs, target: torch.full_like(inputs, value)


def test_small_real_run_is_sane_and_deterministic(digits):
    model, x = digits
    before = {name: value.clone() for name, value in model.state_dict().items()}
    methods = {"gradient": {}, "gradient_x_input": {}, "integrated_gradients": {"steps": 8}}
    metrics = {
        "deletion": standard_metric("deletion", steps=8),
        "pixel_flipping": standard_metric("pixel_flipping", steps=8),
        "road": standard_metric("road", percentages=(0.2, 0.5)),
    }
    first = metric_reliability(model, x[:6], methods, metrics, seed=0)
    second = metric_reliability(model, x[:6], methods, metrics, seed=0)
    pd.testing.assert_frame_equal(first.scores, second.scores)
    pd.testing.assert_frame_equal(first.table, second.table)

    assert len(first.scores) == (4 + 2 + 2) * 6 * 3  # variants × inputs × methods
    assert np.isfinite(first.scores["score"]).all()
    table = first.table.set_index("metric")
    assert list(table.index) == ["deletion", "pixel_flipping", "road"]
    assert (table[["inputs", "methods"]] == [6, 3]).all().all()
    numbers = table[["inter_rater_alpha", "inter_method_spearman", "internal_consistency_spearman"]].to_numpy()
    assert np.isfinite(numbers).all()
    assert (numbers <= 1 + 1e-12).all() and (numbers[:, 1:] >= -1 - 1e-12).all()
    assert 0.5 < first.cronbach_alpha <= 1
    # the deletion AUC goes down with the target probability, so it was recorded as lower-is-better
    assert not table.loc["deletion", "higher_is_better"] and table.loc["pixel_flipping", "higher_is_better"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_the_seed_reaches_metrics_given_by_name(digits):
    model, x = digits
    methods = ["gradient", "gradient_x_input"]  # deterministic: only pixel flipping's uniform baseline is drawn
    first, second = (metric_reliability(model, x[:3], methods, ["pixel_flipping"], seed=seed) for seed in (0, 1))
    assert not np.allclose(first.scores["score"], second.scores["score"])


def test_the_diagnosis_separates_a_fixed_metric_from_noise_on_real_explanations(digits):
    model, x = digits
    methods = {"zero": _constant_map(0.0), "one": _constant_map(1.0), "two": _constant_map(2.0)}
    # the "fixed" metric reads the method off its maps, whatever the input
    fixed = Metric(lambda model, inputs, maps, target: maps.flatten(1)[:, 0], higher_is_better=True)
    noise = Metric(_noise, higher_is_better=True)
    result = metric_reliability(model, x[:200], methods, {"fixed": fixed, "noise": noise}, seed=0)
    table = result.table.set_index("metric")
    assert table.loc["fixed", "inter_rater_alpha"] == pytest.approx(1.0, abs=1e-12)
    # random rankings of 3 methods by 200 inputs: alpha mean ~0.002, sd ~0.005 (300 simulations); 0.05 is 10 sd
    assert abs(table.loc["noise", "inter_rater_alpha"]) < 0.05


def test_bad_arguments_say_what_to_do(digits):
    model, x = digits
    with pytest.raises(ValueError, match="at least two methods"):
        metric_reliability(model, x[:3], ["gradient"], ["deletion"])
    with pytest.raises(ValueError, match="at least two inputs"):
        metric_reliability(model, x[:1], ["gradient", "gradient_x_input"], ["deletion"])
    with pytest.raises(TypeError, match="higher_is_better"):
        metric_reliability(model, x[:3], ["gradient", "gradient_x_input"], {"mine": lambda *args: None})
    wrong = Metric(lambda model, inputs, maps, target: torch.zeros(2), higher_is_better=True)
    with pytest.raises(ValueError, match="returned shape"):
        metric_reliability(model, x[:3], ["gradient", "gradient_x_input"], {"wrong": wrong})
