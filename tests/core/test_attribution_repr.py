"""``repr(Attribution)``: one bounded line that describes the tensors without printing them."""

from __future__ import annotations

import torch

import saliencelab as sl
from saliencelab.core.attribution import Attribution


def test_repr_of_an_explanation_is_one_line_without_tensor_data():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    x = torch.full((2, 1, 8, 8), 0.123456)
    a = sl.explain(model, x, method="integrated_gradients", target=[0, 2], baseline="zeros", steps=8)
    text = repr(a)
    assert "\n" not in text and "tensor(" not in text and "0.1234" not in text
    assert text.startswith(
        "Attribution(method='integrated_gradients', values=float32[2, 1, 8, 8], delta=float32[2] max "
    )
    assert "target=int64[2]" in text and "'steps': int64[2]" in text
    # the largest completeness error, to two significant digits
    assert f"max {float(a.delta.abs().max()):.2g}," in text


def first_output(output: torch.Tensor) -> torch.Tensor:
    return output[:, 0]


def test_repr_stays_short_for_huge_info_and_long_names():
    info = {f"entry {i}": torch.rand(100, 100) for i in range(1000)}
    info = {"text": "line one\nline two " * 1000, "nested": {"a": [1, 2, 3]}, **info}
    a = Attribution(torch.rand(4, 3, 224, 224), None, "m" * 500, first_output, info)
    text = repr(a)
    assert "\n" not in text and len(text) < 450  # the info part is cut at about 200 characters
    assert "delta=None" in text and "target=first_output," in text  # a callable: its name
    assert "method='mmmmmmmmmm" in text and "'text': 'line one\\nline two" in text
    assert "'nested': dict[1]" in text and "more})" in text
    assert str(a) == text  # print() shows the same line


def test_repr_of_scalars_and_empty_info():
    a = Attribution(torch.zeros(1, 5, dtype=torch.float64), torch.tensor([float("nan")]), "x", None, {})
    assert repr(a) == "Attribution(method='x', values=float64[1, 5], delta=float32[1] max nan, target=None, info={})"
    b = Attribution(torch.zeros(1), None, "x", None, {"scale": torch.tensor(2.5), "moved": True, 3: 1e-9})
    assert repr(b).endswith("info={'scale': float32 2.5, 'moved': True, 3: 1e-09})")
