"""Time saliencelab's gradient-family methods against their floor and against Captum.

For every model, method and batch size the script times three contenders on the
same network, inputs, target and baseline (models: the zoo's ResNet-18-shaped and
VGG-16-shaped nets at 224², its tiny vision transformer at 32² and the trained
digits CNN at 8²):

- ``ours``: ``saliencelab.explain(...)`` as a user calls it;
- ``floor``: the bare forward/backward passes the method needs, in plain torch,
  run in chunks of the fastest chunk size measured on this machine;
- ``captum``: the matching Captum attribution (plus Captum's defaults for IG).

Each round calls the contenders in turn (ours, floor, Captum, ours, floor, ...);
the report gives the median time of each, the median of the per-round ratios,
the peak extra resident memory of each and how far our values are from Captum's.
The Markdown report (``BENCHMARKS.md`` at the repository root by default) is
regenerated whole on every run, except for the sections other scripts keep there
between ``<!-- NAME: begin -->`` and ``<!-- NAME: end -->`` markers (see
:func:`write_report`). See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_gradient.py                 # full run: every model, batches 1 and 8
    python benchmarks/bench_gradient.py --models resnet18_shaped digits_cnn
    python benchmarks/bench_gradient.py --quick --out /tmp/quick.md
    python benchmarks/bench_gradient.py --methods gradient integrated_gradients --batch 1
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import importlib.metadata
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

import saliencelab as sl

REPO_ROOT = Path(__file__).resolve().parents[1]

METHODS = (
    "gradient",
    "gradient_x_input",
    "deconvnet",
    "guided_backprop",
    "integrated_gradients",
    "smoothgrad",
    "expected_gradients",
    "gradient_shap",
)
EXACT = {"gradient", "gradient_x_input", "deconvnet", "guided_backprop", "integrated_gradients"}
"""Deterministic methods: our values must match Captum's."""

VALUE_RANGE = (-2.118, 2.640)
"""Every input sample is rescaled to exactly this range (ImageNet-normalised pixels), so
that one Captum ``stdevs`` matches saliencelab's per-sample noise scale for the whole batch."""

FLOOR_TARGET = 1.05
"""Target: ours ≤ 1.05 × floor."""
CAPTUM_TARGET = 1.00
"""Target: ours ≤ Captum."""
DISAGREEMENT = 1e-4
"""Relative max |diff| above which values are flagged as disagreeing (with Captum, or with the floor)."""
SAME_AS_FLOOR = set(METHODS) - {"deconvnet", "guided_backprop"}
"""Methods whose floor computes our exact values (same quadrature, same seeded draws)."""
CAPTUM_DEFAULT_STEPS = 50
"""Captum's ``IntegratedGradients.attribute`` default ``n_steps``."""
MIN_TIMED_SECONDS = 0.05
"""A call estimated below this is repeated back to back inside one timed call (and timed per call)."""


@dataclass(frozen=True)
class ModelSpec:
    """A benchmarked network and the inputs it takes."""

    title: str
    load: Callable[[], torch.nn.Module]
    channels: int
    size: int | None
    """Fixed image side, or None for ``--size`` (224, quick 64)."""
    reduced: bool = False
    """Multi-pass methods use ``--reduced-passes`` steps and samples (a large net on a 2-core machine)."""
    chunks: tuple[int, ...] = ()
    """Floor chunk sizes tried besides ``--chunks`` (small nets batch well past 32 rows)."""
    max_chunk: int | None = None
    """Largest floor chunk size tried (VGG's 32-row pass alone takes half a minute here)."""


MODELS = {
    "resnet18_shaped": ModelSpec(
        "ResNet-18-shaped", lambda: sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0), 3, None
    ),
    "vgg16_shaped": ModelSpec(
        "VGG-16-shaped",
        lambda: sl.zoo.load("vgg16_shaped", num_classes=1000, seed=0),
        3,
        None,
        reduced=True,
        max_chunk=16,
    ),
    "vit_tiny_shaped": ModelSpec(
        "ViT-tiny-shaped", lambda: sl.zoo.load("vit_tiny_shaped", num_classes=10, seed=0), 3, 32, chunks=(64, 128)
    ),
    "digits_cnn": ModelSpec(
        "digits CNN (trained)", lambda: sl.zoo.load("digits_cnn"), 1, 8, chunks=(64, 128, 256, 512)
    ),
}
"""The benchmarked networks, by zoo name (random weights except the digits CNN), in run order."""

