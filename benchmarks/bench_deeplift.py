"""Time saliencelab's DeepLIFT and DeepSHAP against one forward+backward pass and against Captum.

Rows, on the ResNet-18-shaped zoo network at every batch size (default 1 and 8):

- ``DeepLift`` Rescale from a zero baseline;
- ``DeepLift`` Rescale from per-sample random references;
- ``DeepLift`` RevealCancel from a zero baseline (Captum has only Rescale);
- ``DeepShap`` over K=8 background references;

on the VGG-16-shaped zoo network at every batch size, Rescale from a zero
baseline; and at one batch (default 8) the embedded digits CNN (Rescale, zero
baseline) and the small vision transformer at 32² (Rescale, per-sample random
references: its layer norms and attention run by their definitions, each piece
by its exact rule).

Each row times three contenders in alternating rounds: ``ours`` (saliencelab as a
user calls it), the ``floor`` (one plain forward+backward of the batch, the
gradient of the target score with respect to the input; for DeepSHAP, of the N·K
(sample, reference) rows) and Captum's ``DeepLift`` / ``DeepLiftShap``. Captum
cannot run the zoo ResNet as is (each residual block applies one
``nn.ReLU(inplace=True)`` module twice), so Captum runs a twin of it with the same
weights and one non-inplace ReLU module per use; the script checks that the twin
computes the same outputs and records what Captum does on the original.

The timing rounds, per-round ratios, peak-memory sampling, chunk-size search and
machine header come from ``bench_gradient.py``. The report is one section of
``BENCHMARKS.md`` between ``<!-- bench_deeplift: begin -->`` and
``<!-- bench_deeplift: end -->``, replaced on every run (``bench_gradient.py``
keeps it when it regenerates the file). See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_deeplift.py                 # full run, 224x224, batches 1 and 8
    python benchmarks/bench_deeplift.py --quick --out /tmp/quick.md
    python benchmarks/bench_deeplift.py --rows rescale_zero deepshap --batch 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from bench_gradient import (
    REPO_ROOT,
    Cell,
    Contender,
    Measured,
    _fmt,
    _ratio,
    command_line,
    estimate,
    find_best_chunk,
    input_gradients,
    machine,
    make_images,
    plan_repeats,
    quiet,
    row_chunks,
    run_cell,
    write_section,
)
from torch import nn

import saliencelab as sl
from saliencelab.zoo.architectures import BasicBlock

SECTION = "bench_deeplift"
"""Name of this script's marked section in the report."""

ROWS = ("rescale_zero", "rescale_random", "reveal_cancel_zero", "deepshap", "vgg", "digits", "vit")
SMALL = ("digits", "vit")
"""Rows on small models: one batch (``--small-batch``), each timed call a loop of calls."""
RESNET = tuple(kind for kind in ROWS if kind not in SMALL and kind != "vgg")
SHORT = {
    "rescale_zero": "Rescale/zero",
    "rescale_random": "Rescale/random",
    "reveal_cancel_zero": "RevealCancel/zero",
    "deepshap": "DeepSHAP",
    "vgg": "VGG Rescale/zero",
    "digits": "digits CNN",
    "vit": "ViT Rescale/random",
}
TITLES = {
    "rescale_zero": "DeepLift rescale, zero baseline",
    "rescale_random": "DeepLift rescale, per-sample random references",
    "reveal_cancel_zero": "DeepLift reveal_cancel, zero baseline",
    "deepshap": "DeepShap, K={k} background",
    "vgg": "DeepLift rescale, zero baseline",
    "digits": "DeepLift rescale, zero baseline",
    "vit": "DeepLift rescale, per-sample random references",
}
CAPTUM = {
    "rescale_zero": "`DeepLift`",
    "rescale_random": "`DeepLift`",
    "reveal_cancel_zero": "`DeepLift`, Rescale: Captum has no RevealCancel",
    "deepshap": "`DeepLiftShap`",
    "vgg": "`DeepLift`, its ReLUs made non-inplace",
    "digits": "`DeepLift`, on the model as is",
    "vit": "`DeepLift`, on the model as is",
}
MODELS = {
    "vgg": 'sl.zoo.load("vgg16_shaped", num_classes=1000, seed=0)',
    "vit": 'sl.zoo.load("vit_tiny_shaped", num_classes=10, seed=0)',
}
VIT_SIZE = 32
"""Image side of the vision transformer's row."""
VGG_COST = 6.0
"""Rough cost of a VGG-16-shaped row in ResNet-18-shaped rows at 224², used only to plan rounds and warm-ups."""

