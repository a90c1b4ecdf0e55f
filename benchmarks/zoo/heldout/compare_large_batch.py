#!/usr/bin/env python
"""Per-layer results of two eqcheck trees on the 2-D held-out models at a large batch and a small per-layer
memory budget, row by row: what changes in the analysis of large tensors (many chunks, captures that use
buffers again, errors read from views) must leave every verdict, first failing layer, action, margin and
error as it was.

Run: .venv/bin/python benchmarks/zoo/heldout/compare_large_batch.py --base REV [--batch 96] [--budget-mib 64]
(after build_heldout.sh). The working tree is compared with ``git archive REV``; both run at once, one process
each. Prints each check that differs (errors compared to 1e-5 relative) and a summary; exits 1 if any does.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from heldout_common import MANIFEST, OUT, REPO, load_manifest, snapshot_head  # noqa: E402

#: the groups of image models (the analysis of channel fields this script is for)
IMAGE_GROUPS = ("p4", "c4", "c8", "d4", "so2", "translation")


def entries() -> list[dict]:
    """The ONNX and Python checks of 2-D images whose input shape is known (a dynamic batch)."""
    chosen = []
    for e in load_manifest():
        if e["format"] not in ("onnx", "pyspec") or not e["group"].startswith(IMAGE_GROUPS):
            continue
        if e["format"] == "pyspec":
            if e["args"][:1] != ["--input-shape"] or len(e["args"]) != 2:
                continue
            shape = [int(v) for v in e["args"][1].split(",")]
        else:
            import onnxruntime as ort

            shape = ort.InferenceSession(str(REPO / e["file"]), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
            if not isinstance(shape[0], str):  # a fixed batch
                continue
        if len(shape) == 4:
            chosen.append({**e, "shape": shape})
    return chosen


def child(batch: int, budget: int) -> None:
    """One JSON line per check, with the tree on sys.path first (PYTHONPATH)."""
    import eqcheck.layers.propagate as propagate
    from eqcheck.api import verify

    run = propagate.LayerAnalysis.run

    def small_budget(self, feeds, items, max_batch, _budget, progress):
        return run(self, feeds, items, max_batch, budget, progress)

    propagate.LayerAnalysis.run = small_budget
    for e in entries():
        shape = [batch] + list(e["shape"][1:])
        try:
            r = verify(str(REPO / e["file"]), e["group"], input_shape=shape, per_layer=True)
        except Exception as error:  # noqa: BLE001 (reported, compared like any result)
            print(json.dumps({"name": e["name"], "error": str(error).splitlines()[0][:200]}), flush=True)
            continue
        print(json.dumps({"name": e["name"], "passed": r.passed, "first": r.first_failing_layer,
                          "outputs": [o.max_rel_error for o in r.outputs],
                          "layers": [[row.name, row.representation, row.representation_source, row.local_rel_error,
                                      row.max_rel_error, row.representation_margin, row.passed] for row in r.layers]}),
              flush=True)


def close(a, b) -> bool:
    if isinstance(a, (str, bool)) or a is None or b is None:
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b)) + 1e-9


def differences(x: dict, y: dict) -> list[str]:
    if "error" in x or "error" in y:
        return [] if x.get("error") == y.get("error") else [f"error: {x.get('error')!r} / {y.get('error')!r}"]
    found = [f"{key}: {x[key]} / {y[key]}" for key in ("passed", "first") if x[key] != y[key]]
    if len(x["layers"]) != len(y["layers"]):
        return found + [f"{len(x['layers'])} / {len(y['layers'])} layers"]
    found += [f"{a} / {b}" for a, b in zip(x["layers"], y["layers"]) if not all(map(close, a, b))]
    found += [f"output {a} / {b}" for a, b in zip(x["outputs"], y["outputs"]) if not close(a, b)]
    return found


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        child(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare the working tree with")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--budget-mib", type=int, default=64)
    args = parser.parse_args()
    if not MANIFEST.exists():
        raise SystemExit("no held-out manifest: run benchmarks/zoo/heldout/build_heldout.sh first")
    commit, base = snapshot_head(OUT, args.base)
    groupy = str(OUT / "third_party" / "groupy")
    runs = {}
    for label, tree in ((commit, base), ("working tree", str(REPO))):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, groupy, os.environ.get("PYTHONPATH", "")])}
        runs[label] = subprocess.Popen([sys.executable, __file__, "child", str(args.batch),
                                        str(args.budget_mib * 2**20)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)
    results = {label: [json.loads(line) for line in process.communicate()[0].splitlines()]
               for label, process in runs.items()}
    before, after = results.values()
    differing = 0
    for x, y in zip(before, after):
        found = differences(x, y)
        if found:
            differing += 1
            print(f"DIFFERS {x['name']}:\n    " + "\n    ".join(found[:4]))
    errors = sum("error" in x for x in after)
    print(f"{len(after)} checks at batch {args.batch}, {args.budget_mib} MiB per chunk: {differing} differ between "
          f"{commit} and the working tree ({sum(not x.get('passed', True) for x in after)} failing models, "
          f"{errors} errors in both)")
    if differing or len(before) != len(after):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
