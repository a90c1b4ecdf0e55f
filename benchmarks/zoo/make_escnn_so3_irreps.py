"""escnn's own SO(3) irreps ``irrep(l)(g)`` (l = 1, 2, 3) at fixed rotations, for tests/test_euclidean.py
(eqcheck's ``:escnn`` basis). Run in escnn's environment (../shared/design/THIRD_PARTY.md):

    .venv-escnn/bin/python benchmarks/zoo/make_escnn_so3_irreps.py   # writes tests/data/escnn_so3_irreps.json
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
from escnn.group import so3_group  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "escnn_so3_irreps.json"


def rotations(count: int) -> list[np.ndarray]:
    """Rotations from QR of Gaussian matrices (signs fixed: Haar-uniform), a fixed seed."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        q = q * np.sign(np.diag(r))
        out.append(q if np.linalg.det(q) > 0 else -q)
    return out


def main() -> None:
    group = so3_group()
    entries = []
    for rotation in rotations(6):
        element = group.element(rotation, param="MAT")
        entries.append({"rotation": rotation.tolist(),
                        **{f"irrep{l}": np.asarray(group.irrep(l)(element)).tolist() for l in (1, 2, 3)}})
    OUT.write_text(json.dumps(entries))
    print(f"wrote {OUT} ({len(entries)} rotations)")


if __name__ == "__main__":
    main()
