"""Parsing the command line's values and writing results (saliencelab.io.options, saliencelab.io.outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saliencelab.io.errors import BadOptionError, MissingFileError, UnknownMethodError
from saliencelab.io.options import check_methods, method_options, parse_baseline, parse_target, parse_value
from saliencelab.io.outputs import folder_names, write_attribution


def test_option_values_are_typed():
    cases = {"3": 3, "-2": -2, "0.25": 0.25, "1e-3": 1e-3, "TRUE": True, "false": False, "null": None,
             '{"a": [1, 2]}': {"a": [1, 2]}, "epsilon_plus": "epsilon_plus", "features.3": "features.3"}  # fmt: skip
    for text, value in cases.items():
        assert parse_value(text) == value and type(parse_value(text)) is type(value), text


def test_options_go_to_the_methods_that_take_them():
    options = method_options(
        ["steps=8", "occlusion.window=3", "seed=1"], ["gradient", "integrated_gradients", "occlusion"]
    )
    assert options == {
        "gradient": {},
        "integrated_gradients": {"steps": 8, "seed": 1},  # its uniform baseline preset takes a seed
        "occlusion": {"window": 3, "seed": 1},
    }
    with pytest.raises(BadOptionError, match="no chosen method takes the option 'window'.*gradient: memory_budget"):
        method_options(["window=3"], ["gradient"])
    with pytest.raises(BadOptionError, match="names the method 'lrp', which is not among gradient"):
        method_options(["lrp.rule=epsilon"], ["gradient"])
    with pytest.raises(BadOptionError, match="KEY=VALUE"):
        method_options(["=3"], ["gradient"])


def test_unknown_methods_list_their_close_matches():
    with pytest.raises(UnknownMethodError, match="close matches: integrated_gradients"):
        check_methods(["integrated_gradient"])
    with pytest.raises(UnknownMethodError, match="no close match"):
        check_methods(["qqqq"])


def test_targets_and_baselines(tmp_path):
    assert parse_target("7") == 7 and parse_target("argmax") is None
    np.save(tmp_path / "ref.npy", np.full((1, 2, 2), 0.5, dtype=np.float32))
    torch.save(torch.ones(1, 2, 2), tmp_path / "ref.pt")
    assert torch.equal(parse_baseline(str(tmp_path / "ref.npy")), torch.full((1, 2, 2), 0.5))
    assert torch.equal(parse_baseline(str(tmp_path / "ref.pt")), torch.ones(1, 2, 2))
    assert parse_baseline("-1") == -1.0 and parse_baseline("uniform") == "uniform"
    with pytest.raises(MissingFileError, match="baseline file"):
        parse_baseline(str(tmp_path / "none.npy"))
    with pytest.raises(BadOptionError, match="--baseline takes zeros, min, mean, blur, uniform"):
        parse_baseline("black")


def test_outputs_hold_the_values_and_one_overlay_per_sample(tmp_path):
    assert folder_names([Path("a/x.png"), Path("b/x.png"), Path("x.npy"), Path("y.pt")]) == ["x", "x-2", "x-3", "y"]
    values = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4) - 40
    files = write_attribution(tmp_path, "lrp", values, torch.rand(2, 3, 4, 4), formats=("npy", "pt"))
    assert [f.name for f in files] == ["lrp.npy", "lrp.pt", "lrp_0.png", "lrp_1.png"]
    assert np.array_equal(np.load(tmp_path / "lrp.npy"), values.numpy())
    assert torch.equal(torch.load(tmp_path / "lrp.pt"), values)
    with pytest.raises(ValueError, match="unknown format"):
        write_attribution(tmp_path, "lrp", values, values, formats=("csv",))