Tensor = torch.Tensor
Call = Callable[[], Tensor]


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line."""

    size: int
    batches: list[int]
    methods: list[str]
    steps: int
    sg_samples: int
    sg_noise: float
    eg_samples: int
    gs_noise: float
    references: int
    target: int
    seed: int
    chunks: list[int]
    chunk_repeats: int
    max_repeats: int
    min_repeats: int
    cell_seconds: float
    warmup_max_seconds: float
    captum_default_max_rows: int
    threads: int
    out: Path
    quick: bool
    plan_only: bool
    analysis_only: bool
    models: list[str] = field(default_factory=lambda: ["resnet18_shaped"])
    reduced_passes: int = 4
    channels: int = 3
    """Input channels of the model being timed (set per model by :func:`model_settings`)."""


def parse_args(argv: list[str] | None = None) -> Settings:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 64x64 images, fewer repeats")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help="subset of methods (space or comma separated)")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default: 1 8)")
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"subset of {', '.join(MODELS)}")
    p.add_argument(
        "--reduced-passes", type=int, default=4, help="steps and samples of the multi-pass methods on VGG (default 4)"
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report path")
    p.add_argument("--size", type=int, help="image side in pixels (default 224, quick 64)")
    p.add_argument("--steps", type=int, default=50, help="IG steps S (default 50)")
    p.add_argument("--sg-samples", type=int, default=20, help="SmoothGrad samples (default 20)")
    p.add_argument("--sg-noise", type=float, default=0.15, help="SmoothGrad noise, fraction of value range")
    p.add_argument("--eg-samples", type=int, default=20, help="Expected Gradients / GradientSHAP samples")
    p.add_argument("--gs-noise", type=float, default=0.1, help="GradientSHAP input noise (EG uses 0)")
    p.add_argument("--references", type=int, default=16, help="K references for EG / GradientSHAP")
    p.add_argument("--target", type=int, default=3, help="explained class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32], help="floor chunk sizes to try")
    p.add_argument("--chunk-repeats", type=int, help="timed passes of the chunk-size search (default 2)")
    p.add_argument("--repeats", type=int, help="most rounds per method and batch (default 5, quick 3)")
    p.add_argument("--min-repeats", type=int, default=1, help="fewest rounds, whatever they cost (default 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per method and batch fit in this (default 45, quick 8)")
    p.add_argument("--warmup-max-seconds", type=float, default=10.0, help="warm up only calls estimated below this")
    p.add_argument(
        "--captum-default-max-rows",
        type=int,
        default=64,
        help="skip Captum-default IG above this many rows at 224² (scaled by the image area; default 64)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--plan", action="store_true", help="run the chunk search, print the plan and its time, stop")
    p.add_argument(
        "--analysis-only",
        action="store_true",
        help="only replace the 'Where we are slower and why' section of --out with benchmarks/where_slower.md",
    )
    a = p.parse_args(argv)
    methods = [m for item in a.methods for m in item.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    models = [m for item in a.models for m in item.split(",") if m]
    if sorted(set(models) - set(MODELS)):
        p.error(f"unknown models {sorted(set(models) - set(MODELS))}; choose from {', '.join(MODELS)}")
    return Settings(
        size=a.size or (64 if a.quick else 224),
        batches=a.batch,
        methods=[m for m in METHODS if m in methods],
        steps=a.steps,
        sg_samples=a.sg_samples,
        sg_noise=a.sg_noise,
        eg_samples=a.eg_samples,
        gs_noise=a.gs_noise,
        references=a.references,
        target=a.target,
        seed=a.seed,
        chunks=sorted(set(a.chunks)),
        chunk_repeats=a.chunk_repeats or 2,
        max_repeats=a.repeats or (3 if a.quick else 5),
        min_repeats=a.min_repeats,
        cell_seconds=a.cell_seconds or (8.0 if a.quick else 45.0),
        warmup_max_seconds=a.warmup_max_seconds,
        captum_default_max_rows=a.captum_default_max_rows,
        threads=a.threads,
        out=a.out,
        quick=a.quick,
        plan_only=a.plan,
        analysis_only=a.analysis_only,
        models=[m for m in MODELS if m in models],
        reduced_passes=a.reduced_passes,
    )


def model_settings(s: Settings, spec: ModelSpec) -> Settings:
    """``s`` for one model: its image side and channels, fewer passes where it is ``reduced``, more chunk sizes."""
    passes = {"steps": s.reduced_passes, "sg_samples": s.reduced_passes, "eg_samples": s.reduced_passes}
    return replace(
        s,
        size=spec.size or s.size,
        channels=spec.channels,
        chunks=sorted(c for c in {*s.chunks, *spec.chunks} if spec.max_chunk is None or c <= spec.max_chunk),
        **({k: min(v, getattr(s, k)) for k, v in passes.items()} if spec.reduced else {}),
    )


# --------------------------------------------------------------------------- data


def make_images(n: int, size: int, seed: int, channels: int = 3) -> Tensor:
    """``n`` random images ``(n, channels, size, size)``, each rescaled to exactly :data:`VALUE_RANGE`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size, size, generator=g)
    flat = x.reshape(n, -1)
    low, high = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
    lo, hi = VALUE_RANGE
    return ((flat - low) / (high - low) * (hi - lo) + lo).reshape_as(x)


def value_range(x: Tensor) -> float:
    """The value range shared by every sample of ``x`` (checked)."""
    ranges = x.reshape(x.shape[0], -1).amax(dim=1) - x.reshape(x.shape[0], -1).amin(dim=1)
    if not torch.allclose(ranges, ranges[0].expand_as(ranges), rtol=1e-5):
        raise ValueError("every sample must share one value range for Captum's single stdevs")
    return float(ranges[0])


# --------------------------------------------------------------------------- the floor: plain torch


