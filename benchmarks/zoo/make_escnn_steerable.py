"""Small escnn models with steerable output fields (vectors, mixed types, quotients, C8 fields, the
up-down mirror of axis=0), exported to ONNX for tests/test_discovery.py, with escnn's own error at the
elements that act exactly on the grid (its GeometricTensor.transform) in tests/data/escnn/reference.json.

    .venv-escnn/bin/python benchmarks/zoo/make_escnn_steerable.py     (escnn 1.0.11; about 10 s)
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
from escnn import gspaces, nn  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "escnn"
SIZE = 17


def exact_elements(gspace):
    """The elements whose action on the grid is a signed permutation of the axes (no interpolation)."""
    found = []
    for g in gspace.testing_elements:
        matrix = gspace.basespace_action(g)
        if all(abs(abs(v) - round(abs(v))) < 1e-9 for v in matrix.flatten()):
            found.append(g)
    return found


def build(gspace, out_reps, name: str, group: str) -> dict:
    torch.manual_seed(0)
    field_in = nn.FieldType(gspace, [gspace.trivial_repr])
    hidden = nn.FieldType(gspace, 4 * [gspace.regular_repr])
    field_out = nn.FieldType(gspace, out_reps)
    model = nn.SequentialModule(nn.R2Conv(field_in, hidden, 5, padding=2), nn.ReLU(hidden),
                                nn.R2Conv(hidden, field_out, 5, padding=2)).eval()
    exported = model.export().eval()
    torch.onnx.export(exported, (torch.randn(2, 1, SIZE, SIZE),), str(OUT / f"{name}.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      dynamo=False, opset_version=17)
    x = nn.GeometricTensor(torch.randn(2, 1, SIZE, SIZE), field_in)
    with torch.no_grad():
        y = model(x)
        errors = [float((model(x.transform(g)).tensor - y.transform(g).tensor).norm() / y.tensor.norm())
                  for g in exact_elements(gspace)]
    return {"model": f"{name}.onnx", "group": group, "escnn_type": [r.name for r in out_reps],
            "channels": field_out.size, "escnn_max_rel_error_exact": max(errors)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    c4, d4, c8 = gspaces.rot2dOnR2(4), gspaces.flipRot2dOnR2(4), gspaces.rot2dOnR2(8)
    d4_rows = gspaces.flipRot2dOnR2(4, axis=0.0)  # the up-down mirror (escnn and e2cnn axis=0)
    models = [
        build(c4, [c4.irrep(1)] * 2, "c4_vector", "p4"),
        build(d4, [d4.trivial_repr, d4.irrep(1, 1), d4.regular_repr], "d4_mixed", "p4m"),
        build(d4, [d4.basespace_action] * 2, "d4_geometric_vector", "p4m"),
        build(c8, [c8.quotient_repr(2)] * 2, "c8_quotient", "p4"),
        build(c8, [c8.regular_repr] * 3, "c8_regular", "p4"),
        build(d4_rows, [d4_rows.regular_repr] * 2, "d4_axis0_regular", "p4m"),
        build(d4_rows, [d4_rows.irrep(1, 1), d4_rows.trivial_repr], "d4_axis0_mixed", "p4m"),
    ]
    (OUT / "reference.json").write_text(json.dumps({"escnn": "1.0.11", "models": models}, indent=1) + "\n")
    print(f"wrote {len(models)} models to {OUT}")


if __name__ == "__main__":
    main()
