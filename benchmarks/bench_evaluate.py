"""Time saliencelab's evaluation metrics against their own floor and against Quantus at equal settings.

Rows, each on the same model, inputs, targets and attributions for both libraries:

- pixel flipping: ``sl.evaluate.pixel_flipping`` vs Quantus ``PixelFlipping``;
- region perturbation: ``pixel_flipping(region=...)`` vs Quantus ``RegionPerturbation``;
- model parameter randomisation: ``sl.evaluate.model_randomization`` vs Quantus ``MPRT``;
- ROAD: ``sl.evaluate.road`` vs Quantus ``ROAD``;

on the zoo's digits CNN (test digits of ``sl.zoo.dataset("digits")``) and on the
zoo's ResNet-18-shaped network at 224x224 RGB (random weights). Every row records
ours' time against its floor (the model evaluations the metric needs, at the best
chunk size, in plain torch and SciPy: see :func:`floor`, :func:`mprt_floor` and
:func:`road_floor`), both libraries' times (median over alternating rounds), their
ratio, peak memory, the largest difference between the two results and each side's
numbers; the target is ours ≤ 1.1× its floor (``FLOOR_TARGET``). The settings of the two
libraries are aligned where their definitions allow, and the section lists every
difference that remains. Quantus' default pixel flipping (one model call per
channel-pixel) at 224x224 RGB would take hours: its time is extrapolated from a
measured number of its steps and labelled so.

Quantus lives in its own virtual environment (``benchmarks/setup_bench_env.sh``),
never in the project's. The timing rounds, per-round ratios, peak-memory sampling
and machine header come from ``bench_gradient.py``; the report is the section of
``BENCHMARKS.md`` between ``<!-- bench_evaluate: begin -->`` and
``<!-- bench_evaluate: end -->``. See ``benchmarks/README.md``.

Usage::

    bash benchmarks/setup_bench_env.sh                    # once: /work/bench-venv with Quantus
    /work/bench-venv/bin/python benchmarks/bench_evaluate.py            # full run (~15 min on 2 cores)
    /work/bench-venv/bin/python benchmarks/bench_evaluate.py --quick --out /tmp/q.md
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import importlib.util
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from bench_gradient import (
    REPO_ROOT,
    Cell,
    Contender,
    Measured,
    _fmt,
    _ratio,
    command_line,
    machine,
    make_images,
    plan_repeats,
    quiet,
    run_cell,
    write_section,
)
from bench_perturbation import forward_rows
from scipy.sparse import csr_matrix, diags
from scipy.sparse.linalg import splu
from torch import nn

import saliencelab as sl
from saliencelab.evaluate.faithfulness import rank

SECTION = "bench_evaluate"
METRICS = ("pixel_flipping", "region_perturbation", "mprt", "road")
CASES = ("digits", "rgb")
FLOOR_TARGET = 1.1
"""Issue target: every metric at most this many times its own floor (Quantus' speed-up is measured, with no target)."""
ROAD_PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Our ROAD default fractions; Quantus gets percentages that remove the same pixel counts."""
QUANTUS_MPRT_SEED = 42
"""Quantus ``MPRT``'s default seed."""
FLOOR_CHUNKS = {"digits": (64, 128, 256, 512, 1024, 2048), "rgb": (2, 8, 32, 64)}
"""Chunk sizes (rows per forward) tried for the floor; the fastest per row is used."""
SEARCH_ROWS = {"digits": 4096, "rgb": 0}
"""Rows timed per chunk size in the search (at least one chunk): a digits forward of 64 rows takes ~2 ms."""
ROAD_NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6), (0, 1, 1 / 6),
                   (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))  # fmt: skip
"""ROAD's imputation weights (Rong et al. 2022): direct neighbours 1/6, diagonal ones 1/12."""

Tensor = torch.Tensor
Call = Callable[[], Tensor]


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line."""

    metrics: list[str]
    cases: list[str]
    digits_n: int
    digits_patch: int
    rgb_size: int
    rgb_n: int
    rgb_steps: int
    rgb_patch: int
    extrapolate: int
    mprt_check_steps: int
    seed: int
    max_repeats: int
    min_repeats: int
    cell_seconds: float
    warmup_max_seconds: float
    threads: int
    out: Path
    quick: bool


def parse_args(argv: list[str] | None = None) -> Settings:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 32 digits, 64x64 RGB, few repeats")
    p.add_argument("--metrics", nargs="+", default=list(METRICS), help="subset of metrics (space or comma separated)")
    p.add_argument("--cases", nargs="+", default=list(CASES), help="digits and/or rgb")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report path")
    p.add_argument("--digits-n", type=int, help="test digits evaluated (default 128, quick 32)")
    p.add_argument("--digits-patch", type=int, default=2, help="region perturbation patch on 8x8 digits (default 2)")
    p.add_argument("--rgb-size", type=int, help="RGB image side (default 224, quick 64)")
    p.add_argument("--rgb-n", type=int, help="RGB images (default 2, quick 1)")
    p.add_argument("--rgb-steps", type=int, help="RGB pixel-flipping steps, a divisor of size² (default 28, quick 16)")
    p.add_argument("--rgb-patch", type=int, help="region perturbation patch on RGB (default 28, quick 16)")
    p.add_argument(
        "--extrapolate", type=int, help="Quantus default pixel-flipping steps timed (default 40, quick 10)"
    )
    p.add_argument("--mprt-check-steps", type=int, default=6, help="RGB MPRT steps re-checked on Quantus' models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, help="most rounds per row (default 5, quick 2)")
    p.add_argument("--min-repeats", type=int, help="fewest rounds per row (default 2, quick 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per row fit in this (default 40, quick 4)")
    p.add_argument("--warmup-max-seconds", type=float, default=5.0, help="warm up only calls estimated below this")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    a = p.parse_args(argv)
    metrics = [m for item in a.metrics for m in item.split(",") if m]
    cases = [c for item in a.cases for c in item.split(",") if c]
    for name, chosen, allowed in (("metrics", metrics, METRICS), ("cases", cases, CASES)):
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            p.error(f"unknown {name} {unknown}; choose from {', '.join(allowed)}")
    s = Settings(
        metrics=[m for m in METRICS if m in metrics],
        cases=[c for c in CASES if c in cases],
        digits_n=a.digits_n or (32 if a.quick else 128),
        digits_patch=a.digits_patch,
        rgb_size=a.rgb_size or (64 if a.quick else 224),
        rgb_n=a.rgb_n or (1 if a.quick else 2),
        rgb_steps=a.rgb_steps or (16 if a.quick else 28),
        rgb_patch=a.rgb_patch or (16 if a.quick else 28),
        extrapolate=a.extrapolate or (10 if a.quick else 40),
        mprt_check_steps=a.mprt_check_steps,
        seed=a.seed,
        max_repeats=a.repeats or (2 if a.quick else 5),
        min_repeats=a.min_repeats or (1 if a.quick else 2),
        cell_seconds=a.cell_seconds or (4.0 if a.quick else 40.0),
        warmup_max_seconds=a.warmup_max_seconds,
        threads=a.threads,
        out=a.out,
        quick=a.quick,
    )
    if s.rgb_size**2 % s.rgb_steps:
        p.error(f"--rgb-steps {s.rgb_steps} must divide the {s.rgb_size**2} pixels (Quantus' features_in_step)")
    if s.rgb_size % s.rgb_patch or 8 % s.digits_patch:
        p.error("the patch sides must divide the image sides (Quantus pads, ours has smaller edge patches)")
    if s.extrapolate < 3:
        p.error("--extrapolate needs at least 3 steps (the per-step time is the median interval between model calls)")
    return s


def import_quantus() -> ModuleType:
    """Quantus, or a message saying how to get the environment that has it.

    Quantus imports Zennit when it is installed (the benchmark environment has it for
    ``bench_lrp.py``), and Zennit imports torchvision: Zennit is imported first through
    ``bench_lrp.py``'s torchvision shim.
    """
    if importlib.util.find_spec("zennit") is not None:
        from bench_lrp import import_zennit

        import_zennit()
    try:
        import quantus
    except ImportError as error:
        raise SystemExit(
            "bench_evaluate.py compares with Quantus, which is not installed in this environment. Run "
            "`bash benchmarks/setup_bench_env.sh` and then `/work/bench-venv/bin/python benchmarks/bench_evaluate.py`"
        ) from error
    return quantus


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One model with its inputs, targets and the attributions both libraries evaluate."""

    name: str
    description: str
    model: nn.Module
    x: Tensor
    y: Tensor
    maps: Tensor
    """Channel-summed signed gradient ``(N, 1, H, W)`` of the target: the attributions evaluated."""
    low: Tensor
    """Per-sample minimum ``(N, 1, 1, 1)``: Quantus' ``perturb_baseline="black"``."""
    t_batch: float
    """Seconds of one inference forward of the whole batch (for the cost estimates)."""
    t_row: float
    """Seconds per row of an inference forward in chunks of 64 rows."""
    chunk_ms: dict[int, float]
    """Milliseconds per row of a bare inference forward by chunk size (the floor's chunk search)."""

    @property
    def chunk(self) -> int:
        """The floor's chunk size: the fastest per row."""
        return min(self.chunk_ms, key=self.chunk_ms.get)

    @property
    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.x.numpy(), self.y.numpy(), self.maps.numpy()


