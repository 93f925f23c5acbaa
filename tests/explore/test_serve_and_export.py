"""Serving on loopback by default, the static export, and the command line."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from typer.testing import CliRunner

import saliencelab as sl
from saliencelab.cli import app
from saliencelab.explore.export import export
from saliencelab.explore.server import host_notice, is_loopback
from saliencelab.explore.synthetic import synthetic_run

pytest.importorskip("uvicorn")


def test_the_server_listens_on_loopback_by_default_and_says_so(capsys):
    running = sl.explore(synthetic_run(6))
    try:
        assert running.url.startswith("http://127.0.0.1:")
        bound = {s.getsockname()[0] for server in running.server.servers for s in server.sockets}
        assert bound == {"127.0.0.1"}
        assert json.load(urllib.request.urlopen(running.url + "api/run"))["n"] == 6
    finally:
        running.stop()
    printed = capsys.readouterr().out
    assert running.url in printed and "127.0.0.1 only" in printed


def test_another_host_is_named_in_a_warning():
    assert host_notice("0.0.0.0").startswith("warning: listening on 0.0.0.0: anyone who can reach this machine")
    assert not is_loopback("192.168.1.4") and not is_loopback("example.org") and is_loopback("127.0.0.2")


def test_the_export_holds_only_numbered_files_and_a_page_marked_static(tmp_path):
    run = synthetic_run(10, methods=("gradient", "occlusion"))
    folder = export(run, tmp_path / "site", limit=5)
    html = (folder / "index.html").read_text()
    assert 'data-mode="static"' in html and 'data-mode="live"' not in html
    names = [p.name for p in folder.rglob("*") if p.is_file()]
    assert all(re.fullmatch(r"[a-z0-9.-]+", name) for name in names), names
    tiles = list((folder / "tiles").glob("map-*.png"))
    assert len(tiles) == 5 * 2 * 4  # samples x methods x (sign x clipping)
    assert not list((folder / "data").glob("sample-5.js"))
    table = (folder / "data" / "table.js").read_text()
    rows = json.loads(table[table.index(", ") + 2 : table.rindex(");")])["rows"]
    assert [r["index"] for r in rows] == list(range(5))


def test_the_export_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        export(synthetic_run(3), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_the_export_writes_token_colours_for_a_text_run(tmp_path):
    folder = export(synthetic_run(4, text=True, methods=("gradient",)), tmp_path / "site", limit=2)
    assert len(list((folder / "data").glob("tokens-*.js"))) == 2 * 4
    assert not list((folder / "tiles").glob("map-*"))


def test_the_command_exports_a_stored_run(digits_run, tmp_path):
    run, site = digits_run.run, tmp_path / "site"
    result = CliRunner().invoke(app, ["explore", run.path, "--export", str(site), "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert f"explorer: {site / 'index.html'}" in result.output
    tiles = sorted(p.name for p in (site / "tiles").glob("map-*.png"))
    assert len(tiles) == 3 * len(run.methods) * 4  # samples x methods x (sign x clipping)
    table = (site / "data" / "table.js").read_text()
    rows = json.loads(table[table.index(", ") + 2 : table.rindex(");")])["rows"]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["columns"]["integrated_gradients.deletion_auc"] for r in rows] == pytest.approx(
        run.table["integrated_gradients.deletion_auc"][:3].tolist()
    )
    spray = (site / "data" / "spray.js").read_text()
    assert json.loads(spray[spray.index(", ") + 2 : spray.rindex(");")])["classes"][0]["key"] == "7"


def test_the_command_refuses_a_non_empty_export_folder(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "x").write_text("")
    result = CliRunner().invoke(app, ["explore", str(tmp_path / "run.zarr"), "--export", str(tmp_path / "site")])
    assert result.exit_code == 10 and "is not empty" in result.output


def test_the_command_is_listed_with_its_options():
    result = CliRunner().invoke(app, ["explore", "--help"])
    assert result.exit_code == 0
    assert all(flag in result.output for flag in ("--port", "--host", "--export", "--limit"))
