"""Peak memory under ``memory_budget`` on cheap models with large inputs, each run in a fresh process.

A cheap model allocates almost nothing per row, so what a method holds of its
own (noise, path points, masks, gradients, cached clean maps) decides its peak.
Each case runs in a subprocess that warms up (imports, allocator, thread pools)
on a small call, resets the peak resident size (``/proc/self/clear_refs``) and
reports ``VmHWM`` − ``VmRSS`` before the measured call: its growth, which must
stay within the budget plus a slack for the interpreter's and allocator's own
variation.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BUDGET = 64 << 20
SLACK = 24 << 20
"""Allowed growth above the budget: the result, the inputs' copies the method must return, allocator slack."""

MEASURE = textwrap.dedent(
    """
    import sys, saliencelab as sl

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    torch.set_num_threads(1)
    budget = int(sys.argv[1])
    for case, make in CASES.items():
        model, x, options = make()
        sl.explain(model, x[:1], **options, memory_budget=budget)  # warm up: imports, caches, thread pools
        open("/proc/self/clear_refs", "w").write("5")  # the peak resident size restarts from here
        start = status("VmRSS")
        result = sl.explain(model, x, **options, memory_budget=budget)
        print(case, status("VmHWM") - start)
        del result
    """
)

CASES = textwrap.dedent(
    """
    def cheap(x):  # a linear score of the whole input: almost no activations
        return x.flatten(1).sum(1, keepdim=True) * 1e-3

    def smoothgrad():
        return cheap, torch.rand(2, 3, 224, 224), {"method": "smoothgrad", "samples": 100, "target": 0}

    def integrated_gradients():
        return cheap, torch.rand(2, 3, 224, 224), {"method": "integrated_gradients", "steps": 100, "target": 0}

    def occlusion():  # a small CNN: incremental occlusion keeps clean maps per sample
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2),
        ).eval()
        options = {"method": "occlusion", "window": 32, "stride": 32, "target": 0}
        return model, torch.rand(8, 3, 128, 128), options

    CASES = {"smoothgrad": smoothgrad, "integrated_gradients": integrated_gradients, "occlusion": occlusion}
    """
)


@functools.cache
def _growth() -> dict[str, int]:
    """Each case's growth in bytes, from one fresh process.

    A fixed mmap threshold makes glibc return every large freed block at once, so
    what one case freed does not hide what the next one allocates.
    """
    script = "import torch\nfrom torch import nn\n" + CASES + MEASURE
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 17)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(BUDGET)], capture_output=True, text=True, cwd=root, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return {case: int(growth) for case, growth in (line.split() for line in done.stdout.splitlines())}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak RSS")
@pytest.mark.parametrize("case", ["smoothgrad", "integrated_gradients", "occlusion"])
def test_peak_memory_stays_within_the_budget(case):
    growth = _growth()[case]
    assert growth <= BUDGET + SLACK, f"{case} grew by {growth / 2**20:.0f} MiB under a {BUDGET / 2**20:.0f} MiB budget"
