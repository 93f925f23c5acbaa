"""Scale Integrated Gradients: time against steps, image size and batch size, passes to a completeness error, memory.

On the zoo's ResNet-18-shaped network (random weights) the script measures

- **time** of ``saliencelab.explain(method="integrated_gradients")`` against its floor (the same S×N bare
  forward+backward rows at the best chunk size, plus f(x) and f(baseline)) and against Captum's
  ``IntegratedGradients`` at the same steps, while one of steps, image size or batch size varies
  (the contenders, floor and timing rounds are ``bench_gradient.py``'s, imported);
- **peak memory** of one IG call with 200 steps on 224x224 images, each contender in a fresh process, from the
  kernel's resident high-water mark (``VmHWM``, reset just before the call), against the default ``memory_budget``;
- **model passes to a relative completeness error** of 1e-3: Captum's default quadrature (Gauss-Legendre) at
  doubling ``n_steps`` against ours with ``tolerance=1e-3``, rows through the model counted by a forward
  pre-hook, on the trained digits CNN and on the ResNet with a random reference.

It writes one section of ``BENCHMARKS.md`` between ``<!-- bench_scaling: begin -->`` and
``<!-- bench_scaling: end -->``, leaving the rest of the file alone. See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_scaling.py                       # full run (~15 min on 2 cores)
    python benchmarks/bench_scaling.py --quick --out /tmp/q.md
    python benchmarks/bench_scaling.py --parts memory passes  # only the memory check and the passes table
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import bench_gradient as bg
import torch

import saliencelab as sl
from saliencelab.core.batching import DEFAULT_MEMORY_BUDGET

SECTION = "bench_scaling"
METHOD = "integrated_gradients"
PARTS = ("steps", "sizes", "batches", "memory", "passes")
MEMORY_CONTENDERS = ("ours", "floor", "captum", "captum_default")
INTEGRATIONS = ("adaptive", "gauss_legendre", "riemann_middle", "riemann_trapezoid")
"""Rules tried with ``tolerance=`` (the first is ours' default with a tolerance)."""
CAPTUM_DEFAULT_STEPS = 50
"""Captum's ``IntegratedGradients.attribute`` default ``n_steps`` (its default method is Gauss-Legendre)."""
PASSES_TARGET = 0.5
"""Target: ours reaches the tolerance in at most this fraction of Captum's passes."""

Tensor = torch.Tensor


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line."""

    parts: list[str]
    steps: list[int]
    sizes: list[int]
    batches: list[int]
    base_size: int
    base_steps: int
    memory_size: int
    memory_steps: int
    memory_batch: int
    captum_default_memory: bool
    tolerance: float
    grid: list[int]
    start_steps: int
    max_steps: int
    passes_size: int
    chunks: list[int]
    max_repeats: int
    min_repeats: int
    cell_seconds: float
    threads: int
    out: Path
    quick: bool


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: small images and grids, few repeats")
    p.add_argument("--parts", nargs="+", default=list(PARTS), help=f"subset of {', '.join(PARTS)}")
    p.add_argument("--steps", nargs="+", type=int, help="IG steps of the steps sweep (default 16 32 64 128 200)")
    p.add_argument("--sizes", nargs="+", type=int, help="image sides of the size sweep (default 32 64 128 224)")
    p.add_argument("--batches", nargs="+", type=int, help="batch sizes of the batch sweep (default 1 2 4 8)")
    p.add_argument("--base-size", type=int, help="image side of the steps and batch sweeps (default 224, quick 64)")
    p.add_argument("--base-steps", type=int, help="IG steps of the size and batch sweeps (default 32, quick 16)")
    p.add_argument("--memory-size", type=int, default=224, help="image side of the memory check (default 224)")
    p.add_argument("--memory-steps", type=int, default=200, help="IG steps of the memory check (default 200)")
    p.add_argument("--memory-batch", type=int, default=1, help="batch of the memory check (default 1)")
    p.add_argument(
        "--captum-default-memory",
        action="store_true",
        help="also measure Captum's defaults in the memory check (all S×N rows in one batch: several GB at 224²)",
    )
    p.add_argument("--tolerance", type=float, default=1e-3, help="relative completeness error to reach (1e-3)")
    p.add_argument(
        "--grid",
        nargs="+",
        type=int,
        help="Captum's n_steps, tried until within the tolerance (default 1 2 4 ... 1024, quick ..128)",
    )
    p.add_argument("--start-steps", type=int, default=8, help="ours' starting steps with tolerance= (default 8)")
    p.add_argument("--max-steps", type=int, default=512, help="ours' max_steps with tolerance= (default 512)")
    p.add_argument("--passes-size", type=int, help="ResNet image side of the passes table (default 224, quick 64)")
    p.add_argument("--chunks", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32], help="floor chunk sizes to try")
    p.add_argument("--repeats", type=int, help="most rounds per cell (default 3, quick 2)")
    p.add_argument("--min-repeats", type=int, default=1, help="fewest rounds per cell (default 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per cell fit in this (default 30, quick 4)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--out", type=Path, default=bg.REPO_ROOT / "BENCHMARKS.md", help="Markdown report to update")
    p.add_argument("--measure-memory", choices=MEMORY_CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    parts = [x for item in a.parts for x in item.split(",") if x]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    q = a.quick
    s = Settings(
        parts=[x for x in PARTS if x in parts],
        steps=a.steps or ([8, 16, 32] if q else [16, 32, 64, 128, 200]),
        sizes=a.sizes or ([32, 64] if q else [32, 64, 128, 224]),
        batches=a.batches or ([1, 2] if q else [1, 2, 4, 8]),
        base_size=a.base_size or (64 if q else 224),
        base_steps=a.base_steps or (16 if q else 32),
        memory_size=a.memory_size,
        memory_steps=a.memory_steps,
        memory_batch=a.memory_batch,
        captum_default_memory=a.captum_default_memory,
        tolerance=a.tolerance,
        grid=a.grid or [2**k for k in range(8 if q else 11)],
        start_steps=a.start_steps,
        max_steps=a.max_steps,
        passes_size=a.passes_size or (64 if q else 224),
        chunks=sorted(set(a.chunks)),
        max_repeats=a.repeats or (2 if q else 3),
        min_repeats=a.min_repeats,
        cell_seconds=a.cell_seconds or (4.0 if q else 30.0),
        threads=a.threads,
        out=a.out,
        quick=q,
    )
    return s, a


def gradient_settings(s: Settings, size: int, steps: int) -> bg.Settings:
    """``bench_gradient.py``'s settings for one IG cell (its contenders, floor and timing rounds)."""
    return bg.parse_args(
        ["--methods", METHOD, "--size", str(size), "--steps", str(steps), "--threads", str(s.threads)]
        + ["--repeats", str(s.max_repeats), "--min-repeats", str(s.min_repeats)]
        + ["--cell-seconds", str(s.cell_seconds), "--chunks", *map(str, s.chunks), "--out", str(s.out)]
    )


# --------------------------------------------------------------------------- timing sweeps


@dataclass
class Timed:
    """One timed cell of a sweep."""

    size: int
    steps: int
    batch: int
    chunk: int
    results: dict[str, bg.Measured]
    repeats: int
    diff: str


class Chunks:
    """The best floor chunk per image size, searched once per size (``bench_gradient.find_best_chunk``)."""

    def __init__(self, model: torch.nn.Module, s: Settings) -> None:
        self.model, self.s = model, s
        self.found: dict[int, tuple[dict[int, float], int]] = {}

    def __call__(self, size: int) -> tuple[dict[int, float], int]:
        if size not in self.found:
            per_row = bg.find_best_chunk(self.model, gradient_settings(self.s, size, 1))
            self.found[size] = (per_row, min(per_row, key=per_row.get))
        return self.found[size]


def time_cell(model, s: Settings, chunks: Chunks, size: int, steps: int, batch: int) -> Timed:
    """Ours, the floor and Captum (``internal_batch_size`` = best chunk) at one point of a sweep."""
    gs = gradient_settings(s, size, steps)
    per_row, chunk = chunks(size)
    cell = bg.build_cell(model, METHOD, batch, gs, per_row, chunk)
    cell.contenders = [c for c in cell.contenders if c.label != "captum_default"]  # Captum's defaults: 50 steps
    cell.captum_rows = {"captum": METHOD}
    repeats = bg.plan_repeats(cell, gs)
    print(f"IG {size}x{size}, S={steps}, N={batch}: R={repeats}", flush=True)
    results = bg.run_cell(cell, repeats, gs)
    diff, _ = bg.agreement(cell, results["ours"], results["captum"], gs)
    return Timed(size, steps, batch, chunk, results, repeats, diff)


TIME_HEADER = (
    "| {vary} | rows S×N | ours s | floor s | Captum s | ours/floor | ours/Captum | ms per row ours / floor "
    "| max \\|ours − Captum\\| | peak MB ours/floor/Captum | R |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|"
)


def time_table(cells: list[Timed], vary: str) -> str:
    """A Markdown table of one sweep; ``vary`` names the column that changes."""
    lines = [TIME_HEADER.format(vary=vary)]
    for c in cells:
        r = c.results
        ours, floor = bg._median(r["ours"]), bg._median(r["floor"])
        rows = c.steps * c.batch
        value = {"steps S": c.steps, "image side": c.size, "batch N": c.batch}[vary]
        per_row = f"{bg._fmt(ours and ours / rows * 1e3, '.1f')} / {bg._fmt(floor and floor / rows * 1e3, '.1f')}"
        peaks = "/".join(bg._fmt(r[k].peak_mb, ".0f") for k in ("ours", "floor", "captum"))
        lines.append(
            f"| {value} | {rows} | {bg._seconds(r['ours'])} | {bg._seconds(r['floor'])} | {bg._seconds(r['captum'])} "
            f"| {bg._fmt(bg._ratio(r['ours'], r['floor']), '.2f')} "
            f"| {bg._fmt(bg._ratio(r['ours'], r['captum']), '.2f')} | {per_row} | {c.diff} | {peaks} | {c.repeats} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- memory (one process per contender)


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _reset_high_water() -> bool:
    """Reset this process's resident high-water mark (``VmHWM``) to its current resident size (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_child(s: Settings, contender: str, chunk: int) -> dict:
    """In a fresh process: one call of ``contender``; its resident peak above the resident level before it."""
    torch.set_num_threads(s.threads)
    model = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)
    gs = gradient_settings(s, s.memory_size, s.memory_steps)
    # a nominal second per row: the cell is built to be called once, never looped as a cheap call
    cell = bg.build_cell(model, METHOD, s.memory_batch, gs, {chunk: 1.0}, chunk)
    call = next(c.call for c in cell.contenders if c.label == contender)
    gc.collect()
    _malloc_trim()
    high_before = _status_mb("VmHWM")
    reset = _reset_high_water()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    exact = reset or peak > high_before  # without the reset, an earlier high-water mark may hide the call's peak
    return {"before_mb": before, "peak_mb": peak, "extra_mb": peak - before, "exact": exact, "seconds": seconds}


def measure_memory(s: Settings, contender: str, chunk: int) -> dict:
    """Run :func:`memory_child` in a subprocess and read its JSON line; ``{"error": ...}`` if it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--measure-memory", contender, "--chunk", str(chunk)]
    command += ["--memory-size", str(s.memory_size), "--memory-steps", str(s.memory_steps)]
    command += ["--memory-batch", str(s.memory_batch), "--threads", str(s.threads)]
    print(f"memory: {contender}, IG S={s.memory_steps} at {s.memory_size}x{s.memory_size}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])


MEMORY_TITLES = {
    "ours": "saliencelab, defaults (`memory_budget` 1 GiB)",
    "floor": "floor: plain torch, best chunk",
    "captum": "Captum, `internal_batch_size` = best chunk",
    "captum_default": "Captum, defaults (all S×N rows in one batch)",
}


MEMORY_SHORT = {"floor": "floor", "captum": "Captum with the best chunk", "captum_default": "Captum's defaults"}


def _peak(m: dict) -> str:
    """A measured peak, or an upper bound where the high-water mark could not be reset and the call did not raise it."""
    return f"{m['extra_mb']:.0f}" if m["exact"] else f"≤ {m['extra_mb']:.0f}"


def memory_table(found: dict[str, dict], budget_mb: float) -> str:
    """The memory check's table: one row per contender."""
    lines = [
        "| contender | peak MB above the level before the call | within the default budget | resident MB before"
        " | resident peak MB | s |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for label, m in found.items():
        title = MEMORY_TITLES[label]
        if "skipped" in m or "error" in m:
            lines.append(f"| {title} | {m.get('skipped') or m['error']} | — | — | — | — |")
            continue
        extra = _peak(m)
        within = "yes" if m["extra_mb"] <= budget_mb else "no"
        lines.append(
            f"| {title} | {extra} | {within} | {m['before_mb']:.0f} | {m['peak_mb']:.0f} | {m['seconds']:.1f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- passes to a completeness error


class RowCounter:
    """Counts the rows a model's forward sees (a forward pre-hook, removed on exit)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.rows = model, 0

    def __enter__(self) -> RowCounter:
        self.handle = self.model.register_forward_pre_hook(self._hook)
        return self

    def _hook(self, module, args) -> None:
        self.rows += args[0].shape[0]

    def __exit__(self, *exc) -> None:
        self.handle.remove()


@dataclass
class Case:
    """A model, inputs and a baseline whose IG completeness is measured."""

    title: str
    model: torch.nn.Module
    x: Tensor
    baseline: Tensor
    chunk: int


def cases(s: Settings, chunks: Chunks) -> list[Case]:
    """The trained digits CNN on 8 test digits (zero baseline); the ResNet with a random reference."""
    digits = sl.zoo.load("digits_cnn")
    x_test = sl.zoo.dataset("digits")[2][:8]
    resnet = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)
    size = s.passes_size
    x = bg.make_images(1, size, 0)
    return [
        Case("digits_cnn (trained), 8 test digits, zero baseline", digits, x_test, torch.zeros_like(x_test), 64),
        Case(
            f"resnet18_shaped (random weights) {size}², 1 image, random reference",
            resnet,
            x,
            bg.make_images(1, size, 1),
            chunks(size)[1],
        ),
    ]


def relative_errors(case: Case, targets: Tensor, values: Tensor) -> Tensor:
    """Per sample |Σ values − (f(x) − f(x'))| / |f(x) − f(x')|, sums in float64."""
    with torch.no_grad():
        rows = torch.arange(len(targets))
        difference = (case.model(case.x)[rows, targets] - case.model(case.baseline)[rows, targets]).double()
    sums = values.double().reshape(len(values), -1).sum(dim=1)
    return (sums - difference).abs() / difference.abs()


@dataclass
class Passes:
    """What one case needed to reach the tolerance."""

    case: Case
    captum: dict[int, tuple[float, float]]
    """n_steps -> (max relative error, rows through the model per sample)."""
    ours_grid: dict[int, float]
    """steps -> max relative error of ours (Gauss-Legendre, no tolerance)."""
    ours: dict[str, tuple[float, float, list[int]]]
    """integration -> (rows per sample, max relative error, steps used per sample) with ``tolerance=``."""
    zero_one_step: float | None = None


def passes(case: Case, s: Settings) -> Passes:
    """Captum's default quadrature on the grid, ours on the grid, and ours with ``tolerance=`` per rule."""
    from captum.attr import IntegratedGradients

    n = case.x.shape[0]
    targets = torch.as_tensor(sl.explain(case.model, case.x, method=METHOD, steps=1).target).reshape(-1)
    ig = IntegratedGradients(case.model)
    captum, ours_grid, ours = {}, {}, {}
    for steps in s.grid:
        with RowCounter(case.model) as counter, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values, _ = ig.attribute(
                case.x,
                baselines=case.baseline,
                target=targets,
                n_steps=steps,
                internal_batch_size=max(case.chunk, n),
                return_convergence_delta=True,
            )
        captum[steps] = (float(relative_errors(case, targets, values).max()), counter.rows / n)
        values = sl.explain(case.model, case.x, method=METHOD, target=targets, baseline=case.baseline, steps=steps)
        ours_grid[steps] = float(relative_errors(case, targets, values.values).max())
        print(f"  {case.title[:40]}: S={steps} Captum {captum[steps][0]:.1e}, ours {ours_grid[steps]:.1e}", flush=True)
        if captum[steps][0] <= s.tolerance:
            break  # larger grids cost more and decide nothing
    for integration in INTEGRATIONS:
        explainer = sl.IntegratedGradients(
            case.model, steps=s.start_steps, integration=integration, tolerance=s.tolerance, max_steps=s.max_steps
        )  # the adaptive rule starts from its own 5 points; `steps` is the fixed rules' start
        with RowCounter(case.model) as counter, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not reaching the tolerance shows in the table
            a = explainer(case.x, target=targets, baseline=case.baseline)
        error = float(relative_errors(case, targets, a.values).max())
        ours[integration] = (counter.rows / n, error, a.info["steps"].tolist())
        print(f"  {case.title[:40]}: tolerance, {integration}: {counter.rows / n:.0f} rows/sample, {error:.1e}")
    return Passes(case, captum, ours_grid, ours)


def homogeneous_check(model, size: int) -> float:
    """Ours' relative completeness error with one step on the ResNet from a zero baseline."""
    x = bg.make_images(1, size, 0)
    case = Case("", model, x, torch.zeros_like(x), 1)
    a = sl.explain(model, x, method=METHOD, baseline="zeros", steps=1, target=3)
    return float(relative_errors(case, torch.tensor([3]), a.values).max())


def first_reaching(errors: dict[int, float], tolerance: float) -> int | None:
    """The smallest key whose error is within the tolerance."""
    return next((k for k in sorted(errors) if errors[k] <= tolerance), None)


def convergence_table(found: list[Passes]) -> str:
    """Max relative completeness error against steps, Captum and ours (both Gauss-Legendre)."""
    grid = sorted({k for p in found for k in p.captum})  # each case's grid stops where Captum reaches it
    lines = [
        "| model | quadrature | " + " | ".join(f"S={k}" for k in grid) + " |",
        "|---|---|" + "---:|" * len(grid),
    ]
    for p in found:
        lines.append(
            f"| {p.case.title} | Captum `gausslegendre` (its default) | "
            + " | ".join(f"{p.captum[k][0]:.1e}" if k in p.captum else "—" for k in grid)
            + " |"
        )
        lines.append(
            f"| {p.case.title} | ours `gauss_legendre` (our default for fixed steps) | "
            + " | ".join(f"{p.ours_grid[k]:.1e}" if k in p.ours_grid else "—" for k in grid)
            + " |"
        )
    return "\n".join(lines)


PASSES_HEADER = (
    "| model | Captum: smallest n_steps within tolerance | Captum passes per sample | ours call "
    "| ours passes per sample | steps used per sample | ours max rel. error | ours / Captum passes | target |\n"
    "|---|---:|---:|---|---:|---|---:|---:|---|"
)


def captum_reach(p: Passes, tolerance: float) -> tuple[int | None, float | None]:
    """Captum's smallest n_steps on the grid within the tolerance and its passes per sample (None if none)."""
    reach = first_reaching({k: v[0] for k, v in p.captum.items()}, tolerance)
    return reach, (p.captum[reach][1] if reach else None)


def passes_verdict(ours_passes: float, error: float, p: Passes, s: Settings) -> tuple[str, str]:
    """The ours / Captum passes column and the target verdict of one tolerance run."""
    reach, captum_passes = captum_reach(p, s.tolerance)
    reached = error <= s.tolerance
    if not reached:
        return "—", "NOT met (tolerance not reached)"
    if captum_passes is not None:
        ratio = ours_passes / captum_passes
        return f"{ratio:.2f}", "met" if ratio <= PASSES_TARGET else "NOT met"
    bound = ours_passes / p.captum[max(p.captum)][1]  # Captum needs more than its largest grid point
    if bound <= PASSES_TARGET:
        return f"< {bound:.2f}", "met"
    return f"< {bound:.2f}", f"undecided (Captum not within the tolerance up to n_steps={max(p.captum)})"


def passes_rows(p: Passes, s: Settings) -> list[str]:
    """Rows of the passes table: one per integration rule tried with ``tolerance=``."""
    reach, captum_passes = captum_reach(p, s.tolerance)
    captum_steps = str(reach) if reach else f"> {max(p.captum)} (not reached)"
    rows = []
    for integration, (ours_passes, error, used) in p.ours.items():
        ratio, verdict = passes_verdict(ours_passes, error, p, s)
        default = " (default)" if integration == INTEGRATIONS[0] else ""
        steps = "" if integration == "adaptive" else f", steps={s.start_steps}"
        call = f'`tolerance={s.tolerance:g}{steps}, integration="{integration}"`{default}'
        steps_used = ", ".join(str(k) for k in sorted(set(used)))
        rows.append(
            f"| {p.case.title} | {captum_steps} | {bg._fmt(captum_passes, '.0f')} | {call} | {ours_passes:.0f} "
            f"| {steps_used} | {error:.1e} | {ratio} | {verdict} |"
        )
    return rows


# --------------------------------------------------------------------------- reading and section


def _ratios(cells: list[Timed], peer: str) -> list[float]:
    return [r for c in cells if (r := bg._ratio(c.results["ours"], c.results[peer])) is not None]


def _per_row_ms(c: Timed, label: str) -> str:
    seconds = bg._median(c.results[label])
    return bg._fmt(seconds and seconds / (c.steps * c.batch) * 1e3, ".1f")


def _span(values: list[float], spec: str = ".2f") -> str:
    return f"{min(values):{spec}}–{max(values):{spec}}" if values else "—"


def reading(
    sweeps: dict[str, list[Timed]], memory: dict[str, dict] | None, found: list[Passes], s: Settings, zero: float | None
) -> list[str]:
    """The section's reading, with this run's numbers."""
    lines = []
    timed = [c for cells in sweeps.values() for c in cells]
    if timed:
        lines.append(
            f"- **Time.** Over every timed point ours/floor is {_span(_ratios(timed, 'floor'))} and ours/Captum"
            f" {_span(_ratios(timed, 'captum'))} (Captum with the floor's best chunk as `internal_batch_size`). All"
            " three run the same S×N forward+backward rows; ours sizes its chunks from the 1 GiB memory budget,"
            " the floor and Captum use the fastest chunk found by timing, and ours adds f(x) and f(baseline) for"
            " `.delta` (the floor and Captum with `return_convergence_delta=True` do too)."
        )
    for part, vary in (("steps", "S"), ("sizes", "side"), ("batches", "N")):
        cells = sweeps.get(part, [])
        if not cells:
            continue
        values = {"S": lambda c: c.steps, "side": lambda c: c.size, "N": lambda c: c.batch}[vary]
        per_row = "; ".join(
            f"{vary}={values(c)}: {_per_row_ms(c, 'ours')} / {_per_row_ms(c, 'floor')} / {_per_row_ms(c, 'captum')}"
            for c in cells
        )
        lines.append(f"- **{part.capitalize()}**, ms per row, ours / floor / Captum: {per_row}.")
    size_cells = sweeps.get("sizes", [])
    ratios = [bg._ratio(c.results["ours"], c.results["floor"]) for c in size_cells]
    if len(size_cells) > 1 and None not in ratios and ratios[0] > max(bg.FLOOR_TARGET, ratios[-1] + 0.05):
        lines.append(
            f"- **Small images.** ours/floor {ratios[0]:.2f} at {size_cells[0].size}² against {ratios[-1]:.2f} at"
            f" {size_cells[-1].size}²: a call's fixed cost (target and baseline resolution, the forwards for `.delta`,"
            " measuring one row's activations, Python dispatch) weighs more where a row costs little."
        )
    if memory and "extra_mb" in memory.get("ours", {}):
        ours = memory["ours"]
        others = ", ".join(
            f"{MEMORY_SHORT[k]} {_peak(v)} MB" for k, v in memory.items() if k != "ours" and "extra_mb" in v
        )
        lines.append(
            f"- **Memory.** IG with S={s.memory_steps} at {s.memory_size}² (N={s.memory_batch}) peaks"
            f" {_peak(ours)} MB above the resident level before the call, against the default budget of"
            f" {DEFAULT_MEMORY_BUDGET / 2**20:.0f} MiB ({others}). The budget bounds the activations and gradients"
            " of a chunk, estimated from one measured row; the resident peak counts everything the process"
            " allocates during the call."
        )
    for p in found:
        lines.append(passes_reading(p, s))
    if zero is not None:
        lines.append(
            "- **Why a random reference for the ResNet.** From a zero baseline the zoo's random ResNet is affine"
            " along the path, f(αx) − f(0) = α (f(x) − f(0)) (ReLU layers without biases: its batch norms are at"
            f" their initial state), so its gradient is the same at every step: relative error {zero:.1e} at S=1."
            " Any quadrature meets any tolerance there."
        )
    return lines


def passes_reading(p: Passes, s: Settings) -> str:
    """One bullet of the reading on what a case needed to reach the tolerance."""
    errors = {k: v[0] for k, v in p.captum.items()}
    reach, _ = captum_reach(p, s.tolerance)
    if reach:
        captum = f"Captum's default quadrature first reaches it at n_steps={reach} ({errors[reach]:.1e})"
    else:
        best = min(errors.values())
        captum = f"Captum's default quadrature does not reach it up to n_steps={max(errors)} (best {best:.1e})"
    at_default = p.captum.get(CAPTUM_DEFAULT_STEPS)
    if at_default:
        captum += f"; at its default {CAPTUM_DEFAULT_STEPS} steps: {at_default[0]:.1e}"
    default, legendre = p.ours[INTEGRATIONS[0]], p.ours["gauss_legendre"]
    best_rule, best = min(p.ours.items(), key=lambda kv: (kv[1][1] > s.tolerance, kv[1][0]))
    text = (
        f"- **Passes to {s.tolerance:g}, {p.case.title}.** {captum}. Ours with `tolerance` and its default"
        f" adaptive rule: {default[0]:.0f} passes per sample (error {default[1]:.1e}), points per sample"
        f" {min(default[2])}–{max(default[2])}: each interval's trapezoid error is measured exactly (the scores at"
        " its ends give the slope's integral), and each round bisects the intervals that hold half of the error,"
        " so the points gather where the ReLU network's gradient jumps along the path. With Gauss-Legendre (the"
        f" default for fixed steps): {legendre[0]:.0f} passes (error {legendre[1]:.1e}); its nodes do not nest, so"
        " each refinement starts again with twice the points and pays for every earlier round."
    )
    if best_rule != INTEGRATIONS[0]:
        text += (
            f" The cheapest rule here was `{best_rule}`: {best[0]:.0f} passes (error {best[1]:.1e}); it keeps the"
            " gradients of earlier rounds."
        )
    grid = sorted(errors)
    if any(errors[b] > errors[a] for a, b in zip(grid, grid[1:], strict=False)):
        text += (
            " The error is not monotone in the steps: the gradient of a ReLU network jumps along the path, so"
            " no rule converges at its rate for smooth integrands."
        )
    return text


def section(
    s: Settings,
    sweeps: dict[str, list[Timed]],
    memory: dict[str, dict] | None,
    found: list[Passes],
    zero: float | None,
    at_start: dict,
    elapsed: float,
    chunks: Chunks,
) -> str:
    """The ``bench_scaling`` section."""
    budget_mb = DEFAULT_MEMORY_BUDGET / 2**20
    search = "; ".join(
        f"{size}²: best {chunk} rows ({per_row[chunk] * 1e3:.1f} ms/row)"
        for size, (per_row, chunk) in chunks.found.items()
    )
    lines = [
        "## Integrated Gradients: scaling with steps, image size and batch size",
        "",
        "Generated by `benchmarks/bench_scaling.py` (see `benchmarks/README.md`); this section is replaced on every"
        " run of that script and kept when the other scripts regenerate the file.",
        "",
    ]
    if s.quick:
        lines += [
            "**Quick smoke run (`--quick`): small images and grids, few repeats; not for comparison. The memory"
            f" check still runs S={s.memory_steps} at {s.memory_size}².**",
            "",
        ]
    lines += [
        "### Setup",
        "",
        f"- Machine: {at_start['CPU']}; torch threads: {s.threads}",
        f"- Software: {at_start['Software']}",
        f"- Date: {at_start['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{bg.command_line()}`",
        '- Model: `sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)` (random weights, eval mode); inputs made'
        f" as in `bench_gradient.py` (seed 0, each sample rescaled to [{bg.VALUE_RANGE[0]}, {bg.VALUE_RANGE[1]}]);"
        " target class 3; zero baseline.",
        '- Contenders (from `bench_gradient.py`): ours `sl.explain(model, x, method="integrated_gradients",'
        ' baseline="zeros", steps=S, integration="gauss_legendre")`; floor: the S×N rows of bare'
        " forward+backward in plain torch at the best chunk size, plus f(x) and f(baseline); Captum"
        ' `IntegratedGradients`, `n_steps=S`, `method="gausslegendre"`, `internal_batch_size` = max(best chunk, N),'
        " `return_convergence_delta=True`.",
        f"- Best chunk (plain forward+backward, searched per image size over {s.chunks}): {search or '—'}",
        "- Timing: each call warmed up once if estimated under 10 s, then R alternating rounds (ours, floor, Captum);"
        f" medians, ratios are medians of per-round ratios; R fits {s.cell_seconds:.0f} s per cell, between"
        f" {s.min_repeats} and {s.max_repeats}. Peak MB in the timing tables: resident memory above the level before"
        " the call, sampled every 2 ms in the first round (`bench_gradient.PeakRSS`).",
        "- Memory check: each contender in a fresh Python process (model loaded, inputs made, no warm-up), one call."
        " Just before it (after `gc.collect()` and `malloc_trim`) the process's resident high-water mark is reset to"
        " its resident size (`echo 5 > /proc/self/clear_refs`); peak = `VmHWM` after the call minus `VmRSS` before"
        " it, both from `/proc/self/status`. The kernel keeps the high-water mark: no sampling gaps. It counts"
        " everything resident (allocator caches included). Not `getrusage(...).ru_maxrss`: on Linux it survives"
        " `exec`, so a child started from the benchmark process starts at the parent's size; not `tracemalloc`:"
        " it does not see torch's CPU allocations. Where the mark cannot be reset and the call does not raise it,"
        " the value is an upper bound (≤).",
        f"- Passes: rows through the model's forward (a forward pre-hook), per sample, until the maximum over samples"
        f" of |Σ attributions − (f(x) − f(x′))| / |f(x) − f(x′)| (float64 sums, computed the same way for both) is"
        f" within {s.tolerance:g}. Captum: its default quadrature (Gauss-Legendre) at n_steps in {s.grid} with"
        " `return_convergence_delta=True`; its count is at the smallest n_steps on that grid that reaches the"
        f" tolerance (Captum has no tolerance option; a user would have to search). Ours: `tolerance={s.tolerance:g}`,"
        f" starting at `steps={s.start_steps}`, `max_steps={s.max_steps}`, for each rule; every pass counted"
        " (refinements, f(x), f(x′), the one-row memory measurement).",
        "",
    ]
    titles = {
        "steps": ("steps S", f"### Time against steps ({s.base_size}², N=1)"),
        "sizes": ("image side", f"### Time against image size (S={s.base_steps}, N=1)"),
        "batches": ("batch N", f"### Time against batch size ({s.base_size}², S={s.base_steps})"),
    }
    for part, cells in sweeps.items():
        vary, title = titles[part]
        lines += [title, "", time_table(cells, vary), ""]
    if memory is not None:
        lines += [
            f"### Memory: IG with S={s.memory_steps} at {s.memory_size}², N={s.memory_batch}",
            "",
            f"Default `memory_budget`: {budget_mb:.0f} MiB.",
            "",
            memory_table(memory, budget_mb),
            "",
        ]
    if found:
        lines += [
            "### Completeness error against steps (untimed)",
            "",
            "Max over samples of the relative completeness error.",
            "",
            convergence_table(found),
            "",
            f"### Passes to a relative completeness error of {s.tolerance:g}",
            "",
            f"Target: ours within {s.tolerance:g} in at most {PASSES_TARGET:g}× the passes Captum's default"
            " quadrature needs.",
            "",
            PASSES_HEADER,
            *[row for p in found for row in passes_rows(p, s)],
            "",
        ]
    lines += ["### Reading", "", *reading(sweeps, memory, found, s, zero), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for and write the section."""
    s, a = parse_args(argv)
    torch.set_num_threads(s.threads)
    if a.measure_memory:
        print(json.dumps(memory_child(s, a.measure_memory, a.chunk or 1)))
        return 0
    began = time.perf_counter()
    at_start = bg.machine()
    model = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)
    chunks = Chunks(model, s)
    plans: dict[str, list[tuple[int, int, int]]] = {
        "steps": [(s.base_size, k, 1) for k in s.steps],
        "sizes": [(size, s.base_steps, 1) for size in s.sizes],
        "batches": [(s.base_size, s.base_steps, n) for n in s.batches],
    }
    sweeps = {part: [time_cell(model, s, chunks, *p) for p in plan] for part, plan in plans.items() if part in s.parts}
    memory = None
    if "memory" in s.parts:
        chunk = chunks(s.memory_size)[1]
        memory = {}
        for contender in MEMORY_CONTENDERS:
            rows = s.memory_steps * s.memory_batch
            if contender == "captum_default" and not s.captum_default_memory:
                memory[contender] = {"skipped": f"not run: {rows} rows in one batch (`--captum-default-memory`)"}
                continue
            memory[contender] = measure_memory(s, contender, chunk)
    found, zero = [], None
    if "passes" in s.parts:
        found = [passes(case, s) for case in cases(s, chunks)]
        zero = homogeneous_check(model, s.passes_size)
    elapsed = time.perf_counter() - began
    text = section(s, sweeps, memory, found, zero, at_start, elapsed, chunks)
    bg.write_section(s.out, SECTION, text)
    print(text)
    print(f"\nwrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
