"""Run every benchmark in sequence, then write the summary at the top of BENCHMARKS.md.

Each benchmark script writes its own section of the report. The summary
(between ``<!-- bench_summary: begin -->`` and ``<!-- bench_summary: end -->``,
always first in the file) gives the machine and versions, the command, a
table of targets and a "where we are slower and why" list. Every number in it
is read from the tables of the other sections, and every explanation is
quoted from their readings: the summary measures nothing itself.

Usage::

    bash benchmarks/setup_bench_env.sh && /work/bench-venv/bin/python benchmarks/run_all.py
    python benchmarks/run_all.py --quick                   # smoke run of every script into a temporary report
    python benchmarks/run_all.py --summary-only            # only the summary, from the sections already there
    python benchmarks/run_all.py --only bench_scaling      # some scripts, then the summary
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bench_evaluate
import bench_gradient as bg
import bench_perturbation
import bench_scaling
import torch

HERE = Path(__file__).resolve().parent
SECTION = "bench_summary"
ONE_COMMAND = "bash benchmarks/setup_bench_env.sh && /work/bench-venv/bin/python benchmarks/run_all.py"
QUICK_OUT = Path(tempfile.gettempdir()) / "saliencelab-benchmarks-quick" / "BENCHMARKS.md"

SCRIPTS = {
    "bench_gradient": ("gradient-family methods vs floor and Captum", ("captum",)),
    "bench_deeplift": ("DeepLIFT and DeepSHAP vs one forward+backward and Captum", ("captum",)),
    "bench_lrp": ("LRP composites vs one forward+backward and Zennit", ("zennit",)),
    "bench_cam": ("CAM family vs floor and pytorch-grad-cam", ("pytorch_grad_cam", "cv2")),
    "bench_perturbation": ("perturbation methods vs floor and Captum", ("captum",)),
    "bench_evaluate": ("evaluation metrics vs Quantus", ("quantus",)),
    "bench_scaling": ("IG against steps, image size, batch size; memory; passes to a completeness error", ("captum",)),
    "bench_structured": (
        "several inputs, forward arguments, layer and token-id attribution vs floor and Captum",
        ("captum",),
    ),
    "bench_transformers": (
        "transformer LRP vs LXT and one forward+backward; IG passes vs Captum LayerIntegratedGradients",
        ("captum", "transformers"),
    ),
    "bench_runs": ("data-set runs: local and Ray engines vs a Captum loop and the floor; scaling", ("captum", "ray")),
    "bench_import": ("import saliencelab, its first use and --help vs import torch", ()),
    "bench_explore": ("the explorer's first paint and server memory by run size", ("playwright",)),
    "bench_gpu": ("every method on CUDA in float32 and bfloat16 vs floor and Captum", ("captum",)),
}
"""Script -> (what it measures, modules it needs), in the order the runner runs them: ``bench_gradient``
regenerates the whole file (keeping the other sections), so it goes first."""

INSTALL = {
    "bench_gradient": "pip install -c constraints.txt captum",
    "bench_deeplift": "pip install -c constraints.txt captum",
    "bench_lrp": "pip install -c constraints.txt --no-deps zennit",
    "bench_cam": "pip install -c constraints.txt --no-deps grad-cam ttach && pip install -c constraints.txt"
    " opencv-python-headless",
    "bench_perturbation": "pip install -c constraints.txt captum",
    "bench_evaluate": "bash benchmarks/setup_bench_env.sh",
    "bench_scaling": "pip install -c constraints.txt captum",
    "bench_structured": "pip install -c constraints.txt captum",
    "bench_transformers": "pip install -c constraints.txt captum transformers (LXT: a separate venv, see the script)",
    "bench_runs": "pip install -c constraints.txt captum '.[ray]'",
    "bench_import": "nothing",
    "bench_explore": "pip install -c constraints.txt '.[test]' and Debian's chromium",
    "bench_gpu": "a machine with a CUDA device; pip install -c constraints.txt captum transformers",
}
NEEDS_CUDA = {"bench_gpu"}
"""Scripts that run only where torch sees a CUDA device."""
"""How to get each script's peers into the runner's environment (see each script's section below)."""

PEERS = ("captum", "zennit", "grad-cam", "opencv-python-headless", "quantus")

EVALUATE_TARGET = bench_evaluate.FLOOR_TARGET
"""Target: every evaluation metric at most this many times its own floor (``bench_evaluate``'s ``ours / floor``)."""
EVALUATE_KEYS = (
    ("pixel flipping", "Pixel flipping"),
    ("region perturbation", "Pixel flipping"),
    ("model randomisation", "MPRT"),
    ("ROAD", "ROAD"),
)
"""Row title prefix -> title of the ``bench_evaluate`` reading's bullet that explains the row's cost over its floor."""
NOT_MEASURED = "not measured"


# --------------------------------------------------------------------------- reading markdown


@dataclass
class Table:
    """A Markdown table and the heading above it."""

    heading: str
    header: list[str]
    rows: list[dict[str, str]]

    def column(self, *names: str) -> str | None:
        """The header equal to one of ``names``, else the first that contains one (case-insensitive), in order."""
        for name in names:
            if name in self.header:
                return name
        for name in names:
            for h in self.header:
                if name.lower() in h.lower():
                    return h
        return None


def _cells(line: str) -> list[str]:
    """The cells of a table line; ``\\|`` inside a cell is a literal bar."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def tables(text: str) -> list[Table]:
    """Every Markdown table of ``text``, each with the last heading before it.

    Example
    -------
    >>> t = tables("## Batch 1\\n\\n| a | b \\\\| c |\\n|---|---:|\\n| 1 | 2 |\\n")[0]
    >>> t.heading, t.rows
    ('Batch 1', [{'a': '1', 'b | c': '2'}])
    """
    lines = text.splitlines()
    found, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|[\s:|-]+\|?", lines[i + 1].strip()):
            header, rows, i = _cells(line), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = _cells(lines[i])
                row = dict(zip(header, cells, strict=False))
                if len(cells) != len(header):
                    row[MALFORMED] = f"{len(cells)} cells for {len(header)} columns (an unescaped | in a cell?)"
                rows.append(row)
                i += 1
            found.append(Table(heading, header, rows))
            continue
        i += 1
    return found


MALFORMED = "_malformed"
"""Key :func:`tables` adds to a row whose number of cells differs from the header's."""

NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
"""A number as the sections write it, thousands separators included (``1,172.5×``)."""


def number(cell: str | None) -> float | None:
    """The first number in a cell, None if it has none.

    Example
    -------
    >>> number("3.23×"), number("≤ 52"), number("1.5e-05 / 1.4e-05"), number("—"), number("1,172.5×")
    (3.23, 52.0, 1.5e-05, None, 1172.5)
    """
    m = NUMBER.search(cell or "")
    return float(m.group().replace(",", "")) if m else None


def numbers(cell: str | None) -> list[float]:
    """Every number in a cell (``"1.5e-05 / 1.4e-05"`` -> both)."""
    return [float(x.replace(",", "")) for x in NUMBER.findall(cell or "")]


def read_sections(text: str) -> dict[str, str]:
    """Section name -> body. The unmarked part of the file is ``bench_gradient``'s (it writes no markers)."""
    found = bg.marked_sections(text)
    rest = bg.MARKED_SECTION.sub("", text)
    if "bench_gradient.py" in rest:
        found.setdefault("bench_gradient", rest)
    return found


@dataclass
class Reading:
    """A section's reading: the paragraphs before its first bullet and its bullets."""

    intro: list[str]
    bullets: list[str]


def reading(body: str) -> Reading:
    """The reading of a section: the text under its 'Reading' or 'Where we are slower and why' heading."""
    m = re.search(r"^#+ (Reading|Where we are slower and why)\s*$", body, re.M)
    if not m:
        return Reading([], [])
    text = body[m.end() :]
    end = re.search(r"^#+ |^<!-- ", text, re.M)
    text = text[: end.start()] if end else text
    intro, bullets, paragraph = [], [], []
    for line in text.splitlines():
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif line.strip() and bullets and line.startswith(" "):
            bullets[-1] += " " + line.strip()
        elif line.strip() and not bullets:
            paragraph.append(line.strip())
        elif paragraph:
            intro.append(" ".join(paragraph))
            paragraph = []
    if paragraph:
        intro.append(" ".join(paragraph))
    return Reading(intro, bullets)


def bullet_title(bullet: str) -> str:
    """A bullet's bold lead, else its text up to the first colon.

    Example
    -------
    >>> bullet_title("**Time.** ours/floor 2.4"), bullet_title("Floor: the same number of forwards")
    ('Time.', 'Floor')
    """
    m = re.match(r"\*\*(.+?)\*\*", bullet)
    return m.group(1) if m else bullet.split(":", 1)[0][:100]


@dataclass
class Meta:
    """Where a section's numbers come from."""

    date: str
    command: str
    quick: bool
    machine: str


def meta(body: str) -> Meta:
    """The date, command, quick flag and processor a section states in its setup.

    Example
    -------
    >>> meta("- Machine: AMD EPYC, 2 logical cores; torch threads: 2\\n- Date: 2026-12-07 00:10 UTC; run time 3 min")
    Meta(date='2026-12-07 00:10 UTC', command='?', quick=False, machine='AMD EPYC')
    """
    date = re.search(r"^- Date: ([^;\n]+)", body, re.M)
    command = re.search(r"(?:^- Command: |; command: )`(.+?)`", body, re.M)
    machine = re.search(r"^- Machine: ([^,;\n]+)", body, re.M)
    return Meta(
        date.group(1) if date else "?",
        command.group(1) if command else "?",
        "Quick smoke run" in body or "(**quick run**" in body,
        machine.group(1) if machine else "?",
    )


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One row of the targets table."""

    target: str
    measured: str
    verdict: str
    source: str


@dataclass
class Slow:
    """A row of some section that misses a target or loses to the peer, and the reading bullets that explain it."""

    section: str
    what: str
    keys: list[str]
    """Bullet titles (case-sensitive substrings) of the section's reading that explain it."""


@dataclass
class Found:
    """What the summary reads out of the sections."""

    sections: dict[str, str]
    targets: list[Target] = field(default_factory=list)
    slow: list[Slow] = field(default_factory=list)

    def source(self, name: str, where: str = "") -> str:
        m = meta(self.sections[name])
        run = ", quick run" if m.quick else ""
        return f"`{name}`{': ' + where if where else ''} ({m.date}{run})"

    def verdict(self, name: str, met: bool) -> str:
        return ("met" if met else "NOT met") + (" (quick run)" if meta(self.sections[name]).quick else "")

    def add(
        self, name: str, target: str, measured: str, met: bool, slow: str, keys: list[str], where: str = ""
    ) -> None:
        """A target row read from section ``name``; when missed, also a slower row explained by ``keys``."""
        self.targets.append(Target(target, measured, self.verdict(name, met), self.source(name, where)))
        if not met:
            self.slow.append(Slow(name, f"{slow}: {measured}", keys))

    def missing(self, name: str, target: str, what: str = "section missing") -> None:
        self.targets.append(Target(target, "—", NOT_MEASURED, f"`{name}`: {what}"))


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def gradient_targets(f: Found) -> None:
    """Every gradient-family method ≤ 1.05× its floor and ≤ Captum, at every batch size (``bench_gradient``)."""
    name = "bench_gradient"
    target = f"every gradient-family method ≤ {bg.FLOOR_TARGET:.2f}× its floor and ≤ Captum"
    if name not in f.sections:
        f.missing(name, target)
        return
    found: dict[str, list[tuple[str, float | None, float | None]]] = {m: [] for m in bg.METHODS}
    refused: dict[str, list[str]] = {m: [] for m in bg.METHODS}
    for t in tables(f.sections[name]):
        floor, captum, ours = t.column("ours/floor"), t.column("ours/Captum"), t.column("saliencelab s")
        if not (floor and captum and t.column("method")):
            continue
        batch = re.sub(r"^(?:(.+), )?[Bb]atch (\d+)$", lambda m: f"{m[1] + ' ' if m[1] else ''}N={m[2]}", t.heading)
        small = any(model in batch for model in SMALL_MODELS)
        for row in t.rows:
            method = row[t.column("method")]
            if ours and row[ours] == "error":  # the method refuses the model (the section's notes say why)
                refused.setdefault(method, []).append(batch)
                continue
            r_floor, r_captum = number(row[floor]), number(row[captum])
            if method in found:
                found[method].append((batch, r_floor, r_captum))
            if _over(r_floor, bg.FLOOR_TARGET) or _over(r_captum, bg.CAPTUM_TARGET):
                keys = ["small models"] if small else GRADIENT_KEYS.get(method.split(" vs ")[0], [])
                what = f"`{method}`, {batch}: {_x(r_floor)} its floor, {_x(r_captum)} Captum"
                f.slow.append(Slow(name, what, keys))
    if not any(found.values()):
        f.missing(name, target, "no timing tables")
        return
    for method, cells in found.items():
        if not cells:
            continue
        measured = "; ".join(f"{b}: {_x(rf)} floor, {_x(rc)} Captum" for b, rf, rc in cells)
        if refused.get(method):
            measured += "; refused (not timed): " + ", ".join(refused[method])
        met = all(not _missed(rf, bg.FLOOR_TARGET) and not _missed(rc, bg.CAPTUM_TARGET) for _, rf, rc in cells)
        batches = ", ".join(dict.fromkeys(b for b, _, _ in cells))
        target = f"`{method}` ≤ {bg.FLOOR_TARGET:.2f}× floor, ≤ Captum"
        f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name, batches)))


