"""The demo: explain test digits of the embedded digits CNN with the gradient, reference and CAM methods.

Example
-------
>>> import tempfile
>>> rows = run_demo(tempfile.mkdtemp(), n_digits=2, progress=False)
>>> sorted(rows[0])
['delta', 'method', 'seconds']
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import saliencelab as sl
from saliencelab import viz

DEMO_METHODS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "gradient_x_input": {},
    "deconvnet": {},
    "guided_backprop": {},
    "integrated_gradients": {"baseline": "zeros", "steps": 32},
    "smoothgrad": {"samples": 50, "noise": 0.15},
    "expected_gradients": {"samples": 64},
    "gradient_shap": {"samples": 64, "noise": 0.1},
    "deeplift": {"baseline": "zeros"},
    "deepshap": {},
    "lrp": {"composite": "epsilon_plus"},
    "deep_taylor": {"low": 0.0, "high": 1.0},
    "pattern_attribution": {},
    "grad_cam": {"layer": "features.3"},
    "guided_grad_cam": {"layer": "features.3"},
    "grad_cam_pp": {"layer": "features.3"},
    "score_cam": {"layer": "features.3"},
    "ablation_cam": {"layer": "features.3"},
    "eigen_cam": {"layer": "features.3"},
    "visual_backprop": {},
}
"""Each method with its demo options; CAMs read the last convolution's ReLU (8x8) rather than the 4x4 pool."""


def run_demo(out: str | Path, *, n_digits: int = 6, progress: bool = True) -> list[dict[str, Any]]:
    """Explain ``n_digits`` test digits with every demo method and save the figure.

    Writes ``gradient_methods.png`` to ``out`` and returns one row per method:
    its name, the seconds it took, and the largest completeness error (or None).
    """
    torch.manual_seed(0)
    model = sl.zoo.load("digits_cnn")
    x_train, _, x_test, y_test = sl.zoo.dataset("digits")
    picks = torch.stack([(y_test == digit).nonzero()[0, 0] for digit in range(n_digits)])
    inputs, labels = x_test[picks], y_test[picks]
    background = x_train[:64]
    maps: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for method, options in tqdm(DEMO_METHODS.items(), desc="methods", disable=not progress):
        options = dict(options)
        if method in ("expected_gradients", "gradient_shap"):
            options["baseline"] = background
        if method == "deepshap":
            options["baseline"] = background[:16]
        if method == "pattern_attribution":
            options["fit_data"] = x_train[:512]
        start = time.perf_counter()
        result = sl.explain(model, inputs, method=method, target=labels, **options)
        seconds = time.perf_counter() - start
        maps[method] = result.values
        delta = None if result.delta is None else float(result.delta.max())
        rows.append({"method": method, "seconds": seconds, "delta": delta})
    with torch.no_grad():
        predicted = model(inputs).argmax(dim=1)
    labels_text = [f"true {int(t)}, predicted {int(p)}" for t, p in zip(labels, predicted, strict=True)]
    viz.grid(inputs, maps, Path(out) / "gradient_methods.png", row_labels=labels_text)
    return rows
