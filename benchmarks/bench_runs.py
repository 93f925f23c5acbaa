"""Time data-set runs (``sl.run``): the local engine, Ray with 1 and 2 workers, a plain Captum loop; estimate scaling.

Measured on this machine (float32, CPU):

1. **samples per second** on the zoo's digits (all 1,797, the trained digits CNN) and on
   a larger input (256 random 3×64² images through the zoo's ResNet-18-shaped network,
   random weights), with the gradient and Integrated Gradients (``STEPS`` steps) and no
   per-sample checks, for
   - ``local``: ``sl.run(..., engine="local")`` (torch's default threads);
   - ``ray 1``, ``ray 2``: ``sl.run(..., engine="ray", workers=k)`` on a local Ray started
     once before the timed runs (its start-up is reported on its own), one torch thread per worker;
   - ``captum loop``: the same chunks through a Python loop of a forward pass (for the
     predicted classes), Captum's ``Saliency`` and ``IntegratedGradients`` at the same steps
     (Riemann midpoint on both sides), keeping the maps in memory (nothing written);
2. **the store's write time** on its own: the digits run's arrays and table parts written again
   into a fresh store, chunk by chunk (MB/s of uncompressed float32);
3. **Ray's overhead per chunk**: a job whose chunks cost next to nothing (a 4→2 linear model, one
   sample per chunk), timed with few and with many chunks;
4. **per-worker throughput** of a ResNet-50-sized network (bottleneck blocks 3-4-6-3, 25.6 M
   parameters, random weights) at 224², one torch thread, for the gradient and for Integrated
   Gradients with 32 steps, from :func:`saliencelab.runs.compute_chunk` as a worker runs it;

and from these numbers an estimate of the time of ImageNet-val (50,000 images) on 1, 8 and 64
workers. It writes one section of ``BENCHMARKS.md`` between ``<!-- bench_runs: begin -->`` and
``<!-- bench_runs: end -->``.

Usage::

    python benchmarks/bench_runs.py                      # full run (~25 min on 2 cores)
    python benchmarks/bench_runs.py --quick --out /tmp/q.md
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bench_gradient import REPO_ROOT, command_line, machine, write_section
from torch import nn

import saliencelab as sl
from saliencelab.runs import RunStore, as_source, compute_chunk

SECTION = "bench_runs"
STEPS = 32
"""Integrated Gradients steps everywhere (the per-worker figure asks for 32)."""
BATCH = 64
IMAGENET_VAL = 50_000
WORKERS = (1, 8, 64)
FLOOR_TARGET = 1.1
"""The local engine's time may be at most this multiple of its methods' floors plus the store's write time."""


@dataclass
class Settings:
    quick: bool
    out: Path
    repeats: int
    large_repeats: int
    digits: int
    images: int
    resnet50_images: int


@dataclass
class Case:
    """A data set for the engines: its name, model and data."""

    name: str
    model: nn.Module
    data: tuple[torch.Tensor, torch.Tensor]


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat on small data (a smoke run)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md")
    a = parser.parse_args(argv)
    if a.quick:
        return Settings(True, a.out, repeats=1, large_repeats=1, digits=256, images=32, resnet50_images=1)
    return Settings(False, a.out, repeats=3, large_repeats=1, digits=1797, images=192, resnet50_images=2)


# --------------------------------------------------------------------------- models


class Bottleneck(nn.Module):
    """ResNet-50's block: 1×1 down, 3×3, 1×1 up (×4), with a projected shortcut where the shape changes."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        out = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out),
        )  # fmt: skip
        self.shortcut = nn.Identity() if stride == 1 and inputs == out else \
            nn.Sequential(nn.Conv2d(inputs, out, 1, stride, bias=False), nn.BatchNorm2d(out))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet50_sized(num_classes: int = 1000) -> nn.Module:
    """A ResNet-50-shaped network (He et al., 2016), random weights, in eval mode: 25.6 M parameters."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]  # fmt: skip
    inputs = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for block in range(blocks):
            layers.append(Bottleneck(inputs, width, 2 if block == 0 and stage > 0 else 1))
            inputs = 4 * width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inputs, num_classes)]
    return nn.Sequential(*layers).eval()


