#!/usr/bin/env bash
# Build the held-out model set into build/heldout/ and check eqcheck on it.
# Usage: bash benchmarks/zoo/heldout/build_heldout.sh [--no-check]
# Needs .venv (eqcheck, torch, onnx, onnxruntime; egnn-pytorch for the EGNN model) and .venv-escnn
# (escnn, plus e2cnn installed with --no-deps). GrouPy's PyTorch port is not on PyPI: it is taken from a
# git clone (GROUPY_GIT, default the fetched mirror of github:adambielski/GrouPy), extracted into
# build/heldout/third_party/groupy and patched for numpy >= 1.24 (np.int/np.float/np.bool aliases,
# indexing with a list of arrays).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
GROUPY_GIT="${GROUPY_GIT:-/work/.mirror/adambielski+GrouPy/repo/.git}"
mkdir -p build/heldout
if [ ! -d build/heldout/third_party/groupy/groupy ]; then
    rm -rf build/heldout/third_party/groupy && mkdir -p build/heldout/third_party/groupy
    git --git-dir="$GROUPY_GIT" archive HEAD | tar -x -C build/heldout/third_party/groupy
    grep -rlE 'np\.(int|float|bool)\b' build/heldout/third_party/groupy/groupy \
        | xargs sed -i -E 's/np\.(int|float|bool)\b/\1/g'
    sed -i 's/vi = self.v\[inds\]/vi = self.v[tuple(inds)]/' build/heldout/third_party/groupy/groupy/gfunc/gfuncarray.py
fi
.venv-escnn/bin/pip show e2cnn >/dev/null 2>&1 || .venv-escnn/bin/pip install --no-deps e2cnn
.venv/bin/pip show egnn-pytorch >/dev/null 2>&1 || .venv/bin/pip install egnn-pytorch || echo "egnn-pytorch did not install: EGNN skipped"
.venv-escnn/bin/python benchmarks/zoo/heldout/make_heldout_escnn.py
PYTHONPATH=build/heldout/third_party/groupy .venv/bin/python benchmarks/zoo/heldout/make_heldout.py
if [ "${1:-}" != "--no-check" ]; then
    .venv/bin/python benchmarks/zoo/heldout/check_heldout.py
fi