def summed_gradient(model: nn.Module, inputs: Tensor, target: Tensor) -> Tensor:
    """The attributions of every row: saliencelab's signed gradient summed over channels, ``(N, 1, H, W)``."""
    return sl.explain(model, inputs, method="gradient", target=target).values.sum(dim=1, keepdim=True).detach()


def quantus_explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object) -> np.ndarray:
    """:func:`summed_gradient` with Quantus' ``explain_func`` signature (numpy in, numpy out)."""
    return summed_gradient(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()


def forward_seconds(model: nn.Module, x: Tensor) -> tuple[float, float]:
    """Median seconds of a forward of ``x`` and per row of a 64-row forward (after one warm-up)."""
    rows = x[:1].expand(64, *x.shape[1:]).contiguous()
    batch, chunk = [], []
    with torch.inference_mode():
        for index in range(4):
            start = time.perf_counter()
            model(x)
            middle = time.perf_counter()
            model(rows)
            if index:
                batch.append(middle - start)
                chunk.append((time.perf_counter() - middle) / 64)
    return statistics.median(batch), statistics.median(chunk)


def chunk_search(model: nn.Module, x: Tensor, chunks: tuple[int, ...], rows: int = 0) -> dict[int, float]:
    """Milliseconds per row of ``forward_rows`` at each chunk size (``max(rows, chunk)`` rows timed): median of 2
    alternating passes after a warm-up."""
    times: dict[int, list[float]] = {c: [] for c in chunks}
    for index in range(3):
        for c in chunks:
            timed = max(rows, c)
            start = time.perf_counter()
            forward_rows(model, x, timed, c)
            if index:
                times[c].append((time.perf_counter() - start) / timed * 1e3)
    return {c: statistics.median(t) for c, t in times.items()}


def make_case(name: str, s: Settings) -> Case:
    """The digits CNN on test digits, or the random-weight ResNet-18 on random RGB images."""
    if name == "digits":
        model = sl.zoo.load("digits_cnn").eval()
        x, y = (t[: s.digits_n] for t in sl.zoo.dataset("digits")[2:])
        description = (
            f'`sl.zoo.load("digits_cnn")` (trained), the first {s.digits_n} test digits of'
            ' `sl.zoo.dataset("digits")` `(N, 1, 8, 8)` in [0, 1], targets = true labels'
        )
    else:
        model = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0).eval()
        x = make_images(s.rgb_n, s.rgb_size, s.seed)
        with torch.no_grad():
            y = model(x).argmax(dim=1)
        description = (
            f'`sl.zoo.load("resnet18_shaped", num_classes=10, seed=0)` (random weights, eval mode),'
            f" `({s.rgb_n}, 3, {s.rgb_size}, {s.rgb_size})` seeded random images in [-2.118, 2.640],"
            " targets = predicted classes"
        )
    maps = summed_gradient(model, x, y)
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    chunks = chunk_search(model, x, FLOOR_CHUNKS[name], SEARCH_ROWS[name])
    return Case(name, description, model, x, y, maps, low, *forward_seconds(model, x), chunks)


def ties(maps: Tensor) -> int:
    """Largest number of tied attribution values in one sample (ties rank differently in the two libraries)."""
    return max(int(row.numel() - row.unique().numel()) for row in maps.flatten(1))


# --------------------------------------------------------------------------- rows


@dataclass
class Check:
    """The comparison of one row's results."""

    diff: str
    ours: str
    quantus: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """One row of the report."""

    metric: str
    case: Case
    title: str
    cell: Cell
    check: Callable[[dict[str, Measured]], Check]
    equal: bool = True
    """Whether both contenders compute the same output (else Quantus runs at its defaults)."""
    extrapolated: dict | None = None


def floor(case: Case, rows: int) -> Contender:
    """The floor of a perturbation curve: ``rows`` bare inference forwards at the fastest chunk size."""
    return Contender("floor", lambda: forward_rows(case.model, case.x, rows, case.chunk), rows * case.t_row)


def plain_gradient(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """:func:`summed_gradient` in plain autograd: the target logit's input gradient summed over channels."""
    inputs = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(inputs).gather(1, y[:, None]).sum(), inputs)
    return grad.sum(dim=1, keepdim=True)