def cases(s: Settings) -> list[Case]:
    x_train, y_train, x_test, y_test = sl.zoo.dataset("digits")
    digits = (torch.cat([x_train, x_test])[: s.digits], torch.cat([y_train, y_test])[: s.digits])
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(s.images, 3, 64, 64, generator=generator)
    resnet = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0)
    return [
        Case(f"digits CNN (trained), {s.digits} digits 8²", sl.zoo.load("digits_cnn"), digits),
        Case(f"ResNet-18-shaped (random), {s.images} images 3×64²", resnet,
             (images, torch.zeros(s.images, dtype=torch.long))),  # fmt: skip
    ]


# --------------------------------------------------------------------------- contenders

METHODS = {"gradient": {}, "integrated_gradients": {"steps": STEPS, "integration": "riemann_middle"}}


def engine_run(case: Case, engine: str, workers: int | None, folder: Path) -> tuple[float, dict]:
    """Seconds of one ``sl.run`` into a fresh store, and its session's seconds."""
    store = folder / f"{case.name.split(',')[0]}-{engine}-{workers}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    run = sl.run(case.model, case.data, methods=METHODS, checks=[], store=str(store), batch_size=BATCH,
                 engine=engine, workers=workers, progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    return seconds, run.provenance["sessions"][-1]


def captum_loop(case: Case) -> float:
    """Seconds of the plain loop: per chunk a forward pass, Captum's Saliency and IntegratedGradients."""
    from captum.attr import IntegratedGradients, Saliency

    x, _ = case.data
    kept = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for first in range(0, len(x), BATCH):
            chunk = x[first : first + BATCH]
            with torch.no_grad():
                target = case.model(chunk).argmax(dim=1)
            gradient = Saliency(case.model).attribute(chunk, target=target, abs=False)
            ig = IntegratedGradients(case.model).attribute(chunk, target=target, n_steps=STEPS,
                                                           method="riemann_middle")  # fmt: skip
            kept.append((gradient.detach().numpy(), ig.detach().numpy()))
    return time.perf_counter() - start


def floor(case: Case, rows: int) -> float:
    """Seconds of the bare model work of the same run, in passes of at most ``rows`` rows: per chunk a forward
    pass for the predicted classes, then forward+backward passes over the chunk itself (the gradient) and over its
    ``STEPS`` midpoints of the straight path from zero (Integrated Gradients), stacked; nothing checked or kept."""
    x, _ = case.data
    alphas = torch.tensor([1.0] + [(k + 0.5) / STEPS for k in range(STEPS)])
    start = time.perf_counter()
    for first in range(0, len(x), BATCH):
        chunk = x[first : first + BATCH]
        with torch.no_grad():
            target = case.model(chunk).argmax(dim=1, keepdim=True)
        points = (alphas.view(-1, 1, *[1] * (chunk.dim() - 1)) * chunk).flatten(0, 1)
        targets = target.repeat(len(alphas), 1)
        for lo in range(0, len(points), rows):
            point = points[lo : lo + rows].requires_grad_(True)
            torch.autograd.grad(case.model(point).gather(1, targets[lo : lo + rows]).sum(), point)
    return time.perf_counter() - start


FLOOR_ROWS = (128, 512)
"""Rows per pass tried for the floor; the faster counts."""


def median_of(repeats: int, call: Callable[[], float]) -> float:
    return statistics.median(call() for _ in range(repeats))


# --------------------------------------------------------------------------- parts


def engines(s: Settings, folder: Path) -> tuple[list[dict], dict]:
    """The samples/s table rows and the digits sessions' seconds (compute, write) for the Ray overhead."""
    rows, sessions = [], {}
    for case, repeats in zip(cases(s), (s.repeats, s.large_repeats), strict=True):
        n = len(case.data[0])
        row = {"case": case.name, "n": n, "repeats": repeats}
        local = [engine_run(case, "local", None, folder) for _ in range(repeats)]
        row["local"] = n / statistics.median(t for t, _ in local)
        row["local write"] = statistics.median(session["write_seconds"] for _, session in local)
        row["floor"] = n / min(median_of(repeats, lambda case=case, k=k: floor(case, k)) for k in FLOOR_ROWS)
        for workers in (1, 2):
            timed = [engine_run(case, "ray", workers, folder) for _ in range(repeats)]
            row[f"ray {workers}"] = n / statistics.median(t for t, _ in timed)
            sessions[(case.name, workers)] = timed
        row["captum loop"] = n / median_of(repeats, lambda case=case: captum_loop(case))
        rows.append(row)
        print(row, flush=True)
    return rows, sessions