EXACT = 1e-4
"""Relative completeness gap up to which a float32 attribution counts as summing exactly."""
FLOOR_TARGET = 2.2
"""Target: DeepLIFT ≤ 2.2 × one forward+backward of the same rows."""
OURS_FACTOR = {"rescale": 2.6, "reveal_cancel": 5.0}
"""Rough cost of ours in floors, used only to plan rounds and warm-ups."""
CAPTUM_FACTOR = 2.2
"""Rough cost of Captum in floors (one forward+backward of inputs and references concatenated)."""

Tensor = torch.Tensor


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line.

    The timing helpers of ``bench_gradient`` read ``size``, ``seed``, ``target``,
    ``chunks``, ``chunk_repeats``, ``*_repeats``, ``cell_seconds`` and ``warmup_max_seconds``.
    """

    size: int
    batches: list[int]
    rows: list[str]
    references: int
    small_batch: int
    small_loops: int
    target: int
    seed: int
    chunks: list[int]
    chunk_repeats: int
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
    p.add_argument("--quick", action="store_true", help="smoke run: 64x64 images, fewer repeats")
    p.add_argument("--rows", nargs="+", default=list(ROWS), help=f"subset of rows: {', '.join(ROWS)}")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="ResNet and VGG batch sizes (default: 1 8)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report to update")
    p.add_argument("--size", type=int, help="image side in pixels (default 224, quick 64)")
    p.add_argument("--references", type=int, default=8, help="K background references for DeepSHAP (default 8)")
    p.add_argument("--small-batch", type=int, default=8, help="batch of the digits CNN and ViT rows (default 8)")
    p.add_argument("--small-loops", type=int, help="calls per timed call on the small models (default 20, quick 5)")
    p.add_argument("--target", type=int, default=3, help="explained class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunks", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32], help="floor chunk sizes to try")
    p.add_argument("--chunk-repeats", type=int, help="timed passes of the chunk-size search (default 2)")
    p.add_argument("--repeats", type=int, help="most rounds per row (default 5, quick 3)")
    p.add_argument("--min-repeats", type=int, help="fewest rounds per row, whatever they cost (default 3, quick 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per row fit in this (default 60, quick 8)")
    p.add_argument("--warmup-max-seconds", type=float, default=30.0, help="warm up only calls estimated below this")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    a = p.parse_args(argv)
    rows = [r for item in a.rows for r in item.split(",") if r]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    return Settings(
        size=a.size or (64 if a.quick else 224),
        batches=a.batch,
        rows=[r for r in ROWS if r in rows],
        references=a.references,
        small_batch=a.small_batch,
        small_loops=a.small_loops or (5 if a.quick else 20),
        target=a.target,
        seed=a.seed,
        chunks=sorted(set(a.chunks)),
        chunk_repeats=a.chunk_repeats or 2,
        max_repeats=a.repeats or (3 if a.quick else 5),
        min_repeats=a.min_repeats or (1 if a.quick else 3),
        cell_seconds=a.cell_seconds or (8.0 if a.quick else 60.0),
        warmup_max_seconds=a.warmup_max_seconds,
        threads=a.threads,
        out=a.out,
        quick=a.quick,
    )


# --------------------------------------------------------------------------- Captum's twin of the zoo ResNet


class CaptumBlock(BasicBlock):
    """The zoo's residual block with one non-inplace ReLU module per use (``relu1``, ``relu2``).

    Captum's DeepLift keeps each nonlinear module's input and output on the
    module, so a module applied twice (the zoo block's ``self.relu``) breaks it.
    """

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


def captum_twin(model: nn.Module, inplace: bool = False) -> nn.Module:
    """A zoo ResNet that Captum's DeepLift can run: ``model``'s weights, one ReLU module per use."""
    twin = sl.zoo.load("resnet18_shaped", num_classes=model.fc.out_features, seed=1)  # weights replaced below
    twin.relu = nn.ReLU(inplace=inplace)  # the stem's ReLU is used once
    for block in [m for m in twin.modules() if isinstance(m, BasicBlock)]:
        block.__class__ = CaptumBlock
        del block.relu
        block.relu1, block.relu2 = nn.ReLU(inplace=inplace), nn.ReLU(inplace=inplace)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def non_inplace(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ReLU modules do not work in place (Captum's DeepLift cannot take them)."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return twin


def max_output_diff(a: nn.Module, b: nn.Module, *inputs: Tensor) -> float:
    """Largest |a(x) − b(x)| over all logits of all ``inputs``."""
    with torch.no_grad():
        return max(float((a(x) - b(x)).abs().max()) for x in inputs)


def _module_free(message: str) -> str:
    return message.replace("ReLU(inplace=True)", "ReLU()")


def captum_on_original(model: nn.Module, s: Settings) -> dict[str, str]:
    """What Captum's DeepLift does at batch 1 on copies of the zoo ResNet: as is, with its shared ReLU
    modules made non-inplace, and with one in-place ReLU module per use. Label -> outcome."""
    from captum.attr import DeepLift

    x = make_images(1, s.size, s.seed)
    shared = non_inplace(model)
    variants = {
        "the net as is": copy.deepcopy(model),
        "with `inplace=False` on the shared ReLU modules": shared,
        "with one `nn.ReLU(inplace=True)` module per use": captum_twin(model, inplace=True),
    }
    outcome: dict[str, str] = {}
    errors: dict[str, str] = {}
    for label, net in variants.items():
        try:
            quiet(lambda net=net: DeepLift(net).attribute(x, baselines=torch.zeros_like(x), target=s.target))()
            outcome[label] = "runs"
        except Exception as error:
            errors[label] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            same = [k for k, v in errors.items() if _module_free(v) == _module_free(errors[label])]
            outcome[label] = f"raises `{errors[label]}`" if same[0] == label else "raises the same error"
        print(f"Captum DeepLift on the zoo ResNet {label}: {outcome[label]}", flush=True)
    return outcome


# --------------------------------------------------------------------------- cells


def floor_rows(model: nn.Module, x: Tensor, k: int, target: int, chunk: int) -> Tensor:
    """The DeepSHAP floor: plain forward+backward of each sample once per reference, N·K rows in chunks."""
    total = torch.zeros_like(x)
    for rows in row_chunks(x.shape[0] * k, chunk):
        sample = rows // k
        total.index_add_(0, sample, input_gradients(model, x[sample], target))
    return total / k


def score_differences(net: nn.Module, x: Tensor, refs: Tensor, target: int, background: bool) -> Tensor:
    """f(x) − f(x′) per sample, float64; with ``background``, f(x′) is the mean over all of ``refs``."""
    with torch.no_grad():
        f_x = net(x)[:, target].double()
        f_refs = net(refs)[:, target].double()
    return f_x - (f_refs.mean() if background else f_refs)


def loop(call, times: int):
    """``call`` run ``times`` times (timing a tiny model one call at a time measures the clock)."""

    def run() -> Tensor:
        for _ in range(times):
            values = call()
        return values

    return run


def build_cell(kind: str, n: int, nets: dict[str, nn.Module], s: Settings, per_row_s: dict, chunk: int) -> Cell:
    """Contenders ours / floor / captum of one row at batch ``n``, with the data to check them."""
    from captum.attr import DeepLift, DeepLiftShap

    t, k = s.target, s.references
    if kind == "digits":
        model = twin = nets["digits"]
        x = sl.zoo.dataset("digits")[2][:n]
    elif kind == "vit":
        model = twin = nets["vit"]
        x = make_images(n, VIT_SIZE, s.seed)
    elif kind == "vgg":
        model, twin = nets["vgg"], nets["vgg_twin"]
        x = make_images(n, s.size, s.seed)
    else:
        model, twin = nets["resnet"], nets["twin"]
        x = make_images(n, s.size, s.seed)
    rule = "reveal_cancel" if kind == "reveal_cancel_zero" else "rescale"
    if kind == "deepshap":
        refs = make_images(k, s.size, s.seed + 2)
        ours = lambda: sl.DeepShap(model)(x, target=t, baseline=refs).values  # noqa: E731
        floor = lambda: floor_rows(model, x, k, t, chunk)  # noqa: E731
        theirs = lambda: DeepLiftShap(twin).attribute(  # noqa: E731
            x, baselines=refs, target=t, return_convergence_delta=True
        )[0]
        cost = estimate(per_row_s, n * k, chunk)
        captum_cost = CAPTUM_FACTOR * estimate(per_row_s, n * k, n * k)
    else:
        random = kind in ("rescale_random", "vit")
        refs = make_images(n, x.shape[-1], s.seed + 1) if random else torch.zeros_like(x)
        baseline = refs if random else "zeros"
        ours = lambda: sl.DeepLift(model, rule=rule)(x, target=t, baseline=baseline).values  # noqa: E731
        floor = lambda: input_gradients(model, x, t)  # noqa: E731
        theirs = lambda: DeepLift(twin).attribute(  # noqa: E731
            x, baselines=refs, target=t, return_convergence_delta=True
        )[0]
        cost = 1e-3 if kind in SMALL else estimate(per_row_s, n, n) * (VGG_COST if kind == "vgg" else 1.0)
        captum_cost = CAPTUM_FACTOR * cost
    loops = s.small_loops if kind in SMALL else 1
    contenders = [
        Contender("ours", loop(ours, loops), OURS_FACTOR[rule] * cost * loops),
        Contender("floor", loop(floor, loops), cost * loops),
        Contender("captum", loop(quiet(theirs), loops), captum_cost * loops),
    ]
    expected = {
        label: score_differences(net, x, refs, t, background=kind == "deepshap")
        for label, net in (("ours", model), ("captum", twin))
    }
    info = {"kind": kind, "loops": loops, "expected": expected}
    return Cell(kind, n, contenders, {"captum": CAPTUM[kind]}, info)


# --------------------------------------------------------------------------- rows and report


@dataclass
class Row:
    """One measured row: what the table and the reading need."""

    kind: str
    model: str
    title: str
    batch: int
    repeats: int
    results: dict[str, Measured]
    ratio_floor: float | None = None
    ratio_captum: float | None = None
    ratio_captum_floor: float | None = None
    completeness: dict[str, tuple[float, float]] = field(default_factory=dict)
    """label -> (max abs gap, max relative gap) over the samples."""


def completeness(values: Tensor, expected: Tensor) -> tuple[float, float]:
    """Max over samples of |Σ values − (f(x) − f(x′))|, and of that divided by |f(x) − f(x′)|."""
    gap = (values.detach().double().reshape(values.shape[0], -1).sum(dim=1) - expected).abs()
    return float(gap.max()), float((gap / expected.abs()).max())


def measure_row(cell: Cell, results: dict[str, Measured], repeats: int, s: Settings) -> Row:
    """Ratios and completeness errors of a measured cell (times per single call)."""
    for m in results.values():
        m.times = [t / cell.info["loops"] for t in m.times]
    kind = cell.info["kind"]
    model = {
        "digits": "digits_cnn 8²",
        "vit": f"ViT-tiny-shaped {VIT_SIZE}²",
        "vgg": f"VGG-16-shaped {s.size}²",
    }.get(kind, f"ResNet-18-shaped {s.size}²")
    row = Row(kind, model, TITLES[kind].format(k=s.references), cell.batch, repeats, results)
    row.ratio_floor = _ratio(results["ours"], results["floor"])
    row.ratio_captum = _ratio(results["ours"], results["captum"])
    row.ratio_captum_floor = _ratio(results["captum"], results["floor"])
    for label in ("ours", "captum"):
        if results[label].values is not None:
            row.completeness[label] = completeness(results[label].values, cell.info["expected"][label])
    return row


def _time(m: Measured) -> str:
    if m.error:
        return "error"
    return _fmt(statistics.median(m.times) if m.times else None, ".4f" if m.times and min(m.times) < 0.01 else ".3f")


def _agreement(row: Row) -> str:
    ours, theirs = row.results["ours"].values, row.results["captum"].values
    if ours is None or theirs is None:
        return "—"
    if row.kind == "reveal_cancel_zero":
        return "other rule"
    return f"{float((ours - theirs).abs().max() / theirs.abs().max()):.0e}"


def verdict(r: float | None) -> str:
    """PASS when ours ≤ 2.2 × floor, else MISS."""
    if r is None:
        return "n/a"
    return "PASS" if r <= FLOOR_TARGET else "MISS"


HEADER = (
    "| model | method (Captum counterpart) | N | ours s | floor s | ours/floor | Captum s | ours/Captum "
    "| completeness error ours / Captum | relative ours / Captum | max \\|ours − Captum\\| / max \\|Captum\\| "
    "| peak MB ours/floor/Captum | R | ≤ 2.2× floor |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|"
)


def table(rows: list[Row]) -> str:
    """The Markdown table of the measured rows."""
    lines = [HEADER]
    for r in rows:
        ours, floor, theirs = (r.results[label] for label in ("ours", "floor", "captum"))
        gaps = [r.completeness.get(label) for label in ("ours", "captum")]
        absolute = " / ".join(_fmt(g and g[0], ".1e") for g in gaps)
        relative = " / ".join(_fmt(g and g[1], ".0e") for g in gaps)
        peaks = "/".join(_fmt(m.peak_mb, ".0f") for m in (ours, floor, theirs))
        lines.append(
            f"| {r.model} | {r.title} ({CAPTUM[r.kind]}) | {r.batch} | {_time(ours)} | {_time(floor)} "
            f"| {_fmt(r.ratio_floor, '.2f')} | {_time(theirs)} | {_fmt(r.ratio_captum, '.2f')} "
            f"| {absolute} | {relative} | {_agreement(r)} | {peaks} | {r.repeats} | {verdict(r.ratio_floor)} |"
        )
    return "\n".join(lines)


def _ratios(rows: list[Row], kinds: tuple[str, ...], attr: str = "ratio_floor") -> str:
    """'2.41× (N=1), 2.50× (N=8)' for the rows of ``kinds``."""
    found = [(r.batch, getattr(r, attr)) for r in rows if r.kind in kinds]
    return ", ".join(f"{value:.2f}× (N={batch})" for batch, value in found if value is not None) or "—"


def _target(rows: list[Row], kinds: tuple[str, ...]) -> str:
    """Whether the rows of ``kinds`` meet the floor target."""
    missed = [r for r in rows if r.kind in kinds and verdict(r.ratio_floor) == "MISS"]
    if not missed:
        return f"within the {FLOOR_TARGET}× target"
    return f"MISS of the {FLOOR_TARGET}× target: {_rows_named(missed)}"


def _rows_named(rows: list[Row]) -> str:
    return ", ".join(f"{SHORT[r.kind]} N={r.batch}" for r in rows) or "no row"


def _peaks(rows: list[Row], kind: str) -> str:
    """'ours 1550 MB, Captum 6707 MB (N=8)' for the largest batch of ``kind``."""
    found = [r for r in rows if r.kind == kind]
    if not found:
        return "—"
    r = max(found, key=lambda row: row.batch)
    ours, theirs = r.results["ours"].peak_mb, r.results["captum"].peak_mb
    return f"ours {_fmt(ours, '.0f')} MB, Captum {_fmt(theirs, '.0f')} MB at N={r.batch}"


def reading(rows: list[Row], s: Settings, pool_check: float | None, shares: dict | None = None) -> list[str]:
    """3–6 lines on why each ratio is what it is: the maintainers' explanations (text kept here, update it
    when the implementation changes) with this run's numbers; only for the rows measured."""
    kinds = {r.kind for r in rows}
    lines = []
    if "rescale_zero" in kinds:
        lines.append(
            f"- **Rescale, zero baseline**: {_ratios(rows, ('rescale_zero',))} one forward+backward"
            f" ({_target(rows, ('rescale_zero',))}). Under the difference mode each convolution runs twice (on the"
            " reference, and on the difference with autograd; the value at the input is their sum), batch norms,"
            " additions and ReLUs three times (input, reference, difference); the backward runs through the"
            " difference stream; `.delta` adds a no-grad forward of the reference; every operation pays Python"
            " dispatch, a fixed cost that weighs more at N=1. Each ReLU's ratio Δy/Δz adds about ten elementwise passes"
            " over its activation (the derivative fallback for near-zero steps runs only on the elements that need"
            " it), and the chunks under the 1 GiB default budget are 5 + 3 rows at N=8."
        )
    if kinds & {"rescale_random", "deepshap"}:
        lines.append(
            f"- **Random references** cost more: Rescale {_ratios(rows, ('rescale_random',))}, DeepSHAP"
            f" {_ratios(rows, ('deepshap',))} its floor of N·K = N·{s.references} rows"
            f" ({_target(rows, ('rescale_random', 'deepshap'))}). Where a max-pool window's winner differs between"
            " reference and input, the exact max rule shares the change along the path between them"
            " (`max_pool` in `engine/difference/maximum.py`: the two winners' crossing for all windows at once, one"
            " pass per kernel position to check that no other member is above it there, and `envelope` for the"
            " windows with more pieces). Its forward took"
            f" {_shares(shares) if shares else '(not measured in this run)'} of one untimed Rescale call with random"
            " references. A zero reference makes every reference window constant (zero activations up to"
            " the pool), so there the rule is plain gradient routing. DeepSHAP runs every (sample, reference) pair in"
            " chunks under the 1 GiB memory budget; Captum's `DeepLiftShap` runs all 2·N·K rows in one batch (no"
            f" chunking option): peak {_peaks(rows, 'deepshap')}."
        )
    if "reveal_cancel_zero" in kinds:
        lines.append(
            f"- **RevealCancel**: {_ratios(rows, ('reveal_cancel_zero',))}"
            f" ({_target(rows, ('reveal_cancel_zero',))}): each convolution also runs on |W| and |Δ| (a third"
            " convolution, in the autograd graph) to split Δ into Δ⁺ and Δ⁻, both parts go through every batch norm,"
            " addition and the backward, each ReLU is evaluated again at z′+Δ⁺ and z′+Δ⁻, and the derivative"
            " fallback runs per part. Captum has no RevealCancel: its column on that row is its Rescale."
        )
    single = ("rescale_zero", "rescale_random", "reveal_cancel_zero")
    if kinds & set(single):
        lines.append(
            "- **Captum's `DeepLift`** runs inputs and references as one batch of 2N rows with hooks on each ReLU and"
            " max pool, plus the no-grad 2N-row forward of `return_convergence_delta`: Captum/floor"
            f" {_ratios(rows, ('rescale_zero',), 'ratio_captum_floor')} (zero baseline);"
            f" ours/Captum {_ratios(rows, ('rescale_zero',), 'ratio_captum')} (Rescale, zero baseline),"
            f" {_ratios(rows, ('rescale_random',), 'ratio_captum')} (Rescale, random references). Its max-pool rule"
            " is one unpooling step whatever the reference: no slower with random references, and not exact there"
            " (last line)."
        )
    if "vgg" in kinds:
        lines.append(
            f"- **VGG-16-shaped, Rescale, zero baseline**: {_ratios(rows, ('vgg',))} one forward+backward"
            f" ({_target(rows, ('vgg',))}), ours/Captum {_ratios(rows, ('vgg',), 'ratio_captum')}. The same work"
            " as on the ResNet: each of the thirteen convolutions and three dense layers twice (reference and"
            " difference), each ReLU's ratio Δy/Δz, and the exact max rule at each of the five max pools, whose"
            " reference windows are not constant here (the convolutions have biases, so the zero image's"
            " activations vary)."
        )
    if "vit" in kinds:
        lines.append(
            f"- **ViT-tiny-shaped, Rescale, random references**: {_ratios(rows, ('vit',))} one forward+backward"
            f" ({_target(rows, ('vit',))}), ours/Captum {_ratios(rows, ('vit',), 'ratio_captum')}. Each layer norm"
            " runs as mean, centring, square, mean and `rsqrt` and each attention as two products of"
            " input-dependent tensors and a softmax, every piece on three streams (input, reference,"
            " difference) with its own rule: some forty operations per block where the plain pass has about ten,"
            " each paying Python dispatch on 8 small images. Captum hooks only modules: `F.layer_norm` and"
            " `F.scaled_dot_product_attention` get plain gradients and its GELU rule is the module's, which is why"
            " its completeness gap on this row is large."
        )
    if "digits" in kinds:
        lines.append(
            f"- **Digits CNN**: {_ratios(rows, ('digits',))} ({_target(rows, ('digits',))}), ours/Captum"
            f" {_ratios(rows, ('digits',), 'ratio_captum')}. On 8×8 images every call is overhead, not arithmetic:"
            " the difference mode's Python dispatch and rule bookkeeping per operation (three tensors each) and"
            " the target/reference handling cost more than the whole plain pass; the target is about large models."
        )
    checked = [r for r in rows if "captum" in r.completeness]
    if checked:
        worst = max(r.completeness["ours"][1] for r in checked)
        captum_exact = _rows_named([r for r in checked if r.completeness["captum"][1] <= EXACT])
        captum_inexact = _rows_named([r for r in checked if r.completeness["captum"][1] > EXACT])
        lines.append(
            "- **Completeness**: ours sums to f(x) − f(x′) up to float32 rounding on every row (largest relative"
            f" gap {worst:.0e}). Captum's relative gap is within {EXACT:.0e} on {captum_exact} and above it on"
            f" {captum_inexact}. On the CNNs its gaps come from its max-pool rule: with the digits CNN's"
            f" `MaxPool2d(2)` replaced by `AvgPool2d(2)`, Captum's relative gap there is {_fmt(pool_check, '.0e')};"
            " with a zero reference the ResNet's reference windows are constant (no biases before its max pool) and"
            " the rule is exact there, while the VGG's are not (biased convolutions, and each ReLU module feeds a"
            " hooked max pool directly). On the ViT they come from the operations it does not hook (previous"
            " lines)."
        )
    return lines


