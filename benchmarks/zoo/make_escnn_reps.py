"""Generate escnn reference test vectors for eqcheck's representation code.

What it writes: ``tests/data/escnn_representations.json`` (about 215 KB, compact JSON), taken from
the real escnn library so that eqcheck's own C_N / D_N / SO(2) representations, field types and
restrictions can be tested against escnn's numbers without escnn installed. For each gspace
(c4, c8, d4, d4_axis0, d8, so2) it stores the group elements in escnn's iteration order (value,
repr, str), the matrices of every irrep (under escnn's name, e.g. ``irrep_1`` or ``irrep_1,1``),
of the regular representation, of some quotient representations and of ``gspace.basespace_action``,
plus ``GeometricTensor.transform`` results of a seeded [1, C, 5, 5] float64 input for the field types
trivial / regular / irrep_1 (or irrep_1,1) / basespace_action, at the elements whose action on the
grid is exact (multiples of 90 degrees, with or without the mirror). ``restrictions`` holds C8
regular and D4 regular restricted to C4. Floats are rounded to 8 decimals; the output is
deterministic (re-running gives an identical file).

Exact command (from the repository root, with the escnn venv of
/work/shared/design/THIRD_PARTY.md, see also benchmarks/zoo/build_zoo.sh)::

    .venv-escnn/bin/python benchmarks/zoo/make_escnn_reps.py

Generated with escnn 1.0.11 (torch 2.13.0 CPU, numpy 1.26.4, scipy); takes about 4 s, nearly
all of it importing escnn.

escnn quirks met: ``flipRot2dOnR2(4, axis=0)`` fails an assertion (the axis must be a float), so
``axis=0.0`` is used; d4 and d4_axis0 share the very same D4 group object (identical elements and
irreps), only ``basespace_action`` differs; SO(2)'s ``irreps()`` lists every irrep already built in
the process (up to frequency 6 once an O(2)-based gspace exists), so the list is cut at the
gspace's ``maximum_frequency`` (3); subgroup ids are orders (C8 -> C4 is id 4, D_N -> C_N is
(None, N), C8 / C2 is ``quotient_representation(2)``).
"""
import json
import math
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")  # py3nj missing (only SO(3) needs it), deprecations

import numpy as np
import torch

import escnn
from escnn import gspaces, nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "escnn_representations.json")
DECIMALS = 8
SPATIAL = 5

torch.set_default_dtype(torch.float64)


def rnd(a):
    """Nested lists of floats rounded to DECIMALS, with -0.0 turned into 0.0."""
    a = np.round(np.asarray(a, dtype=np.float64), DECIMALS) + 0.0
    return a.tolist()


def jsonable(v):
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def describe(g, index):
    return {"index": index, "value": jsonable(g.value), "repr": repr(g), "str": str(g)}


def is_exact(matrix):
    """True where the 2x2 basespace action is a signed permutation (no interpolation)."""
    a = np.abs(np.asarray(matrix))
    return bool(np.all(np.isclose(a, 0, atol=1e-9) | np.isclose(a, 1, atol=1e-9)))


def rep_info(rep):
    return {"escnn_name": rep.name, "size": rep.size, "irreps": [jsonable(i) for i in rep.irreps]}


