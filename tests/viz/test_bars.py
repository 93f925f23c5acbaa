"""Bars for tabular attributions: scikit-learn's breast-cancer table (30 named features) through a small MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

import saliencelab as sl
from saliencelab import viz
from saliencelab.viz.scale import colour_map

RED, BLUE = colour_map("all")(1.0), colour_map("all")(0.0)


@pytest.fixture(scope="module")
def cancer():
    """Standardised breast-cancer rows, their feature names and an MLP (seeded random weights) explained on 4 rows."""
    data = load_breast_cancer()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).eval()
    result = sl.explain(model, x[:4], method="integrated_gradients", target=1, baseline="zeros", steps=16)
    return result, list(data.feature_names)


def labels(ax):
    return [label.get_text() for label in ax.get_yticklabels()]


def test_plot_draws_the_top_features_by_magnitude_with_their_names(cancer):
    result, names = cancer
    ax = result.plot(2, feature_names=names, top=8)
    row = result.values[2]
    largest = row.abs().argsort(descending=True, stable=True)[:8]
    assert labels(ax) == [names[i] for i in largest]  # largest |value| first, at the top
    widths = [bar.get_width() for bar in ax.containers[0]]
    assert widths == row[largest].double().tolist()  # the values themselves, float32 widened exactly
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted: the first bar is drawn at the top
    for bar, value in zip(ax.containers[0], row[largest], strict=True):
        assert bar.get_facecolor() == pytest.approx(RED if value > 0 else BLUE)
    assert {float(v) > 0 for v in row[largest]} == {True, False}  # this row has both signs: both colours checked
    assert [text.get_text() for text in ax.texts] == [f"{float(v):.3g}" for v in row[largest]]
    assert ax.get_title() == "integrated_gradients" and "top 8 of 30 features" in ax.get_xlabel()


def test_defaults_draw_every_feature_with_numbered_names(cancer):
    result, _ = cancer
    ax = viz.bars(result)  # sample 0 of the batch
    assert sorted(labels(ax)) == sorted(f"feature {i}" for i in range(30))
    assert labels(ax)[0] == f"feature {int(result.values[0].abs().argmax())}"
    assert ax.figure.get_size_inches()[1] == pytest.approx(1.2 + 0.3 * 30)  # grows with the bars
    quiet = viz.bars(result.values[1].numpy(), value_labels=False, title="row 1")
    assert len(quiet.texts) == 0 and quiet.get_title() == "row 1"


def test_bars_in_given_axes():
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2)
    ax = viz.bars([0.0, -1.0], ax=right)
    assert ax is right and labels(ax) == ["feature 1", "feature 0"] and len(left.containers) == 0


def test_bar_errors(cancer):
    result, names = cancer
    with pytest.raises(ValueError, match="got 29 feature_names for 30 features"):
        result.plot(0, feature_names=names[:29])
    with pytest.raises(ValueError, match="top must be a positive int"):
        result.plot(0, top=0)
    with pytest.raises(ValueError, match="drawn as bars, without an image"):
        result.plot(0, image=torch.zeros(4, 30))
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.bars(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"shape \(N, D\) or \(D,\); got \(1, 2, 3\)"):
        viz.bars(torch.zeros(1, 2, 3))
