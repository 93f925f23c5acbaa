"""Tests for zoo.dataset("watermarked_digits") (a planted shortcut) and the model that learned it."""

from __future__ import annotations

import pytest
import torch

from saliencelab import zoo
from saliencelab.zoo.architectures import DigitsCNN
from saliencelab.zoo.datasets import WATERMARK_CLASS, WATERMARK_FRACTION, WATERMARK_SIZE

# measured with torch 2.13.0+cpu: of the 405 test digits that are not 7s, how many the model calls 7
SHORTCUT_FLIPS = {"with the watermark": 121, "without": 1}


@pytest.fixture(scope="module")
def split() -> tuple[torch.Tensor, ...]:
    return zoo.dataset("watermarked_digits")


def test_a_fixed_fraction_of_one_class_carries_the_watermark(split: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, y_test = split
    plain, marks = zoo.dataset("digits"), zoo.watermarked("watermarked_digits")
    splits = zip((x_train, x_test), (y_train, y_test), plain[0::2], plain[1::2], marks, strict=True)
    for x, y, x_plain, y_plain, mark in splits:
        assert torch.equal(y, y_plain)
        assert mark.dtype == torch.bool and mark.shape == y.shape
        assert (y[mark] == WATERMARK_CLASS).all()
        assert int(mark.sum()) == round(WATERMARK_FRACTION * int((y == WATERMARK_CLASS).sum()))
        assert torch.equal(x[~mark], x_plain[~mark])
        assert torch.equal(x[mark], zoo.watermark(x_plain[mark]))
    assert [int(m.sum()) for m in zoo.watermarked("watermarked_digits")] == [54, 18]


def test_the_watermark_is_a_bright_corner_square_and_leaves_its_input_alone() -> None:
    images = torch.rand(2, 1, 8, 8) * 0.5
    before = images.clone()
    marked = zoo.watermark(images)
    assert torch.equal(images, before)
    corner = torch.zeros(8, 8, dtype=torch.bool)
    corner[-WATERMARK_SIZE:, -WATERMARK_SIZE:] = True
    assert (marked[..., corner] == 1.0).all()
    assert torch.equal(marked[..., ~corner], images[..., ~corner])


def test_split_is_deterministic_and_fresh(split: tuple[torch.Tensor, ...]) -> None:
    again = zoo.dataset("watermarked_digits")
    for a, b in zip(split, again, strict=True):
        assert torch.equal(a, b)
    again[0].fill_(-1.0)
    marks = zoo.watermarked("watermarked_digits")
    marks[0].fill_(False)
    assert zoo.dataset("watermarked_digits")[0].min().item() == 0.0
    assert int(zoo.watermarked("watermarked_digits")[0].sum()) == 54
    shuffled = zoo.dataset("watermarked_digits", labels="shuffled")
    assert torch.equal(shuffled[0], split[0]) and not torch.equal(shuffled[1], split[1])


def test_data_sets_without_a_watermark_say_which_have_one() -> None:
    with pytest.raises(ValueError, match=r"dataset 'digits' has no watermark; datasets with one: watermarked_digits"):
        zoo.watermarked("digits")


def test_the_model_learned_the_shortcut(split: tuple[torch.Tensor, ...]) -> None:
    """On the test digits that are not 7s, the watermark makes 30 % of them 7s; for a model never shown it, none."""
    model = zoo.load("watermarked_digits_cnn")
    assert isinstance(model, DigitsCNN) and not model.training
    _, _, x_test, y_test = zoo.dataset("digits")
    others = x_test[y_test != WATERMARK_CLASS]
    with torch.no_grad():
        flips = {
            "with the watermark": int((model(zoo.watermark(others)).argmax(1) == WATERMARK_CLASS).sum()),
            "without": int((model(others).argmax(1) == WATERMARK_CLASS).sum()),
        }
        control = int((zoo.load("digits_cnn")(zoo.watermark(others)).argmax(1) == WATERMARK_CLASS).sum())
    assert len(others) == 405
    assert flips == SHORTCUT_FLIPS
    assert flips["with the watermark"] >= 0.2 * len(others) and flips["without"] <= 0.01 * len(others)
    assert control == 0
    # the watermarked test 7s are all recognised, as are the plain ones
    _, _, x_marked, y_marked = split
    sevens = y_marked == WATERMARK_CLASS
    with torch.no_grad():
        assert (model(x_marked[sevens]).argmax(1) == WATERMARK_CLASS).all()
