"""First paint and server memory of the explorer on a 10,000-sample run (a benchmark, not a test).

A child process builds a synthetic run (28 x 28 images, three methods; inputs
and maps memory-mapped from ``.npy`` files, read lazily as from a store) and
serves it; with ``--real`` it serves a real store instead, written by ``sl.run``
(the watermarked digits repeated to the size, the watermark CNN, ``gradient``
with the sparseness check) and analysed by SpRAy. Playwright drives Debian's
Chromium. Measured per run size:

- first paint and first contentful paint of the grid (``performance.getEntriesByType('paint')``),
  and the time from navigation until the grid's first page is in the document (its tiles still loading);
- the server's anonymous resident memory (RssAnon, its heap; the memory-mapped
  arrays it reads are file pages the kernel may drop) after start, after the first page, and
  after browsing (five grid pages, twenty samples with neighbours, the method
  page, every SpRAy class).

Run: ``python benchmarks/bench_explore.py [--sizes 1000 10000] [--repeats 3] [--real] [--screenshots DIR]
[--out BENCHMARKS.md]``; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_gradient import command_line, machine, write_section
from playwright.sync_api import sync_playwright

SERVE = """
import sys, time
from saliencelab.explore import explore
from saliencelab.explore.synthetic import synthetic_run
run = sys.argv[3] if sys.argv[3] else synthetic_run(int(sys.argv[1]), side=28, folder=sys.argv[2])
running = explore(run, quiet=True)
print(running.url, flush=True)
running.wait()
"""


def rss_mib(pid: int) -> float:
    """The process's anonymous resident memory (RssAnon: its heap, not the memory-mapped maps it read)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon")


def ready(page, route: str, *, tiles: bool = True) -> None:
    page.wait_for_selector(f'body[data-ready="{route}"]', state="attached")
    if tiles:
        page.wait_for_load_state("networkidle")


def real_store(size: int, folder: str) -> tuple[str, float]:
    """Write a real run store of ``size`` samples with ``sl.run`` and SpRAy; its path and the seconds it took."""
    import torch

    import saliencelab as sl
    from saliencelab.runs.spray import analyse_run

    x_train, y_train, x_test, y_test = sl.zoo.dataset("watermarked_digits")
    images, labels = torch.cat([x_train, x_test]), torch.cat([y_train, y_test])
    repeat = torch.arange(size) % len(images)
    start = time.perf_counter()
    run = sl.run(sl.zoo.load("watermarked_digits_cnn"), (images[repeat], labels[repeat]), methods=["gradient"],
                 checks=["sparseness"], store=f"{folder}/run.zarr", batch_size=512)  # fmt: skip
    analyse_run(run)
    return run.path, time.perf_counter() - start