def store_write(s: Settings, folder: Path) -> dict:
    """The store's write time alone: the digits run's chunks written again, and chunks of 224² images and maps."""
    case = cases(s)[0]
    engine_run(case, "local", None, folder)
    run = sl.load_run(folder / f"{case.name.split(',')[0]}-local-None.zarr")
    arrays = {f"inputs/{name}": array[...] for name, array in run.inputs.items()}
    arrays |= {f"maps/{m}/{name}": array[...] for m, per in run.maps.items() for name, array in per.items()}
    digits = _write_seconds(folder, RunStore(run.path).attrs, arrays, run.table, s.repeats)
    n = 2 * BATCH if s.quick else 4 * BATCH
    generator = torch.Generator().manual_seed(0)
    images = {path: torch.randn(n, 3, 224, 224, generator=generator).numpy()
              for path in ("inputs/input", "maps/gradient/input", "maps/integrated_gradients/input")}  # fmt: skip
    table = run.table.iloc[:n].assign(index=np.arange(n))
    large = _write_seconds(folder, {"n": n}, images, table, s.repeats)
    return {"digits_per_chunk": digits["per_chunk"], "digits_chunks": digits["chunks"],
            "image_chunks": large["chunks"], "image_per_chunk": large["per_chunk"],
            "mb_per_s": large["mb"] / large["seconds"]}  # fmt: skip


