"""ROAR: pixels removed by rank, models retrained by the zoo's recipe, a random control."""

from __future__ import annotations

import pytest
import torch

from saliencelab.evaluate.roar import fit, remove_top, roar
from saliencelab.zoo.architectures import DigitsCNN
from saliencelab.zoo.datasets import dataset
from saliencelab.zoo.recipes import TrainConfig
from saliencelab.zoo.train import accuracy, train


def test_remove_top_replaces_round_fraction_of_pixels_in_every_channel():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 2, 4, 4, generator=g) + 1.0
    ranks = torch.stack([torch.randperm(16, generator=g) for _ in range(3)]).view(3, 4, 4)
    fill = torch.tensor([-1.0, -2.0]).view(1, 2, 1, 1)
    out = remove_top(images, ranks, 0.3, fill)  # round(0.3 · 16) = 5 pixels
    removed = ranks < 5
    assert torch.equal(out[:, 0][removed], torch.full((15,), -1.0))
    assert torch.equal(out[:, 1][removed], torch.full((15,), -2.0))
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~removed], images.permute(1, 0, 2, 3)[:, ~removed])


def test_fit_is_the_zoo_recipe_without_its_global_side_effects():
    config = TrainConfig(epochs=1, seed=3)
    x_train, y_train, x_test, y_test = dataset("digits")
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        zoo_model, _, zoo_accuracy = train("digits_cnn", config=config)  # seeds the global RNG, sets process flags
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
    state = torch.random.get_rng_state()
    ours = fit(DigitsCNN, x_train, y_train, config)
    assert torch.equal(torch.random.get_rng_state(), state)
    for key, value in zoo_model.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    assert accuracy(ours, x_test, y_test) == zoo_accuracy


def test_roar_table_with_a_random_control():
    table = roar("gradient_x_input", fractions=(0.5, 1.0), epochs=2, seed=0)
    _, _, _, y_test = dataset("digits")
    assert list(table.columns) == ["ranking", "fraction", "test_accuracy"]
    assert table[["ranking", "fraction"]].values.tolist() == [
        ["gradient_x_input", 0.0], ["gradient_x_input", 0.5], ["gradient_x_input", 1.0],
        ["random", 0.0], ["random", 0.5], ["random", 1.0],
    ]  # fmt: skip
    accuracies = table.test_accuracy.tolist()
    # fraction 0: the model trained on the original digits, shared by both rankings
    base = accuracy(fit(DigitsCNN, *dataset("digits")[:2], TrainConfig(epochs=2, seed=0)), *dataset("digits")[2:])
    assert accuracies[0] == accuracies[3] == base > 0.8
    # fraction 1: every image is the constant mean, so the retrained model gets exactly one class right
    counts = set(torch.bincount(y_test).tolist())  # {43, 44, 45, 46} of 450
    assert round(accuracies[2] * 450) in counts and round(accuracies[5] * 450) in counts
    assert accuracies[1] < base and accuracies[4] < base


def test_bad_arguments_are_rejected_before_any_training():
    with pytest.raises(ValueError, match="fractions"):
        roar("gradient", fractions=(0.0,))
    with pytest.raises(ValueError, match="fractions"):
        roar("gradient", fractions=(1.5,))
    with pytest.raises(ValueError, match="epochs"):
        roar("gradient", epochs=0)
    with pytest.raises(ValueError, match="no_such_method"):
        roar("no_such_method")
    with pytest.raises(ValueError, match="no trained zoo model"):
        roar("gradient", model="resnet18_shaped")
