"""Reference numbers from Quantus for faithfulness correlation and infidelity, stored for the tests.

Quantus is not installable in the project's test environment, so this script runs
it in the benchmark environment on one fixed case (built by :func:`build_case`,
which the tests import too) and writes its numbers, with the settings and the
random subsets it drew, to ``tests/evaluate/data/quantus_faithfulness.json``.
``tests/evaluate/test_correlation.py`` and ``tests/evaluate/test_infidelity.py``
recompute saliencelab's numbers on the same case and compare.

Aligned settings (read from Quantus 0.6.0's sources):

- ``FaithfulnessCorrelation``: features are single input values (here one channel,
  so pixels); for each of ``nr_runs`` runs and each sample, ``np.random.choice``
  draws a subset of ``subset_size`` values, which are replaced by the sample's
  minimum (``perturb_baseline="black"``); the Pearson correlation across runs of
  the attribution sums with the logit drops (``softmax=False``). The subsets are
  recorded while Quantus draws them and stored, so that
  :func:`saliencelab.evaluate.correlation.subset_correlation` can be run on the same subsets.
  ``normalise`` is off; it divides by a positive number and cannot change a correlation.
- ``Infidelity``: not random. For each patch size, the image is cut into
  non-overlapping squares in row-major order, and the squares are replaced by the
  sample's minimum cumulatively (perturbation j has the first j + 1 squares
  removed); the mean squared difference of ``Σ a ⊙ (x − x_j)`` and the logit drop.
  That is infidelity with the explicit perturbations ``I_j = x − x_j``.

Quantus' ``SensitivityN`` is a different statistic from Ancona et al.'s and is not
compared: it removes values cumulatively in descending order of attribution,
pairs the drop after step j with the attribution of the values removed at step j
only, and correlates across the samples of a batch rather than across subsets.

Usage::

    PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_faithfulness.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "evaluate" / "data" / "quantus_faithfulness.json"
SAMPLES, SIZE, CLASSES = 4, 8, 3
NR_RUNS, SUBSET_SIZE = 30, 8
PATCH_SIZES = (2, 4)


def build_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small conv net with random weights, its inputs ``(4, 1, 8, 8)``, argmax targets and gradient × input.

    Example
    -------
    >>> model, x, target, attributions = build_case()
    >>> x.shape, target.shape, attributions.shape
    (torch.Size([4, 1, 8, 8]), torch.Size([4]), torch.Size([4, 1, 8, 8]))
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * SIZE * SIZE, CLASSES),
    ).eval()
    x = torch.rand(SAMPLES, 1, SIZE, SIZE) * 2 - 0.5
    points = x.clone().requires_grad_(True)
    logits = model(points)
    target = logits.argmax(dim=1)
    (gradient,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), points)
    return model, x, target.detach(), (gradient * x).detach()


def reference_case(path: Path = OUT) -> tuple[dict, tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The stored record and :func:`build_case`, checked to be the case the record was made on.

    The model's logits and the targets must match the stored ones: a change in
    torch's random streams would otherwise compare different cases.
    """
    record = json.loads(path.read_text())
    model, x, target, attributions = build_case()
    with torch.no_grad():
        logits = model(x)
    stored = torch.tensor(record["logits_fingerprint"])
    if not torch.allclose(logits, stored, rtol=0, atol=1e-6) or target.tolist() != record["target"]:
        raise RuntimeError(f"build_case() no longer gives the case stored in {path}; rerun this script")
    return record, (model, x, target, attributions)


def main() -> None:
    """Run Quantus on :func:`build_case` and write the JSON."""
    from bench_evaluate import import_quantus

    quantus = import_quantus()
    model, x, target, attributions = build_case()
    x_np, y_np, a_np = x.numpy(), target.numpy(), attributions.numpy()
    with torch.no_grad():
        fingerprint = model(x).tolist()

    np.random.seed(0)
    drawn: list[np.ndarray] = []
    choice = np.random.choice

    def recording_choice(*args, **kwargs):
        indices = choice(*args, **kwargs)
        drawn.append(indices)
        return indices

    correlation = quantus.FaithfulnessCorrelation(
        nr_runs=NR_RUNS, subset_size=SUBSET_SIZE, perturb_baseline="black", normalise=False, abs=False,
        return_aggregate=False, disable_warnings=True,
    )  # fmt: skip
    np.random.choice = recording_choice
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            correlations = correlation(model=model, x_batch=x_np, y_batch=y_np, a_batch=a_np, softmax=False)
    finally:
        np.random.choice = choice
    # Quantus draws run by run, sample by sample: reorder to (sample, run, subset_size).
    subsets = np.stack(drawn).reshape(NR_RUNS, SAMPLES, SUBSET_SIZE).transpose(1, 0, 2)

    infidelities = {}
    for patch in PATCH_SIZES:
        metric = quantus.Infidelity(
            perturb_patch_sizes=[patch], n_perturb_samples=1, perturb_baseline="black", normalise=False,
            abs=False, return_aggregate=False, disable_warnings=True,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            infidelities[str(patch)] = [float(v) for v in metric(model=model, x_batch=x_np, y_batch=y_np,
                                                                 a_batch=a_np, softmax=False)]  # fmt: skip

    record = {
        "generated_by": "PYTHONPATH=. /work/bench-venv/bin/python benchmarks/quantus_reference_faithfulness.py",
        "quantus_version": quantus.__version__,
        "torch_version": torch.__version__,
        "case": "benchmarks/quantus_reference_faithfulness.py:build_case",
        "logits_fingerprint": fingerprint,
        "target": target.tolist(),
        "faithfulness_correlation": {
            "settings": {"nr_runs": NR_RUNS, "subset_size": SUBSET_SIZE, "perturb_baseline": "black",
                         "softmax": False, "normalise": False, "abs": False, "np.random.seed": 0},
            "subsets": subsets.tolist(),
            "quantus": [float(v) for v in correlations],
        },
        "infidelity": {
            "settings": {"perturb_baseline": "black", "n_perturb_samples": 1, "softmax": False,
                         "normalise": False, "abs": False, "loss_func": "mse"},
            "quantus_by_patch_size": infidelities,
        },
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT}")
    print("faithfulness correlation:", record["faithfulness_correlation"]["quantus"])
    print("infidelity:", infidelities)


if __name__ == "__main__":
    main()
