#!/usr/bin/env bash
# Create (or update) the virtual environment that benchmarks/bench_evaluate.py runs in:
# saliencelab installed editable from this checkout, plus Quantus and Captum
# (benchmarks/requirements-quantus.txt). Quantus never goes into the project's own
# environment or dependencies. Running it again only re-checks the installs.
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
"$venv/bin/python" -c "import quantus, saliencelab; print('quantus', quantus.__version__, '| saliencelab', saliencelab.__version__)"
echo "run: $venv/bin/python benchmarks/bench_evaluate.py [--quick]"
