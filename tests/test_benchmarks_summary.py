"""The benchmark summary (``benchmarks/run_all.py``) reads the evaluation target from ``bench_evaluate``'s table.

The target is every evaluation metric ≤ 1.1× its own floor, one target per row of the results table, read from its
``ours / floor`` column; Quantus' speed-up goes into the measured text with no target of its own. The section
below is a ``bench_evaluate`` section cut down to the columns and bullets the summary reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SECTION = """<!-- bench_evaluate: begin -->
## Evaluation metrics: against their floor and Quantus

### Setup

- Machine: AMD EPYC, 2 logical cores (2 usable), 24 GiB RAM; torch threads: 2
- Date: 2026-12-08 00:10 UTC; run time 4.8 min
- Command: `python benchmarks/bench_evaluate.py`

### Results

| case | row | ours s | floor s | ours / floor | Quantus s | Quantus / ours | max \\|Δ\\| | R | ≤ 1.1× floor |
|---|---|---:|---:|---:|---:|---:|---|---:|---|
| digits | pixel flipping, 64 steps of 1 pixel | 0.200 | 0.187 | 1.07× | 0.842 | 4.2× | 0.0e+00 | 5 | PASS |
| digits | model randomisation, cascading | 0.116 | 0.090 | 1.29× | 0.513 | 4.5× | 2.6e-08 | 5 | MISS |
| rgb | pixel flipping, each library's default step size | 14.340 | 14.000 | 1.02× | ~20,499 (extrapolated) \
| 1,429.5× | not the same output | 2 | PASS (Quantus at its defaults, extrapolated) |
| rgb | ROAD, MoRF, 9 removal levels | 4.732 | 4.000 | 1.18× | error | —× | n/a | 2 | MISS (Quantus fails) |
| rgb | region perturbation, 28×28 patches | 8.955 | — | —× | 8.903 | 1.0× | 0.0e+00 | 2 | n/a |

### Reading

- **Target.** Ours ≤ 1.1× its own floor: met in 2 of 4 rows.
- **MPRT (digits).** The cost is the explanations; the floor leaves out the forward that finds the layer order.
- **ROAD (rgb).** The floor is a plain SciPy loop.
<!-- bench_evaluate: end -->
"""


@pytest.fixture(scope="module")
def run_all():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    return run_all


def _targets(run_all, text: str):
    found = run_all.Found(run_all.read_sections(text))
    run_all.evaluate_targets(found)
    return found


def test_every_evaluation_row_is_a_target_against_its_own_floor(run_all):
    found = _targets(run_all, SECTION)
    rows = {t.target: (t.measured, t.verdict) for t in found.targets}
    assert run_all.EVALUATE_TARGET == 1.1
    assert rows == {
        "`digits: pixel flipping, 64 steps of 1 pixel` ≤ 1.1× its floor": (
            "1.07× its floor; Quantus takes 4.2× ours (equal output)",
            "met",
        ),
        "`digits: model randomisation, cascading` ≤ 1.1× its floor": (
            "1.29× its floor; Quantus takes 4.5× ours (equal output)",
            "NOT met",
        ),
        "`rgb: pixel flipping, each library's default step size` ≤ 1.1× its floor": (
            "1.02× its floor; Quantus takes 1,429.5× ours (Quantus at its defaults, extrapolated)",
            "met",
        ),
        "`rgb: ROAD, MoRF, 9 removal levels` ≤ 1.1× its floor": ("1.18× its floor; Quantus: Quantus fails", "NOT met"),
        "`rgb: region perturbation, 28×28 patches` ≤ 1.1× its floor": ("—; Quantus takes 1.0× ours (equal output)",
                                                                      run_all.NOT_MEASURED),
    }  # fmt: skip
    # the misses are listed under the reading's bullets that explain them, by metric
    assert [(s.what, s.keys) for s in found.slow] == [
        ("digits: model randomisation, cascading: 1.29× its floor", ["MPRT"]),
        ("rgb: ROAD, MoRF, 9 removal levels: 1.18× its floor", ["ROAD"]),
    ]


def test_the_summary_quotes_the_reading_under_each_miss(run_all):
    summary = run_all.summary(SECTION)
    assert "| `digits: model randomisation, cascading` ≤ 1.1× its floor | 1.29× its floor;" in summary
    assert "  > **MPRT (digits).** The cost is the explanations" in summary
    assert "  > **ROAD (rgb).** The floor is a plain SciPy loop." in summary
    assert "faster than Quantus" not in summary  # no speed-up target any more


def test_a_section_without_floors_is_not_measured(run_all):
    old = SECTION.replace("| ours / floor ", "| ours over floor ")  # a table without the column
    found = _targets(run_all, old)
    assert [(t.target, t.verdict) for t in found.targets] == [
        ("every evaluation metric ≤ 1.1× its own floor", run_all.NOT_MEASURED)
    ]
    assert "no table with an `ours / floor` column" in found.targets[0].source
