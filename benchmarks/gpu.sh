#!/usr/bin/env bash
# The GPU benchmark in one command (benchmarks/gpu.py says what each stage measures): on one GPU it
# runs in a few minutes and writes runs/gpu-benchmark/gpu.md (a Markdown table) and gpu.json.
#
#   benchmarks/gpu.sh                  # on the GPU: full SST-2, the config's epochs, every variant
#   benchmarks/gpu.sh --device cpu     # the dry run: the same stages on small slices, on the CPU
#
# PYTHON names the interpreter (default .venv/bin/python); other arguments go to benchmarks/gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m benchmarks.gpu "$@"