def spearman_abs(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Spearman correlation of ``|a|`` and ``|b|``, ranks by a double argsort (ties by position)."""
    ranks = [m.flatten(1).abs().argsort(dim=1).argsort(dim=1).double() for m in (a, b)]
    ra, rb = (r - r.mean(dim=1, keepdim=True) for r in ranks)
    return (ra * rb).sum(dim=1) / (ra.norm(dim=1) * rb.norm(dim=1))


def randomised_layers(model: nn.Module, x: Tensor) -> list[str]:
    """The layers ours randomises, output first: modules owning parameters, normalisation layers aside, in the
    reverse of the order a forward pass first calls them (plain forward pre-hooks on a copy of the model)."""
    work = copy.deepcopy(model)
    ours, _ = parameterised_layers(work)
    modules = dict(work.named_modules())
    called: dict[str, None] = {}
    handles = [
        modules[name].register_forward_pre_hook(lambda _module, _args, name=name: called.setdefault(name))
        for name in ours
    ]
    with torch.no_grad():
        work(x[:1])
    for handle in handles:
        handle.remove()
    return list(reversed(called))


def mprt_floor(case: Case, layers: list[str], seed: int) -> Tensor:
    """MPRT's floor: the explanations it needs in plain torch, and their Spearman correlations.

    A copy of the model (parameters not requiring gradients), the unrandomised model's
    maps, then for each of ``layers`` in turn (cascading) its parameters re-drawn with
    ``normal_`` (std ``fan_in^-1/2`` for weights, 0.01 for vectors) and the maps again,
    each compared with the unrandomised maps by :func:`spearman_abs`; ``(layers, N)``.
    """
    work = copy.deepcopy(case.model).requires_grad_(False)
    modules = dict(work.named_modules())
    draws = torch.Generator().manual_seed(seed)
    reference = plain_gradient(work, case.x, case.y)
    scores = []
    for name in layers:
        with torch.no_grad():
            for p in modules[name].parameters(recurse=False):
                p.normal_(0.0, p[0].numel() ** -0.5 if p.ndim > 1 else 0.01, generator=draws)
        scores.append(spearman_abs(reference, plain_gradient(work, case.x, case.y)))
    return torch.stack(scores)


def neighbour_weights(height: int, width: int) -> csr_matrix:
    """``W[i, j]``: the weight of pixel ``j`` in ROAD's equation for pixel ``i`` (row-major), neighbours inside."""
    y, x = np.divmod(np.arange(height * width), width)
    rows, cols, weights = [], [], []
    for dy, dx, weight in ROAD_NEIGHBOURS:
        inside = np.flatnonzero((y + dy >= 0) & (y + dy < height) & (x + dx >= 0) & (x + dx < width))
        rows.append(inside)
        cols.append((y[inside] + dy) * width + x[inside] + dx)
        weights.append(np.full(inside.size, weight))
    pixels = height * width
    return csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(pixels, pixels))


def road_floor(case: Case, counts: list[int]) -> Tensor:
    """ROAD's floor without noise: a plain SciPy imputation loop, then the forwards of the imputed rows.

    Per sample and removal level, the ``count`` most relevant pixels (ties by position)
    are unknowns ``u`` of ``(D_uu − W_uu) x_u = W_uk x_k`` (``W`` from
    :func:`neighbour_weights`, ``D`` its row sums: each removed pixel the weighted mean of
    its neighbours inside the image), all channels as right-hand sides, solved by
    ``splu``; the ``N × levels`` imputed images then run through the model in
    ``inference_mode`` at the fastest chunk size. Returns the target probabilities
    ``(N, levels)`` (ours' curve).
    """
    n, channels, height, width = case.x.shape
    weights = neighbour_weights(height, width)
    degree = np.asarray(weights.sum(axis=1)).ravel()
    order = case.maps.flatten(1).argsort(dim=1, descending=True, stable=True).numpy()
    images = case.x.double().numpy().reshape(n, channels, height * width)
    filled = np.repeat(images[:, None], len(counts), axis=1)
    for sample in range(n):
        for level, count in enumerate(counts):
            removed = order[sample, :count]
            kept = np.ones(height * width, dtype=bool)
            kept[removed] = False
            rows = weights[removed]
            system = (diags(degree[removed]) - rows[:, removed]).tocsc()
            known = rows[:, kept] @ images[sample][:, kept].T
            filled[sample, level][:, removed] = splu(system).solve(np.ascontiguousarray(known)).T
    batch = torch.from_numpy(filled).to(case.x.dtype).view(n * len(counts), channels, height, width)
    with torch.inference_mode():
        probabilities = torch.cat(
            [case.model(batch[first : first + case.chunk]).softmax(dim=1) for first in range(0, len(batch), case.chunk)]
        )
    picked = probabilities.view(n, len(counts), -1).gather(2, case.y[:, None, None].expand(n, len(counts), 1))
    return picked[..., 0].double()


def relative(ours: Tensor, theirs: Tensor) -> str:
    """``max |ours − theirs|`` and the same relative to ``max |theirs|``."""
    diff = float((ours.double() - theirs.double()).abs().max())
    scale = float(theirs.double().abs().max()) or 1.0
    return f"{diff:.1e} ({diff / scale:.0e} rel)"


def quantus_curves(scores: object) -> Tensor:
    """A Quantus list of per-sample curves as a float64 tensor."""
    return torch.tensor(np.asarray(scores, dtype=np.float64))


def pixel_flipping_plan(q: ModuleType, case: Case, steps: int) -> Plan:
    """Both libraries flip the same pixels, most relevant first, to the per-sample minimum, scoring logits.

    Quantus flips single channel values (``features_in_step`` of them per model call, a
    divisor of H·W by its own check); with C channels, every C-th point of its curve has
    whole pixels flipped, and those are the points our curve has.
    """
    n, channels, height, width = case.x.shape
    per_step = height * width // steps
    xb, yb, ab = case.numpy

    def ours() -> Tensor:
        result = sl.evaluate.pixel_flipping(
            case.model, case.x, case.maps, target=case.y, steps=steps, baseline=case.low, score="logit", progress=False
        )
        return result.curve

    def theirs() -> Tensor:
        metric = q.PixelFlipping(features_in_step=per_step, perturb_baseline="black", disable_warnings=True)
        return quantus_curves(metric(case.model, xb, yb, ab, channel_first=True, softmax=False, batch_size=n))

    calls = channels * steps
    cell = Cell(
        "pixel_flipping",
        n,
        [
            Contender("ours", ours, n * (steps + 1) * case.t_row),
            floor(case, n * (steps + 1)),
            Contender("quantus", quiet(theirs), calls * case.t_batch * 1.2),
        ],
        {},
    )
    title = (
        f"pixel flipping, {steps} steps of {per_step} pixel{'s' * (per_step > 1)} (ours `steps={steps}`; Quantus"
        f" `features_in_step={per_step}`: {calls} model calls of the batch)"
    )

    def check(results: dict[str, Measured]) -> Check:
        mine, theirs_ = results["ours"].values, results["quantus"].values
        if mine is None or theirs_ is None:
            return Check("n/a", "—", "—")
        shared = theirs_[:, channels - 1 :: channels]
        notes = []
        if channels > 1:
            notes.append(
                f"Quantus returned {theirs_.shape[1]} points per sample, {channels} per step of ours (it flips"
                f" channel values, {per_step} at a time); the last of every {channels} points, with whole pixels"
                " flipped, is compared."
            )
        return Check(
            relative(mine[:, 1:], shared),
            f"mean logit along the curve {float(mine[:, 1:].mean()):.4f}",
            f"{float(shared.mean()):.4f}",
            notes,
        )

    return Plan("pixel_flipping", case, title, cell, check)