SMALL_MODELS = ("digits", "ViT")
"""``bench_gradient`` tables of these models are explained by its bullet on the small models' fixed cost."""
GRADIENT_KEYS = {
    "deconvnet": ["DeconvNet"],
    "guided_backprop": ["Guided Backprop"],
    "integrated_gradients": ["IG"],
    "smoothgrad": ["SmoothGrad"],
    "expected_gradients": ["Expected Gradients"],
    "gradient_shap": ["GradientSHAP"],
}
"""Method -> titles of the bullets of ``bench_gradient``'s "Where we are slower and why" about it; the single-pass
methods have none (the paragraph above the bullets, on noise, is used)."""


def _over(value: float | None, limit: float) -> bool:
    """A measured value above the limit."""
    return value is not None and value > limit


def _missed(value: float | None, limit: float) -> bool:
    """Not measured, or above the limit."""
    return value is None or value > limit


DEEPLIFT_LIMITS = (("reveal_cancel", 3.0), ("DeepShap", 2.2), ("", 2.0))
"""Round two's targets: RevealCancel ≤ 3.0×, DeepSHAP ≤ 2.2× its N·K-row floor, Rescale ≤ 2.0× one
forward+backward (the first match by substring of the row's label)."""


def deeplift_limit(label: str) -> float:
    """The target ratio of a DeepLIFT row.

    Example
    -------
    >>> deeplift_limit("DeepLift reveal_cancel, zero baseline, VGG"), deeplift_limit("DeepLift rescale, zero")
    (3.0, 2.0)
    """
    return next(limit for pattern, limit in DEEPLIFT_LIMITS if pattern in label)


