"""The transformer conformance matrix (``benchmarks/conformance_matrix.py``) on four architectures × all methods.

Every cell must hold its property or raise a named saliencelab error; the only cells allowed to violate their
property are the two measured and explained in ``docs/transformer-conformance.md`` for Gemma: Integrated
Gradients at 64 steps misses completeness by 160% (its RMS-normalised path is far from smooth; ``tolerance=1e-2``
meets the bound) and DeepLIFT's summation-to-delta is 9.5e-6, above 1e-6, because the RMS norm runs in float32
inside the float64 model. Gemma rather than LLaMA stands for the RMS-norm decoders here: LLaMA's 2.0e-6 is too
close to the bound for float32 rounding on another CPU to be sure to stay above it. The test pins the set of
violated cells exactly, so a new violation and a fixed one both fail it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import cache
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "conformance_matrix.py"
SUBSET = ["BERT", "GPT-2", "Gemma", "Phi"]
KNOWN_VIOLATIONS = {("Gemma", "integrated_gradients"), ("Gemma", "deeplift")}


@cache
def _script():
    """The script as a module (registered in ``sys.modules``, which its dataclass needs)."""
    spec = importlib.util.spec_from_file_location("conformance_matrix", SCRIPT)
    module = sys.modules.setdefault("conformance_matrix", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    return _script().matrix(SUBSET)


def test_every_cell_holds_or_raises_a_named_error(rows):
    named = {error.__name__ for error in _script().NAMED_ERRORS}
    verdicts = {(name, method): cell for name, cells in rows.items() for method, cell in cells.items()}
    assert len(verdicts) == len(SUBSET) * len(_script().METHODS)
    unexpected = {key: cell.text for key, cell in verdicts.items() if cell.verdict not in {"holds", "VIOLATED", *named}}
    assert not unexpected
    violated = {key for key, cell in verdicts.items() if cell.verdict == "VIOLATED"}
    assert violated == KNOWN_VIOLATIONS, {key: verdicts[key].text for key in violated ^ KNOWN_VIOLATIONS}


def test_a_property_that_fails_is_reported_as_violated():
    """The judge is not vacuous: an attribution whose sum misses the gap is VIOLATED, a padded position with
    attribution too."""
    import torch

    import saliencelab as sl

    script = _script()
    model, (ids, mask) = script.build("BERT"), script.batch()
    gap = script.embedding_gap(model, ids, mask)
    exact = torch.zeros(2, script.LENGTH, 32, dtype=torch.float64)
    exact[:, 0, 0] = gap
    off = exact.clone()
    off[:, 0, 0] *= 1.1

    def attribution(values):
        return sl.Attribution(values, torch.zeros(2, dtype=torch.float64), "deeplift", torch.ones(2, dtype=torch.long))

    assert script._judge("deeplift", attribution(exact), model, ids, mask).verdict == "holds"
    assert script._judge("deeplift", attribution(off), model, ids, mask).verdict == "VIOLATED"
    padded = exact.clone()
    padded[1, -1, 0] = 1e-6
    assert script._judge("gradient", attribution(padded), model, ids, mask).verdict == "VIOLATED"