def region_plan(q: ModuleType, case: Case, patch: int) -> Plan:
    """Every ``patch × patch`` region perturbed, most relevant first; Quantus returns f(x) − f(x_k)."""
    n, _, height, width = case.x.shape
    regions = (height // patch) * (width // patch)
    xb, yb, ab = case.numpy

    def ours() -> Tensor:
        result = sl.evaluate.pixel_flipping(
            case.model,
            case.x,
            case.maps,
            target=case.y,
            region=patch,
            steps=regions,
            baseline=case.low,
            score="logit",
            progress=False,
        )
        return result.curve

    def theirs() -> Tensor:
        metric = q.RegionPerturbation(
            patch_size=patch, regions_evaluation=regions, order="morf", perturb_baseline="black", disable_warnings=True
        )
        return quantus_curves(metric(case.model, xb, yb, ab, channel_first=True, softmax=False, batch_size=n))

    cell = Cell(
        "region_perturbation",
        n,
        [
            Contender("ours", ours, n * (regions + 1) * case.t_row),
            floor(case, n * (regions + 1)),
            Contender("quantus", quiet(theirs), (regions + 1) * case.t_batch * 1.2),
        ],
        {},
    )
    title = (
        f"region perturbation, {patch}×{patch} patches, all {regions} regions (ours `region={patch},"
        f" steps={regions}`; Quantus `patch_size={patch}, regions_evaluation={regions}`)"
    )

    def check(results: dict[str, Measured]) -> Check:
        mine, theirs_ = results["ours"].values, results["quantus"].values
        if mine is None or theirs_ is None:
            return Check("n/a", "—", "—")
        drops = mine[:, :1] - mine[:, 1:]
        return Check(
            relative(drops, theirs_),
            f"mean drop f(x) − f(x_k) {float(drops.mean()):.4f}",
            f"{float(theirs_.mean()):.4f}",
        )

    return Plan("region_perturbation", case, title, cell, check)


def parameterised_layers(model: nn.Module) -> tuple[list[str], list[str]]:
    """The layers each library randomises: Quantus every module with ``reset_parameters`` (registration
    order), ours every module owning parameters except normalisation layers (forward order)."""
    theirs = [name for name, m in model.named_modules() if hasattr(m, "reset_parameters")]
    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    ours = [
        name
        for name, m in model.named_modules()
        if next(m.parameters(recurse=False), None) is not None and not isinstance(m, norms)
    ]
    return ours, theirs


def mprt_plan(q: ModuleType, case: Case, s: Settings) -> Plan:
    """Cascading randomisation from the output down, Spearman correlation of |maps|, the same explainer."""
    n = case.x.shape[0]
    xb, yb, _ = case.numpy
    ours_layers, quantus_layers = parameterised_layers(case.model)
    layers = randomised_layers(case.model, case.x)
    seen: dict[str, list[str]] = {}

    def ours() -> Tensor:
        df = sl.evaluate.model_randomization(
            case.model,
            case.x,
            method=summed_gradient,
            target=case.y,
            mode="cascading",
            similarity="spearman_abs",
            seed=s.seed,
            progress=False,
        )
        seen["ours"] = df["layer"].tolist()
        return torch.tensor(df["per_sample"].tolist(), dtype=torch.float64)

    def theirs() -> Tensor:
        metric = q.MPRT(layer_order="top_down", seed=QUANTUS_MPRT_SEED, disable_warnings=True)
        scores = metric(
            case.model, xb, yb, None, channel_first=True, explain_func=quantus_explain, softmax=False, batch_size=n
        )
        seen["quantus"] = list(scores)
        return torch.tensor([scores[k] for k in scores], dtype=torch.float64)

    gradient_s = 3 * case.t_batch
    cell = Cell(
        "mprt",
        n,
        [
            Contender("ours", ours, (len(ours_layers) + 1) * gradient_s),
            Contender("floor", lambda: mprt_floor(case, layers, s.seed), (len(layers) + 1) * gradient_s),
            Contender("quantus", quiet(theirs), (len(quantus_layers) + 2) * gradient_s * 1.2),
        ],
        {},
    )
    title = (
        f"model randomisation, cascading, Spearman of absolute maps (ours {len(ours_layers)} layers;"
        f" Quantus `MPRT` {len(quantus_layers)} layers)"
    )

    def check(results: dict[str, Measured]) -> Check:
        mine, theirs_ = results["ours"].values, results["quantus"].values
        if mine is None or theirs_ is None:
            return Check("n/a", "—", "—")
        result = mprt_check(q, case, s, mine, theirs_, seen)
        bottom = results["floor"].values
        if bottom is not None:
            same = "the same layers in the same order" if layers == seen["ours"] else f"other layers: {layers}"
            result.notes.append(
                f"Floor: {len(layers) + 1} plain-autograd explanations ({same} as ours); its own random weights give"
                f" a last-step mean similarity of {float(bottom[-1].mean()):.4f} (ours {float(mine[-1].mean()):.4f})."
            )
        return result

    return Plan("mprt", case, title, cell, check)


def mprt_check(q: ModuleType, case: Case, s: Settings, mine: Tensor, theirs: Tensor, seen: dict) -> Check:
    """Our similarity on Quantus' own randomised models (same weights) against Quantus' scores.

    The two libraries draw different random weights (Quantus re-seeds the global RNG with
    ``seed + 1`` before every layer; ours derives one seed per layer name and leaves the
    global RNG alone), so their per-layer scores differ; on the same randomised models the
    similarity computations are compared here.
    """
    from quantus.helpers.model.pytorch_model import PyTorchModel

    names = seen["quantus"]
    scores = dict(zip(names, theirs, strict=True))
    reference = summed_gradient(case.model, case.x, case.y)
    limit = len(names) if case.name == "digits" else s.mprt_check_steps
    diffs = [float((1.0 - scores["original"]).abs().max())]
    wrapped = PyTorchModel(case.model, channel_first=True, softmax=False)
    with torch.random.fork_rng():
        torch.manual_seed(12345)
        for step, (name, model) in enumerate(wrapped.get_random_layer_generator("top_down", QUANTUS_MPRT_SEED), 1):
            if step > limit:
                break
            ours_similarity = sl.evaluate.similarity(reference, summed_gradient(model, case.x, case.y), "spearman_abs")
            diffs.append(float((ours_similarity.double() - scores[name]).abs().max()))
        rng_after = torch.initial_seed()
    layers = [k for k in names if k != "original"]
    with_original = float(theirs.mean())
    without = float(theirs[1:].mean())
    norms = [i for i, k in enumerate(names) if ".bn" in k or k.startswith("bn") or k.endswith("downsample.1")]
    unchanged = [i for i in norms if torch.equal(theirs[i], theirs[i - 1])]
    notes = [
        f"Quantus' layers, output first: {', '.join(layers)}; ours: {', '.join(seen['ours'])}.",
        f"Same randomised models (Quantus' own generator, first {min(limit, len(layers))} steps): our similarity"
        f" differs from Quantus' per-sample scores by at most {max(diffs):.1e}.",
        f"Quantus' generator left the global torch seed at {rng_after} (set to 12345 before):"
        f" it calls `torch.manual_seed({QUANTUS_MPRT_SEED} + 1)` before each layer.",
    ]
    if norms:
        notes.append(
            f"{len(unchanged)} of Quantus' {len(norms)} normalisation-layer steps leave every score exactly as the"
            " step before (this net's batch norms are at their initial state, which their reset restores)."
        )
    if case.name == "digits":
        metric = q.MPRT(
            layer_order="top_down", seed=QUANTUS_MPRT_SEED, return_average_correlation=True, disable_warnings=True
        )
        xb, yb, _ = case.numpy
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            averaged = metric(
                case.model, xb, yb, None, channel_first=True, explain_func=quantus_explain, softmax=False,
                batch_size=case.x.shape[0],
            )  # fmt: skip
        averaged_t = torch.tensor(averaged, dtype=torch.float64)
        notes.append(
            f"Quantus `return_average_correlation=True` gives per-sample means equal to the mean over all its"
            f" entries, 'original' (1.0) included, to {float((averaged_t - theirs.mean(dim=0)).abs().max()):.1e};"
            f" they differ from the mean over the randomised layers alone by up to"
            f" {float((averaged_t - theirs[1:].mean(dim=0)).abs().max()):.3f} (batch means {with_original:.4f} and"
            f" {without:.4f})."
        )
    return Check(
        f"{max(diffs):.1e} on the same models",
        f"last step {float(mine[-1].mean()):.4f}, mean {float(mine.mean()):.4f}",
        f"last step {float(theirs[-1].mean()):.4f}, mean (no 'original') {without:.4f}",
        notes,
    )


def road_counts(pixels: int) -> tuple[list[int], list[float]]:
    """Pixel counts of our default fractions, and Quantus percentages that remove exactly as many.

    Ours removes ``round(p·H·W)`` pixels, Quantus ``int(H·W·p / 100)``.
    """
    counts = [round(p * pixels) for p in ROAD_PERCENTAGES]
    percentages = [100 * (c + 0.25) / pixels for c in counts]
    assert [int(pixels * p / 100) for p in percentages] == counts
    return counts, percentages


def road_plan(q: ModuleType, case: Case) -> Plan:
    """MoRF removal of our default fractions, noisy linear imputation without noise (both deterministic)."""
    n, _, height, width = case.x.shape
    counts, percentages = road_counts(height * width)
    xb, yb, ab = case.numpy
    solve_s = 2e-7 * (height * width) ** 1.5

    def ours() -> Tensor:
        return sl.evaluate.road(case.model, case.x, case.maps, target=case.y, noise=0.0, progress=False).curve

    def theirs() -> Tensor:
        metric = q.ROAD(percentages=percentages, noise=0.0, disable_warnings=True)
        scores = metric(case.model, xb, yb, ab, channel_first=True, batch_size=n)
        return torch.tensor(list(scores.values()), dtype=torch.float64)

    solves = len(counts) * n
    cell = Cell(
        "road",
        n,
        [
            Contender("ours", ours, solves * (solve_s + case.t_row)),
            Contender("floor", lambda: road_floor(case, counts), solves * (solve_s + case.t_row)),
            Contender("quantus", quiet(theirs), solves * solve_s * 3 + len(counts) * case.t_batch),
        ],
        {},
    )
    title = (
        f"ROAD, MoRF, {len(counts)} removal levels ({', '.join(map(str, counts))} pixels), noise 0"
        f" (Quantus `percentages` adjusted to the same counts)"
    )

    def check(results: dict[str, Measured]) -> Check:
        mine, theirs_, bottom = results["ours"].values, results["quantus"].values, results["floor"].values
        if mine is None:
            return Check("n/a", "—", "—")
        if theirs_ is None:
            result = Check("n/a", f"mean target probability {float(mine.mean()):.4f}", "error")
        else:
            result = road_check(q, case, counts, percentages, mine, theirs_)
        if bottom is not None:
            result.notes.append(
                "Floor (plain SciPy imputation and forwards) against ours' timed probabilities:"
                f" {relative(mine, bottom)}."
            )
        return result

    return Plan("road", case, title, cell, check)


def road_check(
    q: ModuleType, case: Case, counts: list[int], percentages: list[float], mine: Tensor, theirs: Tensor
) -> Check:
    """Impute the same pixel sets with both libraries' imputations, and Quantus' accuracy from our images."""
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    n = case.x.shape[0]
    ranks = rank(case.maps.flatten(1))  # our MoRF order: ties by position
    image_diff, correct, probability = 0.0, [], []
    for count in counts:
        removed = (ranks < count).view(n, *case.x.shape[2:])
        ours_images = sl.evaluate.noisy_linear_imputation(case.x, removed, noise=0.0)
        for image, mask, filled in zip(case.x, removed, ours_images, strict=True):
            theirs_image = quantus_imputation(arr=image.numpy(), indices=np.flatnonzero(mask.numpy()), noise=0.0)
            image_diff = max(image_diff, float(np.abs(theirs_image - filled.double().numpy()).max()))
        with torch.no_grad():
            output = case.model(ours_images)
        correct.append(output.argmax(dim=1) == case.y)
        probability.append(output.softmax(dim=1).gather(1, case.y[:, None])[:, 0])
    correct_t = torch.stack(correct, dim=1).double()
    accuracy = correct_t.mean(dim=0)
    notes = [
        f"Imputed images of the same removal sets: max |ours − Quantus| = {image_diff:.1e}; our timed"
        f" probabilities vs a plain forward of those images: {relative(mine, torch.stack(probability, dim=1))}.",
    ]
    half = n // 2
    if half:
        metric = q.ROAD(percentages=percentages, noise=0.0, disable_warnings=True)
        xb, yb, ab = case.numpy
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            split = metric(case.model, xb, yb, ab, channel_first=True, batch_size=half)
        split_t = torch.tensor(list(split.values()), dtype=torch.float64)
        first = correct_t[:half].mean(dim=0)
        notes.append(
            f"Quantus `batch_size={half}` ({n} samples in 2 batches) returns accuracies equal to those of the first"
            f" {half} samples alone to {float((split_t - first).abs().max()):.1e} (mean {float(split_t.mean()):.4f};"
            f" all {n}: {float(accuracy.mean()):.4f}): it evaluates only its first batch."
        )
    return Check(
        f"accuracy {relative(accuracy, theirs)}; images {image_diff:.1e}",
        f"mean target probability {float(mine.mean()):.4f}; accuracy {float(accuracy.mean()):.4f}",
        f"accuracy {float(theirs.mean()):.4f}",
        notes,
    )


# --------------------------------------------------------------------------- Quantus' default pixel flipping


class _Enough(Exception):
    """Raised by :class:`CallLimit` to stop Quantus after a number of model calls."""


class CallLimit(nn.Module):
    """The model, noting the time of every call and raising :class:`_Enough` at call ``limit + 1``."""

    def __init__(self, model: nn.Module, limit: int) -> None:
        super().__init__()
        self.model, self.limit, self.stamps = model, limit, []

    def forward(self, x: Tensor) -> Tensor:
        self.stamps.append(time.perf_counter())
        if len(self.stamps) > self.limit:
            raise _Enough
        return self.model(x)


def quantus_default_pixel_flipping(q: ModuleType, case: Case, s: Settings) -> dict:
    """Time the first steps of Quantus' default ``PixelFlipping`` (``features_in_step=1``) and extrapolate.

    Every step does the same work (copy the batch, replace one value per sample, check each
    sample for change, one forward of the batch), so the time is linear in the steps:
    ``estimate = setup + steps × per_step``, with ``setup`` the time to its first model
    call and ``per_step`` the median interval between its model calls (after a warm-up run).
    """
    n, channels, height, width = case.x.shape
    total = channels * height * width
    xb, yb, ab = case.numpy
    for limit in (2, s.extrapolate):  # a warm-up run, then the measured one
        limited = CallLimit(case.model, limit).eval()
        metric = q.PixelFlipping(features_in_step=1, perturb_baseline="black", disable_warnings=True)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                metric(limited, xb, yb, ab, channel_first=True, softmax=False, batch_size=n)
        except _Enough:
            pass
    intervals = np.diff(limited.stamps)
    setup, per_step = limited.stamps[0] - start, float(np.median(intervals))
    return {"total": total, "steps": s.extrapolate, "setup": setup, "per_step": per_step,
            "mean_step": float(intervals.mean()), "estimate": setup + total * per_step}  # fmt: skip


def defaults_plan(case: Case) -> Plan:
    """Ours at its default step count against Quantus' default step size (extrapolated): not the same output."""
    n = case.x.shape[0]
    pixels = case.x.shape[2] * case.x.shape[3]

    def ours() -> Tensor:
        result = sl.evaluate.pixel_flipping(
            case.model, case.x, case.maps, target=case.y, baseline=case.low, score="logit", progress=False
        )
        return result.curve

    steps = min(100, pixels)
    cell = Cell(
        "pixel_flipping", n, [Contender("ours", ours, n * (steps + 1) * case.t_row), floor(case, n * (steps + 1))], {}
    )
    total = 3 * pixels
    title = (
        f"pixel flipping, each library's default step size: ours `steps=None` ({steps} steps of ~{pixels // steps}"
        f" pixels); Quantus `features_in_step=1` ({total:,} model calls), **extrapolated**"
    )

    def check(_: dict[str, Measured]) -> Check:
        return Check("not the same output", "—", "—")

    return Plan("pixel_flipping", case, title, cell, check, equal=False)


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    plan: Plan
    results: dict[str, Measured]
    check: Check
    repeats: int


def _median(m: Measured | None) -> float | None:
    return statistics.median(m.times) if m is not None and m.times else None


def _seconds(m: Measured | None) -> str:
    if m is None:
        return "—"
    if m.error:
        return "error"
    return _fmt(_median(m), ".3f")


def speedup(row: Row) -> float | None:
    """Quantus' time over ours: the median of per-round ratios, or the extrapolation over our median."""
    extrapolated = row.plan.extrapolated
    if extrapolated is not None:
        ours = _median(row.results["ours"])
        return extrapolated["estimate"] / ours if ours else None
    theirs = row.results.get("quantus")
    if theirs is None or not theirs.times:
        return None
    return _ratio(theirs, row.results["ours"])


def over_floor(row: Row) -> float | None:
    """Ours' time over its floor's: the median of per-round ratios."""
    return _per_round(row, "ours", "floor")


def verdict(row: Row) -> str:
    """PASS / MISS against ``FLOOR_TARGET``; the parenthesis says how Quantus was run (or that it failed)."""
    ratio = over_floor(row)
    quantus = row.results.get("quantus")
    if row.plan.extrapolated is not None:
        how = "Quantus at its defaults, extrapolated"
    elif quantus is not None and quantus.error:
        how = "Quantus fails"
    else:
        how = ""
    met = "n/a" if ratio is None else "PASS" if ratio <= FLOOR_TARGET else "MISS"
    return f"{met} ({how})" if how else met


def quantus_seconds(row: Row) -> str:
    if row.plan.extrapolated is not None:
        e = row.plan.extrapolated
        return f"~{e['estimate']:,.0f} (extrapolated)"
    return _seconds(row.results.get("quantus"))


def table(rows: list[Row]) -> str:
    head = [
        "| case | row | ours s | floor s | ours / floor | Quantus s | Quantus / ours | max \\|Δ\\| | ours result "
        f"| Quantus result | peak MB ours / Quantus | R | ≤ {FLOOR_TARGET}× floor |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|",
    ]
    lines = []
    for row in rows:
        ratio = speedup(row)
        peaks = " / ".join(_fmt(m.peak_mb, ".0f") for m in (row.results.get("ours"), row.results.get("quantus")) if m)
        lines.append(
            f"| {row.plan.case.name} | {row.plan.title} | {_seconds(row.results['ours'])} "
            f"| {_seconds(row.results.get('floor'))} | {_fmt(over_floor(row), '.2f')}× | {quantus_seconds(row)}"
            f" | {_fmt(ratio, ',.1f')}× "
            f"| {row.check.diff} | {row.check.ours} | {row.check.quantus} | {peaks} | {row.repeats} | {verdict(row)} |"
        )
    return "\n".join(head + lines)


def _per_round(row: Row, a: str, b: str) -> float | None:
    first, second = row.results.get(a), row.results.get(b)
    return _ratio(first, second) if first is not None and second is not None and first.times else None


def reading(rows: list[Row]) -> list[str]:
    """What the numbers say, with the run's numbers filled in.

    Each bullet starts with a bold title that ``run_all.py`` quotes under the rows it explains:
    **Target.**, **Pixel flipping and region perturbation.**, **MPRT (case).**, **ROAD (case).**,
    **Quantus' default pixel flipping.**
    """
    lines = []
    floors = [(row, over_floor(row)) for row in rows if over_floor(row) is not None]
    if floors:
        met = [r for r, ratio in floors if ratio <= FLOOR_TARGET]
        spread = ", ".join(f"{r.plan.case.name} {r.plan.metric} {ratio:.2f}×" for r, ratio in floors)
        equal = [(r, speedup(r)) for r in rows if r.plan.equal and speedup(r) is not None]
        quantus = ", ".join(f"{r.plan.case.name} {r.plan.metric} {ratio:,.1f}×" for r, ratio in equal)
        lines.append(
            f"- **Target.** Ours ≤ {FLOOR_TARGET}× its own floor: met in {len(met)} of {len(floors)} rows ({spread})."
            + (f" Quantus' time over ours at equal output (no target): {quantus}." if quantus else "")
        )
    bounds = []
    for row in rows:
        if row.plan.metric not in ("pixel_flipping", "region_perturbation"):
            continue
        ours_floor, quantus_floor = over_floor(row), _per_round(row, "quantus", "floor")
        if ours_floor is not None:
            bounds.append(
                f"{row.plan.case.name} {row.plan.metric}"
                + (" (ours' default steps)" if not row.plan.equal else "")
                + f": ours {ours_floor:.2f}×"
                + (f", Quantus {quantus_floor:.1f}×" if quantus_floor is not None else "")
                + " the floor"
            )
    if bounds:
        lines.append(
            "- **Pixel flipping and region perturbation.** Both libraries must run the model on every perturbed input,"
            " so no implementation of the same curve is faster than the floor (bare inference forwards of as many"
            " rows as the curve has points, at the fastest chunk size); the largest speed-up over Quantus that equal"
            " output allows is Quantus/floor. Here: "
            + "; ".join(bounds)
            + ". Ours runs the N clean inputs once (they bind the target and are the curve's first point) and every"
            " perturbed row of every sample in batched `inference_mode` chunks, each chunk's rows built from one"
            " precomputed per-pixel step index; what remains above the floor is that construction (a gather and a"
            " `torch.where` per chunk), the target's scores and the chunks ours picks (capped near 16 MiB of"
            " activations on a CPU) against the floor's searched one. Quantus runs one forward of the batch per step,"
            " with a numpy copy of the batch, a per-sample change check (`np.allclose` on every image) and, for RGB,"
            " C model calls per step of ours (it flips channel values)."
        )
    for row in rows:
        if row.plan.metric == "mprt" and row.results["ours"].times:
            ours_layers, quantus_layers = parameterised_layers(row.plan.case.model)
            ratio = over_floor(row)
            text = (
                f"- **MPRT ({row.plan.case.name}).** The cost is the explanations, {len(ours_layers) + 1} for ours"
                f" (reference + {len(ours_layers)} layers)"
            )
            if row.results["quantus"].times:
                text += (
                    f" against {len(quantus_layers) + 2} for Quantus (the reference twice + {len(quantus_layers)}"
                    f" layers); per explanation ours takes {_median(row.results['ours']) / (len(ours_layers) + 1):.3f}"
                    f" s, Quantus {_median(row.results['quantus']) / (len(quantus_layers) + 2):.3f} s"
                )
            text += (
                ". The floor is the same explanations in plain torch: a copy of the model with parameters not"
                " requiring gradients, one autograd input gradient of the target logits per step (the unrandomised"
                " model, then each layer ours randomises, in ours' order, its parameters re-drawn by `normal_`), and"
                " the Spearman correlation of absolute maps per sample (ranks by a double `argsort`); it leaves out"
                " what ours adds around them: the forward that finds the layer order, seeding each layer's draws by"
                " its name, `reset_parameters`, the explanation's checks and target resolution, and the results"
                " table" + (f"; ours takes {ratio:.2f}× it." if ratio is not None else ".")
            )
            lines.append(text)
        if row.plan.metric == "road" and row.results["ours"].times:
            n = row.plan.case.x.shape[0]
            ratio = over_floor(row)
            lines.append(
                f"- **ROAD ({row.plan.case.name}).** Each side solves {n * len(ROAD_PERCENTAGES)} sparse systems (one"
                " per sample and removal level, all channels at once in ours, with SciPy's sparse LU) and runs the"
                f" model on as many images; ours {_median(row.results['ours']):.2f} s"
                + (
                    f", Quantus {_median(row.results['quantus']):.2f} s (builds each system in a `lil_matrix` and"
                    " solves it with `spsolve`)"
                    if row.results["quantus"].times
                    else "; Quantus fails on RGB images (notes)"
                )
                + ". The floor is a plain SciPy loop written in the benchmark: the image's neighbour-weight matrix"
                " built once, then per sample and level the removed pixels' rows and columns sliced out of it into"
                " one `splu` solve with all channels as right-hand sides, then the imputed images' forwards at the"
                " fastest chunk size"
                + (f"; ours takes {ratio:.2f}× it" if ratio is not None else "")
                + ". The solves dominate both; under 1, ours' loop (each system assembled in COO form from the"
                " neighbour offsets) is the cheaper of the two."
            )
        if row.plan.extrapolated is not None and speedup(row) is not None:
            e = row.plan.extrapolated
            lines.append(
                f"- **Quantus' default pixel flipping.** On {row.plan.case.name} (one channel value per step,"
                f" {e['total']:,} model calls of the batch) it was timed for its first {e['steps']} steps after a"
                f" warm-up run: {e['setup']:.2f} s to its first model call, then a median"
                f" {e['per_step'] * 1e3:.0f} ms between model calls (mean {e['mean_step'] * 1e3:.0f} ms), extrapolated"
                f" linearly to ~{e['estimate'] / 3600:.1f} h; ours at its default 100 steps takes"
                f" {_median(row.results['ours']):.1f} s ({speedup(row):,.0f}×). That ratio compares defaults, not"
                " equal output: it is the cost of Quantus' per-channel-value granularity."
            )
    return lines


DIFFERENCES = [
    "**Pixel flipping.** Quantus flips single channel values: a `(N, 1, H, W)` map is broadcast to the channels"
    " and `np.argsort(-a)` (not stable) orders the C·H·W copies; ours flips whole pixels (all channels) ranked by"
    " the channel-aggregated map, ties broken by position. Quantus' `features_in_step` must divide H·W (its"
    " `assert_features_in_step` checks the spatial size, not C·H·W), so at 224² (50,176 = 2¹⁰·7², not divisible"
    " by 3) no Quantus step flips exactly whole RGB pixels: it makes 3 calls per step of ours and every third"
    " point is compared. Quantus' curve has no unperturbed point; ours starts with f(x). Quantus'"
    ' `perturb_baseline="black"` is the per-sample minimum over all channels (ours gets that tensor as'
    ' `baseline`; our `"min"` preset is per channel). Quantus scores softmax by default (`softmax=True`);'
    " both score logits here (`softmax=False`, `score=\"logit\"`).",
    "**Region perturbation.** Quantus returns f(x) − f(x_k) for the first `regions_evaluation` regions (default"
    " 100 of 8×8 patches); ours returns the curve f(x_k) over all regions in `steps` steps. Here every region is"
    " evaluated on both sides, with patch sides that divide the image (Quantus edge-pads the image and zero-pads"
    " the attributions otherwise; ours has smaller edge patches).",
    "**MPRT.** (1) Layers: Quantus randomises every module with `reset_parameters`, in reversed *registration*"
    " order, normalisation layers included (BatchNorm's reset sets weight 1, bias 0 and the running statistics to"
    " 0/1); ours randomises modules owning parameters except normalisation layers, in reversed *forward* order. On"
    " the ResNet, Quantus' 41 steps include 20 BatchNorm steps, which change nothing on this random-weight net"
    " (its batch norms are at their initial state). In a block with a `downsample` branch, Quantus randomises it"
    " before the block's `conv2` and `conv1`, ours after them (the zoo's block calls `downsample` first)."
    " (2) Seeds: Quantus calls `torch.manual_seed(seed + 1)` before every layer, so every layer gets the same"
    " stream and the caller's global RNG is reset (evidence in the notes); ours seeds each layer from `seed` and"
    " its name under `fork_rng`. The random weights differ, so the per-layer scores differ; the notes compare"
    " our similarity with Quantus' on Quantus' own randomised models. (3) Averaging: the scores dict starts with"
    " `'original'` (the unrandomised model against itself, 1.0), and `recompute_average_correlation_per_sample`"
    " skips a key named `'orig'`, which never exists, so `return_average_correlation=True` averages the 1.0 in."
    " (4) Without `a_batch` Quantus explains the unrandomised model twice (in `custom_preprocess` and again at the"
    " first layer). (5) Its batched Spearman calls `scipy.stats.spearmanr(a, b, axis=1)`, which correlates all"
    " 2N rows with each other and keeps the diagonal of one block: O(N²) work for N numbers.",
    "**ROAD.** (1) Quantus' `custom_postprocess` keeps `self.evaluation_scores[0]`, the first batch's results:"
    " with more samples than `batch_size` the others are computed and dropped (evidence in the notes; here"
    " `batch_size=N`). (2) RGB fails: it ranks the attributions broadcast to the input's (C, H, W), so its"
    " indices run over C·H·W values, and `noisy_linear_imputation` uses them as pixel indices into the image"
    " reshaped to (C, H·W) (the error is in the notes); with one channel the two coincide. (3) It removes"
    " `int(H·W·p/100)` pixels, ours `round(p·H·W)`; Quantus gets percentages that give our counts. (4) Quantus"
    " reports accuracy (argmax = label) per percentage, averaged over samples; ours the target probability per"
    " sample and percentage (the accuracy is computed from our imputed images for the comparison). (5) Quantus"
    " draws the noise from numpy's global RNG; ours from `seed`; both run without noise here.",
]


def section(s: Settings, rows: list[Row], cases: dict[str, Case], elapsed: float, m: dict, loads: tuple) -> str:
    lines = [
        "## Evaluation metrics: against their floor and Quantus",
        "",
        "Generated by `benchmarks/bench_evaluate.py` in its own environment with Quantus"
        " (`benchmarks/setup_bench_env.sh`; see `benchmarks/README.md`); this section is replaced on every run of"
        " that script and kept when the other scripts regenerate the file.",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): small inputs and few repeats; not for comparison.**", ""]
    busy = max(loads) > s.threads
    lines += [
        "### Setup",
        "",
        f"- Machine: {m['CPU']}; torch threads: {s.threads}",
        f"- Software: {m['Software']}, quantus {importlib.metadata.version('quantus')},"
        f" scipy {importlib.metadata.version('scipy')}, numpy {np.__version__}",
        f"- Date: {m['Date']}; run time {elapsed / 60:.1f} min; load average {loads[0]:.1f} at the start,"
        f" {loads[1]:.1f} at the end" + (" (**other processes shared the cores: single rounds are noisy**)" if busy
                                           else ""),
        f"- Command: `{command_line()}`",
        *[f"- Case `{c.name}`: {c.description}" for c in cases.values()],
        "- Floors, each the model evaluations its metric needs at the best chunk size, without saliencelab"
        " (`ours / floor` is the median of the per-round ratios): pixel flipping and region perturbation, bare"
        " inference forwards (`torch.inference_mode()`) of as many rows as the curve has points, N × (steps + 1);"
        " MPRT, the explanations of the cascade and their Spearman correlations in plain torch; ROAD, the imputed"
        " images' forwards plus the imputation's sparse systems solved by a plain SciPy loop (both described in the"
        " reading). Chunk size: the fastest of a search (ms per row of bare forwards by chunk size: "
        + "; ".join(
            f"{c.name} " + ", ".join(f"{k}: {v:.3f}" for k, v in c.chunk_ms.items()) + f", **{c.chunk}** used"
            for c in cases.values()
        )
        + ").",
        "- Attributions, the same array for both libraries: saliencelab's signed gradient of the target, summed"
        " over channels, `(N, 1, H, W)`"
        + "".join(f"; {c.name}: at most {ties(c.maps)} tied values in a sample" for c in cases.values())
        + ". MPRT explains with the same function on both sides (a Quantus `explain_func` wrapper).",
        "- Both: most relevant first, targets as above, perturbed values = the per-sample minimum (Quantus"
        ' `perturb_baseline="black"`), logits (`softmax=False` / `score="logit"`) except ROAD; Quantus gets the'
        " whole batch as one batch (`batch_size=N`), `disable_warnings=True`, a new metric object per call;"
        " Quantus defaults elsewhere (`normalise=True` only rescales the maps).",
        f"- Timing (from `bench_gradient.py`): a warm-up call where estimated under {s.warmup_max_seconds:.0f} s,"
        " then R rounds alternating ours, its floor and Quantus; times are medians, ratios medians of the per-round"
        " ratios;"
        f" R fits {s.cell_seconds:.0f} s per row, between {s.min_repeats} and {s.max_repeats}. Peak MB: resident"
        " memory above the level before the call, sampled every 2 ms in the first round.",
        "",
        "### Results",
        "",
        table(rows),
        "",
        "### Reading",
        "",
        *reading(rows),
        "",
        "### Differences between the two libraries (and how they were aligned)",
        "",
        *[f"- {d}" for d in DIFFERENCES],
        "",
        "### Notes from this run",
        "",
    ]
    for row in rows:
        for note in row.check.notes:
            lines.append(f"- {row.plan.case.name}, {row.plan.metric}: {note}")
        for label, measured in row.results.items():
            if measured.error:
                lines.append(f"- {row.plan.case.name}, {row.plan.metric}: {label} raised `{measured.error}`")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def plans(q: ModuleType, cases: dict[str, Case], s: Settings) -> list[Plan]:
    out = []
    for name, case in cases.items():
        steps = 64 if name == "digits" else s.rgb_steps
        patch = s.digits_patch if name == "digits" else s.rgb_patch
        if "pixel_flipping" in s.metrics:
            out.append(pixel_flipping_plan(q, case, steps))
            if name == "rgb":
                out.append(defaults_plan(case))
        if "region_perturbation" in s.metrics:
            out.append(region_plan(q, case, patch))
        if "mprt" in s.metrics:
            out.append(mprt_plan(q, case, s))
        if "road" in s.metrics:
            out.append(road_plan(q, case))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    q = import_quantus()
    torch.set_num_threads(s.threads)
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    at_start = machine()
    cases = {name: make_case(name, s) for name in s.cases}
    for c in cases.values():
        print(f"{c.name}: x {tuple(c.x.shape)}, forward {c.t_batch * 1e3:.1f} ms/batch, floor chunk {c.chunk}")
    todo = plans(q, cases, s)
    rows: list[Row] = []
    for index, p in enumerate(todo, start=1):
        repeats = plan_repeats(p.cell, s)
        print(f"[{index}/{len(todo)}] {p.case.name} {p.title}: R={repeats}", flush=True)
        if not p.equal:
            p.extrapolated = quantus_default_pixel_flipping(q, p.case, s)
            print(f"    Quantus default pixel flipping extrapolated: {p.extrapolated}", flush=True)
        results = run_cell(p.cell, repeats, s)
        rows.append(Row(p, results, p.check(results), repeats))
    elapsed = time.perf_counter() - began
    loads = (load_start, os.getloadavg()[0])
    write_section(s.out, SECTION, section(s, rows, cases, elapsed, at_start, loads))
    print(f"\n{table(rows)}\n")
    print("\n".join(reading(rows)))
    for row in rows:
        for note in row.check.notes:
            print(f"note: {row.plan.case.name} {row.plan.metric}: {note}")
    print(f"\nwrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
