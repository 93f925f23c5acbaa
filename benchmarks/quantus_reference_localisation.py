"""Quantus's localisation scores on a fixed case, stored for ``tests/evaluate/test_localisation.py``.

The case: the first 32 test images of ``sl.zoo.dataset("cluttered_digits")``,
their object masks (``sl.zoo.object_masks``), the zoo model
``cluttered_digits_cnn`` and two attributions for the true labels, computed
by saliencelab (deterministic: one forward and one backward pass each):
gradient x input and the plain gradient (whose maximum misses the object
more often). Quantus 0.6.0's ``PointingGame``, ``RelevanceMassAccuracy`` and
``RelevanceRankAccuracy`` score them with ``abs=False`` and ``abs=True``
(its default ``normalise=True`` divides each map by its largest absolute
value, which changes none of the three), and ``RelevanceMassAccuracy`` also
scores the maps' positive part. Two hand-made maps probe the pointing game's
ties (:func:`tie_maps`). The scores, the settings and a checksum of the
attributions go to ``tests/evaluate/data/quantus_localisation.json``.

Quantus is not installed in the project's environment; it lives in the
benchmark environment (``bash benchmarks/setup_bench_env.sh``). Usage::

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_localisation.py
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch
from bench_evaluate import import_quantus

import saliencelab as sl

OUT = Path(__file__).resolve().parent.parent / "tests" / "evaluate" / "data" / "quantus_localisation.json"
SAMPLES = 32
MODEL = "cluttered_digits_cnn"
DATASET = "cluttered_digits"
METHODS = ("gradient_x_input", "gradient")
RUNS = (
    ("PointingGame", False, "signed"),
    ("PointingGame", True, "signed"),
    ("RelevanceMassAccuracy", False, "signed"),
    ("RelevanceMassAccuracy", True, "signed"),
    ("RelevanceMassAccuracy", False, "positive part"),
    ("RelevanceRankAccuracy", False, "signed"),
    ("RelevanceRankAccuracy", True, "signed"),
)
"""(Quantus metric, its ``abs=``, which maps it scores: the signed attributions or their positive part)."""
COMMAND = "PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_localisation.py"


def case() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model, images, labels and masks of the reference case."""
    model = sl.zoo.load(MODEL)
    _, _, x_test, y_test = sl.zoo.dataset(DATASET)
    _, mask_test = sl.zoo.object_masks(DATASET)
    return model, x_test[:SAMPLES], y_test[:SAMPLES], mask_test[:SAMPLES]


def attributions(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, method: str) -> torch.Tensor:
    """The reference attributions of ``method``, ``(N, 1, 32, 32)`` float32."""
    return sl.explain(model, x, method, target=y).values


def checksums(values: torch.Tensor) -> dict[str, float | int]:
    """Sums that tell whether a recomputation has the same attributions, and how many pixels are positive."""
    flat = values.double().flatten(1)
    return {
        "sum": flat.sum().item(),
        "abs_sum": flat.abs().sum().item(),
        "fewest_positive": int((flat > 0).sum(1).min()),
    }


def tie_maps(masks: torch.Tensor) -> torch.Tensor:
    """Maps for the first two masks: two tied maxima (the first object pixel and the first background pixel); ones."""
    flat = masks[:2].flatten(1)
    maps = torch.zeros(2, flat.shape[1])
    maps[0, flat[0].double().argmax()] = maps[0, (~flat[0]).double().argmax()] = 1.0
    maps[1] = 1.0
    return maps.reshape(masks[:2].shape)


def main() -> None:
    """Score the case with Quantus and write the JSON file."""
    quantus = import_quantus()
    model, x, y, masks = case()
    arrays = {"x_batch": x.numpy(), "y_batch": y.numpy(), "s_batch": masks.numpy().astype(np.float32)}
    results, sums = [], {}
    for method in METHODS:
        maps = attributions(model, x, y, method)
        sums[method] = checksums(maps)
        for metric, absolute, which in RUNS:
            values = maps.clamp(min=0) if which == "positive part" else maps
            scorer = getattr(quantus, metric)(abs=absolute, normalise=True, disable_warnings=True)
            scores = scorer(model=model, a_batch=values.numpy(), channel_first=True, device="cpu", **arrays)
            row = {"method": method, "metric": metric, "abs": absolute, "attributions": which}
            results.append({**row, "scores": [float(s) for s in scores]})
    ties = quantus.PointingGame(abs=False, normalise=True, disable_warnings=True)
    tie_arrays = {name: array[:2] for name, array in arrays.items()}
    tie_scores = ties(model=model, a_batch=tie_maps(masks).numpy(), channel_first=True, device="cpu", **tie_arrays)
    record = {
        "regenerate": COMMAND,
        "quantus_version": importlib.metadata.version("quantus"),
        "torch_version": torch.__version__,
        "case": {
            "dataset": DATASET,
            "split": "test",
            "samples": SAMPLES,
            "model": MODEL,
            "target": "true labels",
            "methods": list(METHODS),
            "attribution_checksums": sums,
            "mask_sizes": masks.flatten(1).sum(1).tolist(),
        },
        "settings": "normalise=True (normalise_by_max), channel_first=True, model and device='cpu' as required",
        "results": results,
        "pointing_game_ties": {"maps": "tie_maps() of the first two masks", "scores": [float(s) for s in tie_scores]},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
