"""Loading models from SPEC strings and weights (saliencelab.io.models)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import saliencelab as sl
from saliencelab.io.errors import MissingFileError, ModelSpecError, WeightsError
from saliencelab.io.models import input_channels, load_model, load_weights


def small() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_every_spec_form_loads_the_same_numbers(tmp_path, monkeypatch):
    (tmp_path / "mynet.py").write_text(
        "import torch\n"
        "def build():\n"
        "    torch.manual_seed(3)\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),"
        " torch.nn.Linear(8, 2)).train()\n"
    )
    monkeypatch.chdir(tmp_path)  # a module name is looked up in the current folder too
    by_name, by_path = load_model("mynet:build"), load_model(f"{tmp_path / 'mynet.py'}:build")
    assert not by_name.training and not by_path.training  # put in eval mode
    x = torch.rand(2, 3, 4, 4)
    torch.jit.save(torch.jit.script(by_name), tmp_path / "net.ts")
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(by_name, (x,), dynamic_shapes=({0: batch},)), tmp_path / "net.pt2")
    expected = by_name(x)
    for spec in (f"{tmp_path / 'mynet.py'}:build", str(tmp_path / "net.ts"), str(tmp_path / "net.pt2")):
        torch.testing.assert_close(load_model(spec)(x), expected, rtol=0, atol=1e-6)
    assert isinstance(load_model(str(tmp_path / "net.ts")), torch.jit.ScriptModule)
    assert torch.equal(load_model("zoo:digits_cnn").features[0].weight, sl.zoo.load("digits_cnn").features[0].weight)


def test_weights_load_strictly_from_torch_and_safetensors_files(tmp_path):
    source = small()
    torch.save(source.state_dict(), tmp_path / "w.pt")
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    for name in ("w.pt", "w.safetensors"):
        target = small()
        load_weights(target, tmp_path / name)
        assert all(
            torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True)
        )
    torch.save({"epoch": 3, "state_dict": source.state_dict()}, tmp_path / "checkpoint.pt")
    with pytest.raises(WeightsError, match="holds a dict \\(its keys: epoch, state_dict\\), not a state dict"):
        load_weights(small(), tmp_path / "checkpoint.pt")
    torch.save(torch.nn.Linear(3, 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="do not fit the model.*Missing key"):
        load_weights(small(), tmp_path / "other.pt")
    with pytest.raises(MissingFileError):
        load_weights(small(), tmp_path / "none.pt")


def test_input_channels_come_from_the_first_convolution():
    assert input_channels(small()) == 3 and input_channels(sl.zoo.load("digits_cnn")) == 1
    assert input_channels(torch.nn.Linear(3, 2)) is None


def test_spec_errors_say_what_to_change(tmp_path):
    (tmp_path / "bad.py").write_text("raise ImportError('needs foo')\n")
    cases = {
        "zoo:resnet": "unknown model 'resnet'",
        "torch.nn:Linearr": "did you mean Linear",
        f"{tmp_path / 'bad.py'}:f": "importing .* raised ImportError: needs foo",
        "torch.nn:Linear": "calling torch.nn:Linear\\(\\) raised TypeError",
        "math:pi": "is a float, not a callable",
    }
    for spec, message in cases.items():
        with pytest.raises(ModelSpecError, match=message):
            load_model(spec)
    with pytest.raises(MissingFileError):
        load_model(str(tmp_path / "missing.py") + ":f")
