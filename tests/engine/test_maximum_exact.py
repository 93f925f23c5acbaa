"""The exact maximum rule against a brute-force envelope in rational arithmetic.

For every window, line i runs from the reference ``x′ᵢ`` at t = 0 to the input
``xᵢ`` at t = 1. The reference below finds every crossing of every pair of lines
exactly (``fractions.Fraction``), and between consecutive crossings gives the
interval to the highest line at its midpoint, the lowest index among identical
lines. Max pooling is checked through whole DeepLIFT calls on random windows:
small-integer data (ties at both ends, identical lines, three or more lines
through one point), continuous data, and data whose reference windows are
constant or nearly so (a few windows change winner), with padding, dilation,
``ceil_mode`` and ``return_indices`` in 1d, 2d and 3d.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliencelab as sl
from saliencelab.engine.difference.maximum import envelope, max_fractions


def exact_fractions(values: list[float], refs: list[float]) -> list[float]:
    """The fraction of [0, 1] on which each line is the maximum, by exhaustive crossings; ``-inf`` is no line.

    >>> exact_fractions([0.0, 2.0], [1.0, 0.0])
    [0.3333333333333333, 0.6666666666666666]
    """
    lines = {
        i: (Fraction(r), Fraction(v) - Fraction(r))
        for i, (v, r) in enumerate(zip(values, refs, strict=True))
        if math.isfinite(v) and math.isfinite(r)
    }
    times = {Fraction(0), Fraction(1)}
    for (start_a, slope_a), (start_b, slope_b) in itertools.combinations(lines.values(), 2):
        if slope_a != slope_b:
            t = (start_b - start_a) / (slope_a - slope_b)
            if 0 < t < 1:
                times.add(t)
    fractions = [Fraction(0)] * len(values)
    ordered = sorted(times)
    for low, high in zip(ordered, ordered[1:], strict=False):
        mid = (low + high) / 2
        heights = {i: start + mid * slope for i, (start, slope) in lines.items()}
        top = max(heights.values())
        fractions[min(i for i, h in heights.items() if h == top)] += high - low
    return [float(f) for f in fractions]


def _windows(rng: torch.Generator, kind: str, m: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` random windows of ``k`` lines, float64, with some members ``-inf`` (padding) for kind ``ties``."""
    if kind == "continuous":
        return tuple(torch.randn(m, k, generator=rng, dtype=torch.float64) for _ in range(2))
    values = torch.randint(-3, 4, (m, k), generator=rng).double()
    refs = torch.randint(-3, 4, (m, k), generator=rng).double()
    pad = torch.rand(m, k, generator=rng) < 0.15
    pad[:, 0] = False  # every window keeps one member
    return values.masked_fill(pad, -torch.inf), refs.masked_fill(pad, -torch.inf)


@pytest.mark.parametrize("kind", ["ties", "continuous"])
@pytest.mark.parametrize("k", [2, 3, 4, 9, 27])
def test_envelope_equals_the_exact_envelope(kind, k):
    rng = torch.Generator().manual_seed(k)
    values, refs = _windows(rng, kind, 300 if k < 10 else 40, k)
    ours = envelope(values, refs)
    exact = [exact_fractions(v, r) for v, r in zip(values.tolist(), refs.tolist(), strict=True)]
    exact = torch.tensor(exact, dtype=torch.float64)
    torch.testing.assert_close(ours, exact, atol=1e-12, rtol=0)
    torch.testing.assert_close(max_fractions(values, refs), exact, atol=1e-12, rtol=0)


def test_envelope_with_three_and_four_pieces():
    # lines (x′ → x): a 3 → 0, b 2 → 2, c 0 → 3 lead in turn, crossing at 1/3 and 2/3; in the first window d
    # (1 → -9) never leads and e is b's twin (the lower index takes their piece); in the second, d (-3 → 4)
    # overtakes c at 3/4, the last member is padding
    values = torch.tensor([[0.0, 2.0, 3.0, -9.0, 2.0], [0.0, 2.0, 3.0, 4.0, -torch.inf]], dtype=torch.float64)
    refs = torch.tensor([[3.0, 2.0, 0.0, 1.0, 2.0], [3.0, 2.0, 0.0, -3.0, -torch.inf]], dtype=torch.float64)
    expected = torch.tensor(
        [exact_fractions(v, r) for v, r in zip(values.tolist(), refs.tolist(), strict=True)], dtype=torch.float64
    )
    third = torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(expected, torch.stack((third, third + torch.tensor([0, 0, -1 / 4, 1 / 4, 0]))))
    torch.testing.assert_close(envelope(values, refs), expected, atol=1e-12, rtol=0)


