#!/usr/bin/env bash
# Rebuild the whole validation zoo into build/zoo/ (see benchmarks/zoo/README.md).
# Usage: bash benchmarks/zoo/build_zoo.sh   (from anywhere; about 1 minute on 2 cores
# once /work/main/.venv-escnn exists; creating that venv takes about 2 more minutes)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ ! -x .venv-escnn/bin/python ]; then
    echo "creating .venv-escnn (recipe of /work/shared/design/THIRD_PARTY.md)"
    python3 -m venv .venv-escnn
    V=.venv-escnn/bin
    $V/pip install torch==2.13.0
    $V/pip install onnx onnxruntime onnxscript
    $V/pip install --no-deps escnn
    $V/pip install scipy joblib lie_learn
    $V/pip install "numpy<2" "ml_dtypes<0.6" autograd pymanopt
fi
rm -rf build/zoo
.venv-escnn/bin/python benchmarks/zoo/make_escnn_zoo.py
.venv/bin/python benchmarks/zoo/make_torch_zoo.py
.venv/bin/python benchmarks/zoo/make_input_npz.py
echo "zoo written to $ROOT/build/zoo ($(du -sh build/zoo | cut -f1))"