def pool_share(model: nn.Module, n: int, s: Settings) -> tuple[float, float]:
    """Seconds in the max-pool rule (its forward) and in the whole call, of one untimed Rescale call from per-sample
    random references on ``n`` images (the rule wrapped with a clock for this call only)."""
    from saliencelab.engine.difference.table import DIFFERENCE_RULES

    names = [name for name in DIFFERENCE_RULES if name.startswith("max_pool")]
    rules = {name: DIFFERENCE_RULES[name] for name in names}
    spent = [0.0]

    def clocked(rule):
        def run(call):
            began = time.perf_counter()
            try:
                return rule(call)
            finally:
                spent[0] += time.perf_counter() - began

        return run

    x, refs = make_images(n, s.size, s.seed), make_images(n, s.size, s.seed + 1)
    try:
        DIFFERENCE_RULES.update({name: clocked(rule) for name, rule in rules.items()})
        began = time.perf_counter()
        sl.DeepLift(model)(x, target=s.target, baseline=refs)
        total = time.perf_counter() - began
    finally:
        DIFFERENCE_RULES.update(rules)
    return spent[0], total


def _shares(shares: dict[int, tuple[float, float]]) -> str:
    return ", ".join(f"{rule / total:.0%} (N={n}: {rule:.3f} of {total:.3f} s)" for n, (rule, total) in shares.items())


