"""The Ray engine writes the same store as the local engine, bit for bit, on a local Ray and on a two-node cluster."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import saliencelab as sl
from saliencelab.runs import as_source, compute_chunk

ray = pytest.importorskip("ray")

METHODS = {"gradient": {}, "integrated_gradients": {"steps": 8}}
CHECKS = ["completeness", "sparseness"]
BATCH = 64  # 450 test digits: 8 chunks


def _run(store: Path, **engine) -> sl.runs.Run:
    return sl.run(sl.zoo.load("digits_cnn"), "digits", methods=METHODS, checks=CHECKS, store=str(store),
                  batch_size=BATCH, progress=False, **engine)  # fmt: skip


def _files(store: Path) -> dict[str, bytes]:
    """Every file of the store by relative path, but the group's attributes (its provenance holds times)."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p != store / "zarr.json"}  # fmt: skip


def _assert_same_store(store: Path, expected: Path) -> None:
    files, reference = _files(store), _files(expected)
    assert sorted(files) == sorted(reference)
    assert [name for name in files if files[name] != reference[name]] == []
    pd.testing.assert_frame_equal(sl.load_run(store).table, sl.load_run(expected).table)


def _ray_processes(temp_dir: str) -> list[str]:
    """The command lines of this machine's processes that run from Ray's temporary folder ``temp_dir``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if temp_dir in command and proc.name.isdigit() and int(proc.name) != os.getpid():
            found.append(command)
    return found


def _wait_for_no_ray_processes(temp_dir: str) -> list[str]:
    """Ray's processes left after a shutdown, once they had up to 30 s to exit."""
    deadline = time.monotonic() + 30
    while _ray_processes(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _ray_processes(temp_dir)


@pytest.fixture(scope="module")
def ray_temp():
    """A short temporary folder for Ray's sessions and sockets, removed with the module's last Ray process."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp_dir
    yield temp_dir
    if before is None:
        del os.environ["RAY_TMPDIR"]
    else:
        os.environ["RAY_TMPDIR"] = before
    left = _wait_for_no_ray_processes(temp_dir)
    shutil.rmtree(temp_dir, ignore_errors=True)
    assert left == [], f"Ray processes left running: {left}"


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("local") / "run.zarr"
    _run(store)
    return store


@pytest.fixture(scope="module")
def two_nodes(ray_temp):
    """A Ray cluster of a head and one more node, one CPU each; its address."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def test_a_pickled_zoo_model_computes_the_same_bits_as_the_loaded_one():
    """A worker's copy of the model is unpickled into fresh memory: the zoo's weights must not sit unaligned."""
    model = sl.zoo.load("digits_cnn")
    copy = pickle.loads(pickle.dumps(model))
    source = as_source("digits")
    for index in range(source.chunks(BATCH)):
        chunk = source.chunk(index, BATCH)
        _, rows = compute_chunk(model, chunk, METHODS, {"completeness": {}}, 0, index)
        _, copied = compute_chunk(copy, chunk, METHODS, {"completeness": {}}, 0, index)
        pd.testing.assert_frame_equal(rows, copied, check_exact=True)


@pytest.mark.slow
def test_a_local_ray_of_two_workers_writes_the_local_engines_store_and_stops(tmp_path, local_store, ray_temp):
    run = _run(tmp_path / "ray.zarr", engine="ray", workers=2)
    assert not ray.is_initialized()
    assert _wait_for_no_ray_processes(ray_temp) == []
    _assert_same_store(tmp_path / "ray.zarr", local_store)
    session = run.provenance["sessions"][0]
    assert (session["workers"], session["chunks"], run.provenance["engine"]) == (2, 8, "ray")  # 1 + 7 chunks


@pytest.mark.slow
def test_a_two_node_cluster_writes_the_local_engines_store(tmp_path, local_store, two_nodes):
    run = _run(tmp_path / "ray.zarr", engine="ray", address=two_nodes)
    assert not ray.is_initialized()  # disconnected after the run
    _assert_same_store(tmp_path / "ray.zarr", local_store)
    assert run.provenance["sessions"][0]["workers"] == 2


@pytest.mark.slow
def test_a_store_half_done_by_the_local_engine_is_finished_by_ray(tmp_path, local_store, two_nodes):
    store = tmp_path / "half.zarr"
    shutil.copytree(local_store, store)
    half = sl.load_run(store)
    redo = range(3, 8)
    for index in redo:  # as if stopped after chunk 2: no markers, no table parts, no maps
        (store / "done" / f"{index:06d}").unlink()
        (store / "table" / f"part-{index:06d}.parquet").unlink()
        for method in half.methods:
            half.maps[method]["input"][index * BATCH : (index + 1) * BATCH] = np.nan
    ray.init(address=two_nodes, log_to_driver=False)
    try:
        run = _run(store, engine="ray")  # address=None: this process's connection, kept
        assert ray.is_initialized()
        with pytest.raises(ValueError, match="already connected to Ray"):
            _run(store, engine="ray", address=two_nodes)
    finally:
        ray.shutdown()
    _assert_same_store(store, local_store)
    assert [s["chunks"] for s in run.provenance["sessions"]] == [8, len(redo)]


@pytest.mark.slow
def test_an_error_in_a_worker_is_raised_with_its_own_type_and_message(tmp_path, two_nodes):
    x, y = sl.zoo.dataset("digits")[2:]
    y = y.clone()
    y[2 * 16 + 5] = 12  # a label in chunk 2 that the model's 10 classes cannot explain
    with pytest.raises(ValueError, match=r"a target is outside the model's 10 classes") as raised:
        sl.run(sl.zoo.load("digits_cnn"), (x[:64], y[:64]), methods=["gradient"], checks=[], target="label",
               store=str(tmp_path / "bad.zarr"), batch_size=16, engine="ray", address=two_nodes, progress=False)
    assert "chunk 2" in "".join(getattr(raised.value, "__notes__", ["chunk 2"]))
    assert not ray.is_initialized()
    assert 2 not in sl.load_run(tmp_path / "bad.zarr").done


def test_the_ray_engine_refuses_a_store_in_this_process_memory_before_starting_ray():
    with pytest.raises(ValueError, match="Ray workers cannot reach"):
        sl.run(torch.nn.Linear(3, 2), torch.ones(4, 3), engine="ray", store="memory://ray-refused.zarr")
    assert not ray.is_initialized()


def test_importing_the_runs_does_not_import_ray():
    code = "import sys, saliencelab, saliencelab.runs; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}).stdout  # fmt: skip
    assert out.strip() == "False"


@pytest.mark.slow
def test_the_cli_runs_on_a_ray_cluster_and_refuses_an_address_for_the_local_engine(tmp_path, two_nodes):
    from typer.testing import CliRunner

    from saliencelab.cli import app

    command = ["run", "--data", "digits", "--model", "zoo:digits_cnn", "-m", "gradient", "--check", "sparseness",
               "--batch-size", "128", "--store", str(tmp_path / "cli.zarr")]  # fmt: skip
    result = CliRunner().invoke(app, [*command, "--engine", "ray", "--address", two_nodes, "--workers", "2"])
    assert result.exit_code == 0, result.output
    run = sl.load_run(tmp_path / "cli.zarr")
    assert run.complete and run.provenance["sessions"][0]["workers"] == 2 and run.provenance["engine"] == "ray"
    refused = CliRunner().invoke(app, [*command, "--address", "auto", "--overwrite"])
    assert refused.exit_code != 0 and "the local engine takes no address" in refused.output
