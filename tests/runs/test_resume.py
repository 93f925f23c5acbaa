"""A run killed with SIGKILL at a random chunk and started again equals an uninterrupted run, bit for bit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import saliencelab as sl

ROOT = Path(__file__).resolve().parents[2]
CHUNKS = 29  # 450 test digits in chunks of 16
SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import saliencelab as sl
sl.run(sl.zoo.load("digits_cnn"), "digits", store=sys.argv[1], batch_size=16, seed=7, progress=False,
       methods={"gradient": {}, "smoothgrad": {"samples": 4}, "integrated_gradients": {"steps": 8}},
       checks={"completeness": {}, "deletion": {"steps": 8}, "insertion": {"steps": 8}, "sparseness": {}})
"""


def _start(store: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(store)], env=env, stderr=subprocess.PIPE)


def _finish(store: Path) -> None:
    process = _start(store)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors.decode()


def _done(store: Path) -> int:
    folder = store / "done"
    return sum(name.isdigit() for name in os.listdir(folder)) if folder.is_dir() else 0  # not a marker's temp file


def _files(store: Path) -> dict[str, bytes]:
    """Every file of the store by relative path, but the group's attributes (its provenance holds times)."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p != store / "zarr.json"}  # fmt: skip


@pytest.mark.slow
def test_a_run_killed_at_a_random_chunk_finishes_equal_to_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole.zarr", tmp_path / "killed.zarr"
    _finish(whole)
    kill_after = random.randrange(1, CHUNKS - 2)
    process = _start(killed)
    while _done(killed) < kill_after and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    stopped_at = _done(killed)
    assert stopped_at < CHUNKS, f"the run finished before the kill after {kill_after} chunks"
    _finish(killed)
    files, expected = _files(killed), _files(whole)
    assert sorted(files) == sorted(expected), f"killed after {stopped_at} chunks"
    different = [name for name in files if files[name] != expected[name]]
    assert not different, f"killed after {stopped_at} chunks, these files differ: {different}"
    resumed, uninterrupted = sl.load_run(killed), sl.load_run(whole)
    pd.testing.assert_frame_equal(resumed.table, uninterrupted.table)
    sessions = resumed.provenance["sessions"]
    assert [s["chunks"] for s in sessions] == [CHUNKS - stopped_at] and resumed.complete