def input_gradients(model: torch.nn.Module, points: Tensor, target: int) -> Tensor:
    """One forward and backward pass: d model(points)[:, target] / d points."""
    points = points.detach().requires_grad_(True)
    with torch.enable_grad():
        score = model(points)[:, target].sum()
        (grad,) = torch.autograd.grad(score, points)
    return grad


def row_chunks(total: int, chunk: int) -> Iterator[Tensor]:
    """Row indices ``0..total-1`` in consecutive chunks of ``chunk`` rows."""
    for start in range(0, total, chunk):
        yield torch.arange(start, min(start + chunk, total))


def per_row(values: Tensor, ndim: int) -> Tensor:
    """Reshape ``(rows,)`` to broadcast over ``(rows, C, H, W)``."""
    return values.reshape(-1, *([1] * (ndim - 1)))


def floor_gradient(model, x: Tensor, target: int, times_input: bool) -> Tensor:
    """Gradient (or gradient×input) of the whole batch in one forward+backward."""
    grad = input_gradients(model, x, target)
    return x * grad if times_input else grad


def floor_integrated_gradients(model, x: Tensor, target: int, steps: int, chunk: int) -> Tensor:
    """IG from a zero baseline: S×N rows of forward+backward in chunks, plus f(x) and f(baseline)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.from_numpy((nodes + 1) / 2).to(x.dtype)
    weights = torch.from_numpy(weights / 2).to(x.dtype)
    baseline = torch.zeros_like(x[:1])
    with torch.no_grad():  # the two forward passes that completeness needs
        model(x)
        model(baseline)
    total = torch.zeros_like(x)
    for rows in row_chunks(x.shape[0] * steps, chunk):
        sample, step = rows // steps, rows % steps
        points = baseline + per_row(alphas[step], x.ndim) * (x[sample] - baseline)
        grad = input_gradients(model, points, target)
        total.index_add_(0, sample, per_row(weights[step], x.ndim) * grad)
    return (x - baseline) * total


def noise_sigma(x: Tensor, noise: float) -> Tensor:
    """Per-sample noise σ = noise × (max − min) of the sample, shape ``(N, 1, 1, 1)``."""
    dims = tuple(range(1, x.ndim))
    return noise * (x.amax(dim=dims, keepdim=True) - x.amin(dim=dims, keepdim=True))


def floor_smoothgrad(model, x: Tensor, target: int, samples: int, noise: float, chunk: int, seed: int) -> Tensor:
    """SmoothGrad: mean gradient over ``samples`` noisy copies of each sample, n×N rows in chunks."""
    sigma = noise_sigma(x, noise)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, *x.shape[1:]), generator=g, dtype=x.dtype)
    total = torch.zeros_like(x)
    for rows in row_chunks(x.shape[0] * samples, chunk):
        sample, copy = rows // samples, rows % samples
        total.index_add_(0, sample, input_gradients(model, x[sample] + sigma[sample] * eps[copy], target))
    return total / samples


def floor_expected_gradients(
    model, x: Tensor, refs: Tensor, target: int, samples: int, noise: float, chunk: int, seed: int
) -> Tensor:
    """Expected Gradients / GradientSHAP: n×N rows (reference, α, optional noise) in chunks,
    plus f(x) and f(drawn references), the forward passes that the completeness check needs."""
    sigma = noise_sigma(x, noise)
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randint(refs.shape[0], (samples,), generator=g)
    with torch.no_grad():
        model(x)
        model(refs[torch.unique(chosen)])
    alphas = torch.rand(samples, generator=g, dtype=x.dtype)
    eps = torch.randn((samples, *x.shape[1:]), generator=g, dtype=x.dtype) if noise > 0 else None
    total = torch.zeros_like(x)
    for rows in row_chunks(x.shape[0] * samples, chunk):
        sample, draw = rows // samples, rows % samples
        end = x[sample] if eps is None else x[sample] + sigma[sample] * eps[draw]
        start = refs[chosen[draw]]
        difference = end - start
        grad = input_gradients(model, start + per_row(alphas[draw], x.ndim) * difference, target)
        total.index_add_(0, sample, difference * grad)
    return total / samples


# --------------------------------------------------------------------------- best chunk size


def find_best_chunk(model, s: Settings, channels: int = 3) -> dict[int, float]:
    """Seconds per row of a plain forward+backward at each chunk size, median of alternating passes."""
    images = {c: make_images(c, s.size, s.seed + 100, channels) for c in s.chunks}
    print(f"chunk-size search at {s.size}x{s.size}: sizes {s.chunks}, 1 warm-up + {s.chunk_repeats} passes")
    times: dict[int, list[float]] = {c: [] for c in s.chunks}
    for pass_index in range(s.chunk_repeats + 1):
        for c in s.chunks:
            start = time.perf_counter()
            input_gradients(model, images[c], s.target)
            if pass_index:
                times[c].append((time.perf_counter() - start) / c)
    per_row_s = {c: statistics.median(t) for c, t in times.items()}
    for c, t in per_row_s.items():
        print(f"  chunk {c:3d}: {t * 1e3:8.1f} ms/row")
    return per_row_s


def estimate(per_row_s: dict[int, float], rows: int, chunk: int) -> float:
    """Rough seconds for ``rows`` forward+backward rows run at ``chunk`` rows a pass."""
    usable = [c for c in per_row_s if c <= max(chunk, min(per_row_s))]
    return rows * per_row_s[max(usable)]


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    """One timed callable of a cell."""

    label: str
    call: Call
    seconds: float
    """Estimated seconds per timed call, loops included (decides warm-up and repeats)."""
    skipped: str | None = None
    loops: int = 1
    """Calls per timed call; the time recorded is per call."""


@dataclass
class Cell:
    """One method at one batch size: ours, its floor and one or more Captum variants."""

    method: str
    batch: int
    contenders: list[Contender]
    captum_rows: dict[str, str]
    """Captum contender label -> row title in the report."""
    info: dict = field(default_factory=dict)
    model: str = "ResNet-18-shaped"
    """The model's title with its input side, as in the report's headings."""


def quiet(call: Call) -> Call:
    """Run ``call`` with warnings silenced (Captum warns about hooks and requires_grad on every call)."""

    def run() -> Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()

    return run


def ours_call(model, x: Tensor, method: str, s: Settings, refs: Tensor) -> Call:
    """``saliencelab.explain`` exactly as a user would call it."""
    options: dict = {"target": s.target}
    if method == "integrated_gradients":
        options.update(baseline="zeros", steps=s.steps, integration="gauss_legendre")
    elif method == "smoothgrad":
        options.update(samples=s.sg_samples, noise=s.sg_noise, seed=s.seed)
    elif method in ("expected_gradients", "gradient_shap"):
        noise = s.gs_noise if method == "gradient_shap" else 0.0
        options.update(baseline=refs, samples=s.eg_samples, noise=noise, seed=s.seed)
    return lambda: sl.explain(model, x, method=method, **options).values


def floor_call(model, x: Tensor, method: str, s: Settings, refs: Tensor, chunk: int) -> Call:
    """The plain-torch floor of ``method``."""
    if method in ("gradient", "deconvnet", "guided_backprop"):
        return lambda: floor_gradient(model, x, s.target, times_input=False)
    if method == "gradient_x_input":
        return lambda: floor_gradient(model, x, s.target, times_input=True)
    if method == "integrated_gradients":
        return lambda: floor_integrated_gradients(model, x, s.target, s.steps, chunk)
    if method == "smoothgrad":
        return lambda: floor_smoothgrad(model, x, s.target, s.sg_samples, s.sg_noise, chunk, s.seed)
    noise = s.gs_noise if method == "gradient_shap" else 0.0
    return lambda: floor_expected_gradients(model, x, refs, s.target, s.eg_samples, noise, chunk, s.seed)


def captum_calls(model, x: Tensor, method: str, s: Settings, refs: Tensor, chunk: int) -> dict[str, Call]:
    """Captum's attribution for ``method``: label -> call. IG has a tuned and a defaults variant."""
    from captum.attr import (
        Deconvolution,
        GradientShap,
        GuidedBackprop,
        InputXGradient,
        IntegratedGradients,
        NoiseTunnel,
        Saliency,
    )

    t, n = s.target, x.shape[0]
    span = value_range(x)
    if method == "gradient":
        calls = {"captum": lambda: Saliency(model).attribute(x, target=t, abs=False)}
    elif method == "gradient_x_input":
        calls = {"captum": lambda: InputXGradient(model).attribute(x, target=t)}
    elif method == "deconvnet":
        calls = {"captum": lambda: Deconvolution(model).attribute(x, target=t)}
    elif method == "guided_backprop":
        calls = {"captum": lambda: GuidedBackprop(model).attribute(x, target=t)}
    elif method == "integrated_gradients":
        zeros = torch.zeros_like(x)
        ig = IntegratedGradients(model)
        calls = {
            "captum": lambda: ig.attribute(
                x,
                baselines=zeros,
                target=t,
                n_steps=s.steps,
                method="gausslegendre",
                internal_batch_size=max(chunk, n),
                return_convergence_delta=True,
            )[0],
            "captum_default": lambda: ig.attribute(x, baselines=zeros, target=t, return_convergence_delta=True)[0],
        }
    elif method == "smoothgrad":
        nt = NoiseTunnel(Saliency(model))
        calls = {
            "captum": lambda: nt.attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=s.sg_samples,
                stdevs=s.sg_noise * span,
                nt_samples_batch_size=max(1, chunk // n),
                target=t,
                abs=False,
            )
        }
    else:
        stdevs = s.gs_noise * span if method == "gradient_shap" else 0.0
        shap = GradientShap(model)
        calls = {
            "captum": lambda: shap.attribute(
                x, baselines=refs, n_samples=s.eg_samples, stdevs=stdevs, target=t, return_convergence_delta=True
            )[0]
        }
    return {label: quiet(call) for label, call in calls.items()}