def deeplift_targets(f: Found) -> None:
    """DeepLIFT against one forward+backward (``bench_deeplift``: every row against its floor, limits above)."""
    name = "bench_deeplift"
    target = "DeepLIFT ≤ 2.0× (Rescale), 3.0× (RevealCancel), 2.2× (DeepSHAP) its floor"
    table = _find(f, name, "ours/floor", "model")
    if table is None:
        f.missing(name, target, "section missing" if name not in f.sections else "no results table")
        return
    method_col, captum_col = table.column("method"), table.column("ours/Captum")
    groups: dict[str, list[tuple[str, float | None]]] = {}
    for row in table.rows:
        method = re.sub(r"\s*\(`.*$", "", row[method_col])
        label = f"{method}, {row[table.column('model')]}"
        ratio, n = number(row[table.column("ours/floor")]), row[table.column("N")]
        groups.setdefault(label, []).append((n, ratio))
        vs_captum = number(row.get(captum_col or "", ""))
        if _over(ratio, deeplift_limit(label)) or _over(vs_captum, 1.0):
            keys = [k for pattern, k in DEEPLIFT_KEYS if pattern in label]
            keys += ["Captum's `DeepLift`"] if _over(vs_captum, 1.0) else []
            f.slow.append(Slow(name, f"{label}, N={n}: {_x(ratio)} its floor, {_x(vs_captum)} Captum", keys))
    for label, cells in groups.items():
        floor = "its floor (N·K rows)" if "DeepShap" in label else "one forward+backward"
        limit = deeplift_limit(label)
        met = all(r is not None and r <= limit for _, r in cells)
        measured = "; ".join(f"N={n}: {_x(r)}" for n, r in cells)
        f.targets.append(Target(f"{label} ≤ {limit}× {floor}", measured, f.verdict(name, met), f.source(name)))


DEEPLIFT_KEYS = (
    ("rescale, zero baseline, ResNet", "Rescale, zero baseline"),
    ("random references, ResNet", "Random references"),
    ("DeepShap", "Random references"),
    ("reveal_cancel", "RevealCancel"),
    ("VGG", "VGG-16-shaped"),
    ("ViT", "ViT-tiny-shaped"),
    ("digits", "Digits CNN"),
)


def _find(f: Found, name: str, *columns: str) -> Table | None:
    """The first table of section ``name`` that has all ``columns``."""
    for t in tables(f.sections.get(name, "")):
        if all(t.column(c) for c in columns):
            return t
    return None


