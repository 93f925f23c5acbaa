"""Time saliencelab's CAM family against its floor and against pytorch-grad-cam.

Rows: the ResNet-18-shaped zoo network (random weights, eval mode), CAM layer
``layer4`` (pytorch-grad-cam: ``model.layer4[-1]``, the same tensor), at every
batch size (default 1 and 8), for every method both libraries have:

- gradient-weighted: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM;
- Eigen-CAM (no gradient);
- Score-CAM and Ablation-CAM (one model pass per channel and sample).

Each row times, in alternating rounds: ``ours`` (``sl.GradCam(model,
layer="layer4")(x, target=3)`` and so on, as a user calls it), the ``floor``
(the model passes the method needs, in plain torch, finished into the same map,
so that the script can check that the floor computes our values), and
pytorch-grad-cam with its defaults (``grad-cam`` on PyPI; a CAM object built
for each call in a ``with`` block, as its README shows) and, for Score-CAM and
Ablation-CAM, with its ``batch_size`` at the best chunk size of a plain forward
pass on this machine (skipped where that is its default or the search
predicts less than 10% gain per row). pytorch-grad-cam
returns min-max normalised maps; our maps are raw, so they are compared after
min-max normalising ours per image. Where the two libraries use different
formulas, an untimed agreement table compares maps computed with the same
formula (see the section's text).

**torchvision import shim.** pytorch-grad-cam 1.5.7 imports torchvision at
import time, in three places: ``import torchvision`` (``utils/model_targets.py``,
for ``torchvision.ops.box_iou`` inside its Faster R-CNN target), ``from
torchvision.transforms import Compose, Normalize, ToTensor``
(``utils/image.py``, for ``preprocess_image``) and ``from
torchvision.transforms.functional import resize`` (``sess.py``, for its SESS
method). torchvision does not import with this torch, so :func:`import_grad_cam`
first tries the real one and, if that fails, puts three empty modules in
``sys.modules`` (``torchvision``, ``torchvision.transforms``,
``torchvision.transforms.functional``) holding placeholders of exactly those
four names that raise if called, imports pytorch-grad-cam and removes the three
entries again. Nothing measured calls them: the CAM classes, their
``ClassifierOutputTarget`` and the map scaling (``scale_cam_image``: NumPy and
OpenCV's ``cv2.resize``, the real OpenCV) use no torchvision. The shim lives
only in this script.

The timing rounds, per-round ratios, peak-memory sampling and machine header come
from ``bench_gradient.py``. The report is one section of ``BENCHMARKS.md`` between
``<!-- bench_cam: begin -->`` and ``<!-- bench_cam: end -->``, replaced on every run
(``bench_gradient.py`` keeps it when it regenerates the file). See
``benchmarks/README.md``.

Usage::

    python benchmarks/bench_cam.py                 # full run, 224x224, batches 1 and 8 (~14 min)
    python benchmarks/bench_cam.py --quick --out /tmp/quick.md
    python benchmarks/bench_cam.py --methods score_cam ablation_cam --batch 8
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_gradient import (
    REPO_ROOT,
    VALUE_RANGE,
    Cell,
    Contender,
    Measured,
    _fmt,
    _ratio,
    cell_estimate,
    command_line,
    machine,
    make_images,
    plan_repeats,
    quiet,
    run_cell,
    write_section,
)
from torch import nn

import saliencelab as sl
from saliencelab.methods.cam.eigen import first_component_projection

SECTION = "bench_cam"
"""Name of this script's marked section in the report."""

GRADIENT_METHODS = ("grad_cam", "grad_cam_pp", "xgrad_cam", "layer_cam", "hires_cam")
METHODS = (*GRADIENT_METHODS, "eigen_cam", "score_cam", "ablation_cam")
OURS_CLASS = {
    "grad_cam": "GradCam",
    "grad_cam_pp": "GradCamPlusPlus",
    "xgrad_cam": "XGradCam",
    "layer_cam": "LayerCam",
    "hires_cam": "HiResCam",
    "eigen_cam": "EigenCam",
    "score_cam": "ScoreCam",
    "ablation_cam": "AblationCam",
}
THEIR_CLASS = {
    "grad_cam": "GradCAM",
    "grad_cam_pp": "GradCAMPlusPlus",
    "xgrad_cam": "XGradCAM",
    "layer_cam": "LayerCAM",
    "hires_cam": "HiResCAM",
    "eigen_cam": "EigenCAM",
    "score_cam": "ScoreCAM",
    "ablation_cam": "AblationCAM",
}
THEIR_BATCH_DEFAULT = {"score_cam": 16, "ablation_cam": 32}
"""pytorch-grad-cam's default batch sizes (Score-CAM: the ``batch_size`` attribute its loop reads, else 16)."""

LAYER = "layer4"
"""Ours: the CAM layer by its dotted name; pytorch-grad-cam gets ``model.layer4[-1]`` (its output is layer4's)."""
GRADPP_SCALE = 1e4
"""Grad-CAM++ agreement check: the target score times this on both sides (see :func:`aligned_grad_cam_pp`)."""
TAIL_CHUNK = 256
"""Rows of ablated activations per tail pass in the Ablation-CAM floor."""
BEST_GAIN = 0.10
"""Run pytorch-grad-cam's *best* variant only where the forward search predicts at least this gain per row."""
ISOLATED = ("eigen_cam",)
"""Rows that also time ours and the floor without pytorch-grad-cam in between (see the Eigen-CAM reading)."""
ISOLATED_ROUNDS = 5
SAME = 1e-4
"""Max |ours − floor| / max |ours| above which the floor is flagged as not computing our values."""

