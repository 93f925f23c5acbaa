"""The command line: methods, demo, explain (end to end, against sl.explain on the same tensors) and its exit codes."""

from __future__ import annotations

import io
import pathlib
import re
import struct
import textwrap
import zlib

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import saliencelab as sl
from saliencelab.cli import app, spread_values
from saliencelab.core import registry
from saliencelab.io import EXIT_CODES

runner = CliRunner()

NET_PY = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build(seed=0):
        gen = torch.Generator().manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        return net

    class WithGelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(2 * 8 * 8, 3)

        def forward(self, x):
            return self.head(torch.nn.functional.gelu(self.conv(x)).flatten(1))

    LAYERS = 3

    def broken():
        raise RuntimeError("no weights here")

    def not_a_model():
        return 42
    """
)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return sl.zoo.dataset("digits")[2][:3]


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits):
    """An 8x8 grey digit PNG, its 16x16 and RGB versions, a batch .npy, and a module with factories."""
    folder = tmp_path_factory.mktemp("cli")
    pixels = (digits[0, 0].numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(folder / "digit.png")
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(folder / "digit_rgb.png")
    Image.fromarray(np.kron(pixels, np.ones((2, 2), dtype=np.uint8))).save(folder / "digit16.png")
    np.save(folder / "batch.npy", digits.numpy())
    (folder / "net.py").write_text(NET_PY)
    return folder


def explain(*args: str):
    result = runner.invoke(app, ["explain", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def png_tensor(path) -> torch.Tensor:
    """What the PNG holds, in [0, 1], as a batch of one."""
    return torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255.0)[None, None]


# --------------------------------------------------------------------------- methods, demo, help


def test_methods_lists_every_method_with_a_one_line_description_and_its_source():
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == sl.available_methods()
    for line, name in zip(lines, sl.available_methods(), strict=True):
        cls = registry.get(name)
        assert cls.description.strip() and "\n" not in cls.description, name
        assert cls.source.strip() and "\n" not in cls.source, name
        assert line.endswith(f"{cls.description}  [{cls.source}]")


def test_demo_explains_digits_and_faces_and_writes_the_report(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--inputs", "2", "-m", "gradient", "-m", "grad_cam"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith(("Digits ", "Faces "))]
    assert [row[:2] for row in rows] == [
        ["Digits", "gradient"], ["Digits", "grad_cam"], ["Faces", "gradient"], ["Faces", "grad_cam"]
    ]  # fmt: skip
    assert all(row[5] in ("passes:", "fails:", "inconclusive:") for row in rows), rows
    assert "deletion AUC: the target's probability" in result.output  # says which direction is better
    html = (tmp_path / "index.html").read_text()
    assert "Digits" in html and "Faces" in html and f"report: {tmp_path / 'index.html'}" in result.output
    drawn = matplotlib.image.imread(tmp_path / "images" / "digits-gradient-0.png")
    assert drawn[..., :3].std() > 0.05  # a real picture, not a blank canvas


def test_demo_with_an_unknown_method_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "-m", "gradiant"])
    assert result.exit_code == 7 and "gradient" in result.output


def test_explain_report_writes_one_section_per_input(files, tmp_path):
    result = explain(
        "--model", "zoo:digits_cnn", "--input", files / "digit.png", "--method", "gradient", "--out", tmp_path / "o",
        "--report", tmp_path / "report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report" / "index.html").read_text()
    assert "digit.png" in html and "<td>gradient</td>" in html
    assert f"report: {tmp_path / 'report' / 'index.html'}" in result.output


@pytest.mark.parametrize("command", [[], ["demo"], ["methods"], ["explain"], ["sanity"], ["axioms"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize("command", ["explain", "sanity", "axioms"])
def test_help_documents_the_options_and_every_exit_code(command):
    text = " ".join(runner.invoke(app, [command, "--help"]).output.split())
    for flag in ("--method", "--option") + (
        ("--model", "--input", "--target", "--size") if command != "axioms" else ()
    ):
        assert flag in text
    for code in range(11):
        assert f"{code} " in text.split("Exit codes:")[1]


def test_the_readme_table_gives_every_exit_code():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    codes = [int(code) for code in re.findall(r"^\| (\d+) \|", readme, re.M)]
    assert codes == sorted(EXIT_CODES) == list(range(11))


def test_list_options_take_several_values_after_one_flag():
    args = ["--input", "a.png", "b.npy", "-m", "gradient", "lrp", "--size", "8", "8", "--target", "3"]
    assert spread_values(args) == [
        "--input", "a.png", "--input", "b.npy", "-m", "gradient", "-m", "lrp", "--size", "8", "--size", "8",
        "--target", "3",
    ]  # fmt: skip
    assert spread_values(["--mean", "-0.5", "--", "-x"]) == ["--mean", "-0.5", "--", "-x"]


# --------------------------------------------------------------------------- explain: numbers


def test_explain_png_saves_what_sl_explain_gives_on_the_same_tensor(files, digits, tmp_path):
    result = explain(
        "--model", "zoo:digits_cnn", "--input", files / "digit.png", "--method", "gradient", "integrated_gradients",
        "--target", 3, "--option", "integrated_gradients.steps=16", "--out", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    x = png_tensor(files / "digit.png")
    assert (x - digits[:1]).abs().max() <= 0.5 / 255 + 1e-7  # 8-bit rounding of the digit
    model = sl.zoo.load("digits_cnn")
    gradient = sl.explain(model, x, method="gradient", target=3)
    ig = sl.explain(model, x, method="integrated_gradients", target=3, steps=16)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "digit" / "gradient.npy")), gradient.values)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "digit" / "integrated_gradients.npy")), ig.values)
    assert np.load(tmp_path / "digit" / "gradient.npy").std() > 0  # a real map, not zeros
    row = next(line.split() for line in result.output.splitlines() if line.startswith("integrated_gradients"))
    assert row[1:3] == ["digit.png", "3"] and row[4] == f"{float(ig.delta.max()):.2e}"
    overlay = matplotlib.image.imread(tmp_path / "digit" / "gradient.png")
    assert overlay.shape[0] >= 256 and overlay[..., :3].std() > 0.05


def test_explain_npy_batch_with_baseline_and_pt_format(files, digits, tmp_path):
    result = explain(
        "--model", "zoo:digits_cnn", "-i", files / "batch.npy", "-m", "integrated_gradients", "--baseline", "0.25",
        "-o", "steps=8", "--format", "pt", "--out", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = sl.explain(sl.zoo.load("digits_cnn"), digits, method="integrated_gradients", baseline=0.25, steps=8)
    saved = torch.from_numpy(np.load(tmp_path / "batch" / "integrated_gradients.npy"))
    torch.testing.assert_close(saved, expected.values)
    torch.testing.assert_close(torch.load(tmp_path / "batch" / "integrated_gradients.pt"), expected.values)
    assert expected.target.tolist() == [int(t) for t in result.output.splitlines()[1].split()[2].split(",")]
    assert sorted(p.name for p in (tmp_path / "batch").glob("*.png")) == [
        f"integrated_gradients_{i}.png" for i in range(3)
    ]


def test_explain_normalises_resizes_and_matches_the_model_channels(files, tmp_path):
    model = sl.zoo.load("digits_cnn")
    x = png_tensor(files / "digit.png")
    result = explain(
        "--model", "zoo:digits_cnn", "-i", files / "digit_rgb.png", "-m", "gradient_x_input",
        "--mean", 0.2, "--std", 0.5, "--target", 1, "--out", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # the RGB image is read in grey: the model's first conv takes 1
    expected = sl.explain(model, (x - 0.2) / 0.5, method="gradient_x_input", target=1).values
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "digit_rgb" / "gradient_x_input.npy")), expected)

    result = explain("--model", "zoo:digits_cnn", "-i", files / "digit16.png", "-m", "gradient", "--size", 8, 8,
                     "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    big = png_tensor(files / "digit16.png")
    resized = torch.nn.functional.interpolate(big, size=(8, 8), mode="bilinear", antialias=True)
    expected = sl.explain(model, resized, method="gradient").values
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "digit16" / "gradient.npy")), expected)


def test_explain_a_factory_from_a_python_file_with_weights(files, tmp_path):
    namespace: dict = {}
    exec(NET_PY, namespace)
    trained = namespace["build"](seed=7)
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    x = torch.from_numpy(np.load(files / "batch.npy"))
    spec = f"{files / 'net.py'}:build"

    result = explain("--model", spec, "-i", files / "batch.npy", "-m", "gradient", "--target", 2, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    expected = sl.explain(namespace["build"](), x, method="gradient", target=2).values
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "batch" / "gradient.npy")), expected)

    result = explain("--model", spec, "--weights", tmp_path / "trained.pt", "-i", files / "batch.npy", "-m",
                     "gradient", "--target", 2, "--out", tmp_path / "w")  # fmt: skip
    assert result.exit_code == 0, result.output
    expected_trained = sl.explain(trained, x, method="gradient", target=2).values
    assert not torch.allclose(expected, expected_trained)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "w" / "batch" / "gradient.npy")), expected_trained)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_explain_torchscript_and_torch_export_files(files, tmp_path):
    namespace: dict = {}
    exec(NET_PY, namespace)
    net = namespace["build"]().eval()
    x = torch.from_numpy(np.load(files / "batch.npy"))
    save_compiled(net, x, tmp_path)
    expected = {
        "gradient_x_input": sl.explain(net, x, method="gradient_x_input", target=0).values,
        "integrated_gradients": sl.explain(net, x, method="integrated_gradients", target=0, steps=8).values,
    }
    for name in ("net.ts", "net.pt2"):
        out = tmp_path / name.replace(".", "_")
        result = explain("--model", tmp_path / name, "-i", files / "batch.npy", "-m", *expected, "--target", 0,
                         "-o", "steps=8", "--out", out)  # fmt: skip
        assert result.exit_code == 0, result.output
        for method, values in expected.items():
            torch.testing.assert_close(torch.from_numpy(np.load(out / "batch" / f"{method}.npy")), values)


def save_compiled(net: torch.nn.Module, x: torch.Tensor, folder) -> None:
    """``net.ts`` (TorchScript) and ``net.pt2`` (torch.export with a dynamic batch) in ``folder``."""
    torch.jit.save(torch.jit.script(net), folder / "net.ts")
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: batch},)), folder / "net.pt2")


# --------------------------------------------------------------------------- explain: errors and exit codes


def error_cases(files, tmp_path):
    """(arguments, exit code, words the message must hold)."""
    net = files / "net.py"
    png, npy = files / "digit.png", files / "batch.npy"
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "linear.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    (tmp_path / "bad.pt2").write_bytes(b"not an archive")
    exported = torch.export.export(torch.nn.Flatten(), (torch.zeros(3, 1, 8, 8),))  # a fixed batch of 3
    torch.export.save(exported, tmp_path / "fixed.pt2")
    namespace: dict = {}
    exec(NET_PY, namespace)
    save_compiled(namespace["build"]().eval(), torch.zeros(2, 1, 8, 8), tmp_path)
    zoo = ["--model", "zoo:digits_cnn"]
    compiled = "would silently give other numbers"
    return [
        ([*zoo, "-i", tmp_path / "missing.png", "-m", "gradient"], 3, ["missing.png", "does not exist"]),
        (["--model", tmp_path / "missing.ts", "-i", png, "-m", "gradient"], 3, ["missing.ts", "does not exist"]),
        ([*zoo, "--weights", tmp_path / "w.pt", "-i", png, "-m", "gradient"], 3, ["w.pt", "does not exist"]),
        ([*zoo, "-i", png, "-m", "integrated_gradients", "--baseline", tmp_path / "b.npy"], 3, ["b.npy"]),
        (["--model", "zoo:nope", "-i", png, "-m", "gradient"], 4, ["unknown model 'nope'", "digits_cnn"]),
        (["--model", "no_such_module_xyz:build", "-i", png, "-m", "gradient"], 4, ["no module named", "PYTHONPATH"]),
        (["--model", f"{net}:biuld", "-i", png, "-m", "gradient"], 4, ["no attribute 'biuld'", "did you mean build"]),
        (["--model", f"{net}:LAYERS", "-i", png, "-m", "gradient"], 4, ["is a int, not a callable"]),
        (["--model", f"{net}:broken", "-i", png, "-m", "gradient"], 4, ["raised RuntimeError: no weights here"]),
        (["--model", f"{net}:not_a_model", "-i", png, "-m", "gradient"], 4, ["returned a int, not a torch.nn.Module"]),
        (["--model", tmp_path / "linear.pt", "-i", png, "-m", "gradient"], 4, ["not a TorchScript", "--weights"]),
        (["--model", tmp_path / "bad.pt2", "-i", png, "-m", "gradient"], 4, ["not a torch.export archive"]),
        ([*zoo, "--weights", tmp_path / "linear.pt", "-i", png, "-m", "gradient"], 5, ["do not fit", "Missing key"]),
        ([*zoo, "--weights", tmp_path / "tensor.pt", "-i", png, "-m", "gradient"], 5, ["not a state dict"]),
        ([*zoo, "-i", files / "digit16.png", "-m", "gradient"], 6, ["(1, 1, 16, 16)", "--size", "--grey / --rgb"]),
        ([*zoo, "-i", png, "--rgb", "-m", "gradient"], 6, ["(1, 3, 8, 8)", "--grey"]),
        (["--model", tmp_path / "fixed.pt2", "-i", npy, "-m", "gradient"], 6, ["batch of 3 but not of 6", "dynamic"]),
        ([*zoo, "-i", png, "-m", "gradiant"], 7, ["unknown method 'gradiant'", "close matches: gradient"]),
        ([*zoo, "-i", png, "-m", "gradient", "-o", "steps"], 8, ["KEY=VALUE"]),
        ([*zoo, "-i", png, "-m", "gradient", "-o", "steps=4"], 8, ["no chosen method takes the option 'steps'"]),
        ([*zoo, "-i", png, "-m", "integrated_gradients", "-o", "steps=-3"], 8, ["steps must be an int >= 1"]),
        ([*zoo, "-i", png, "-m", "gradient", "--target", "x"], 8, ["--target takes a class index or 'argmax'"]),
        ([*zoo, "-i", png, "-m", "gradient", "--target", "12"], 8, ["target 12 is out of range"]),
        ([*zoo, "-i", png, "-m", "integrated_gradients", "--baseline", "bogus"], 8, ["--baseline takes"]),
        ([*zoo, "-i", png, "-m", "gradient", "--baseline", "zeros"], 8, ["none of gradient takes a baseline"]),
        ([*zoo, "-i", png, "-m", "gradient", "--mean", "0.1", "0.2"], 8, ["mean takes 1 or 1 values"]),
        (["--model", f"{net}:WithGelu", "-i", png, "-m", "guided_backprop"], 9, ["no rule for the operation 'gelu'"]),
        (["--model", tmp_path / "net.ts", "-i", png, "-m", "guided_backprop"], 9, ["guided_backprop", compiled]),
        (["--model", tmp_path / "net.pt2", "-i", png, "-m", "grad_cam"], 9, ["grad_cam cannot see inside", compiled]),
        ([*zoo, "-i", png, "-m", "gradient", "--size", "0"], 2, ["--size"]),
    ]


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_every_user_error_has_its_exit_code_and_a_message_without_traceback(files, tmp_path):
    for args, code, words in error_cases(files, tmp_path):
        result = explain(*args, "--out", tmp_path / "out")
        text = " ".join(result.output.split())
        assert result.exit_code == code, (args, result.output)
        for word in words:
            assert word in text, (args, result.output)
        if code != 2:  # 2 is typer's own usage message
            assert result.stderr.startswith("error: "), (args, result.output)
            assert len(result.stderr.strip().splitlines()) == 1, (args, result.output)
        if code != 9:  # an operation without a rule shows only while the method runs
            assert result.stdout == "", (args, result.output)
    assert not (tmp_path / "out").exists()  # no error leaves a partial result behind


def png_claiming(path, width: int, height: int) -> None:
    """A PNG of one pixel whose header claims ``width`` x ``height`` pixels (a decompression bomb's signature)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = struct.pack(">II", width, height) + bytes(data[24:29])  # IHDR: size, then depth, colour, ...
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))