def spatial_conventions(x, g, gs):
    """The spatial action CONVENTIONS.md section 1 / 7 states, for cross-checking (not stored)."""
    G = gs.fibergroup
    if not isinstance(g.value, tuple):  # cyclic or SO(2): rotation only
        if isinstance(g.value, float):
            k = int(round(g.value / (math.pi / 2))) % 4
        else:
            k = (g.value * 4 // G.order()) % 4
        return torch.rot90(x, k, dims=(-2, -1))
    f, k = g.value
    k = (k * 4 // G.rotation_order) % 4
    axis = gs._sg_id[0] / 2  # mirror axis angle (pi/2 default: X -> -X; 0: Y -> -Y)
    if f:
        x = x.flip(-1) if abs(axis - math.pi / 2) < 1e-9 else x.flip(-2)
    return torch.rot90(x, k, dims=(-2, -1))


# (name, constructor string, constructor, extra representations builder)
GSPACES = [
    ("c4", "gspaces.rot2dOnR2(4)", lambda: gspaces.rot2dOnR2(4)),
    ("c8", "gspaces.rot2dOnR2(8)", lambda: gspaces.rot2dOnR2(8)),
    ("d4", "gspaces.flipRot2dOnR2(4)", lambda: gspaces.flipRot2dOnR2(4)),
    ("d4_axis0", "gspaces.flipRot2dOnR2(4, axis=0.0)", lambda: gspaces.flipRot2dOnR2(4, axis=0.0)),
    ("d8", "gspaces.flipRot2dOnR2(8)", lambda: gspaces.flipRot2dOnR2(8)),
    ("so2", "gspaces.rot2dOnR2(-1, maximum_frequency=3)", lambda: gspaces.rot2dOnR2(-1, maximum_frequency=3)),
]
SO2_ANGLES = [0.0, math.pi / 2, math.pi, 3 * math.pi / 2, 0.7, 2.1]
SO2_MAX_FREQ = 3


def build_group(gi, name, ctor_str, ctor):
    gs = ctor()
    G = gs.fibergroup
    finite = G.order() > 0
    dihedral = isinstance(G, escnn.group.DihedralGroup)
    elements = list(G.elements) if finite else [G.element(a) for a in SO2_ANGLES]

    irreps = list(G.irreps())
    if not finite:
        irreps = [r for r in irreps if r.id[0] <= SO2_MAX_FREQ]
    reps = {r.name: r for r in irreps}
    if finite:
        reps["regular"] = G.regular_representation
    if name == "c8":
        for m in (2, 4):
            q = G.quotient_representation(m)
            reps[q.name] = q
    if dihedral:
        q = G.quotient_representation((None, G.rotation_order))
        reps[q.name] = q
    reps["basespace_action"] = gs.basespace_action

    entry = {
        "name": name,
        "gspace": ctor_str,
        "gspace_name": gs.name,
        "group": G.name,
        "order": G.order(),
        "elements": [describe(g, i) for i, g in enumerate(elements)],
        "representation_info": {k: rep_info(r) for k, r in reps.items()},
        "representations": {k: [rnd(r(g)) for g in elements] for k, r in reps.items()},
    }

    # transforms of GeometricTensors, exact elements only
    exact = [i for i, g in enumerate(elements) if is_exact(gs.basespace_action(g))]
    irrep1 = G.irrep(1, 1) if dihedral else G.irrep(1)
    fields = [("trivial", G.trivial_representation)]
    if finite:
        fields.append(("regular", G.regular_representation))
    fields += [(irrep1.name, irrep1), ("basespace_action", gs.basespace_action)]
    tr = {
        "element_indices": exact,
        "shape_note": "input [1, C, 5, 5]; outputs[j] = GeometricTensor(input, FieldType(gspace, [rep]))"
                      ".transform(elements[element_indices[j]]).tensor",
        "dtype": "float64",
        "fields": {},
    }
    mismatches = []
    for fi, (fname, rep) in enumerate(fields):
        seed = 1000 * gi + fi
        x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, rep.size, SPATIAL, SPATIAL)))
        t = nn.GeometricTensor(x, nn.FieldType(gs, [rep]))
        outs = []
        for i in exact:
            g = elements[i]
            y = t.transform(g).tensor
            assert y.dtype == torch.float64
            outs.append(rnd(y.numpy()))
            # cross-check against CONVENTIONS.md: rho(g) applied to the channels after the spatial action
            ref = torch.einsum("oi,bihw->bohw", torch.from_numpy(rep(g)), spatial_conventions(x, g, gs))
            if not torch.allclose(y, ref, atol=1e-12):
                mismatches.append((fname, i, g.value))
        tr["fields"][fname] = {"escnn_name": rep.name, "seed": seed, "seed_note": "np.random.default_rng(seed).standard_normal(shape)",
                               "shape": [1, rep.size, SPATIAL, SPATIAL],
                               "input": rnd(x.numpy()), "outputs": outs}
    entry["transforms"] = tr
    return gs, entry, mismatches


def restriction(parent_name, gs, sg_id, rep_name):
    G = gs.fibergroup
    rep = G.representations[rep_name]
    sg, inclusion, _ = G.subgroup(sg_id)
    res = G.restrict_representation(sg_id, rep)
    mats = []
    for h in sg.elements:
        m = res(h)
        assert np.allclose(m, rep(inclusion(h)), atol=1e-10), (parent_name, h)
        mats.append(rnd(m))
    return {
        "group": parent_name,
        "representation": rep_name,
        "escnn_call": f"fibergroup.restrict_representation({sg_id!r}, fibergroup.regular_representation)",
        "subgroup_id": jsonable(sg_id),
        "subgroup": sg.name,
        "subgroup_elements": [describe(h, i) for i, h in enumerate(sg.elements)],
        "parent_element_values": [jsonable(inclusion(h).value) for h in sg.elements],
        "escnn_name": res.name,
        "irreps": [jsonable(i) for i in res.irreps],
        "matrices": mats,
    }


def main():
    t0 = time.time()
    groups, built, all_mismatches = [], {}, []
    for gi, (name, ctor_str, ctor) in enumerate(GSPACES):
        gs, entry, mism = build_group(gi, name, ctor_str, ctor)
        groups.append(entry)
        built[name] = gs
        all_mismatches += [(name,) + m for m in mism]
    restrictions = [
        restriction("c8", built["c8"], 4, "regular"),
        restriction("d4", built["d4"], (None, 4), "regular"),
    ]
    data = {
        "escnn_version": escnn.__version__,
        "generator": "benchmarks/zoo/make_escnn_reps.py (run with .venv-escnn/bin/python)",
        "notes": "Arrays are nested lists rounded to 8 decimals. representations[name][i] is the matrix "
                 "at elements[i]. For so2 the elements are the angles listed; transforms are stored "
                 "only at elements whose basespace action is exact on the grid (transforms.element_indices).",
        "groups": groups,
        "restrictions": restrictions,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(data, fh, separators=(",", ":"))
        fh.write("\n")
    with open(OUT) as fh:
        json.load(fh)
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.1f} KiB) in {time.time() - t0:.1f} s")
    if all_mismatches:
        print("transform differs from CONVENTIONS.md spatial+channel action at:", all_mismatches)
    else:
        print("all stored transforms equal rho(g) . spatial(g) as stated in CONVENTIONS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