def _exact_occlusion(title: str) -> bool:
    """An exact Occlusion row against both Captum rows: ``occlusion 224², window 28, stride 14 (225 windows)``,
    or ``occlusion, window 28, stride 14`` as the sections before the 448² rows named it."""
    return (title.startswith("occlusion ") or title.startswith("occlusion, window")) and "approximate" not in title


def occlusion_targets(f: Found) -> None:
    """Occlusion ≥ 3× faster than Captum at identical output at each image size (``bench_perturbation``), against
    both Captum rows; the approximate mode ≥ 5× faster than Captum's best at 224², its error stated."""
    name, limit, agree = "bench_perturbation", bench_perturbation.CAPTUM_TARGET, bench_perturbation.AGREE
    table = _find(f, name, "Captum defaults / ours", "Captum best / ours")
    peers = (("Captum defaults / ours", "its defaults"), ("Captum best / ours", "the best `perturbations_per_eval`"))
    rows = [r for r in table.rows if _exact_occlusion(r[table.column("row")])] if table else []
    if not rows:
        for _, peer in peers:
            f.missing(name, f"Occlusion ≥ {limit:.0f}× faster than Captum ({peer}), identical output")
        return
    for row in rows:
        title = row[table.column("row")]
        setting = title.removeprefix("occlusion").lstrip(", ").split(" (")[0]
        diffs = numbers(row[table.column("max rel. diff")])
        same = bool(diffs) and max(diffs) <= agree
        for column, peer in peers:
            speedup = number(row[table.column(column)])
            met = same and speedup is not None and speedup >= limit
            measured = f"{_x(speedup)} ({title}); max rel. diff vs Captum {' / '.join(map(str, diffs))}"
            target = (
                f"Occlusion at {setting} ≥ {limit:.0f}× faster than Captum with {peer}, identical output"
                f" (≤ {agree:.0e} rel.)"
            )
            f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name)))
            if speedup is not None and speedup < limit:
                what = f"Occlusion at {setting}: {_x(speedup)} faster than Captum with {peer}"
                f.slow.append(Slow(name, what, ["Occlusion", "FLOP bound"]))
    approximate = [r for r in table.rows if "approximate" in r[table.column("row")]]
    if not approximate:
        target = f"Approximate Occlusion ≥ {bench_perturbation.APPROXIMATE_TARGET:.0f}× faster than Captum's best"
        f.missing(name, target, "no approximate rows in the section (run with `--thresholds`)")
    for row in approximate:
        title = row[table.column("row")]
        speedup = number(row[table.column("Captum best / ours")])
        limit_approximate = bench_perturbation.APPROXIMATE_TARGET
        target = f"Approximate Occlusion ≥ {limit_approximate:.0f}× faster than Captum's best, error stated"
        met = speedup is not None and speedup >= limit_approximate
        f.targets.append(Target(target, f"{_x(speedup)} ({title})", f.verdict(name, met), f.source(name)))
    perturbation_slow(f, table)


def perturbation_slow(f: Found, table: Table) -> None:
    """The other perturbation rows where ours costs more than its floor or than a Captum row."""
    name = "bench_perturbation"
    for row in table.rows:
        title = row[table.column("row")]
        if _exact_occlusion(title) or "approximate" in title:
            continue
        floor = number(row[table.column("ours/floor")])
        faster = [number(row[table.column(c)]) for c in ("Captum defaults / ours", "Captum best / ours")]
        named = zip(("defaults", "best"), faster, strict=True)
        peers = "; ".join(f"Captum {label} takes {_x(x)} ours' time" for label, x in named if x is not None)
        if "defaults" in title and any(x < 1.0 for x in faster if x is not None):
            f.slow.append(Slow(name, f"{title}: {peers}", ["defaults rows"]))
        elif _over(floor, 1.0) or any(x is not None and x < 1.0 for x in faster):
            keys = ["Floor"] + (["Shapley"] if title.startswith("shapley") else [])
            keys += ["Occlusion"] if title.startswith("occlusion") else []
            f.slow.append(Slow(name, f"{title}: {_x(floor)} its floor; {peers}", keys))


def scaling_targets(f: Found) -> None:
    """IG passes to 1e-3, IG's memory at 200 steps on 224², IG ≤ floor and Captum across the sweeps."""
    name = "bench_scaling"
    passes_target = (
        "IG reaches 1e-3 relative completeness error in ≤ "
        f"{bench_scaling.PASSES_TARGET:g}× the passes of Captum's default quadrature"
    )
    memory_target = "IG with 200 steps at 224² within the default memory budget"
    time_target = f"IG ≤ {bg.FLOOR_TARGET:.2f}× floor and ≤ Captum at every steps, image size and batch size"
    if name not in f.sections:
        for target in (passes_target, memory_target, time_target):
            f.missing(name, target)
        return
    passes_targets(f, passes_target)
    memory_targets(f, memory_target)
    sweep_targets(f, time_target)