def method_rows(method: str, n: int, s: Settings) -> int:
    """Forward+backward rows the method needs for a batch of ``n``."""
    if method == "integrated_gradients":
        return n * s.steps
    if method == "smoothgrad":
        return n * s.sg_samples
    if method in ("expected_gradients", "gradient_shap"):
        return n * s.eg_samples
    return n


def build_cell(
    model, method: str, n: int, s: Settings, per_row_s: dict[int, float], chunk: int, title: str = "ResNet-18-shaped"
) -> Cell:
    """The contenders of ``method`` at batch ``n``, with cost estimates; cheap calls are looped."""
    x = make_images(n, s.size, s.seed, s.channels)
    refs = make_images(s.references, s.size, s.seed + 1, s.channels)
    rows = method_rows(method, n, s)
    cost = estimate(per_row_s, rows, chunk if rows > n else n)
    loops = max(1, round(MIN_TIMED_SECONDS / cost))
    contenders = [
        Contender("ours", ours_call(model, x, method, s, refs), cost * loops, loops=loops),
        Contender("floor", floor_call(model, x, method, s, refs, chunk), cost * loops, loops=loops),
    ]
    captum_rows = {"captum": method}
    for label, call in captum_calls(model, x, method, s, refs, chunk).items():
        skipped = None
        if label == "captum_default":
            captum_rows[label] = f"{method} vs Captum defaults"
            if s.steps != CAPTUM_DEFAULT_STEPS:
                skipped = f"Captum's default n_steps={CAPTUM_DEFAULT_STEPS} differs from this model's S={s.steps}"
            elif n * CAPTUM_DEFAULT_STEPS > s.captum_default_max_rows * (224 / s.size) ** 2:
                skipped = f"Captum's default internal_batch_size runs all {rows} rows in one batch"
        contenders.append(Contender(label, call, cost * loops, skipped, loops))
    return Cell(method, n, contenders, captum_rows, {"x": x, "refs": refs, "model": model}, title)