class Pool(nn.Module):
    """Sum of a max pooling (the difference of the output is the sum of the pooled differences)."""

    def __init__(self, nd: int, options: dict):
        super().__init__()
        self.pool = getattr(nn, f"MaxPool{nd}d")(**options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(x)
        out = out[0] if isinstance(out, tuple) else out
        return out.flatten(1).sum(1, keepdim=True)


def _pool_case(seed: int) -> tuple[int, dict, tuple[int, ...], str]:
    """Random pooling options, input shape and data kind; every option torch accepts."""
    rng = torch.Generator().manual_seed(seed)

    def pick(n: int) -> int:
        return int(torch.randint(n, (1,), generator=rng))

    nd = 1 + seed % 3
    kernel = [1 + pick(3) for _ in range(nd)]
    dilation = [1 + pick(2) for _ in range(nd)]
    padding = [pick(k // 2 + 1) for k in kernel]
    options = {
        "kernel_size": kernel,
        "stride": [1 + pick(3) for _ in range(nd)],
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": bool(pick(2)),
        "return_indices": bool(pick(2)),
    }
    sides = {1: (9, 14), 2: (5, 9), 3: (4, 6)}[nd]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(max(sides[0] + pick(sides[1] - sides[0]), span) for span in spans)
    kind = ("ties", "continuous", "constant_reference", "sparse_reference")[pick(4)]
    return nd, options, (2, 2, *spatial), kind


def _expected_attribution(x: torch.Tensor, ref: torch.Tensor, options: dict, out_shape) -> torch.Tensor:
    """Each input element's share of every window it is in: its fraction of the path times its change."""
    kernel, stride = options["kernel_size"], options["stride"]
    padding, dilation = options["padding"], options["dilation"]
    multiplier = torch.zeros_like(x)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for out in itertools.product(*(range(o) for o in out_shape)):
            members = []
            for offset in itertools.product(*(range(k) for k in kernel)):
                axes = zip(out, stride, padding, offset, dilation, strict=True)
                where = tuple(o * s - p + j * d for o, s, p, j, d in axes)
                if all(0 <= w < size for w, size in zip(where, x.shape[2:], strict=True)):
                    members.append(where)
            values = [float(x[(n, c, *w)]) for w in members]
            refs = [float(ref[(n, c, *w)]) for w in members]
            for w, fraction in zip(members, exact_fractions(values, refs), strict=True):
                multiplier[(n, c, *w)] += fraction
    return multiplier * (x - ref)


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("seed", range(32))
def test_max_pool_equals_the_exact_envelope(seed, rule):
    nd, options, shape, kind = _pool_case(seed)
    rng = torch.Generator().manual_seed(100 + seed)
    if kind == "ties":
        x = torch.randint(-2, 3, shape, generator=rng).double()
        ref = torch.randint(-2, 3, shape, generator=rng).double()
    elif kind == "continuous":
        x, ref = torch.randn(shape, generator=rng, dtype=torch.float64), torch.randn(shape, generator=rng).double()
    else:  # constant reference windows (the input's winner takes the whole change), or nearly: a few windows change
        x, ref = torch.randn(shape, generator=rng, dtype=torch.float64), torch.full(shape, 0.5, dtype=torch.float64)
        if kind == "sparse_reference":
            few = torch.rand(shape, generator=rng) < 0.02
            ref[few] = torch.randn(shape, generator=rng, dtype=torch.float64)[few]
    model = Pool(nd, options)
    result = sl.DeepLift(model, rule=rule)(x, baseline=ref)
    out_shape = getattr(F, f"max_pool{nd}d")(x, **{**options, "return_indices": False}).shape[2:]
    torch.testing.assert_close(result.values, _expected_attribution(x, ref, options, out_shape), atol=1e-12, rtol=0)
    assert result.delta.max() < 1e-12
