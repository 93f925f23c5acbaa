"""Seeded methods: the seed alone fixes the draws (not the default dtype), and no global RNG state moves."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import conv_net

import saliencelab as sl

REFERENCES = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(7))
CELLS = torch.arange(16).reshape(4, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)  # 16 groups of 2×2 pixels

SEEDED = {
    "smoothgrad": {"samples": 4, "seed": 3},
    "integrated_gradients": {"steps": 4, "baseline": "uniform", "seed": 3},
    "expected_gradients": {"samples": 6, "noise": 0.1, "seed": 3, "baseline": REFERENCES},
    "gradient_shap": {"samples": 6, "noise": 0.1, "seed": 3, "baseline": REFERENCES},
    "rise": {"samples": 20, "grid": 3, "seed": 3},
    "kernel_shap": {"feature_mask": CELLS, "samples": 40, "seed": 3},  # 32 enumerated, 8 drawn
    "lime": {"feature_mask": "grid", "samples": 20, "seed": 3},
    "shapley_sampling": {"feature_mask": "grid", "samples": 2, "seed": 3},
    "prediction_difference": {"window": 2, "stride": 2, "samples": 2, "seed": 3, "baseline": REFERENCES},
    "prediction_difference_conditional": {
        "window": 2,
        "stride": 2,
        "samples": 2,
        "padding": 1,
        "sampling": "conditional",
        "seed": 3,
        "baseline": REFERENCES,
    },
    "meaningful_perturbation": {"steps": 3, "noise": 0.1, "resolution": 4, "seed": 3},
}


def _explain(name: str, model, images: torch.Tensor) -> sl.Attribution:
    method = name.removesuffix("_conditional")
    return sl.explain(model, images, method=method, target=1, **SEEDED[name])


@pytest.fixture
def default_float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_the_default_dtype_does_not_change_seeded_results(name, images, request):
    model = conv_net("module", seed=2)  # float32 weights, float32 inputs
    under_float32 = _explain(name, model, images).values
    request.getfixturevalue("default_float64")
    under_float64 = _explain(name, model, images).values
    assert under_float64.dtype == torch.float32
    assert torch.equal(under_float32, under_float64)


def _global_states() -> tuple:
    return random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state()


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_seeded_methods_leave_global_rng_state_alone(name, images):
    model = conv_net("module", seed=2)
    before = _global_states()
    _explain(name, model, images)
    after = _global_states()
    assert before[0] == after[0] and before[1] == after[1] and torch.equal(before[2], after[2])


def test_the_first_lime_call_of_a_process_leaves_global_rng_state_alone():
    # scikit-learn is imported on the first call only (and its import draws from Python's random): a fresh process
    script = textwrap.dedent(
        """
        import random, numpy as np, torch, saliencelab as sl
        states = lambda: (random.getstate(), np.random.get_state()[1].tobytes(), bytes(torch.get_rng_state()))
        model, x = torch.nn.Linear(4, 1), torch.ones(1, 4)
        before = states()
        sl.explain(model, x, method="lime", samples=20)
        print(before == states())
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=True)
    assert done.stdout.strip() == "True", done.stderr