# --------------------------------------------------------------------------- memory


def _resident_bytes(statm) -> int:
    statm.seek(0)
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so the RSS before a call is honest."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak resident set size above its value at entry, sampled from /proc/self/statm.

    A thread samples every ``interval`` seconds; spikes shorter than that can be missed.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_mb: float | None = None

    def __enter__(self) -> PeakRSS:
        _malloc_trim()
        try:
            self._statm = open("/proc/self/statm")  # closed in __exit__
        except OSError:
            self._statm = None
            return self
        self._start = self._peak = _resident_bytes(self._statm)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _resident_bytes(self._statm))

    def __exit__(self, *exc) -> None:
        if self._statm is None:
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _resident_bytes(self._statm))
        self._statm.close()
        self.peak_mb = (self._peak - self._start) / 2**20


# --------------------------------------------------------------------------- timing


@dataclass
class Measured:
    """What one contender did in a cell."""

    times: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    values: Tensor | None = None
    error: str | None = None
    skipped: str | None = None


def plan_repeats(cell: Cell, s: Settings) -> int:
    """Rounds for this cell: as many as fit ``cell_seconds``, within [min_repeats, max_repeats]."""
    round_s = sum(c.seconds for c in cell.contenders if not c.skipped)
    return max(s.min_repeats, min(s.max_repeats, int(s.cell_seconds // max(round_s, 1e-9))))


def cell_estimate(cell: Cell, repeats: int, s: Settings) -> float:
    """Estimated seconds for a cell: warm-ups plus ``repeats`` rounds."""
    live = [c.seconds for c in cell.contenders if not c.skipped]
    return repeats * sum(live) + sum(t for t in live if t <= s.warmup_max_seconds)


def run_cell(cell: Cell, repeats: int, s: Settings) -> dict[str, Measured]:
    """Warm up the cheap contenders, then time ``repeats`` alternating rounds.

    The first round also samples each contender's peak memory and keeps its values.
    """
    results = {c.label: Measured(skipped=c.skipped) for c in cell.contenders}
    live = [c for c in cell.contenders if not c.skipped]
    for c in live:
        if c.seconds <= s.warmup_max_seconds:
            _attempt(c, results[c.label], timed=False)
    for round_index in range(repeats):
        for c in live:
            if results[c.label].error is None:
                _attempt(c, results[c.label], timed=True, first=round_index == 0)
        print(f"    round {round_index + 1}/{repeats}: " + "  ".join(_round_summary(results)), flush=True)
    return results


def _attempt(c: Contender, m: Measured, timed: bool, first: bool = False) -> None:
    """Call a contender once, recording time, memory and values; an exception is recorded, not raised."""
    try:
        if not timed:
            c.call()
            return
        _malloc_trim()
        with PeakRSS() if first else nullcontext() as sampler:
            start = time.perf_counter()
            for _ in range(c.loops):
                values = c.call()
            m.times.append((time.perf_counter() - start) / c.loops)
        if first:
            m.peak_mb, m.values = sampler.peak_mb, values.detach()
    except Exception as error:  # a failing contender becomes a row, not a crash
        m.error = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        print(f"    {c.label} failed: {m.error}", flush=True)


def _round_summary(results: dict[str, Measured]) -> Iterator[str]:
    for label, m in results.items():
        if m.times:
            yield f"{label} {m.times[-1]:.3f}s"


# --------------------------------------------------------------------------- agreement


def target_scores(model, x: Tensor, target: int) -> Tensor:
    """The model's target score for each row of ``x``, without gradients."""
    with torch.no_grad():
        return model(x)[:, target]


def agreement(cell: Cell, ours: Measured, theirs: Measured, s: Settings) -> tuple[str, bool]:
    """The 'max |diff| vs Captum' text, and whether it flags a disagreement."""
    if ours.values is None or theirs.values is None:
        return "n/a", False
    if cell.method in EXACT:
        diff = float((ours.values - theirs.values).abs().max())
        scale = float(theirs.values.abs().max()) or 1.0
        return f"{diff:.1e} ({diff / scale:.0e} rel)", diff / scale > DISAGREEMENT
    if cell.method == "smoothgrad":
        return "stochastic", False
    model, x, refs = cell.info["model"], cell.info["x"], cell.info["refs"]
    expected = target_scores(model, x, s.target) - target_scores(model, refs, s.target).mean()

    def gap(values: Tensor) -> float:
        sums = values.reshape(values.shape[0], -1).sum(dim=1)
        return float((sums - expected).abs().mean() / expected.abs().mean())

    return f"stochastic; completeness gap ours {gap(ours.values):.2f}, Captum {gap(theirs.values):.2f}", False


def floor_disagreement(cell: Cell, ours: Measured, floor: Measured) -> str | None:
    """A note if the floor, which should compute our exact values, does not (a broken comparison)."""
    if cell.method not in SAME_AS_FLOOR or ours.values is None or floor.values is None:
        return None
    rel = float((ours.values - floor.values).abs().max() / (ours.values.abs().max() or 1.0))
    if rel <= DISAGREEMENT:
        return None
    return (
        f"{cell.model}, batch {cell.batch}, {cell.method}: the floor's values differ from ours by {rel:.1e} relative."
    )


# --------------------------------------------------------------------------- rows and report


@dataclass
class Row:
    """One line of a report table."""

    method: str
    ours_s: str
    floor_s: str
    captum_s: str
    ours_floor: str
    ours_captum: str
    diff: str
    peak: str
    repeats: int
    verdict: str


def _median(m: Measured) -> float | None:
    return statistics.median(m.times) if m.times else None


def _ratio(a: Measured, b: Measured) -> float | None:
    """Median of the per-round ratios a/b."""
    pairs = [x / y for x, y in zip(a.times, b.times, strict=False) if y > 0]  # a failed contender stops early
    return statistics.median(pairs) if pairs else None


def _fmt(value: float | None, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def _seconds(m: Measured) -> str:
    if m.skipped:
        return "skipped"
    if m.error:
        return "error"
    return _fmt(_median(m), ".3f")


def verdict(ours_floor: float | None, ours_captum: float | None) -> str:
    """PASS when ours ≤ 1.05 × floor and ≤ Captum; otherwise MISS and what was missed."""
    if ours_floor is None or ours_captum is None:
        return "n/a"
    checks = (("floor", ours_floor, FLOOR_TARGET), ("Captum", ours_captum, CAPTUM_TARGET))
    missed = [name for name, ratio, limit in checks if ratio > limit]
    return "PASS" if not missed else f"MISS ({', '.join(missed)})"


def cell_rows(cell: Cell, results: dict[str, Measured], repeats: int, s: Settings) -> tuple[list[Row], list[str]]:
    """Report rows of a cell (one per Captum variant) and notes on errors and disagreements."""
    ours, floor = results["ours"], results["floor"]
    rows, notes = [], []
    for label, title in cell.captum_rows.items():
        theirs = results[label]
        r_floor, r_captum = _ratio(ours, floor), _ratio(ours, theirs)
        diff, flagged = agreement(cell, ours, theirs, s)
        if label == "captum_default" and s.steps != 50:
            diff = "n/a (Captum default n_steps=50)"
        peaks = "/".join(_fmt(m.peak_mb, ".0f", "—") for m in (ours, floor, theirs))
        rows.append(
            Row(
                title,
                _seconds(ours),
                _seconds(floor),
                _seconds(theirs),
                _fmt(r_floor, ".2f"),
                _fmt(r_captum, ".2f"),
                diff,
                peaks,
                repeats,
                verdict(r_floor, r_captum),
            )
        )
        if flagged:
            notes.append(f"{cell.model}, batch {cell.batch}, {title}: our values differ from Captum's by {diff}.")
        if theirs.skipped:
            notes.append(f"{cell.model}, batch {cell.batch}, {title}: Captum skipped — {theirs.skipped}.")
    floor_note = floor_disagreement(cell, ours, floor)
    if floor_note:
        notes.append(floor_note)
    for label, m in results.items():
        if m.error:
            notes.append(f"{cell.model}, batch {cell.batch}, {cell.method}: {label} raised {m.error}")
    return rows, notes


HEADER = (
    "| method | saliencelab s | floor s | Captum s | ours/floor | ours/Captum | max \\|diff\\| vs Captum "
    "| peak MB (ours/floor/Captum) | R | targets |\n"
    "|---|---:|---:|---:|---:|---:|---|---:|---:|---|"
)


def table(rows: list[Row]) -> str:
    """A Markdown table of rows."""
    lines = [HEADER]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.ours_s} | {r.floor_s} | {r.captum_s} | {r.ours_floor} | {r.ours_captum} "
            f"| {r.diff} | {r.peak} | {r.repeats} | {r.verdict} |"
        )
    return "\n".join(lines)


def git(*args: str) -> str:
    """Output of a git command in the repository, or "" if it fails."""
    try:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine() -> dict[str, str]:
    """CPU model, cores, memory, library versions and the git state."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except OSError:
        memory = "unknown"
    commit = git("rev-parse", "--short", "HEAD") or "no commit"
    if git("status", "--porcelain", "--untracked-files=no", "--", "saliencelab"):
        commit += ", saliencelab/ modified"
    return {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable), {memory} RAM",
        "Software": (
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"captum {importlib.metadata.version('captum')}, saliencelab {sl.__version__} (git {commit})"
        ),
        "Date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def command_line() -> str:
    """The command that produced the report."""
    script = os.path.relpath(Path(sys.argv[0]).resolve(), REPO_ROOT)
    return "python " + " ".join(shlex.quote(a) for a in [script, *sys.argv[1:]])


@dataclass
class ModelRun:
    """One model's part of the run: its settings, floor chunk search and tables by batch."""

    name: str
    title: str
    settings: Settings
    per_row_s: dict[int, float]
    chunk: int
    tables: dict[int, list[Row]] = field(default_factory=dict)


def model_line(run: ModelRun) -> str:
    """The setup bullet of one model: inputs, passes and its floor chunk search."""
    ms, spec = run.settings, MODELS[run.name]
    search = ", ".join(f"{c}: {t * 1e3:.2g}" for c, t in run.per_row_s.items())
    passes = f"S={ms.steps}, SmoothGrad n={ms.sg_samples}, EG/GradientSHAP n={ms.eg_samples}" + (
        " (reduced to fit the run; a ratio to the floor does not depend on it)" if spec.reduced else ""
    )
    return (
        f"- **{run.title}**: `{run.name}`; inputs `(N, {ms.channels}, {ms.size}, {ms.size})`; {passes}; floor chunk"
        f" search (ms per forward+backward row, by chunk size): {search}; **best chunk = {run.chunk} rows**"
    )


def report(s: Settings, runs: list[ModelRun], notes: list[str], elapsed: float) -> str:
    """The whole BENCHMARKS.md."""
    m = machine()
    span = VALUE_RANGE[1] - VALUE_RANGE[0]
    lines = [
        "# Benchmarks: gradient-family methods",
        "",
        "Generated by `benchmarks/bench_gradient.py` (see `benchmarks/README.md`); regenerated whole on every run,"
        " do not edit by hand. Sections between `NAME: begin` and `NAME: end` marker comments are written by"
        " other scripts and kept.",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): small images and few repeats; not for comparison.**", ""]
    lines += [
        "## Setup",
        "",
        f"- Machine: {m['CPU']}; torch threads: {s.threads}",
        f"- Software: {m['Software']}",
        f"- Date: {m['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{command_line()}`",
        "- Models (eval mode; the zoo's random weights with seed 0, except the trained digits CNN); random inputs"
        f" with seed {s.seed}, each sample rescaled to [{VALUE_RANGE[0]}, {VALUE_RANGE[1]}]; target class {s.target}:",
        *[f"  {model_line(run)}" for run in runs],
        f"- Integrated Gradients: S Gauss-Legendre steps, zero baseline; Captum tuned with"
        f" `internal_batch_size` = best chunk; a second row uses Captum's defaults where S = {CAPTUM_DEFAULT_STEPS}",
        f"- SmoothGrad: n samples, noise {s.sg_noise} × value range (Captum `stdevs` ="
        f" {s.sg_noise * span:.4f}, `nt_samples_batch_size` = best chunk / N)",
        f"- Expected Gradients: n draws from K={s.references} random references, no noise;"
        f" GradientSHAP: the same with noise {s.gs_noise} × value range (Captum `stdevs` = {s.gs_noise * span:.4f})",
        "- Timing: each call warmed up once if it is estimated under"
        f" {s.warmup_max_seconds:.0f} s; then R rounds of (ours, floor, Captum...) alternating; times are medians,"
        " ratios are medians of the per-round ratios. R is as many rounds as fit"
        f" {s.cell_seconds:.0f} s per method and batch, between {s.min_repeats} and {s.max_repeats}. A call"
        f" estimated under {MIN_TIMED_SECONDS * 1e3:.0f} ms (the small models) is repeated back to back inside"
        " each timed call, the same number of times for every contender, and its time is per call.",
        "- Peak MB: peak resident memory above the level just before the call (after `malloc_trim`), sampled every"
        " 2 ms from `/proc/self/statm` during the first timed round; ours / floor / Captum.",
        "",
        f"**Targets:** every gradient method ≤ {FLOOR_TARGET:.2f}× its floor and ≤ Captum"
        f" (ours/floor ≤ {FLOOR_TARGET:.2f} and ours/Captum ≤ {CAPTUM_TARGET:.2f}); the last column says PASS or"
        " MISS per row. With R = 1 or 2 a ratio is one or two noisy measurements.",
        "",
    ]
    for run in runs:
        for batch, rows in run.tables.items():
            lines += [f"## {run.title}, batch {batch}", "", table(rows), ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += [ANALYSIS_HEADER, "", analysis_text(), ""]
    return "\n".join(lines)


ANALYSIS_HEADER = "## Where we are slower and why"
ANALYSIS_FILE = Path(__file__).with_name("where_slower.md")


def analysis_text() -> str:
    """The maintainers' reading of the numbers, kept in ``benchmarks/where_slower.md``."""
    if ANALYSIS_FILE.exists():
        return ANALYSIS_FILE.read_text().strip()
    return "(no analysis yet: write benchmarks/where_slower.md and run with --analysis-only)"


def replace_analysis(path: Path) -> None:
    """Swap the analysis section of an existing report for the current ``where_slower.md``.

    Only this script's own part is read: the other scripts' marked sections (the
    summary too has a "Where we are slower and why") are kept as they are.
    """
    own = MARKED_SECTION.sub("", path.read_text())
    if ANALYSIS_HEADER not in own:
        raise SystemExit(f"{path} has no '{ANALYSIS_HEADER}' section; run the benchmark first")
    head = own.split(ANALYSIS_HEADER)[0].strip()
    write_report(path, f"{head}\n\n{ANALYSIS_HEADER}\n\n{analysis_text()}\n")


# --------------------------------------------------------------------------- sections kept for other scripts

OWN_SECTION = "bench_gradient"
MARKED_SECTION = re.compile(
    r"^<!-- (?P<name>[\w.-]+): begin -->$\n?(?P<body>.*?)\n?^<!-- (?P=name): end -->$", re.S | re.M
)
"""A section another script keeps in the report: the lines ``<!-- NAME: begin -->``, body, ``<!-- NAME: end -->``."""


def marked_sections(text: str) -> dict[str, str]:
    """The bodies of the marked sections of ``text``, by NAME."""
    return {m["name"]: m["body"] for m in MARKED_SECTION.finditer(text)}


def put_section(text: str, name: str, body: str) -> str:
    """``text`` with the marked section ``name`` replaced by ``body``, or the section appended."""
    block = f"<!-- {name}: begin -->\n{body.strip()}\n<!-- {name}: end -->"
    for m in MARKED_SECTION.finditer(text):
        if m["name"] == name:
            return text[: m.start()] + block + text[m.end() :]
    return f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"


def write_section(path: Path, name: str, body: str) -> None:
    """Put the marked section ``name`` into ``path``, replacing its old one or appending it."""
    old = path.read_text() if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(put_section(old, name, body))


def write_report(path: Path, text: str, own: str = OWN_SECTION) -> None:
    """Write ``text`` to ``path``, keeping the marked sections of other scripts that ``path`` already has."""
    if path.exists():
        for name, body in marked_sections(path.read_text()).items():
            if name != own:
                text = put_section(text, name, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    s = parse_args(argv)
    if s.analysis_only:
        replace_analysis(s.out)
        print(f"updated the analysis section of {s.out}")
        return 0
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)  # Captum's GradientShap draws from the global generator
    began = time.perf_counter()
    runs, plan = [], []
    for name in s.models:
        spec = MODELS[name]
        ms = model_settings(s, spec)
        model = spec.load()
        print(f"{spec.title}:", end=" ")
        per_row_s = find_best_chunk(model, ms, ms.channels)
        run = ModelRun(name, f"{spec.title} {ms.size}²", ms, per_row_s, min(per_row_s, key=per_row_s.get))
        print(f"best floor chunk: {run.chunk} rows")
        runs.append(run)
        for n in s.batches:
            run.tables[n] = []
            for method in s.methods:
                cell = build_cell(model, method, n, ms, per_row_s, run.chunk, run.title)
                plan.append((run, cell, plan_repeats(cell, ms)))
    total = sum(cell_estimate(cell, r, run.settings) for run, cell, r in plan)
    print(f"{len(plan)} model/method/batch cells; estimated {total / 60:.1f} min from the chunk searches", flush=True)
    if s.plan_only:
        for run, cell, r in plan:
            print(
                f"  {run.title} batch {cell.batch} {cell.method}: R={r}, ~{cell_estimate(cell, r, run.settings):.0f} s"
            )
        return 0

    notes: list[str] = []
    for index, (run, cell, repeats) in enumerate(plan, start=1):
        round_s = sum(c.seconds for c in cell.contenders if not c.skipped)
        print(
            f"[{index}/{len(plan)}] {run.title} batch {cell.batch} {cell.method}: R={repeats}, ~{round_s:.1f} s/round"
        )
        results = run_cell(cell, repeats, run.settings)
        rows, cell_notes = cell_rows(cell, results, repeats, run.settings)
        run.tables[cell.batch] += rows
        notes += cell_notes

    elapsed = time.perf_counter() - began
    text = report(s, runs, notes, elapsed)
    write_report(s.out, text)
    for run in runs:
        for batch, rows in run.tables.items():
            print(f"\n{run.title}, batch {batch}\n{table(rows)}")
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
