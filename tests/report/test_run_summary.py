"""Tests for the SpRAy summary page of a data-set run (saliencelab.report.run_summary, `saliencelab report --run`)."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest
from typer.testing import CliRunner

import saliencelab as sl
from saliencelab import zoo
from saliencelab.cli import app
from saliencelab.io.errors import BadOptionError
from saliencelab.report.run_summary import summarise_run, write_run_summary
from saliencelab.runs.spray import analyse_run

pytest.importorskip("zarr", reason="the run store needs zarr>=3 (pip install 'saliencelab[runs]')")
from fake_runs import FakeRun, digits_table  # noqa: E402


@pytest.fixture(scope="module")
def watermark_run(tmp_path_factory) -> FakeRun:
    """The watermark model's test digits 6 and 7 (18 of the 45 7s watermarked), explained with gradient x input."""
    model = zoo.load("watermarked_digits_cnn")
    _, _, x, y = zoo.dataset("watermarked_digits")
    keep = (y == 6) | (y == 7)
    maps = sl.explain(model, x[keep], "gradient_x_input").values.detach().numpy()
    names = [str(digit) for digit in range(10)]
    path = tmp_path_factory.mktemp("runs") / "run.zarr"
    return FakeRun(path, x[keep].numpy(), {"gradient_x_input": maps}, digits_table(y[keep].numpy()), classes=names)


def test_the_page_shows_each_class_its_clusters_prototypes_and_candidates(watermark_run: FakeRun, tmp_path) -> None:
    result = analyse_run(watermark_run)
    page = write_run_summary(watermark_run, tmp_path / "summary")
    text = page.read_text()
    sevens = result.classes[7]
    assert sevens.sizes == {0: 27, 1: 18}
    assert "Class 7 (7): 45 maps, 2 clusters" in text
    assert re.search(r"<td>1</td><td>18 \(40%\)</td>", text)
    for members in sevens.prototypes.values():
        for index in members:
            assert f'src="images/gradient_x_input-{index}.png"' in text
            assert f'src="images/input-{index}.png"' in text
    for index in sevens.candidates(top=8):
        assert f"sample {index} · score" in text
    images = {p.name for p in (page.parent / "images").iterdir()}
    assert {"class-6-eigenvalues.png", "class-7-eigenvalues.png", "class-7-mean-input.png"} <= images
    assert all(f"images/{name}" in text for name in images)  # every image written is shown


def test_a_run_without_analysis_is_refused_with_how_to_compute_it(tmp_path) -> None:
    maps = np.random.default_rng(0).normal(size=(12, 1, 8, 8))
    run = FakeRun(tmp_path / "run.zarr", np.zeros((12, 1, 8, 8)), {"gradient": maps}, digits_table(np.zeros(12, int)))
    with pytest.raises(ValueError, match=r"has no analysis; compute it with saliencelab.runs.spray.analyse_run"):
        write_run_summary(run, tmp_path / "summary")


@pytest.fixture
def stand_in_loader(watermark_run: FakeRun, monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    """`saliencelab.runs.api.load_run` answering with the stand-in run, whatever the run engine's state."""
    module = types.ModuleType("saliencelab.runs.api")
    module.load_run = lambda path: watermark_run
    monkeypatch.setitem(sys.modules, "saliencelab.runs.api", module)
    return watermark_run


def test_report_command_computes_a_missing_analysis_and_writes_the_page(stand_in_loader: FakeRun, tmp_path) -> None:
    import zarr

    zarr.open_group(stand_in_loader.path, mode="a").create_group("analysis", overwrite=True)  # empty: nothing yet
    out = tmp_path / "page"
    result = CliRunner().invoke(app, ["report", "--run", stand_in_loader.path, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {out / 'index.html'}"
    assert sorted(stand_in_loader.analysis) == [6, 7]
    assert "Class 7 (7): 45 maps" in (out / "index.html").read_text()


def test_report_command_errors(stand_in_loader: FakeRun, tmp_path) -> None:
    missing = CliRunner().invoke(app, ["report", "--run", str(tmp_path / "nothing.zarr"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 3
    assert "error: no run store at" in missing.output
    command = ["report", "--run", stand_in_loader.path, "--method", "lrp", "--out", str(tmp_path / "o")]
    other = CliRunner().invoke(app, command)
    assert other.exit_code == BadOptionError.exit_code
    assert "error: method 'lrp' is not in the run" in other.output
    with pytest.raises(BadOptionError):
        summarise_run(stand_in_loader.path, tmp_path / "o", method="lrp")


def test_report_command_on_a_real_run(tmp_path) -> None:
    """End to end with the run engine: sl.run writes the store, the command analyses it and writes the page."""
    api = pytest.importorskip("saliencelab.runs.api", reason="the run engine (saliencelab.runs.api) is not merged yet")
    model = zoo.load("watermarked_digits_cnn")
    _, _, x, y = zoo.dataset("watermarked_digits")
    store = tmp_path / "run.zarr"
    api.run(model, x[y == 7], methods=["gradient_x_input"], checks=[], store=str(store))
    result = CliRunner().invoke(app, ["report", "--run", str(store)])
    assert result.exit_code == 0, result.output
    page = tmp_path / "run.zarr-summary" / "index.html"
    assert "45 maps, 2 clusters" in page.read_text()
    assert api.load_run(str(store)).analysis[7]["sizes"] == {0: 27, 1: 18}