class Payload:
    """Unpickling it would create a file: what a malicious .pt file does, harmlessly."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def hostile(tmp_path, digits):
    """Files a user may be handed: a decompression bomb, truncated files, NaN values, pickled code."""
    png_claiming(tmp_path / "bomb.png", 100_000, 100_000)  # over Pillow's error limit
    png_claiming(tmp_path / "big.png", 12_000, 12_000)  # over its warning limit: also refused
    torch.save(sl.zoo.load("digits_cnn").state_dict(), tmp_path / "weights.pt")
    whole = (tmp_path / "weights.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])
    np.save(tmp_path / "whole.npy", digits.numpy())
    (tmp_path / "cut.npy").write_bytes((tmp_path / "whole.npy").read_bytes()[:100])
    with_nan = digits.numpy().copy()
    with_nan[1, 0, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", with_nan)
    torch.save(Payload(tmp_path / "pwned"), tmp_path / "payload.pt")
    torch.save({"features.0.weight": Payload(tmp_path / "pwned")}, tmp_path / "payload_weights.pt")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return tmp_path


def hostile_cases(folder):
    """(arguments, exit code, words the message must hold)."""
    zoo, npy = ["--model", "zoo:digits_cnn"], folder / "whole.npy"
    refused = ["it holds pickled Python objects", "loading them could run code", "Save plain tensors instead"]
    return [
        ([*zoo, "-i", folder / "bomb.png", "-m", "gradient"], 3,
         ["refused the image", "bomb.png", "10000000000 pixels", "decompression bombs", "shrink it"]),
        ([*zoo, "-i", folder / "big.png", "-m", "gradient"], 3, ["refused the image", "144000000 pixels"]),
        ([*zoo, "--weights", folder / "cut.pt", "-i", npy, "-m", "gradient"], 3,
         ["cannot read the weights file", "cut.pt", "truncated, corrupt or not a torch.save file"]),
        ([*zoo, "-i", folder / "cut.npy", "-m", "gradient"], 3,
         ["cannot read the input", "cut.npy", "truncated, corrupt or not a np.save file"]),
        ([*zoo, "-i", folder / "nan.npy", "-m", "gradient"], 6,
         ["nan.npy", "1 NaN or Inf values (first at index (1, 0, 2, 3))", "clean or impute them"]),
        ([*zoo, "-i", folder / "payload.pt", "-m", "gradient"], 3,
         ["refused the input", "payload.pt", "(it asks for getattr)", *refused]),
        ([*zoo, "--weights", folder / "payload_weights.pt", "-i", npy, "-m", "gradient"], 3,
         ["refused the weights file", *refused]),
        ([*zoo, "-i", npy, "-m", "integrated_gradients", "--baseline", folder / "payload.pt"], 3,
         ["refused the baseline file", *refused]),
        ([*zoo, "-i", folder / "objects.npy", "-m", "gradient"], 3, ["refused the input", *refused]),
    ]  # fmt: skip


def test_hostile_files_are_refused_in_one_line_with_their_exit_code_before_any_method_runs(hostile):
    for args, code, words in hostile_cases(hostile):
        result = explain(*args, "--out", hostile / "out")
        text = " ".join(result.stderr.split())
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.output
        for word in words:
            assert word in text, (args, result.output)
        assert "weights_only" not in text and "allow_pickle" not in text  # never advice to turn the guard off
        assert result.stdout == "", (args, result.output)  # no method ran
    assert not (hostile / "pwned").exists()  # no pickled code ran
    assert not (hostile / "out").exists()


def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(files, tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("someone's notes")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):  # the OS's answer in a folder without write permission (also for root)
        if locked in (self, *self.parents):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    run = ["--model", "zoo:digits_cnn", "-i", files / "digit.png", "-m", "gradient"]
    cases = [
        (["--out", tmp_path / "taken"], f"--out {tmp_path / 'taken'} is an existing file; give a folder"),
        (["--out", tmp_path / "taken" / "sub"], f"{tmp_path / 'taken'} is a file, not a folder"),
        (["--out", locked / "results"], f"cannot write in {locked} (Permission denied); choose a folder you can"),
        (["--out", tmp_path / "o", "--report", tmp_path / "taken"], f"--report {tmp_path / 'taken'} is an existing"),
    ]
    for args, message in cases:
        result = explain(*run, *args)
        assert result.exit_code == 10, (args, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    assert (tmp_path / "taken").read_text() == "someone's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "taken"]
    for command in ("sanity", "axioms"):
        result = runner.invoke(app, [command, *(map(str, run[:4]) if command == "sanity" else []), "-m", "gradient",
                                     "--out", str(tmp_path)])  # fmt: skip
        assert result.exit_code == 10 and f"--out {tmp_path} is a folder; give a file name" in result.stderr
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "taken")])
    assert result.exit_code == 10 and "is an existing file" in result.stderr and result.stdout == ""


def test_a_run_that_fails_part_way_leaves_no_result(files, tmp_path):
    spec = f"{files / 'net.py'}:WithGelu"  # gradient runs, then guided_backprop has no rule for gelu
    result = explain("--model", spec, "-i", files / "digit.png", "-m", "gradient", "guided_backprop",
                     "--out", tmp_path / "new" / "out")  # fmt: skip
    assert result.exit_code == 9 and "no rule for the operation 'gelu'" in result.stderr
    assert result.stdout.splitlines()[1].split()[:2] == ["gradient", "digit.png"] and "results:" not in result.stdout
    assert list(tmp_path.iterdir()) == []  # no OUT, no staging folder left

    earlier = tmp_path / "kept" / "digit" / "gradient.npy"
    earlier.parent.mkdir(parents=True)
    np.save(earlier, np.zeros(3))
    result = explain("--model", spec, "-i", files / "digit.png", "-m", "gradient", "guided_backprop", "--out",
                     tmp_path / "kept")  # fmt: skip
    assert result.exit_code == 9
    assert [p.relative_to(tmp_path) for p in sorted(tmp_path.rglob("*"))] == [
        pathlib.Path(p) for p in ("kept", "kept/digit", "kept/digit/gradient.npy")
    ]
    assert np.load(earlier).tolist() == [0, 0, 0]  # an earlier run's result is left as it was

    result = explain("--model", spec, "-i", files / "digit.png", "-m", "gradient", "--out", tmp_path / "kept")
    assert result.exit_code == 0 and result.stdout.endswith(f"results: {tmp_path / 'kept'}\n")
    assert sorted(p.name for p in (tmp_path / "kept" / "digit").iterdir()) == ["gradient.npy", "gradient.png"]
    assert np.load(earlier).shape == (1, 1, 8, 8)  # a complete run replaces it
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


# --------------------------------------------------------------------------- sanity and axioms


def test_sanity_prints_and_saves_the_randomisation_table_of_the_library(files, digits, tmp_path):
    result = runner.invoke(app, [
        "sanity", "--model", "zoo:digits_cnn", "-i", str(files / "batch.npy"), "-m", "gradient", "guided_backprop",
        "--shuffled", "zoo:digits_cnn,labels=shuffled", "--out", str(tmp_path / "sanity.csv"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "sanity.csv")
    model, shuffled = sl.zoo.load("digits_cnn"), sl.zoo.load("digits_cnn", labels="shuffled")
    for method in ("gradient", "guided_backprop"):
        expected = sl.evaluate.model_randomization(model, digits, method=method, progress=False)
        rows = table[(table.method == method) & (table.step != "data")]
        assert (
            rows.layer.tolist()
            == expected.layer.tolist()
            == ["classifier.3", "classifier.1", "features.2", "features.0"]
        )
        np.testing.assert_allclose(rows.similarity, expected.similarity, rtol=1e-12)
        data = sl.evaluate.data_randomization(model, shuffled, digits, method=method)
        np.testing.assert_allclose(table[(table.method == method) & (table.step == "data")].similarity, data.mean())
    # seed 000: gradients pass the check, Guided Backprop barely reacts to the top layers
    last = table[table.step == "1"].set_index("method").similarity
    assert last["gradient"] < 0.6 < last["guided_backprop"]
    assert f"{expected.similarity.iloc[0]:.3f}" in result.output
    verdicts = [line.split() for line in result.output.split("verdicts (pass:")[1].splitlines()[2:6]]
    outcomes = {(row[1], row[2]): row[-4] for row in verdicts}  # row[2]: 'model' or 'data'
    assert set(outcomes.values()) <= {"pass", "fail", "inconclusive"} and len(outcomes) == 4
    assert outcomes["gradient", "model"] == "pass" and outcomes["guided_backprop", "model"] == "fail"


def test_axioms_prints_the_axiom_table_of_the_library(tmp_path):
    result = runner.invoke(app, ["axioms", "-m", "gradient", "integrated_gradients", "-o", "steps=16",
                                 "--out", str(tmp_path / "axioms.csv")])  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = sl.evaluate.axiom_table([("gradient", {}), ("integrated_gradients", {"steps": 16})])
    lines = {
        line.split()[0]: line.split()[1:] for line in result.output.splitlines()[1:] if not line.startswith("measured")
    }
    for prop in expected.index:
        assert lines[prop] == ["pass" if passed else "FAIL" for passed in expected.loc[prop]], prop
    assert lines["completeness"] == ["FAIL", "pass"]  # seed 002's table: IG is complete, the gradient is not
    measured = pd.read_csv(tmp_path / "axioms.csv", index_col=0)
    np.testing.assert_allclose(measured.to_numpy(), expected.attrs["measured"].to_numpy(dtype=float), rtol=1e-9)


def test_sanity_and_axioms_errors_have_their_exit_codes(files):
    cases = [
        (["sanity", "--model", "zoo:digits_cnn", "-i", files / "batch.npy", "-m", "gradient", "--mode", "x"], 8,
         "unknown mode 'x'"),
        (["sanity", "--model", "zoo:nope", "-i", files / "batch.npy", "-m", "gradient"], 4, "unknown model"),
        (["axioms", "-m", "gradint"], 7, "close matches: gradient"),
        (["axioms", "-m", "gradient", "-o", "steps=3"], 8, "no chosen method takes the option 'steps'"),
    ]  # fmt: skip
    for args, code, message in cases:
        result = runner.invoke(app, list(map(str, args)))
        assert result.exit_code == code and message in " ".join(result.stderr.split()), (args, result.output)