def measure(size: int, repeats: int, shots: Path | None, real: bool = False) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix="bench-explore-")
    root = Path(__file__).resolve().parents[1]
    store, written = real_store(size, folder) if real else ("", 0.0)
    child = subprocess.Popen([sys.executable, "-c", SERVE, str(size), folder, store], stdout=subprocess.PIPE, text=True,
                             cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})  # fmt: skip
    try:
        url = child.stdout.readline().strip()
        found: dict[str, list[float]] = {"first_paint_ms": [], "first_contentful_paint_ms": [], "grid_drawn_ms": []}
        memory = {"rss_start_mib": rss_mib(child.pid), "store_seconds": written}
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=shutil.which("chromium"))
            for repeat in range(repeats):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                start = time.perf_counter()
                page.goto(url + "#/")
                ready(page, "#/", tiles=False)
                drawn = (time.perf_counter() - start) * 1000
                ready(page, "#/")
                paints = {e["name"]: e["startTime"] for e in page.evaluate(
                    "() => performance.getEntriesByType('paint').map(e => ({name: e.name, startTime: e.startTime}))")}
                found["first_paint_ms"].append(paints.get("first-paint", float("nan")))
                found["first_contentful_paint_ms"].append(paints.get("first-contentful-paint", float("nan")))
                found["grid_drawn_ms"].append(drawn)
                if repeat == 0:
                    memory["rss_first_page_mib"] = rss_mib(child.pid)
                    if shots is not None:
                        page.screenshot(path=shots / "grid.png")
                page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for number in range(5):
                route = f"#/?sort=score&order=desc&page={number}"
                page.goto(url + route)
                ready(page, route)
            for index in range(0, size, max(1, size // 20)):
                page.goto(url + f"#/sample/{index}")
                ready(page, f"#/sample/{index}")
            if shots is not None:
                page.screenshot(path=shots / "sample.png", full_page=True)
            page.goto(url + "#/methods")
            ready(page, "#/methods")
            if shots is not None:
                page.screenshot(path=shots / "methods.png", full_page=True)
            for key in range(3):
                page.goto(url + f"#/spray/{key}")
                ready(page, f"#/spray/{key}")
            if shots is not None:
                page.screenshot(path=shots / "spray.png", full_page=True)
            memory["rss_after_browsing_mib"] = rss_mib(child.pid)
            browser.close()
        return {**{k: statistics.median(v) for k, v in found.items()}, **memory}
    finally:
        child.terminate()
        child.wait()
        shutil.rmtree(folder, ignore_errors=True)


def section(rows: dict[int, dict[str, float]], repeats: int, real: bool, quick: bool, load: tuple[float, float]) -> str:
    """The ``bench_explore`` section of BENCHMARKS.md: one row per run size."""
    m = machine()
    kind = "real stores written by `sl.run` (watermarked digits, SpRAy analysed)" if real else "synthetic runs (28×28)"
    lines = [
        "## Explorer: first paint and server memory by run size",
        "",
        f"- Machine: {m['CPU']} (shared; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)",
        f"- Software: {m['Software']}",
        f"- Date: {m['Date']}; command: `{command_line()}`" + (" (**quick run**: not for comparison)" if quick else ""),
        f"- Runs: {kind}, served by `saliencelab.explore` in a child process; Debian's Chromium driven by Playwright. "
        f"Times: medians of {repeats} fresh page loads of the grid (first paint and first contentful paint from "
        "`performance.getEntriesByType('paint')`; grid drawn: navigation until the first page of samples is in the "
        "document, its tiles still loading). Memory: the server's anonymous resident memory (RssAnon; the arrays "
        "it reads lazily are file pages) after start, after the first page, and after browsing five grid pages, "
        "twenty samples with their neighbours, the method page and three SpRAy classes.",
        "",
        "| samples | first paint ms | first contentful paint ms | grid drawn ms | RSS start MiB | RSS first page MiB "
        "| RSS after browsing MiB | target: first paint < 1 s |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size, r in rows.items():
        verdict = "met" if r["first_paint_ms"] < 1000 else "NOT met"
        lines.append(
            f"| {size:,} | {r['first_paint_ms']:.0f} | {r['first_contentful_paint_ms']:.0f} | {r['grid_drawn_ms']:.0f} "
            f"| {r['rss_start_mib']:.0f} | {r['rss_first_page_mib']:.0f} | {r['rss_after_browsing_mib']:.0f} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, default=None, help="Save screenshots of the views here.")
    parser.add_argument("--real", action="store_true", help="Serve a real store written by sl.run (see above).")
    parser.add_argument("--quick", action="store_true", help="one run of 1,000 samples, one page load (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="write the bench_explore section of this Markdown file")
    args = parser.parse_args()
    sizes, repeats = ([1000], 1) if args.quick else (args.sizes, args.repeats)
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    print(f"{'samples':>8} {'first paint':>12} {'FCP':>8} {'grid drawn':>11} {'RSS start':>10} {'first page':>11} "
          f"{'browsed':>8}  (ms, median of {repeats}; MiB)")  # fmt: skip
    load, rows = os.getloadavg()[0], {}
    for size in sizes:
        shots = args.screenshots if size == sizes[-1] else None
        r = rows[size] = measure(size, repeats, shots, args.real)
        times = f"{r['first_paint_ms']:>12.0f} {r['first_contentful_paint_ms']:>8.0f} {r['grid_drawn_ms']:>11.0f}"
        memory = f"{r['rss_start_mib']:>10.0f} {r['rss_first_page_mib']:>11.0f} {r['rss_after_browsing_mib']:>8.0f}"
        print(f"{size:>8} {times} {memory}" + (f"  (store written in {r['store_seconds']:.0f} s)" if args.real else ""))
    if args.out is not None:
        write_section(args.out, "bench_explore", section(rows, repeats, args.real, args.quick,
                                                          (load, os.getloadavg()[0])))  # fmt: skip
        print(f"wrote the bench_explore section of {args.out}")


if __name__ == "__main__":
    main()