Tensor = torch.Tensor


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line.

    The timing helpers of ``bench_gradient`` read ``cell_seconds``, ``min_repeats``,
    ``max_repeats`` and ``warmup_max_seconds``.
    """

    size: int
    batches: list[int]
    methods: list[str]
    target: int
    seed: int
    chunks: list[int]
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
    p.add_argument("--quick", action="store_true", help="smoke run: 64x64 images, batches 1 and 2, fewer repeats")
    p.add_argument("--batch", nargs="+", type=int, help="batch sizes (default: 1 8, quick 1 2)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report to update")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"subset of {', '.join(METHODS)}")
    p.add_argument("--size", type=int, help="image side in pixels (default 224, quick 64)")
    p.add_argument("--target", type=int, default=3, help="explained class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", nargs="+", type=int, default=[1, 8, 16, 32, 64], help="forward chunk sizes to search")
    p.add_argument("--repeats", type=int, help="most rounds per row (default 5, quick 3)")
    p.add_argument("--min-repeats", type=int, default=1, help="fewest rounds per row, whatever they cost (default 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per row fit in this (default 60, quick 6)")
    p.add_argument("--warmup-max-seconds", type=float, default=10.0, help="warm up only calls estimated below this")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    a = p.parse_args(argv)
    chosen = [m for item in a.methods for m in item.split(",") if m]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    return Settings(
        size=a.size or (64 if a.quick else 224),
        batches=a.batch or ([1, 2] if a.quick else [1, 8]),
        methods=[m for m in METHODS if m in chosen],
        target=a.target,
        seed=a.seed,
        chunks=sorted(set(a.chunks)),
        max_repeats=a.repeats or (3 if a.quick else 5),
        min_repeats=a.min_repeats,
        cell_seconds=a.cell_seconds or (6.0 if a.quick else 60.0),
        warmup_max_seconds=a.warmup_max_seconds,
        threads=a.threads,
        out=a.out,
        quick=a.quick,
    )


# --------------------------------------------------------------------------- pytorch-grad-cam, torchvision shim

TORCHVISION_STUB = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
"""The modules the shim fakes: the three torchvision imports of pytorch-grad-cam (module docstring)."""


def _unavailable(name: str) -> Callable:
    def placeholder(*args, **kwargs):
        raise RuntimeError(f"torchvision stub of bench_cam.py: {name} is not available")

    placeholder.__name__ = name
    return placeholder


def import_grad_cam() -> tuple[types.ModuleType, str]:
    """Import pytorch-grad-cam; where torchvision does not import, through the stub of the module docstring.

    Returns the module and a line for the report saying which torchvision it saw.
    """
    try:
        import pytorch_grad_cam
        import torchvision  # noqa: F401  (the real one, wherever it imports)

        return pytorch_grad_cam, f"the real torchvision {importlib.metadata.version('torchvision')}"
    except Exception as error:  # not installed, or built for another torch
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:100]}" if str(error) else type(error).__name__
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith(("torchvision.", "pytorch_grad_cam"))]:
        del sys.modules[name]  # leftovers of a failed import
    stubs = {name: types.ModuleType(name, "torchvision stub of bench_cam.py") for name in TORCHVISION_STUB}
    transforms, functional = stubs["torchvision.transforms"], stubs["torchvision.transforms.functional"]
    for name in ("Compose", "Normalize", "ToTensor"):
        setattr(transforms, name, _unavailable(f"torchvision.transforms.{name}"))
    functional.resize = _unavailable("torchvision.transforms.functional.resize")
    stubs["torchvision"].transforms = transforms
    transforms.functional = functional
    sys.modules.update(stubs)
    try:
        import pytorch_grad_cam
    finally:
        for name in TORCHVISION_STUB:
            sys.modules.pop(name, None)
    return pytorch_grad_cam, f"a stub (torchvision does not import here: `{reason}`)"


@functools.cache
def grad_cam_api() -> types.SimpleNamespace:
    """pytorch-grad-cam's CAM classes and its class-score target."""
    module, torchvision_seen = import_grad_cam()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return types.SimpleNamespace(
        classes={method: getattr(module, name) for method, name in THEIR_CLASS.items()},
        ClassifierOutputTarget=ClassifierOutputTarget,
        version=importlib.metadata.version("grad-cam"),
        opencv=importlib.metadata.version("opencv-python-headless"),
        torchvision=torchvision_seen,
    )


class ScaledClassTarget:
    """A pytorch-grad-cam target: ``scale`` times the class score (``ClassifierOutputTarget`` times ``scale``)."""

    def __init__(self, category: int, scale: float) -> None:
        self.category, self.scale = category, scale

    def __call__(self, output: Tensor) -> Tensor:
        return self.scale * output[..., self.category]


_DEVNULL = open(os.devnull, "w")  # noqa: SIM115  (tqdm's progress bars of Score-CAM and Ablation-CAM go here)


def theirs(model: nn.Module, method: str, x: Tensor, targets: list, batch_size: int | None = None) -> Tensor:
    """pytorch-grad-cam's map ``(N, 1, H, W)`` as a user gets it: a CAM object built for the call, in ``with``.

    ``batch_size`` (Score-CAM, Ablation-CAM) replaces the default. The model is checked to have its
    ``layer4[-1]`` back afterwards (Ablation-CAM swaps it for its ablation layer during the call), and the
    parameter gradients its backward leaves on the model are dropped.
    """
    api = grad_cam_api()
    block = model.layer4[-1]
    options = {"batch_size": batch_size} if method == "ablation_cam" and batch_size else {}
    maps = None
    try:
        with contextlib.redirect_stderr(_DEVNULL), api.classes[method](model, [block], **options) as cam:
            if method == "score_cam" and batch_size:
                cam.batch_size = batch_size
            maps = cam(input_tensor=x, targets=targets)
    finally:
        if model.layer4[-1] is not block:
            model.layer4[-1] = block
        model.zero_grad(set_to_none=True)
    if maps is None:
        raise RuntimeError("pytorch-grad-cam swallowed an IndexError (its CAM's __exit__ returns True)")
    return torch.from_numpy(maps).unsqueeze(1)


def theirs_call(model: nn.Module, method: str, x: Tensor, t: int, batch_size: int | None = None):
    api = grad_cam_api()
    targets = [api.ClassifierOutputTarget(t) for _ in range(x.shape[0])]
    return lambda: theirs(model, method, x, targets, batch_size)


# --------------------------------------------------------------------------- ours


def ours(model: nn.Module, method: str, x: Tensor, target, **options) -> Tensor:
    """saliencelab's map, called as a user would."""
    return getattr(sl, OURS_CLASS[method])(model, layer=LAYER, **options)(x, target=target).values


# --------------------------------------------------------------------------- the floor: plain torch


def features(model: nn.Module, x: Tensor) -> Tensor:
    """The zoo ResNet up to and including ``layer4``: the CAM layer's output."""
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(h))))


def head(model: nn.Module, a: Tensor) -> Tensor:
    """The zoo ResNet after ``layer4``: average pool and the dense classifier."""
    return model.fc(torch.flatten(model.avgpool(a), 1))


def to_input(cam: Tensor, size: tuple[int, int]) -> Tensor:
    """``relu(cam)`` ``(N, h, w)`` as ``(N, 1, H, W)``, bilinear (half-pixel centres)."""
    return F.interpolate(cam.clamp(min=0).unsqueeze(1), size=size, mode="bilinear", align_corners=False)


def weighted(weights: Tensor, a: Tensor) -> Tensor:
    """``Σ_k w_k A_k`` ``(N, h, w)`` for weights ``(N, C)``."""
    return (weights[:, :, None, None] * a).sum(1)