def passes_targets(f: Found, target: str) -> None:
    name = "bench_scaling"
    table = _find(f, name, "ours / Captum passes", "ours call")
    if table is None:
        f.missing(name, target, "no passes table")
        return
    col = table.column
    by_model: dict[str, list[dict[str, str]]] = {}
    for row in table.rows:
        by_model.setdefault(row[col("model")], []).append(row)
    for model, rows in by_model.items():
        default = next(r for r in rows if "(default)" in r[col("ours call")])
        ours, error = number(default[col("ours passes")]), number(default[col("ours max rel")])
        captum, captum_steps = number(default[col("Captum passes")]), default[col("smallest n_steps")]
        tolerance = number(re.search(r"tolerance=([\d.e-]+)", default[col("ours call")]).group(1))
        if captum is not None and ours is not None and error is not None:
            met = error <= tolerance and ours / captum <= bench_scaling.PASSES_TARGET
            verdict = f.verdict(name, met)
        else:
            verdict = default[col("target")]  # Captum did not reach it on the grid: the script's bound decides
            verdict += " (quick run)" if meta(f.sections[name]).quick else ""
        best = min(rows, key=lambda r: (number(r[col("ours max rel")]) > tolerance, number(r[col("ours passes")])))
        rule = re.search(r'integration="(\w+)"', best[col("ours call")]).group(1)
        measured = (
            f"{model}: ours (default rule) {default[col('ours passes')]} passes/sample, error {error:.1e}; Captum"
            f" {captum_steps} steps, {default[col('Captum passes')]} passes/sample; ratio"
            f" {default[col('ours / Captum')]}. Cheapest rule: `{rule}`, {best[col('ours passes')]} passes"
            f" ({best[col('ours / Captum')]})"
        )
        f.targets.append(Target(target, measured, verdict, f.source(name, "passes table")))
        if not verdict.startswith("met"):
            f.slow.append(Slow(name, f"IG passes to 1e-3, {model}: ratio {default[col('ours / Captum')]}", [model]))


def memory_targets(f: Found, target: str) -> None:
    name = "bench_scaling"
    table = _find(f, name, "peak MB above", "within the default budget")
    budget = re.search(r"Default `memory_budget`: ([\d.]+) MiB", f.sections[name])
    ours = (
        next((r for r in table.rows if r[table.column("contender")].startswith("saliencelab")), None) if table else None
    )
    if ours is None or budget is None:
        f.missing(name, target, "no memory table")
        return
    peak, limit = number(ours[table.column("peak MB above")]), float(budget.group(1))
    where = table.heading.replace("Memory: ", "")
    others = "; ".join(
        f"{r[table.column('contender')].split(',')[0]} {r[table.column('peak MB above')]} MB"
        for r in table.rows
        if r is not ours and re.match(r"[≤\d]", r[table.column("peak MB above")])
    )
    measured = f"{where}: ours {ours[table.column('peak MB above')]} MB peak above the level before (budget {limit:.0f}"
    measured += f" MiB); {others}" if others else " MiB)"
    met = peak is not None and peak <= limit
    f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name, "memory table")))
    if not met:
        f.slow.append(Slow(name, f"IG memory {where}: {peak} MB", ["Memory"]))


def sweep_targets(f: Found, target: str) -> None:
    name = "bench_scaling"
    points = []
    for t in tables(f.sections[name]):
        if not (t.heading.startswith("Time against") and t.column("ours/floor")):
            continue
        vary = t.header[0]
        for row in t.rows:
            r_floor, r_captum = number(row[t.column("ours/floor")]), number(row[t.column("ours/Captum")])
            label = f"{t.heading.replace('Time against ', '')}: {vary} = {row[vary]}"
            points.append((label, r_floor, r_captum))
            if _over(r_floor, bg.FLOOR_TARGET) or _over(r_captum, bg.CAPTUM_TARGET):
                what = f"IG, {label}: {_x(r_floor)} floor, {_x(r_captum)} Captum"
                f.slow.append(Slow(name, what, ["Time", "Small images"]))
    if not points:
        f.missing(name, target, "no timing tables")
        return
    floors = [p[1] for p in points if p[1] is not None]
    captums = [p[2] for p in points if p[2] is not None]
    misses = [p[0] for p in points if _over(p[1], bg.FLOOR_TARGET) or _over(p[2], bg.CAPTUM_TARGET)]
    measured = (
        f"{len(points)} points: ours/floor {min(floors):.2f}–{max(floors):.2f}, ours/Captum"
        f" {min(captums):.2f}–{max(captums):.2f}" + (f"; missed at {'; '.join(misses)}" if misses else "")
    )
    met = not misses and len(floors) == len(captums) == len(points)
    f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name, "timing tables")))


def evaluate_targets(f: Found) -> None:
    """Every evaluation metric ≤ 1.1× its own floor (``bench_evaluate``), one target per row of its results table.

    The ratio is read from the ``ours / floor`` column of any table that has one. A row is named by its ``case``
    and ``row`` columns where the table has them, else by its first column. Quantus' speed-up (no target of its
    own) goes into the measured text: read from a column named like ``Quantus / ours`` or ``speed-up``, or
    computed from ``ours s`` and ``Quantus s`` (or an ``ours/Quantus`` column, inverted), with what the verdict
    column (its header starts with ``≤``) says beyond PASS / MISS, such as "Quantus at its defaults,
    extrapolated" or "Quantus fails"; without such a note the two libraries gave equal output.

    Example
    -------
    >>> section = ("- Date: 2026-12-08 00:10 UTC\\n\\n### Results\\n\\n| case | row | ours s | floor s | ours / floor"
    ...            " | Quantus s | Quantus / ours | ≤ 1.1× floor |\\n|---|---|---:|---:|---:|---:|---:|---|\\n"
    ...            "| digits | ROAD | 1.5 | 1.4 | 1.07× | 3.2 | 2.1× | PASS |\\n")
    >>> f = Found({"bench_evaluate": section})
    >>> evaluate_targets(f)
    >>> [(t.target, t.measured, t.verdict) for t in f.targets]
    [('`digits: ROAD` ≤ 1.1× its floor', '1.07× its floor; Quantus takes 2.1× ours (equal output)', 'met')]
    """
    name = "bench_evaluate"
    target = f"every evaluation metric ≤ {EVALUATE_TARGET}× its own floor"
    if name not in f.sections:
        f.missing(name, target)
        return
    found = False
    for t in tables(f.sections[name]):
        column = t.column("ours / floor", "ours/floor")
        if column is None:
            continue
        check = next((h for h in t.header if h.startswith("≤")), None)
        for row in t.rows:
            found = True
            label = ": ".join(row[c] for c in ("case", "row") if c in row) or row[t.header[0]]
            verdict = row.get(check, "").strip() if check else ""
            note = re.sub(r"^(PASS|MISS|n/a)\s*\((.*)\)$|^(PASS|MISS|n/a)$", r"\2", verdict)
            target = f"`{label}` ≤ {EVALUATE_TARGET}× its floor"
            if MALFORMED in row:
                f.targets.append(Target(target, "—", NOT_MEASURED, f"{f.source(name)}: {row[MALFORMED]}"))
                continue
            ratio, speedup = number(row.get(column)), _speedup(t, row)
            if speedup is not None:
                quantus = f"Quantus takes {speedup:,.1f}× ours ({note or 'equal output'})"
            else:
                quantus = f"Quantus: {note or 'no time'}"
            if ratio is None:
                f.targets.append(Target(target, f"—; {quantus}", NOT_MEASURED, f"{f.source(name)}: no floor"))
                continue
            met = ratio <= EVALUATE_TARGET
            measured = f"{ratio:.2f}× its floor; {quantus}"
            f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name, t.heading)))
            if not met:
                keys = [key for prefix, key in EVALUATE_KEYS if row.get("row", label).startswith(prefix)]
                f.slow.append(Slow(name, f"{label}: {ratio:.2f}× its floor", keys or [row.get("row", label)]))
    if not found:
        f.missing(name, target, "no table with an `ours / floor` column")


