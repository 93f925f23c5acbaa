"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs_and_reaches_its_tolerance():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python quick start"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    result = namespace["a"]
    model, x = namespace["model"], namespace["x"]
    with torch.no_grad():
        difference = (
            model(x).gather(1, result.target[:, None]).squeeze(1) - model(torch.zeros_like(x))[:, result.target].diag()
        )
    assert float((result.delta / difference.abs()).max()) <= 1e-3
    assert namespace["shap"].values.shape == x.shape