def gradient_cam(method: str, a: Tensor, g: Tensor) -> Tensor:
    """The map ``(N, h, w)`` of a gradient-weighted CAM from activations and gradients (the papers' formulas)."""
    if method == "grad_cam":
        return weighted(g.mean((2, 3)), a)
    if method == "grad_cam_pp":
        g2 = g.square()
        denominator = 2 * g2 + a.sum((2, 3), keepdim=True) * g2 * g
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where(denominator != 0, g2 / safe, torch.zeros_like(g2))
        return weighted((alpha * g.clamp(min=0)).sum((2, 3)), a)
    if method == "xgrad_cam":
        total = a.sum((2, 3))
        safe = torch.where(total != 0, total, torch.ones_like(total))
        return weighted(torch.where(total != 0, (a * g).sum((2, 3)) / safe, torch.zeros_like(total)), a)
    if method == "layer_cam":
        return (g.clamp(min=0) * a).sum(1)
    if method == "hires_cam":
        return (g * a).sum(1)
    raise ValueError(method)


def floor_gradient(model: nn.Module, method: str, x: Tensor, t: int) -> Tensor:
    """A gradient CAM: one forward (no graph up to the layer) and the backward of the score to the layer."""
    with torch.no_grad():
        a = features(model, x)
    a.requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(head(model, a)[:, t].sum(), a)
    return to_input(gradient_cam(method, a.detach(), g), tuple(x.shape[2:]))


def floor_eigen(model: nn.Module, x: Tensor) -> Tensor:
    """Eigen-CAM as ours defines it: one forward, a batched SVD, the sign fixed by the mean activation."""
    with torch.inference_mode():
        a = features(model, x)
        head(model, a)
        n, c = a.shape[:2]
        positions = a.reshape(n, c, -1).transpose(1, 2)
        _, _, vh = torch.linalg.svd(positions, full_matrices=False)
        projection = (positions @ vh[:, 0, :].unsqueeze(2)).squeeze(2)
        sign = torch.where((projection * positions.mean(2)).sum(1) < 0, -1.0, 1.0)
        cam = (projection * sign.unsqueeze(1)).reshape(n, *a.shape[2:])
        return to_input(cam, tuple(x.shape[2:]))


def row_chunks(total: int, chunk: int):
    for start in range(0, total, chunk):
        yield slice(start, min(start + chunk, total))


def masks_of(a: Tensor, size: tuple[int, int], align_corners: bool = False, eps: float = 0.0) -> Tensor:
    """Score-CAM masks ``(n, 1, H, W)`` of activation maps ``a`` ``(n, h, w)``: upsampled, then scaled to [0, 1]."""
    up = F.interpolate(a.unsqueeze(1), size=size, mode="bilinear", align_corners=align_corners)
    flat = up.flatten(1)
    lo, hi = flat.amin(1)[:, None, None, None], flat.amax(1)[:, None, None, None]
    return (up - lo) / (hi - lo + eps)


def floor_score(model: nn.Module, x: Tensor, t: int, chunk: int, side: dict) -> Tensor:
    """Score-CAM as ours defines it (Wang et al.): one forward of the N·K masked inputs, K the non-constant channels,
    in chunks of ``chunk`` rows, plus the input batch and one all-zero input. Weight p(x ⊙ H_k) − p(0).

    ``side`` receives what the agreement table needs: activations, the raw target logit of every masked input
    (of the zero input for constant channels, as pytorch-grad-cam's masks are zero there) and the active pairs.
    """
    size = tuple(x.shape[2:])
    with torch.inference_mode():
        a = features(model, x)
        head(model, a)
        blank = model(torch.zeros_like(x[:1]))
        blank_p, blank_logit = blank.softmax(1)[0, t], blank[0, t]
        active = a.amax((2, 3)) > a.amin((2, 3))
        sample, channel = active.nonzero().unbind(1)
        weights = torch.zeros(a.shape[:2])
        logits = torch.full(a.shape[:2], float(blank_logit))
        for rows in row_chunks(sample.numel(), chunk):
            s, c = sample[rows], channel[rows]
            out = model(x[s] * masks_of(a[s, c], size))
            weights[s, c] = out.softmax(1)[:, t] - blank_p
            logits[s, c] = out[:, t]
        side.update(activations=a, logits=logits, active=active)
        return to_input(weighted(weights, a), size)


def floor_ablation(model: nn.Module, x: Tensor, t: int, side: dict) -> Tensor:
    """Ablation-CAM as ours defines it: one forward, then the tail (average pool, dense) on the N·K ablated
    activations, K the non-zero channels; weight (y − y_k) / |y|. ``side`` receives activations, y and the drops."""
    with torch.inference_mode():
        a = features(model, x)
        y = head(model, a)[:, t]
        sample, channel = (a.flatten(2).abs().amax(2) > 0).nonzero().unbind(1)
        drops = torch.zeros(a.shape[:2])
        for rows in row_chunks(sample.numel(), TAIL_CHUNK):
            s, c = sample[rows], channel[rows]
            ablated = a[s].clone()
            ablated[torch.arange(s.numel()), c] = 0
            drops[s, c] = y[s] - head(model, ablated)[:, t]
        side.update(activations=a, y=y, drops=drops)
        scale = torch.where(y != 0, y.abs(), torch.ones_like(y))
        return to_input(weighted(drops / scale[:, None], a), tuple(x.shape[2:]))


def floor_call(model: nn.Module, method: str, x: Tensor, t: int, chunk: int, side: dict) -> Callable[[], Tensor]:
    if method in GRADIENT_METHODS:
        return lambda: floor_gradient(model, method, x, t)
    if method == "eigen_cam":
        return lambda: floor_eigen(model, x)
    if method == "score_cam":
        return lambda: floor_score(model, x, t, chunk, side)
    return lambda: floor_ablation(model, x, t, side)


# --------------------------------------------------------------------------- best chunk of a plain forward


def forward_chunk_search(model: nn.Module, s: Settings, passes: int = 2) -> dict[int, float]:
    """Seconds per row of a plain no-grad forward at each chunk size (median of alternating passes)."""
    images = {c: make_images(c, s.size, s.seed + 100) for c in s.chunks}
    times: dict[int, list[float]] = {c: [] for c in s.chunks}
    for index in range(passes + 1):
        for c in s.chunks:
            start = time.perf_counter()
            with torch.no_grad():
                model(images[c])
            if index:
                times[c].append((time.perf_counter() - start) / c)
    return {c: statistics.median(v) for c, v in times.items()}


def per_row(search: dict[int, float], chunk: int) -> float:
    """Seconds per forward row at the largest searched chunk size not above ``chunk``."""
    usable = [c for c in search if c <= chunk] or [min(search)]
    return search[max(usable)]


# --------------------------------------------------------------------------- cells


def minmax(values: Tensor) -> Tensor:
    """Each sample scaled to [0, 1] by its min and max (zero where the map is constant), float64."""
    flat = values.double().reshape(values.shape[0], -1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo) / span).reshape(values.shape)


def max_diff(ours_values: Tensor, their_maps: Tensor) -> float:
    """max |minmax(ours) − theirs| over the batch (theirs already min-max normalised)."""
    return float((minmax(ours_values) - their_maps.double()).abs().max())


