"""Reference Wigner D matrices from e3nn itself, for tests/reps/test_o3.py (e3nn is not a dependency).

    pip install e3nn && python benchmarks/zoo/make_e3nn_reference.py

Writes tests/data/e3nn_wigner.json: for a few fixed rotations (and each composed with the inversion),
``Irreps(spec).D_from_matrix(R)`` for irreps strings covering l = 0..4 and both parities.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from e3nn import __version__, o3

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "e3nn_wigner.json"
SPECS = ["0e", "0o", "1o", "1e", "2e", "2o", "3o", "4e", "2x0e+1x1o+1x2e", "1x1e+2x0o"]


def main() -> None:
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    rotations = [o3.rand_matrix() for _ in range(3)]
    rotations += [-r for r in rotations[:2]]
    entries = [{"rotation": r.tolist(), "spec": spec, "D": o3.Irreps(spec).D_from_matrix(r).tolist()}
               for r in rotations for spec in SPECS]
    OUT.write_text(json.dumps({"e3nn_version": __version__, "entries": entries}))
    print(f"wrote {len(entries)} matrices to {OUT}")


if __name__ == "__main__":
    main()
