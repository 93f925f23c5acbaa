#!/usr/bin/env bash
# Create (or update) the virtual environment every benchmark runs in (benchmarks/run_all.py):
# saliencelab installed editable from this checkout, plus the peers: Quantus and Captum
# (benchmarks/requirements-quantus.txt), and Zennit and pytorch-grad-cam without their
# dependencies (they require torchvision, which does not import with this CPU torch; the
# benchmark scripts stub it). No peer goes into the project's own environment or
# dependencies. Running it again only re-checks the installs.
#
#   bash benchmarks/setup_bench_env.sh                 # -> /work/bench-venv
#   bash benchmarks/setup_bench_env.sh /path/to/venv   # or BENCH_VENV=/path/to/venv
#
# constraints.txt pins torch to the version installed for this project, so that pip
# pulls no other (CUDA) build of torch.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${BENCH_VENV:-/work/bench-venv}}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -c "$repo/constraints.txt" -e "$repo"
"$venv/bin/python" -m pip install -c "$repo/constraints.txt" -r "$repo/benchmarks/requirements-quantus.txt"
"$venv/bin/python" -m pip install -c "$repo/constraints.txt" --no-deps zennit==0.5.1 grad-cam==1.5.7 ttach==0.0.3
"$venv/bin/python" -m pip install -c "$repo/constraints.txt" opencv-python-headless
"$venv/bin/python" -c "from importlib.metadata import version as v; print(*(f'{p} {v(p)}' for p in ('saliencelab', 'quantus', 'captum', 'zennit', 'grad-cam')))"
echo "run: $venv/bin/python benchmarks/run_all.py [--quick]"