def build_cell(model: nn.Module, method: str, n: int, s: Settings, search: dict[int, float], chunk: int) -> Cell:
    """Contenders ours / floor / grad-cam (defaults) / grad-cam_best of one row, with rough cost estimates."""
    t = s.target
    x = make_images(n, s.size, s.seed)
    side: dict = {}
    one = n * per_row(search, n)  # one forward of the batch
    channels = model.fc.in_features
    if method in GRADIENT_METHODS:
        costs = (1.5 * one, 1.5 * one, 4.0 * one)
    elif method == "eigen_cam":
        costs = (1.1 * one, 1.1 * one, 2.0 * one)
    elif method == "score_cam":
        rows = n * channels
        costs = (rows * per_row(search, chunk), rows * per_row(search, chunk), 1.1 * rows * per_row(search, 16))
    else:
        # ours: the network on one input row per chunk of ablated rows (see the reading), ~32 rows a chunk at 224²
        costs = (one + -(-n * channels // 32) * per_row(search, 1), 1.2 * one, n * channels * per_row(search, 32))
    contenders = [
        Contender("ours", lambda: ours(model, method, x, t), costs[0]),
        Contender("floor", floor_call(model, method, x, t, chunk, side), costs[1]),
        Contender("gradcam", quiet(theirs_call(model, method, x, t)), costs[2]),
    ]
    default = THEIR_BATCH_DEFAULT.get(method)
    if default is None:
        skipped = "no batching option"
    elif default == chunk:
        skipped = f"its default batch_size {default} is the best chunk"
    elif per_row(search, chunk) > (1 - BEST_GAIN) * per_row(search, default):
        skipped = (
            f"the forward search puts the best chunk ({chunk} rows, {per_row(search, chunk) * 1e3:.1f} ms/row) within"
            f" {BEST_GAIN:.0%} of its default batch_size {default} ({per_row(search, default) * 1e3:.1f} ms/row)"
        )
    else:
        skipped = None
    best = quiet(theirs_call(model, method, x, t, batch_size=chunk)) if default else (lambda: None)
    contenders.append(Contender("gradcam_best", best, costs[2], skipped))
    info = {"method": method, "x": x, "side": side, "model": model, "chunk": chunk}
    return Cell(method, n, contenders, {"gradcam": THEIR_CLASS[method]}, info)


@dataclass
class Row:
    """One measured row."""

    method: str
    batch: int
    repeats: int
    results: dict[str, Measured]
    best_batch: int | None = None
    ratio_floor: float | None = None
    ratio_theirs: float | None = None
    ratio_best: float | None = None
    ratio_theirs_floor: float | None = None
    vs_floor: float | None = None
    """max |ours − floor| / max |ours| (raw maps)"""
    vs_theirs: float | None = None
    """max |minmax(ours) − theirs| (as shipped)"""
    aligned: list[tuple[str, float | None]] = field(default_factory=list)
    """(what was aligned, max |Δ|) rows of the agreement table"""
    extra: dict = field(default_factory=dict)


def measure_row(cell: Cell, results: dict[str, Measured], repeats: int, s: Settings) -> Row:
    """Ratios and agreement of a measured cell; runs the untimed same-formula comparisons."""
    method = cell.info["method"]
    row = Row(method, cell.batch, repeats, results)
    if not results["gradcam_best"].skipped:
        row.best_batch = cell.info["chunk"]
    row.ratio_floor = _ratio(results["ours"], results["floor"])
    row.ratio_theirs = _ratio(results["ours"], results["gradcam"])
    row.ratio_best = _ratio(results["ours"], results["gradcam_best"])
    row.ratio_theirs_floor = _ratio(results["gradcam"], results["floor"])
    mine, floor, their = (results[k].values for k in ("ours", "floor", "gradcam"))
    if mine is not None and floor is not None:
        row.vs_floor = float((mine - floor).abs().max() / (mine.abs().max() or 1.0))
    if mine is not None and their is not None:
        row.vs_theirs = max_diff(mine, their)
        print(f"    agreement: ours vs floor {_fmt(row.vs_floor, '.1e')}, vs pytorch-grad-cam {row.vs_theirs:.1e}")
        row.aligned = aligned(cell, mine, their, s, row.extra)
        for label, value in row.aligned:
            print(f"    same formula: {label}: {_fmt(value, '.1e')}")
    if method in ISOLATED:
        print(f"    {ISOLATED_ROUNDS} more rounds of ours and the floor alone:", flush=True)
        alone = Cell(method, cell.batch, [c for c in cell.contenders if c.label in ("ours", "floor")], {}, cell.info)
        measured = run_cell(alone, ISOLATED_ROUNDS, s)
        if measured["ours"].times and measured["floor"].times:
            medians = [statistics.median(measured[k].times) for k in ("ours", "floor")]
            row.extra["alone"] = (*medians, _ratio(measured["ours"], measured["floor"]))
    return row


# --------------------------------------------------------------------------- same-formula agreement (untimed)


def aligned(cell: Cell, mine: Tensor, their: Tensor, s: Settings, extra: dict) -> list[tuple[str, float | None]]:
    """Agreement rows where both sides compute the same formula (the section's text says what differs)."""
    method, x, model, side = cell.info["method"], cell.info["x"], cell.info["model"], cell.info["side"]
    t, size = s.target, tuple(x.shape[2:])
    if method in ("grad_cam", "xgrad_cam", "layer_cam", "hires_cam"):
        return [("same formula as shipped", max_diff(mine, their))]
    if method == "grad_cam_pp":
        with torch.no_grad():
            a = features(model, x)
        a.requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(head(model, a)[:, t].sum(), a)
        extra["gradient_abs"] = (float(g.abs().median()), float(g.abs().max()))
        return [(f"both with the target score × {GRADPP_SCALE:g}", aligned_grad_cam_pp(model, x, t))]
    if method == "eigen_cam":
        value, flips = aligned_eigen(model, x, their)
        extra["eigen_flips"] = flips
        return [("ours' SVD projection of the centred activations, sign matched per image", value)]
    if method == "ablation_cam":
        stem_rows: list[int] = []  # rows of every run of the layers before layer4 in one call of ours
        tail_rows: list[int] = []  # rows of every run of the dense layer: the chunks of ablated activations
        hooks = [
            model.conv1.register_forward_hook(lambda _m, args, _o: stem_rows.append(args[0].shape[0])),
            model.fc.register_forward_hook(lambda _m, args, _o: tail_rows.append(args[0].shape[0])),
        ]
        try:
            ours(model, method, x, t)
        finally:
            for hook in hooks:
                hook.remove()
        extra["stem_runs"] = (len(stem_rows), sum(stem_rows))
        extra["chunk_rows"] = max(tail_rows)  # the largest chunk: the chunk size, or all rows if they fit one
        signed = ours(model, method, x, t, relu=False, upsample=None).squeeze(1)  # (N, h, w), before ReLU
        y = side["y"]
        extra["negative_scores"] = int((y < 0).sum())
        flipped = to_input(signed * torch.where(y < 0, -1.0, 1.0)[:, None, None], size)  # ReLU, then upsampled
        a, drops = side["activations"], side["drops"]
        divided_by_y = to_input(weighted(drops / y[:, None], a), size)
        return [
            ("ours' signed map × sign(y), i.e. weights (y − y_k) / y", max_diff(flipped, their)),
            ("floor's drops divided by y (not \\|y\\|)", max_diff(divided_by_y, their)),
        ]
    if method == "score_cam":
        a, logits = side["activations"], side["logits"]
        extra["constant_channels"] = int((~side["active"]).sum())
        extra["softmax_spread"] = float(logits.softmax(1).amax(1).max() * a.shape[1])
        ours_masks = to_input(weighted(logits.softmax(1), a), size)
        reference = score_cam_reference(model, x[:1], t, cell.info["chunk"])
        return [
            ("softmax over channels of raw logits, ours' masks (floor's logits)", max_diff(ours_masks, their)),
            ("that formula with their masks (align_corners=True), first image", max_diff(reference, their[:1])),
        ]
    return []


def aligned_grad_cam_pp(model: nn.Module, x: Tensor, t: int) -> float:
    """Ours vs theirs with the score scaled by :data:`GRADPP_SCALE` on both sides.

    pytorch-grad-cam adds 1e-6 to the denominator of α = g² / (2g² + Σ A · g³); where g² is not far above
    1e-6 (this random network's gradients at layer4 are small) that term changes α. Scaling the score scales
    g and makes 1e-6 negligible; α is not scale-invariant, so both sides get the same scaled score.
    """
    mine = ours(model, "grad_cam_pp", x, lambda out: GRADPP_SCALE * out[:, t])
    scaled = [ScaledClassTarget(t, GRADPP_SCALE) for _ in range(x.shape[0])]
    return max_diff(mine, theirs(model, "grad_cam_pp", x, scaled))


def aligned_eigen(model: nn.Module, x: Tensor, their: Tensor) -> tuple[float, int]:
    """Ours' ``first_component_projection`` of the activations centred per channel (as pytorch-grad-cam
    centres them), each image's sign chosen to match theirs (their SVD sign is arbitrary). Returns the
    difference and how many images needed the opposite of ours' sign rule."""
    with torch.inference_mode():
        a = features(model, x)
        projection = first_component_projection(a - a.mean((2, 3), keepdim=True))
    size = tuple(x.shape[2:])
    candidates = [minmax(to_input(sign * projection, size)) for sign in (1.0, -1.0)]
    diffs = torch.stack([(c - their.double()).flatten(1).abs().amax(1) for c in candidates])
    return float(diffs.amin(0).max()), int((diffs[1] < diffs[0]).sum())


_REFERENCES: dict = {}
"""Maps of :func:`score_cam_reference` by input."""


def score_cam_reference(model: nn.Module, x: Tensor, t: int, chunk: int) -> Tensor:
    """Score-CAM with pytorch-grad-cam's formula, in plain torch (for the agreement table, untimed):
    masks upsampled with ``align_corners=True`` and scaled with + 1e-8, all channels, weights the softmax over
    channels of the raw target logits. Cached by the input (the first image is the same at every batch size)."""
    cache = _REFERENCES
    key = (tuple(x.shape), float(x.sum()), t)
    if key in cache:
        return cache[key]
    size = tuple(x.shape[2:])
    with torch.inference_mode():
        a = features(model, x)
        n, c = a.shape[:2]
        sample = torch.arange(n).repeat_interleave(c)
        channel = torch.arange(c).repeat(n)
        logits = torch.zeros(n, c)
        for rows in row_chunks(sample.numel(), chunk):
            s, k = sample[rows], channel[rows]
            logits[s, k] = model(x[s] * masks_of(a[s, k], size, align_corners=True, eps=1e-8))[:, t]
        cache[key] = to_input(weighted(logits.softmax(1), a), size)
    return cache[key]


# --------------------------------------------------------------------------- report


NAMES = {
    "grad_cam": "Grad-CAM",
    "grad_cam_pp": "Grad-CAM++",
    "xgrad_cam": "XGrad-CAM",
    "layer_cam": "LayerCAM",
    "hires_cam": "HiResCAM",
    "eigen_cam": "Eigen-CAM",
    "score_cam": "Score-CAM",
    "ablation_cam": "Ablation-CAM",
}


def _time(m: Measured) -> str:
    if m.skipped:
        return "—"
    if m.error:
        return "error"
    return _fmt(statistics.median(m.times) if m.times else None, ".3f")


HEADER = (
    "| method (pytorch-grad-cam) | N | ours s | floor s | ours/floor | grad-cam s | ours/grad-cam "
    "| grad-cam best s | ours/grad-cam best | grad-cam/floor | max \\|ours − floor\\| / max \\|ours\\| "
    "| max \\|Δ\\| vs grad-cam (normalised) | peak MB ours/floor/grad-cam/best | R |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for r in rows:
        m = r.results
        best = "—" if r.best_batch is None else f"{_time(m['gradcam_best'])} (batch {r.best_batch})"
        peaks = "/".join(_fmt(m[k].peak_mb, ".0f") for k in ("ours", "floor", "gradcam", "gradcam_best"))
        lines.append(
            f"| {NAMES[r.method]} (`{THEIR_CLASS[r.method]}`) | {r.batch} | {_time(m['ours'])} | {_time(m['floor'])} "
            f"| {_fmt(r.ratio_floor, '.2f')} | {_time(m['gradcam'])} | {_fmt(r.ratio_theirs, '.3f')} | {best} "
            f"| {_fmt(r.ratio_best, '.3f')} | {_fmt(r.ratio_theirs_floor, '.1f')} | {_fmt(r.vs_floor, '.1e')} "
            f"| {_fmt(r.vs_theirs, '.1e')} | {peaks} | {r.repeats} |"
        )
    return "\n".join(lines)


def agreement_table(rows: list[Row]) -> str:
    lines = [
        "| method | N | ours vs grad-cam as shipped | same formula on both sides | max \\|Δ\\| (normalised maps) |",
        "|---|---:|---:|---|---:|",
    ]
    for r in rows:
        for label, value in r.aligned:
            lines.append(
                f"| {NAMES[r.method]} | {r.batch} | {_fmt(r.vs_theirs, '.1e')} | {label} | {_fmt(value, '.1e')} |"
            )
    return "\n".join(lines)


def _span(values: list[float | None], spec: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def _pick(rows: list[Row], method: str, n: int | None = None) -> list[Row]:
    return [r for r in rows if r.method == method and (n is None or r.batch == n)]


def reading(rows: list[Row], s: Settings, search: dict[int, float], chunk: int) -> list[str]:
    """Why the numbers are what they are: text kept here with this run's numbers (update it when the CAM
    implementation or pytorch-grad-cam changes); only for what was measured."""

    def span(method_set, attr: str, spec: str = ".2f", n: int | None = None) -> str:
        return _span([getattr(r, attr) for r in rows if r.method in method_set and (n is None or r.batch == n)], spec)

    lines = []
    big = max(s.batches)
    issue_row = " (the issue's row)" if big == 8 else ""
    for method in ("score_cam", "ablation_cam"):
        picked = _pick(rows, method, big)
        if not picked:
            continue
        r = picked[0]
        best = f", {_fmt(r.ratio_best, '.3f')}× with `batch_size={r.best_batch}`" if r.best_batch else ""
        lines.append(
            f"- **{NAMES[method]}, N={big}{issue_row}:** ours {_time(r.results['ours'])} s,"
            f" {_fmt(r.ratio_floor, '.2f')}× its floor; {_fmt(r.ratio_theirs, '.3f')}× pytorch-grad-cam's time with"
            f" its defaults{best} (pytorch-grad-cam {_fmt(r.ratio_theirs_floor, '.1f')}× our floor); peak MB ours"
            f" {_fmt(r.results['ours'].peak_mb, '.0f')}, pytorch-grad-cam {_fmt(r.results['gradcam'].peak_mb, '.0f')}."
        )
    if _pick(rows, "score_cam"):
        lines.append(
            f"- **Score-CAM time** (ours/floor {span(('score_cam',), 'ratio_floor')}, pytorch-grad-cam/floor"
            f" {span(('score_cam',), 'ratio_theirs_floor')}). Both sides run one forward per (sample, channel) pair,"
            " which is nearly all of the time; ours batches the pairs of all samples together in chunks under the"
            " memory budget (sized from one input row's measured forward) and skips constant channels (their mask"
            " is undefined), the floor runs"
            f" chunks of {chunk} rows, pytorch-grad-cam runs all C channels, loops over the images and runs 16 masked"
            " copies of one image at a time (`batch_size`, an attribute its loop reads), calling `.item()` on every"
            " score. Before its loop it builds all N × C masked inputs at once, an (N, C, 3, H, W) tensor"
            f" ({big * 512 * 3 * s.size**2 * 4 / 2**30:.2f} GiB at N={big}, C=512, {s.size}²), and the (N, C, H, W)"
            " upsampled activations: the memory column. Ours makes each chunk's masks when it runs it. Forward"
            f" per row by chunk size here (ms): {', '.join(f'{c}: {v * 1e3:.0f}' for c, v in search.items())}."
        )
    if _pick(rows, "ablation_cam"):
        lines.append(
            "- **Ablation-CAM time.** pytorch-grad-cam replaces the target layer (`layer4[-1]`) by a module that"
            " returns the stored activations with one channel zeroed, but still feeds 32 copies of the image"
            " (`batch_size`) through every layer before it: N × C rows through almost the whole network. The floor"
            " runs the network once and the tail (average pool, dense layer) on the N × K ablated activations."
            " Ours checks (an autograd probe on one sample, every call) that the output depends on the input only"
            " through `layer4`, measures what one ablated row costs after `layer4` (its activation and what the"
            " average pool and dense layer allocate for it: a two-row minus a one-row run) and evaluates the ablated"
            " activations in chunks of that size under the memory budget, each chunk behind one input row's pass"
            " through the layers before `layer4`. In one call of ours those layers ran"
            f" {ablation_stem_runs(rows)} (untimed count, a hook on `conv1`: the clean forward, the probe, the two"
            " measuring runs and one per chunk); the largest chunk of ablated rows held"
            f" {_fmt(max((r.extra.get('chunk_rows', 0) for r in _pick(rows, 'ablation_cam')), default=None), 'd')}."
            " Those few one-row passes and the probe's backward are ours' cost over the floor."
        )
    grads = [r for r in rows if r.method in GRADIENT_METHODS]
    if grads:
        gaps = "; ".join(
            f"{_span([gap_ms(r) for r in grads if r.batch == n], '.0f')} ms at N={n}" for n in sorted(s.batches)
        )
        lines.append(
            f"- **Gradient CAMs** (ours/floor {span(GRADIENT_METHODS, 'ratio_floor')}, ours/grad-cam"
            f" {span(GRADIENT_METHODS, 'ratio_theirs', '.3f')}). The floor and ours run the layers before `layer4`"
            " without an autograd graph and backpropagate the score only through the tail to the layer's output."
            " pytorch-grad-cam runs the whole forward with autograd and `loss.backward()`, which also computes every"
            " parameter's gradient, then works in NumPy and resizes each map with OpenCV. Ours' time over the"
            f" floor's (medians): {gaps}. Ours also resolves the layer and the target, registers and removes its"
            " hooks, plans chunks and upsamples with its own code on every call."
        )
    if _pick(rows, "eigen_cam"):
        lines.append(
            f"- **Eigen-CAM time** (ours/floor {span(('eigen_cam',), 'ratio_floor')}, ours/grad-cam"
            f" {span(('eigen_cam',), 'ratio_theirs', '.3f')}). All three run one forward; ours and the floor without"
            " autograd and one batched SVD in torch (`full_matrices=False`), pytorch-grad-cam with autograd (its"
            " hooks are registered for gradients too), then one NumPy SVD per image with `full_matrices=True` (a"
            f" C × C factor, 512 × 512 here).{eigen_alone(rows)}"
        )
    exact = [r for r in rows if r.method in ("grad_cam", "xgrad_cam", "layer_cam", "hires_cam")]
    if exact:
        lines.append(
            "- **Same formulas: Grad-CAM, XGrad-CAM, LayerCAM, HiResCAM** agree to"
            f" {_span([r.vs_theirs for r in exact], '.0e')} after min-max normalisation. pytorch-grad-cam applies"
            " ReLU, min-max normalises at the layer's resolution, resizes with `cv2.resize` (bilinear, half-pixel"
            " centres, like `F.interpolate(align_corners=False)`) and normalises again; normalising is affine and"
            " the resize linear, so this equals normalising our upsampled map. XGrad-CAM's 1e-7 in their"
            " denominator Σ A is negligible here."
        )
    pp = _pick(rows, "grad_cam_pp")
    if pp:
        stats = [r.extra.get("gradient_abs") for r in pp if r.extra.get("gradient_abs")]
        median = _span([m for m, _ in stats], ".0e")
        largest = _span([m for _, m in stats], ".0e")
        lines.append(
            f"- **Grad-CAM++: {_span([r.vs_theirs for r in pp], '.0e')} as shipped,"
            f" {_span([v for r in pp for _, v in r.aligned], '.0e')} with the score × {GRADPP_SCALE:g} on both"
            " sides.** Both use α = g² / (2g² + Σ_ab A_ab · g³) with w = Σ α · relu(g); pytorch-grad-cam adds 1e-6"
            f" to the denominator. This random network's gradients at `layer4` are small (median |g| {median}, max"
            f" {largest}), so g² is of the order of that 1e-6 or below it and the term changes α (towards g² · 1e6"
            f" where g² ≪ 1e-6). With the score scaled by {GRADPP_SCALE:g} (a callable target on our side, a"
            " scaled `ClassifierOutputTarget` on theirs) the term is negligible and the maps agree. How much the"
            " 1e-6 matters depends on the scale of the gradients, i.e. on the network and the score."
        )
    eig = _pick(rows, "eigen_cam")
    if eig:
        flips = _span([r.extra.get("eigen_flips") for r in eig], "d")
        lines.append(
            f"- **Eigen-CAM: {_span([r.vs_theirs for r in eig], '.0e')} as shipped.** Ours projects the"
            " positions × channels matrix of activations on its first right singular vector, as the paper (no"
            " centring), with the sign fixed so that the map correlates with the mean activation. pytorch-grad-cam"
            " subtracts each channel's mean over positions first (principal components) and keeps whatever sign"
            " the SVD returns, then applies ReLU, so a flipped sign shows the other half of the map. Our SVD"
            " projection of the centred activations, each image's sign chosen to match theirs:"
            f" {_span([v for r in eig for _, v in r.aligned], '.0e')} (sign opposite to ours' rule on {flips} of the"
            " images)."
        )
    sc = _pick(rows, "score_cam")
    if sc:
        values = [dict(r.aligned) for r in sc]
        first = [v.get("softmax over channels of raw logits, ours' masks (floor's logits)") for v in values]
        second = [v.get("that formula with their masks (align_corners=True), first image") for v in values]
        spread = _span([r.extra.get("softmax_spread") for r in sc], ".3f")
        constant = _span([r.extra.get("constant_channels") for r in sc], "d")
        lines.append(
            f"- **Score-CAM: {_span([r.vs_theirs for r in sc], '.0e')} as shipped: different formulas.** Ours"
            " (the paper): weight = softmax probability of the class for x ⊙ H_k minus that for an all-zero input,"
            " masks H_k upsampled bilinearly with half-pixel centres (as our maps) and scaled to [0, 1], constant"
            f" channels skipped ({constant} of N × 512 here, all of them zero). pytorch-grad-cam: weight = softmax over"
            " the channels of the raw target logits f(x ⊙ H_k), no baseline, masks upsampled with"
            " `UpsamplingBilinear2d` (`align_corners=True`) and scaled with + 1e-8 (a constant channel's mask is 0,"
            " so its logit is f(0)). On this random network the logits barely vary with the mask, so their weights"
            f" are nearly uniform (max weight × C = {spread}) and their map is close to the mean activation. Their"
            f" formula from our floor's logits (our masks): {_span(first, '.0e')}; the same with their"
            f" masks, in plain torch on the first image: {_span(second, '.0e')}: the remaining difference of the"
            " former is the mask interpolation alone. Ours against its floor (the paper's formula in plain torch):"
            f" {_span([r.vs_floor for r in sc], '.0e')} relative."
        )
    ab = _pick(rows, "ablation_cam")
    if ab:
        negative = ", ".join(f"{r.extra.get('negative_scores', '—')} of {r.batch}" for r in ab)
        lines.append(
            f"- **Ablation-CAM: {_span([r.vs_theirs for r in ab], '.0e')} as shipped.** Both ablate a channel by"
            " setting it to zero (pytorch-grad-cam does so when the layer's minimum is 0, as after this ReLU)."
            " Ours weights (y − y_k) / |y|, pytorch-grad-cam (y − y_k) / y, which flips every weight when the"
            f" class score y is negative: here y < 0 for {negative} images (a random network's logits for class 3);"
            " for those their ReLU keeps the part of the map that our weights call evidence against the class."
            " Our signed map (`relu=False`) times sign(y), then ReLU:"
            f" {_span([v for r in ab for _, v in r.aligned[:1]], '.0e')}; our floor's drops divided by y:"
            f" {_span([v for r in ab for _, v in r.aligned[1:]], '.0e')}."
        )
    return lines


def eigen_alone(rows: list[Row]) -> str:
    """The Eigen-CAM rounds of ours and the floor without pytorch-grad-cam in between, as a sentence."""
    parts = [
        f"ours {r.extra['alone'][0]:.3f} s, floor {r.extra['alone'][1]:.3f} s, ours/floor {r.extra['alone'][2]:.2f}"
        f" at N={r.batch}"
        for r in _pick(rows, "eigen_cam")
        if r.extra.get("alone") and r.extra["alone"][2] is not None
    ]
    if not parts:
        return ""
    return (
        f" In {ISOLATED_ROUNDS} further rounds of ours and the floor alone (not in the table): {'; '.join(parts)}."
        " In the table's rounds ours runs right after pytorch-grad-cam, whose NumPy SVD leaves OpenBLAS worker"
        " threads busy for a moment after it returns; on 2 cores they slow down the next call (ours)."
    )


def gap_ms(r: Row) -> float | None:
    """Median time of ours minus that of the floor, in milliseconds."""
    ours_t, floor_t = (r.results[k] for k in ("ours", "floor"))
    if not ours_t.times or not floor_t.times:
        return None
    return (statistics.median(ours_t.times) - statistics.median(floor_t.times)) * 1e3


def ablation_stem_runs(rows: list[Row]) -> str:
    """'A times on B rows in all (N=n)' for every Ablation-CAM row."""
    parts = []
    for r in _pick(rows, "ablation_cam"):
        if r.extra.get("stem_runs"):
            runs, total = r.extra["stem_runs"]
            parts.append(f"{runs} times on {total} rows in all at N={r.batch}")
    return "; ".join(parts) or "—"


def section(
    s: Settings,
    rows: list[Row],
    notes: list[str],
    search: dict,
    chunk: int,
    elapsed: float,
    m: dict,
    load: tuple[float, float],
) -> str:
    """The CAM section of the report; ``m`` is :func:`bench_gradient.machine` taken when the run began."""
    api = grad_cam_api()
    lines = [
        "## CAM family: against its floor and against pytorch-grad-cam",
        "",
        "Generated by `benchmarks/bench_cam.py` (see `benchmarks/README.md`); this section is replaced on every"
        " run of that script and kept when `bench_gradient.py` regenerates the rest of the file.",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): small images and few repeats; not for comparison.**", ""]
    lines += [
        "### Setup",
        "",
        f"- Machine: {m['CPU']}; torch threads: {s.threads}",
        f"- Software: {m['Software']}, grad-cam (pytorch-grad-cam) {api.version}, opencv-python-headless"
        f" {api.opencv} (torchvision: {api.torchvision})",
        f"- Date: {m['Date']}; run time {elapsed / 60:.1f} min; load average (1 min) {load[0]:.2f} at the start,"
        f" {load[1]:.2f} at the end (other processes share the cores)",
        f"- Command: `{command_line()}`",
        f'- Model: `sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)` (random weights, eval mode); inputs'
        f" `(N, 3, {s.size}, {s.size})` made as in `bench_gradient.py` (seed {s.seed}, each sample rescaled to"
        f" [{VALUE_RANGE[0]}, {VALUE_RANGE[1]}]); target class {s.target}; CAM layer `layer4` (512 channels).",
        f'- **Ours**: `sl.GradCam(model, layer="layer4")(x, target={s.target}).values` and likewise `GradCamPlusPlus`,'
        " `XGradCam`, `LayerCam`, `HiResCam`, `EigenCam`, `ScoreCam`, `AblationCam`, all with their defaults"
        ' (`relu=True`, `upsample="bilinear"`, memory budget 1 GiB): raw maps `(N, 1, H, W)`.',
        "- **pytorch-grad-cam**: `with CLASS(model=model, target_layers=[model.layer4[-1]]) as cam:"
        f" cam(input_tensor=x, targets=[ClassifierOutputTarget({s.target})] * N)`, a new object per call (its hooks"
        " stay on the model while the object lives), its defaults: Score-CAM 16 masked inputs per forward,"
        " Ablation-CAM `batch_size=32`. *grad-cam best*: `batch_size` (Score-CAM: the `cam.batch_size` attribute"
        f" its loop reads) set to the best chunk of a plain forward, {chunk} rows; not run where that is the"
        f" default or the search predicts less than {BEST_GAIN:.0%} gain per row over it (see the notes)."
        " Its tqdm progress bars go to /dev/null. It returns min-max normalised maps `(N, H, W)` as NumPy.",
        "- **torchvision shim** (this script only): pytorch-grad-cam imports `torchvision` (model_targets.py),"
        " `torchvision.transforms.{Compose, Normalize, ToTensor}` (utils/image.py, for `preprocess_image`) and"
        " `torchvision.transforms.functional.resize` (sess.py) at import time. Where torchvision does not import,"
        " the script puts those three modules in `sys.modules` as empty modules holding placeholders of those four"
        " names that raise if called, imports pytorch-grad-cam and removes them. Nothing timed or compared calls"
        " them: the CAM classes, `ClassifierOutputTarget` and its map scaling (NumPy, the real OpenCV) use no"
        " torchvision.",
        "- **Floor** (plain torch, finished into the same map so the script can check it computes our values):"
        " gradient CAMs: one forward without a graph up to `layer4` and the backward of the score through the"
        " tail (average pool, dense) to `layer4`'s output; Eigen-CAM: one forward and a batched SVD; Score-CAM:"
        f" one forward of the N·K masked inputs (K the non-constant channels) in chunks of {chunk} rows (the"
        " best chunk), plus the batch and one all-zero input; Ablation-CAM: one forward and the tail on the N·K"
        f" ablated activations (K the non-zero channels), {TAIL_CHUNK} rows per pass.",
        "- **Agreement**: pytorch-grad-cam's maps are min-max normalised per image; ours are min-max normalised"
        " per image before comparing; max |Δ| over the batch (maps in [0, 1]).",
        f"- Timing (from `bench_gradient.py`): a warm-up call where estimated under {s.warmup_max_seconds:.0f} s,"
        " then R rounds of (ours, floor, grad-cam, grad-cam best) alternating; times are medians, ratios medians"
        f" of the per-round ratios; R fits {s.cell_seconds:.0f} s per row, between {s.min_repeats} and"
        f" {s.max_repeats} (R = 1: one measurement). Peak MB: peak resident memory above the level before the"
        " call, sampled every 2 ms in the first round; ours/floor/grad-cam/grad-cam best.",
        "",
        "### Results",
        "",
        table(rows),
        "",
        "### Agreement where both sides use the same formula (untimed)",
        "",
        "Where the formulas differ, one side is changed so that both compute the same formula (see the reading"
        " below); *as shipped* repeats the column above.",
        "",
        agreement_table(rows),
        "",
    ]
    if notes:
        lines += ["### Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["### Reading", "", *reading(rows, s, search, chunk), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    began = time.perf_counter()
    at_start = machine()  # the code the run imported; checked again at the end
    load_start = os.getloadavg()[0]
    api = grad_cam_api()
    print(f"grad-cam {api.version}, opencv {api.opencv}, torchvision: {api.torchvision}", flush=True)
    model = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)
    x = make_images(2, s.size, s.seed)
    with torch.no_grad():
        if not torch.equal(head(model, features(model, x)), model(x)):
            raise SystemExit("features/head do not reproduce the zoo ResNet's forward")
    search = forward_chunk_search(model, s)
    chunk = min(search, key=search.get)
    print("forward ms/row by chunk: " + ", ".join(f"{c}: {v * 1e3:.1f}" for c, v in search.items()))
    print(f"best forward chunk: {chunk} rows", flush=True)

    cells = [build_cell(model, method, n, s, search, chunk) for n in s.batches for method in s.methods]
    plan = [(cell, plan_repeats(cell, s)) for cell in cells]
    total = sum(cell_estimate(cell, r, s) for cell, r in plan)
    print(f"{len(plan)} rows; roughly {total / 60:.1f} min of timed rounds and warm-ups", flush=True)

    rows: list[Row] = []
    notes: list[str] = []
    for index, (cell, repeats) in enumerate(plan, start=1):
        print(f"[{index}/{len(plan)}] {cell.method} N={cell.batch}: R={repeats}", flush=True)
        row = measure_row(cell, run_cell(cell, repeats, s), repeats, s)
        rows.append(row)
        for label, m in row.results.items():
            if m.error:
                notes.append(f"{row.method} N={row.batch}: {label} raised {m.error}")
        best = row.results["gradcam_best"]
        if best.skipped and row.method in THEIR_BATCH_DEFAULT:
            notes.append(f"{row.method} N={row.batch}: pytorch-grad-cam best not run: {best.skipped}")
        if row.vs_floor is not None and row.vs_floor > SAME:
            notes.append(f"{row.method} N={row.batch}: the floor's map differs from ours by {row.vs_floor:.1e}")

    elapsed = time.perf_counter() - began
    if machine()["Software"] != at_start["Software"]:
        notes.append(
            "the repository changed during the run (the header gives the state at its start, which is the code the"
            f" run imported): at the end, {machine()['Software']}"
        )
    load = (load_start, os.getloadavg()[0])
    write_section(s.out, SECTION, section(s, rows, notes, search, chunk, elapsed, at_start, load))
    print(f"\n{table(rows)}\n\n{agreement_table(rows)}")
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
