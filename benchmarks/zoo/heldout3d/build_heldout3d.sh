#!/usr/bin/env bash
# Build the 3-D held-out model set into build/heldout3d/ and check eqcheck on it.
# Usage: bash benchmarks/zoo/heldout3d/build_heldout3d.sh [--no-check] [check options, e.g. --snapshot]
# Needs .venv with eqcheck, torch, onnx, onnxruntime, onnxscript, e3nn, egnn-pytorch, torch-geometric
# (no torch-scatter / torch-cluster: the models scatter and build radius graphs by hand).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
for pkg in e3nn egnn-pytorch torch-geometric onnxscript; do
    .venv/bin/pip show "$pkg" >/dev/null 2>&1 || { echo "missing $pkg in .venv: .venv/bin/pip install $pkg"; exit 2; }
done
.venv/bin/python benchmarks/zoo/heldout3d/make_heldout3d.py
if [ "${1:-}" != "--no-check" ]; then
    .venv/bin/python benchmarks/zoo/heldout3d/check_heldout3d.py "$@"
fi
