"""Start-up cost: ``import saliencelab``, its first use, and ``saliencelab --help``, against ``import torch``.

Each row is a fresh interpreter (``python -X importtime`` is not used: it slows what
it measures), timed from ``subprocess.run`` to its exit, in interleaved rounds so
that a change in the machine's load falls on every row alike; the table gives the
median of the rounds. ``python -c pass`` is the interpreter's own start.

- ``import torch``: the floor any PyTorch library pays once it computes anything;
- ``import saliencelab``: the package alone (it imports torch only when a name
  that needs it is first used);
- ``import saliencelab; saliencelab.explain``: the first use, which imports torch
  and the method registry;
- ``saliencelab --help`` and ``saliencelab explain --help``: the console script.

Targets (issue "Performance, round two"): ``import saliencelab`` ≤ 0.25 s over
``import torch``; ``saliencelab --help`` under 1 s.

Usage::

    python benchmarks/bench_import.py                  # 15 rounds
    python benchmarks/bench_import.py --quick --out /tmp/q.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_gradient import REPO_ROOT, command_line, machine, write_section

SECTION = "bench_import"
OVER_TORCH_TARGET = 0.25
"""Seconds ``import saliencelab`` may add to ``import torch``."""
HELP_TARGET = 1.0
"""Seconds ``saliencelab --help`` may take."""


def commands() -> dict[str, list[str]]:
    """Row name -> the command it times."""
    python = [sys.executable, "-c"]
    script = shutil.which("saliencelab", path=str(Path(sys.executable).parent)) or shutil.which("saliencelab")
    console = [script] if script else [sys.executable, "-m", "saliencelab"]
    return {
        "python -c pass": [*python, "pass"],
        "import torch": [*python, "import torch"],
        "import saliencelab": [*python, "import saliencelab"],
        "import saliencelab; saliencelab.explain": [*python, "import saliencelab; saliencelab.explain"],
        "saliencelab --help": [*console, "--help"],
        "saliencelab explain --help": [*console, "explain", "--help"],
    }


def timed(command: list[str]) -> float:
    """Seconds from starting ``command`` to its exit (which must be 0)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT)
    return time.perf_counter() - start


def measure(rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds of every command, after one untimed round that warms the file cache."""
    rows = commands()
    for command in rows.values():
        timed(command)
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, command in rows.items():
            seconds[name].append(timed(command))
    return seconds


def section(seconds: dict[str, list[float]], rounds: int, quick: bool, load: tuple[float, float]) -> str:
    median = {name: statistics.median(values) for name, values in seconds.items()}
    torch_s = median["import torch"]
    m = machine()
    over = median["import saliencelab; saliencelab.explain"] - torch_s
    targets = {
        "import saliencelab": (
            f"≤ {OVER_TORCH_TARGET} s over `import torch`",
            median["import saliencelab"] - torch_s <= OVER_TORCH_TARGET,
        ),
        "import saliencelab; saliencelab.explain": (
            f"≤ {OVER_TORCH_TARGET} s over `import torch`",
            over <= OVER_TORCH_TARGET,
        ),
        "saliencelab --help": (f"< {HELP_TARGET:.0f} s", median["saliencelab --help"] < HELP_TARGET),
    }
    lines = [
        "## Start-up: importing saliencelab and its command line",
        "",
        f"- Machine: {m['CPU']} (shared; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)",
        f"- Software: {m['Software']}",
        f"- Date: {m['Date']}; command: `{command_line()}`" + (" (**quick run**: not for comparison)" if quick else ""),
        f"- Each row: a fresh interpreter from start to exit; {rounds} interleaved rounds after one untimed round; "
        "medians.",
        "",
        "| command | median s | min s | over `import torch` s | target | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, values in seconds.items():
        target, met = targets.get(name, ("", None))
        verdict = "" if met is None else ("met" if met else "NOT met")
        over = "" if name in ("python -c pass", "import torch") else f"{median[name] - torch_s:+.3f}"
        lines.append(f"| `{name}` | {median[name]:.3f} | {min(values):.3f} | {over} | {target} | {verdict} |")
    lines += [
        "",
        "### Reading",
        "",
        "- `import saliencelab` does not import torch: the package's names are loaded on first use (PEP 562), so "
        "the import costs the interpreter's start and a few small modules; the first use of a name that computes "
        "(`saliencelab.explain`) pays `import torch` and the method registry once.",
        "- The second row's target is the one a user meets: whoever computes pays `import torch` anyway, and "
        "the first use adds what saliencelab imports beyond it.",
        "- The console script imports torch only in the commands that compute: `--help` of the command group and "
        "of each command is answered without it.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md")
    a = parser.parse_args(argv)
    rounds = 3 if a.quick else a.rounds
    load = os.getloadavg()[0]
    seconds = measure(rounds)
    write_section(a.out, SECTION, section(seconds, rounds, a.quick, (load, os.getloadavg()[0])))
    print(f"wrote the {SECTION} section of {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