def _speedup(t: Table, row: dict[str, str]) -> float | None:
    """Quantus' time over ours in one row of a table, from whichever columns the table has."""
    direct = next((h for h in t.header if re.search(r"quantus\s*(s\s*)?/\s*ours|speed-?up", h, re.I)), None)
    if direct:
        return number(row.get(direct))
    inverse = next((h for h in t.header if re.search(r"ours\s*(s\s*)?/\s*quantus", h, re.I)), None)
    if inverse:
        value = number(row.get(inverse))
        return 1 / value if value else None
    ours, theirs = t.column("ours s"), t.column("Quantus s")
    if ours and theirs:
        a, b = number(row.get(ours)), number(row.get(theirs))
        return b / a if a and b is not None else None
    return None


def lrp_slow(f: Found) -> None:
    """LRP has no time target; its cost over one forward+backward and any row slower than Zennit are listed."""
    name = "bench_lrp"
    table = _find(f, name, "composite", "ours/floor")
    if table is None:
        return
    by_composite: dict[str, list[float]] = {}
    for row in table.rows:
        composite = re.sub(r"\s*\(`.*$", "", row[table.column("composite")])
        ratio = number(row[table.column("ours/floor")])
        if ratio is not None:
            by_composite.setdefault(composite, []).append(ratio)
        vs = number(row[table.column("ours/Zennit")])
        if _over(vs, 1.0):
            what = f"LRP {composite}, {row[table.column('model')]}, N={row[table.column('N')]}: {_x(vs)} Zennit"
            f.slow.append(Slow(name, what, ["Time"]))
    for composite, ratios in by_composite.items():
        what = f"LRP {composite}: {min(ratios):.2f}–{max(ratios):.2f}× one forward+backward (no target)"
        f.slow.append(Slow(name, what, ["Time"]))


def cam_slow(f: Found) -> None:
    """CAM rows above 1.05× their floor or slower than pytorch-grad-cam."""
    name = "bench_cam"
    table = _find(f, name, "ours/floor", "ours/grad-cam")
    if table is None:
        return
    for row in table.rows:
        method = re.sub(r"\s*\(`.*$", "", row[table.column("method")])
        floor, peer = number(row[table.column("ours/floor")]), number(row[table.column("ours/grad-cam")])
        if _over(floor, bg.FLOOR_TARGET) or _over(peer, 1.0):
            key = next((k for k in ("Eigen-CAM", "Score-CAM", "Ablation-CAM") if method.startswith(k)), "Gradient CAMs")
            key += " time" if key != "Gradient CAMs" else ""
            what = f"{method}, N={row[table.column('N')]}: {_x(floor)} its floor, {_x(peer)} pytorch-grad-cam"
            f.slow.append(Slow(name, what, [key]))


def import_targets(f: Found) -> None:
    """``import saliencelab`` (alone and at first use) ≤ 0.25 s over ``import torch``; ``--help`` under 1 s."""
    name = "bench_import"
    table = _find(f, name, "command", "over `import torch` s", "verdict")
    rows = [r for r in table.rows if r[table.column("target")]] if table else []
    if not rows:
        f.missing(name, "`import saliencelab` ≤ 0.25 s over `import torch`; `saliencelab --help` < 1 s")
        return
    col = table.column
    for row in rows:
        met = row[col("verdict")] == "met"
        measured = f"{row[col('median s')]} s median ({row[col('over `import torch` s')]} s over `import torch`)"
        f.targets.append(Target(f"{row[col('command')]} {row[col('target')]}", measured, f.verdict(name, met),
                                f.source(name)))  # fmt: skip


def transformer_targets(f: Found) -> None:
    """The LRP transformer composite ≤ 1.5× one forward+backward; IG to 1e-2 in ≤ 0.5× Captum's passes."""
    name = "bench_transformers"
    lrp_target = "LRP transformer composite ≤ 1.5× one forward+backward (BERT- and LLaMA-shaped)"
    ig_target = "IG at the embeddings to a 1e-2 completeness error in ≤ 0.5× Captum LayerIG's passes"
    cost = _find(f, name, "LRP / fwd+bwd", "model", "dtype")
    if cost is None:
        f.missing(name, lrp_target)
    else:
        col = cost.column
        ratios = [number(r[col("LRP / fwd+bwd")]) for r in cost.rows]
        met = bool(ratios) and all(r is not None and r <= 1.5 for r in ratios)
        measured = "; ".join(f"{r[col('model')]} {r[col('dtype')]}: {r[col('LRP / fwd+bwd')]}×" for r in cost.rows)
        f.add(name, lrp_target, measured, met, "LRP through a transformer", ["Where LRP's time goes"], "LRP's cost")
    passes = _find(f, name, "ours / Captum passes", "reference", "ours call")
    if passes is None:
        f.missing(name, ig_target)
        return
    col = passes.column
    defaults = [r for r in passes.rows if "adaptive" in r[col("ours call")]]
    met = bool(defaults) and all(r[col("target")].startswith("met") for r in defaults)
    measured = "; ".join(
        f"{r[col('model')]}, {r[col('reference')]}: {r[col('ours / Captum passes')]}" for r in defaults
    )
    f.add(name, ig_target, measured, met, "IG passes at the embeddings", ["IG's passes"], "IG passes")


