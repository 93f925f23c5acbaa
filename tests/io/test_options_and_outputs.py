"""Parsing the command line's values and writing results (saliencelab.io.options, saliencelab.io.outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import saliencelab as sl
from saliencelab.io import LoadedInput, explain_inputs, load_saved
from saliencelab.io.errors import BadOptionError, MissingFileError, OutputError, UnknownMethodError
from saliencelab.io.options import check_methods, method_options, parse_baseline, parse_target, parse_value
from saliencelab.io.outputs import (
    STAGING_PREFIX,
    check_output_file,
    check_output_folder,
    folder_names,
    staged_folder,
    write_attribution,
)


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


def test_a_staged_folder_appears_only_when_its_block_succeeds(tmp_path):
    out = tmp_path / "a" / "results"
    with pytest.raises(RuntimeError, match="method failed"):
        with staged_folder(out) as stage:
            (stage / "x").mkdir()
            (stage / "x" / "gradient.npy").write_text("half")
            raise RuntimeError("method failed")
    assert list(tmp_path.iterdir()) == []
    with staged_folder(out) as stage:
        (stage / "x").mkdir()
        (stage / "x" / "gradient.npy").write_text("new")
        assert not out.exists() and stage.name.startswith(STAGING_PREFIX)
    assert (out / "x" / "gradient.npy").read_text() == "new" and list(tmp_path.iterdir()) == [tmp_path / "a"]
    (out / "other.txt").write_text("kept")
    with staged_folder(out) as stage:
        (stage / "x").mkdir()
        (stage / "x" / "gradient.npy").write_text("newer")
        (stage / "x" / "lrp.npy").write_text("lrp")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["other.txt", "x", "x/gradient.npy", "x/lrp.npy"]
    assert (out / "x" / "gradient.npy").read_text() == "newer"


def test_explain_inputs_writes_nothing_until_its_last_row(tmp_path):
    x = sl.zoo.dataset("digits")[2][:1]
    loaded = [LoadedInput(Path("a.npy"), x, x), LoadedInput(Path("b.npy"), x, x)]
    rows = explain_inputs(sl.zoo.load("digits_cnn"), loaded, ["gradient", "grad_cam"], tmp_path / "out", target=1)
    first = next(rows)
    assert first.files == [tmp_path / "out" / "a" / "gradient.npy", tmp_path / "out" / "a" / "gradient.png"]
    assert not (tmp_path / "out").exists()
    rest = list(rows)
    assert [(row.input, row.method) for row in rest] == [("a.npy", "grad_cam"), ("b.npy", "gradient"),
                                                          ("b.npy", "grad_cam")]  # fmt: skip
    assert all(file.is_file() for row in [first, *rest] for file in row.files)
    np.testing.assert_array_equal(
        np.load(first.files[0]), sl.explain(sl.zoo.load("digits_cnn"), x, "gradient", 1).values
    )

    abandoned = explain_inputs(sl.zoo.load("digits_cnn"), loaded, ["gradient"], tmp_path / "gone", target=1)
    next(abandoned)
    abandoned.close()  # an iterator not run to its end leaves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_paths_are_checked_for_writing(tmp_path):
    (tmp_path / "file").write_text("")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file(tmp_path / "table.csv", "--out") == tmp_path / "table.csv"
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the checks leave nothing behind
    with pytest.raises(OutputError, match="--report .*file is an existing file"):
        check_output_folder(tmp_path / "file", "--report")
    with pytest.raises(OutputError, match="is a folder; give a file name, e.g. .*table.csv"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="the folder .*missing does not exist; create it first"):
        check_output_file(tmp_path / "missing" / "table.csv")
    assert OutputError.exit_code == 10


def test_saved_files_load_without_running_code_and_say_what_is_wrong(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "state.pt")
    assert torch.equal(load_saved(tmp_path / "state.pt", "weights file")["w"], torch.ones(2))
    torch.save(print, tmp_path / "code.pt")
    with pytest.raises(MissingFileError) as refused:
        load_saved(tmp_path / "code.pt", "input")
    assert str(refused.value) == (
        f"refused the input {tmp_path / 'code.pt'}: it holds pickled Python objects (it asks for print), "
        "and loading them could run code. Save plain tensors instead: torch.save(tensor, path), "
        "torch.save(model.state_dict(), path), np.save(path, array) or safetensors"
    )
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(MissingFileError, match=r"cannot read the baseline file .*empty.pt: it is truncated, corrupt or "
                                               r"not a torch.save file \(EOFError\)$"):  # fmt: skip
        load_saved(tmp_path / "empty.pt", "baseline file")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(MissingFileError, match="not a safetensors file"):
        load_saved(tmp_path / "cut.safetensors", "weights file")