def _write_seconds(folder: Path, attrs: dict, arrays: dict, table: object, repeats: int) -> dict:
    """Median seconds to write ``arrays`` and ``table`` chunk by chunk into a fresh store."""
    n = len(next(iter(arrays.values())))
    layout = {path: (array.shape, str(array.dtype)) for path, array in arrays.items()}
    chunks = -(-n // BATCH)
    times = []
    for _ in range(repeats):
        target = folder / "write.zarr"
        shutil.rmtree(target, ignore_errors=True)
        fresh = RunStore.create(str(target), attrs, layout, chunk_rows=BATCH)
        start = time.perf_counter()
        for k in range(chunks):
            rows = table[(table["index"] >= k * BATCH) & (table["index"] < (k + 1) * BATCH)]
            fresh.write_chunk(k, k * BATCH, {p: a[k * BATCH : (k + 1) * BATCH] for p, a in arrays.items()}, rows)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    megabytes = sum(a.astype(np.float32).nbytes for a in arrays.values()) / 2**20
    return {"chunks": chunks, "seconds": seconds, "per_chunk": seconds / chunks, "mb": megabytes}


def ray_overhead(s: Settings, folder: Path) -> dict:
    """Ray's costs: per run (actors started, job shipped: a run of 3 near-empty chunks), per chunk (an actor call)."""
    import ray

    store = folder / "tiny.zarr"
    fixed = []
    for _ in range(s.repeats):
        shutil.rmtree(store, ignore_errors=True)
        start = time.perf_counter()
        sl.run(nn.Linear(4, 2), torch.ones(3, 4), methods=["gradient"], checks=[], store=str(store), batch_size=1,
               engine="ray", workers=2, progress=False)  # fmt: skip
        fixed.append(time.perf_counter() - start)
    echo = ray.remote(Echo).remote()
    ray.get(echo.call.remote(0))
    calls = 50 if s.quick else 500
    start = time.perf_counter()
    for k in range(calls):
        ray.get(echo.call.remote((k, 0.0, 0.0)))
    per_call = (time.perf_counter() - start) / calls
    ray.kill(echo)
    return {"fixed": statistics.median(fixed), "overhead_per_chunk": per_call, "calls": calls}


class Echo:
    """A Ray actor whose call returns its argument: the round trip an engine pays per chunk."""

    def call(self, value: object) -> object:
        return value


def per_worker(s: Settings) -> dict:
    """Images per second of one worker (one torch thread) on a ResNet-50-sized network at 224²."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = resnet50_sized()
        x = torch.rand(s.resnet50_images, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        chunk = as_source(x).chunk(0, s.resnet50_images)
        result = {"parameters": sum(p.numel() for p in model.parameters())}
        for name, options in (("gradient", {}), ("integrated_gradients", {"steps": 32})):
            compute_chunk(model, as_source(x[:1]).chunk(0, 1), {name: options}, {}, 0, 0)  # warm-up
            start = time.perf_counter()
            compute_chunk(model, chunk, {name: options}, {}, 0, 0)
            result[name] = (time.perf_counter() - start) / s.resnet50_images
        return result
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- estimate


def estimate(worker: dict, write: dict, overhead: dict, start_up: float) -> list[dict]:
    """Hours for 50,000 images at 224² on k workers: per image a worker computes, then writes its maps.

    Per worker and image: the ResNet-50 gradient + IG-32 seconds measured here, plus the store write at this
    machine's measured MB/s for the image's bytes (input + two float32 maps, 3×224² each), plus Ray's overhead
    per chunk of ``BATCH`` images; plus Ray's start-up once. The shared store must take k workers' writes:
    the aggregate rate it needs is listed.
    """
    image_mb = 3 * 224 * 224 * 4 * 3 / 2**20  # input + two maps
    per_image = worker["gradient"] + worker["integrated_gradients"]
    write_s = write["image_per_chunk"] / BATCH
    per_chunk = overhead["overhead_per_chunk"] / BATCH
    rows = []
    for k in WORKERS:
        seconds = start_up + overhead["fixed"] + IMAGENET_VAL * (per_image + write_s + per_chunk) / k
        rows.append({"workers": k, "hours": seconds / 3600,
                     "store_mb_s": k * image_mb / (per_image + write_s + per_chunk)})  # fmt: skip
    return rows


# --------------------------------------------------------------------------- report


def report(s: Settings, rows: list[dict], write: dict, overhead: dict, start_up: float, worker: dict,
           sessions: dict, elapsed: float, load: tuple[float, float, float]) -> str:  # fmt: skip
    m = machine()
    lines = [
        "## Data-set runs: the local and Ray engines against a plain Captum loop",
        "",
        f"- Machine: {m['CPU']} (a shared machine: other jobs ran beside this one; 1-minute load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)",
        f"- Software: {m['Software']}, ray {_version('ray')}, zarr {_version('zarr')}",
        f"- Date: {m['Date']}; command: `{command_line()}`" + (" (**quick run**: not for comparison)" if s.quick
                                                                else ""),  # fmt: skip
        f"- Every contender: the gradient and Integrated Gradients ({STEPS} steps, Riemann midpoint), chunks of "
        f"{BATCH}, no per-sample checks (the run still writes each sample's prediction, score and degenerate flag). "
        f"The runs write inputs, maps and table into a local Zarr store; the Captum loop keeps its maps in memory. "
        "Samples/s from the median of the runs counted in the table.",
        f"- Ray: a local Ray with 2 CPUs started once before the timed runs ({start_up:.1f} s, not in the times "
        "below); each worker runs torch on one thread. The local engine and the Captum loop use torch's default "
        f"({torch.get_num_threads()} threads). Chunk 0 is computed by the calling process in every engine "
        "(a bad option fails before anything is stored), the rest by the workers.",
        f"- Total time of this benchmark: {elapsed / 60:.1f} min.",
        "",
        "### Samples per second",
        "",
        "| data and model | samples | runs | local | Ray, 1 worker | Ray, 2 workers | Captum loop | floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rates = " | ".join(f"{r[key]:.1f}" for key in ("local", "ray 1", "ray 2", "captum loop", "floor"))
        lines.append(f"| {r['case']} | {r['n']} | {r['repeats']} | {rates} |")
    lines += [
        "",
        f"### The local engine against its floor plus the store's write time (target ≤ {FLOOR_TARGET}×)",
        "",
        "The floor: the bare model passes of the same work (per chunk a forward pass for the predicted classes, "
        f"then forward+backward passes over the chunk (the gradient) and its {STEPS} path points (Integrated "
        f"Gradients) stacked, in passes of {' or '.join(map(str, FLOOR_ROWS))} rows, the faster), timed in the "
        "same run; the write time: the seconds the local engine's runs spent writing chunks (their "
        "median), which the run records in its provenance.",
        "",
        "| data and model | local s | floor s | write s | local / (floor + write) | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        local, bare, writing = r["n"] / r["local"], r["n"] / r["floor"], r["local write"]
        ratio = local / (bare + writing)
        verdict = "met" if ratio <= FLOOR_TARGET else "NOT met"
        lines.append(f"| {r['case']} | {local:.2f} | {bare:.2f} | {writing:.2f} | {ratio:.2f}× | {verdict} |")
    lines += [
        "",
        "### The store and Ray's costs",
        "",
        "| what | measured |",
        "|---|---|",
        f"| store write, digits (inputs, 2 maps, table part, marker) | {write['digits_per_chunk'] * 1000:.1f} ms "
        f"per chunk of {BATCH} (median of {write['digits_chunks']} chunks) |",
        f"| store write, {BATCH} random 3×224² inputs and 2 maps (float32, zstd level 3) | "
        f"{write['image_per_chunk']:.2f} s per chunk, {write['mb_per_s']:.0f} MB/s |",
        f"| Ray start-up (local, 2 CPUs) | {start_up:.1f} s |",
        f"| Ray's cost per run: a run of 3 near-empty chunks on 2 workers (actors started, job shipped) | "
        f"{overhead['fixed']:.2f} s |",
        f"| Ray's overhead per chunk: one actor call's round trip (mean of {overhead['calls']} calls in a row) | "
        f"{overhead['overhead_per_chunk'] * 1000:.2f} ms |",
    ]
    for (case, workers), timed in sessions.items():
        wall = statistics.median(t for t, _ in timed)
        session = timed[0][1]
        lines.append(f"| {case}, Ray {workers} worker(s): compute / write seconds summed over workers, wall | "
                     f"{session['compute_seconds']:.1f} / {session['write_seconds']:.2f} / {wall:.1f} s |")  # fmt: skip
    lines += [
        "",
        "### Per-worker throughput, ResNet-50-sized network at 224²",
        "",
        f"A ResNet-50-shaped network ({worker['parameters'] / 1e6:.1f} M parameters, random weights, eval mode), "
        f"{s.resnet50_images} random 224² image(s), one torch thread, through `compute_chunk` as a worker runs it.",
        "",
        "| method | seconds per image | images/s per worker |",
        "|---|---|---|",
        f"| gradient | {worker['gradient']:.2f} | {1 / worker['gradient']:.3f} |",
        f"| Integrated Gradients, 32 steps | {worker['integrated_gradients']:.1f} | "
        f"{1 / worker['integrated_gradients']:.4f} |",
        "",
        "### Estimate: ImageNet-val (50,000 images), gradient + IG-32, ResNet-50-sized, 224²",
        "",
        "| workers | hours | store bandwidth needed |",
        "|---|---|---|",
    ]
    for e in estimate(worker, write, overhead, start_up):
        lines.append(f"| {e['workers']} | {e['hours']:.1f} | {e['store_mb_s']:.1f} MB/s |")
    lines += [
        "",
        "Assumptions: a worker is one core of this machine's kind with one torch thread; per image it spends the "
        "seconds measured above for the gradient and IG-32, writes 1.7 MiB (input and two float32 maps) at the store "
        "rate measured here, and pays Ray's overhead per chunk of 64 images; Ray starts once. Reading and decoding "
        "the JPEGs (a few ms per image) is left out, and so are the per-sample checks (deletion and insertion add "
        "their own model passes). Workers do not share anything but the store, so the time falls as 1/k while the "
        "store keeps up: at 64 workers it must take the bandwidth in the last column, far below a shared "
        "filesystem's or an object store's. A worker with several threads or a GPU changes the per-worker rate, "
        "not the shape of the estimate.",
        "",
        "### Reading",
        "",
        "- **Floor**: the local engine runs each method through `sl.explain` as a user calls it, whose chunk on a "
        "CPU is the smaller of what the memory budget allows and 16 MiB of measured forward activations (at least "
        "64 rows; `saliencelab.core.batching.fastest_rows`): on the digits the 2,112 path rows of a chunk of 64 "
        "samples run in 4 passes of 528 rows (at most 611 each, evened out); the floor counts the faster of "
        f"{' and '.join(map(str, FLOOR_ROWS))} rows. On top come the run's own steps per chunk (the predicted "
        "classes, the table part, the degenerate flags) and the write time, which the target allows.",
        "- **Ray on this machine**: two workers share two cores with the calling process and with whatever else "
        "runs; the compute seconds summed over the workers grow with the second worker (see the table above), so "
        "this machine cannot show Ray's scaling: the estimate rests on one worker's throughput and the measured "
        "per-chunk and per-run costs.",
    ]
    return "\n".join(lines)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    began, load = time.perf_counter(), os.getloadavg()
    import ray

    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    os.environ["RAY_TMPDIR"] = temp
    folder = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    try:
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        start_up = time.perf_counter() - start
        try:
            rows, sessions = engines(s, folder)
            overhead = ray_overhead(s, folder)
        finally:
            ray.shutdown()
        write = store_write(s, folder)
        print(write, overhead, flush=True)
        worker = per_worker(s)
        print(worker, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)
    write_section(s.out, SECTION, report(s, rows, write, overhead, start_up, worker, sessions,
                                         time.perf_counter() - began, load))  # fmt: skip
    print(f"wrote the {SECTION} section of {s.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