def token_ig_targets(f: Found) -> None:
    """IG at the embeddings from token ids ≤ 1.05× Captum's ``LayerIntegratedGradients`` at equal steps."""
    name = "bench_structured"
    target = "IG at the embeddings (token ids) ≤ 1.05× Captum `LayerIntegratedGradients` at equal steps"
    table = _find(f, name, "input kind", "ours/Captum")
    rows = [r for r in table.rows if r[table.column("input kind")].startswith("token ids")] if table else []
    if not rows:
        f.missing(name, target, "no token-id row")
        return
    col = table.column
    ratios = [number(r[col("ours/Captum")]) for r in rows]
    met = all(r is not None and r <= 1.05 for r in ratios)
    measured = "; ".join(f"{r[col('row')]}: {r[col('ours/Captum')]}×" for r in rows)
    f.add(name, target, measured, met, "token-id IG", ["Chunk size"])


def runs_targets(f: Found) -> None:
    """The local engine within 1.1× of its methods' floors plus the store's write time."""
    name = "bench_runs"
    target = "Data-set run, local engine ≤ 1.1× its methods' floors + the store's write time"
    table = _find(f, name, "local / (floor + write)")
    if table is None:
        f.missing(name, target)
        return
    col = table.column
    met = all(r[col("target")] == "met" for r in table.rows)
    measured = "; ".join(
        f"{r[col('data and model')]}: {r[col('local / (floor + write)')]} (write {r[col('write s')]} s)"
        for r in table.rows
    )
    f.add(name, target, measured, met, "data-set runs", ["Floor"])


def explore_targets(f: Found) -> None:
    """The explorer's first paint under one second at every run size measured (10,000 samples included)."""
    name = "bench_explore"
    target = "Explorer: first paint < 1 s on a 10,000-sample run"
    table = _find(f, name, "first paint ms", "samples")
    if table is None:
        f.missing(name, target)
        return
    col = table.column
    met = all(number(r[col("first paint ms")]) is not None and number(r[col("first paint ms")]) < 1000
              for r in table.rows)  # fmt: skip
    measured = "; ".join(
        f"{r[col('samples')]} samples: {r[col('first paint ms')]} ms, RSS {r[col('RSS start MiB')]} → "
        f"{r[col('RSS after browsing MiB')]} MiB"
        for r in table.rows
    )
    f.targets.append(Target(target, measured, f.verdict(name, met), f.source(name)))


def gpu_targets(f: Found) -> None:
    """Every method timed on CUDA; only present where a session had a GPU."""
    name = "bench_gpu"
    target = "Every method on CUDA, float32 and bfloat16, against its floor and Captum"
    if name not in f.sections or meta(f.sections[name]).quick:
        f.missing(name, target, "no run on a CUDA device yet (`benchmarks/bench_gpu.py` needs one)")
        return
    table = _find(f, name, "ours/floor", "dtype")
    measured = f"{len(table.rows) if table else 0} rows on {meta(f.sections[name]).machine}"
    f.targets.append(Target(target, measured, "measured", f.source(name)))


BUILDERS: tuple[Callable[[Found], None], ...] = (
    gradient_targets,
    deeplift_targets,
    occlusion_targets,
    scaling_targets,
    evaluate_targets,
    transformer_targets,
    token_ig_targets,
    runs_targets,
    import_targets,
    explore_targets,
    gpu_targets,
    lrp_slow,
    cam_slow,
)


# --------------------------------------------------------------------------- the summary section


def machine_lines() -> list[str]:
    """The machine and the versions of everything the benchmarks compare."""
    m = bg.machine()
    peers = []
    for package in PEERS:
        try:
            peers.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            peers.append(f"{package} not installed")
    return [
        f"- Machine: {m['CPU']}",
        f"- Software (the summary's interpreter, `{sys.executable}`): {m['Software']}; {', '.join(peers)}",
        f"- Summary written: {m['Date']}, `{bg.command_line()}`",
    ]


def sections_table(f: Found, steps: dict[str, str]) -> str:
    lines = ["| section | measures | machine | date | command | this run |", "|---|---|---|---|---|---|"]
    for name, (what, _) in SCRIPTS.items():
        if name in f.sections:
            m = meta(f.sections[name])
            date = m.date + (" (**quick run**)" if m.quick else "")
            lines.append(f"| `{name}` | {what} | {m.machine} | {date} | `{m.command}` | {steps.get(name, '—')} |")
        else:
            lines.append(f"| `{name}` | {what} | — | — (no section) | — | {steps.get(name, '—')} |")
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    lines = ["| target | measured | verdict | source |", "|---|---|---|---|"]
    for t in targets:
        verdict = f"**{t.verdict}**" if t.verdict.startswith("NOT") else t.verdict
        cells = (t.target, t.measured, verdict, t.source)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def slower_lines(f: Found) -> Iterator[str]:
    """The slow cases of each section, grouped under the bullets of its reading that explain them."""
    for name in SCRIPTS:
        cases = [s for s in f.slow if s.section == name]
        if not cases:
            continue
        r = reading(f.sections[name])
        groups: dict[tuple[str, ...], list[str]] = {}
        for case in cases:
            chosen = tuple(b for b in r.bullets if any(k in bullet_title(b) for k in case.keys))
            if not chosen:
                chosen = tuple(r.intro) or ("(the section's reading does not explain this)",)
            groups.setdefault(chosen, []).append(case.what)
        yield f"### `{name}`"
        yield ""
        for explanation, whats in groups.items():
            yield "- " + "; ".join(whats) + "."
            for index, text in enumerate(explanation):
                yield from ["  >"] if index else []
                yield f"  > {text}"
            yield ""