def captum_pool_check(s: Settings) -> float:
    """Captum's largest relative completeness gap on the digits CNN with its max pool replaced by average pooling."""
    from captum.attr import DeepLift

    net = sl.zoo.load("digits_cnn")
    net.features[4] = nn.AvgPool2d(2)
    x = sl.zoo.dataset("digits")[2][: s.small_batch]
    values = quiet(lambda: DeepLift(net).attribute(x, baselines=torch.zeros_like(x), target=s.target))()
    return completeness(values, score_differences(net, x, torch.zeros_like(x), s.target, background=False))[1]


def section(
    s: Settings,
    rows: list[Row],
    notes: list[str],
    checks: dict,
    per_row_s: dict[int, float],
    chunk: int,
    elapsed: float,
) -> str:
    """The DeepLIFT section of the report."""
    m = machine()
    search = ", ".join(f"{c}: {t * 1e3:.0f}" for c, t in per_row_s.items())
    lines = [
        "## DeepLIFT and DeepSHAP: against one forward+backward and against Captum",
        "",
        "Generated by `benchmarks/bench_deeplift.py` (see `benchmarks/README.md`); this section is replaced on every"
        " run of that script and kept when `bench_gradient.py` regenerates the rest of the file.",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): small images and few repeats; not for comparison.**", ""]
    probe = checks.get("probe") or {}
    probe_text = "; ".join(f"{label}: {outcome}" for label, outcome in probe.items())
    lines += [
        "### Setup",
        "",
        f"- Machine: {m['CPU']}; torch threads: {s.threads}",
        f"- Software: {m['Software']}",
        f"- Date: {m['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{command_line()}`",
        f'- Models: `sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)` (random weights, eval mode), inputs'
        f" `(N, 3, {s.size}, {s.size})` made as in `bench_gradient.py` (seed {s.seed}, each sample rescaled to the"
        f" range of ImageNet-normalised pixels); `{MODELS['vgg']}` (random weights, eval mode) on the same"
        f' inputs; `sl.zoo.load("digits_cnn")` on the first {s.small_batch} test images of'
        f' `sl.zoo.dataset("digits")`; `{MODELS["vit"]}` (random weights, 4×4 patches, 4 pre-norm blocks with'
        f" `F.layer_norm`, `F.scaled_dot_product_attention` and GELU) on {s.small_batch} images"
        f" `(N, 3, {VIT_SIZE}, {VIT_SIZE})` made the same way. Target class {s.target}.",
        f'- References: zero baseline (ours `baseline="zeros"`, Captum a zero tensor); per-sample random references'
        f" (seed {s.seed + 1}, same range as the inputs); DeepSHAP background of K={s.references} random images"
        f" (seed {s.seed + 2}), the same tensor for ours and Captum. The ViT row uses per-sample random references.",
        "- **Floor**: one plain forward+backward of the batch in plain torch (gradient of the target score with"
        " respect to the input); for DeepSHAP, of the N·K (sample, reference) rows in chunks of the best chunk"
        f" size (search, ms per row: {search}; **best = {chunk} rows**). Target: ours ≤ {FLOOR_TARGET}× floor.",
        f"- **Captum on the zoo ResNet** (probed at N=1 on copies): {probe_text or 'not probed'}. Captum's rows"
        " therefore run a twin of the net built in the script: the same zoo ResNet class, the original's weights"
        " loaded with `load_state_dict`, each residual block's class swapped for `CaptumBlock`, whose forward uses"
        " two separate non-inplace `nn.ReLU` modules (and the stem's ReLU made non-inplace); max |twin − original|"
        f" over the logits of the inputs and references: {_fmt(checks.get('twin_diff'), '.1e')}. The digits CNN"
        " has a separate ReLU module per use: Captum runs it as is. Captum is called with"
        " `return_convergence_delta=True`, as ours always computes `.delta`.",
        "- **Completeness error**: max over the samples of |Σ attributions − (f(x) − f(x′))| (for DeepSHAP f(x′) is"
        " the mean over the background), with f from a plain forward of the model each side ran (ours: the original,"
        " Captum: the twin), summed in float64; relative: the same divided by |f(x) − f(x′)|, max over samples.",
        "- Timing (from `bench_gradient.py`): each call warmed up once if estimated under"
        f" {s.warmup_max_seconds:.0f} s, then R rounds of (ours, floor, Captum) alternating; times are medians,"
        f" ratios medians of the per-round ratios; R fits {s.cell_seconds:.0f} s per row, between {s.min_repeats} and"
        f" {s.max_repeats}. A timed call on the digits CNN or the ViT is {s.small_loops} calls in a row, reported"
        " per call; their floor is one forward+backward of the model itself."
        " Peak MB: peak resident memory above the level before the call, sampled every 2 ms in the first round.",
        "",
        "### Results",
        "",
        table(rows),
        "",
    ]
    if notes:
        lines += ["### Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["### Reading", "", *reading(rows, s, checks.get("pool_check"), checks.get("pool_share")), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    began = time.perf_counter()
    resnet = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)
    twin = captum_twin(resnet)
    resnet_rows = [r for r in s.rows if r in RESNET]
    checks: dict = {"pool_check": captum_pool_check(s)}
    print(f"Captum on the digits CNN with average instead of max pooling: relative gap {checks['pool_check']:.1e}")
    if resnet_rows:
        n = max(s.batches)
        checked = (make_images(n, s.size, s.seed), make_images(n, s.size, s.seed + 1))
        checks["twin_diff"] = max_output_diff(resnet, twin, *checked, make_images(s.references, s.size, s.seed + 2))
        print(f"Captum twin: max |twin - original| over the logits = {checks['twin_diff']:.2e}")
        checks["probe"] = captum_on_original(resnet, s)
    per_row_s = find_best_chunk(resnet, s)
    chunk = min(per_row_s, key=per_row_s.get)
    print(f"best floor chunk: {chunk} rows")

    nets = {"resnet": resnet, "twin": twin, "digits": sl.zoo.load("digits_cnn")}
    nets["vit"] = sl.zoo.load("vit_tiny_shaped", num_classes=10, seed=0)
    if "vgg" in s.rows:
        nets["vgg"] = sl.zoo.load("vgg16_shaped", num_classes=1000, seed=0)
        nets["vgg_twin"] = non_inplace(nets["vgg"])
    large = [*resnet_rows, *(["vgg"] if "vgg" in s.rows else [])]
    cells = [build_cell(kind, n, nets, s, per_row_s, chunk) for n in s.batches for kind in large]
    cells += [build_cell(kind, s.small_batch, nets, s, per_row_s, chunk) for kind in SMALL if kind in s.rows]
    plan = [(cell, plan_repeats(cell, s)) for cell in cells]
    total = sum(r * sum(c.seconds for c in cell.contenders) for cell, r in plan)
    print(f"{len(plan)} rows; roughly {total / 60:.1f} min of timed rounds, plus warm-ups", flush=True)

    rows: list[Row] = []
    notes: list[str] = []
    for index, (cell, repeats) in enumerate(plan, start=1):
        print(f"[{index}/{len(plan)}] batch {cell.batch} {cell.method}: R={repeats}", flush=True)
        row = measure_row(cell, run_cell(cell, repeats, s), repeats, s)
        rows.append(row)
        raised = [(label, m.error) for label, m in row.results.items() if m.error]
        notes += [f"batch {row.batch}, {row.title}: {label} raised {error}" for label, error in raised]

    if "rescale_random" in s.rows:
        checks["pool_share"] = {n: pool_share(resnet, n, s) for n in s.batches}
        print(f"max-pool rule's share of a Rescale call with random references: {_shares(checks['pool_share'])}")
    elapsed = time.perf_counter() - began
    write_section(s.out, SECTION, section(s, rows, notes, checks, per_row_s, chunk, elapsed))
    print(f"\n{table(rows)}")
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
