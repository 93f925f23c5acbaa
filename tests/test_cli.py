"""The command line: methods and demo."""

from __future__ import annotations

import matplotlib.image
from typer.testing import CliRunner

import saliencelab as sl
from saliencelab.cli import app
from saliencelab.demo import DEMO_METHODS

runner = CliRunner()


def test_methods_lists_every_method_with_its_source():
    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == sl.available_methods()
    assert all("[" in line and "]" in line for line in lines)


def test_demo_explains_digits_with_every_method_and_writes_the_figure(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--digits", "3"])
    assert result.exit_code == 0, result.output
    for method in DEMO_METHODS:
        assert method in result.output
    figure = matplotlib.image.imread(tmp_path / "gradient_methods.png")
    assert figure.shape[0] > 100 and figure.shape[1] > 500
    assert figure[..., :3].std() > 0.05  # a real picture, not a blank canvas


def test_every_command_has_help():
    for command in ([], ["demo"], ["methods"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