def summary(text: str, steps: dict[str, str] | None = None) -> str:
    """The summary section for a report whose current content is ``text``."""
    f = Found(read_sections(text))
    for build in BUILDERS:
        build(f)
    met = sum(t.verdict.startswith("met") for t in f.targets)
    missed = sum(t.verdict.startswith("NOT") for t in f.targets)
    unmeasured = sum(t.verdict == NOT_MEASURED for t in f.targets)
    lines = [
        "# saliencelab benchmarks",
        "",
        "Written by `benchmarks/run_all.py` from the sections below: every number here is read from their tables"
        " and every explanation is quoted from their readings; nothing here is measured or typed by hand. One"
        " command reruns every benchmark and rewrites this summary:",
        "",
        f"```bash\n{ONE_COMMAND}\n```",
        "",
        "(`--quick` for a smoke run into a temporary file, `--summary-only` to rewrite this summary alone; see"
        " `benchmarks/README.md`.)",
        "",
        "## Machine and software",
        "",
        *machine_lines(),
        "",
        "## Sections",
        "",
        "Each section states its own machine, software, command and settings. A quick run's numbers are not for"
        " comparison. Every ratio compares contenders timed in the same run on the same machine; times from"
        " sections that ran on different processors are not comparable with each other.",
        "",
        sections_table(f, steps or {}),
        "",
        "## Targets",
        "",
        f"{met} met, {missed} not met, {unmeasured} not measured.",
        "",
        targets_table(f.targets),
        "",
        "## Where we are slower and why",
        "",
        "The rows of each section that miss a target or lose to the peer (LRP has no time target: its cost over one"
        " forward+backward is listed), each under the bullets of that section's own reading that explain it.",
        "",
        *slower_lines(f),
    ]
    return "\n".join(lines).rstrip() + "\n"


def put_first(path: Path, name: str, body: str) -> None:
    """Write the marked section ``name`` at the top of ``path``, removing its old place."""
    old = path.read_text() if path.exists() else ""
    block = re.compile(rf"^<!-- {re.escape(name)}: begin -->$.*?^<!-- {re.escape(name)}: end -->$\n?", re.S | re.M)
    rest = block.sub("", old)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!-- {name}: begin -->\n{body.strip()}\n<!-- {name}: end -->\n\n{rest.lstrip()}")


# --------------------------------------------------------------------------- running the scripts


@dataclass
class Settings:
    scripts: list[str]
    quick: bool
    out: Path
    summary_only: bool
    dry_run: bool


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"pass --quick to every script; report in {QUICK_OUT}")
    p.add_argument("--only", nargs="+", help="run only these scripts (then the summary)")
    p.add_argument("--skip", nargs="+", default=[], help="do not run these scripts")
    p.add_argument("--out", type=Path, help="report to update (default BENCHMARKS.md; with --quick a temporary file)")
    p.add_argument("--summary-only", action="store_true", help="run nothing; rewrite the summary from the sections")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = p.parse_args(argv)
    only = [n.removesuffix(".py") for item in (a.only or list(SCRIPTS)) for n in item.split(",") if n]
    skip = {n.removesuffix(".py") for item in a.skip for n in item.split(",") if n}
    unknown = sorted((set(only) | skip) - set(SCRIPTS))
    if unknown:
        p.error(f"unknown scripts {unknown}; choose from {', '.join(SCRIPTS)}")
    out = a.out or (QUICK_OUT if a.quick else bg.REPO_ROOT / "BENCHMARKS.md")
    scripts = [n for n in SCRIPTS if n in only and n not in skip]
    return Settings(scripts, a.quick, out, a.summary_only, a.dry_run)


def missing_modules(name: str) -> list[str]:
    return [m for m in SCRIPTS[name][1] if importlib.util.find_spec(m) is None]


def run_scripts(s: Settings) -> dict[str, str]:
    """Run each script in turn (each writes its own section); script -> what happened."""
    steps = {}
    for name in s.scripts:
        path = HERE / f"{name}.py"
        if not path.exists():
            steps[name] = "not run: script not present"
            print(f"== {name}: not present, skipped", flush=True)
            continue
        if name in NEEDS_CUDA and not torch.cuda.is_available():
            steps[name] = "not run: no CUDA device here"
            print(f"== {name}: {steps[name]}", flush=True)
            continue
        missing = missing_modules(name)
        if missing:
            steps[name] = f"not run: needs {', '.join(missing)} (`{INSTALL[name]}`)"
            print(f"== {name}: {steps[name]}", flush=True)
            continue
        command = [sys.executable, str(path), *(["--quick"] if s.quick else []), "--out", str(s.out)]
        print(f"== {name}: {shlex.join(command)}", flush=True)
        if s.dry_run:
            continue
        began = time.perf_counter()
        code = subprocess.run(command, cwd=bg.REPO_ROOT).returncode
        minutes = (time.perf_counter() - began) / 60
        steps[name] = f"ran, {minutes:.1f} min" if code == 0 else f"**failed** (exit {code}) after {minutes:.1f} min"
        print(f"== {name}: {steps[name]}", flush=True)
    return steps


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    steps = {} if s.summary_only else run_scripts(s)
    if s.dry_run:
        return 0
    text = s.out.read_text() if s.out.exists() else ""
    put_first(s.out, SECTION, summary(text, steps))
    print(f"\nwrote the summary at the top of {s.out}")
    for t in tables(bg.marked_sections(s.out.read_text())[SECTION]):
        if t.heading == "Targets":
            for row in t.rows:
                print(f"  {row['verdict']:<28} {row['target']}")
    failed = [n for n, what in steps.items() if "failed" in what]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
