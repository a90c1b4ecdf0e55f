#!/usr/bin/env python
"""Build the 3-D held-out set (run in .venv: torch, e3nn, egnn-pytorch, torch-geometric, onnx, onnxruntime):

    .venv/bin/python benchmarks/zoo/heldout3d/make_heldout3d.py [--only SUBSTR ...]

For each model of ``heldout3d_models.py`` it writes into ``build/heldout3d/`` (git-ignored):

- ``models/<m>.onnx``: ``torch.onnx.export`` with the dynamo exporter (opset 18), falling back to the legacy
  exporter (``dynamo=False``, opset 17) where dynamo fails; static shapes (those of the input file);
- ``models/<m>.pt2``: ``torch.export`` + ``torch.export.save``;
- ``models/<m>.ts``: TorchScript (``torch.jit.script``, else ``torch.jit.trace``) for a few;
- the pyspec ``build/heldout3d/heldout3d_models.py:<factory>`` (a copy of the models file);
- ``inputs/<m>.npz``: the input file (keys: the argument / ONNX input names) behind every reference;
- ``manifest.json``: one entry per check (fields in ``heldout_common.py`` plus the 3-D ones below) and
  ``make_heldout3d.log``.

Every export is run back (onnxruntime, ``torch.export.load``, ``torch.jit.load``) on the input file and its
max |difference| from the PyTorch module recorded (``export_max_abs_diff``).

References (``heldout3d_refs.py``, torch + e3nn, nothing from eqcheck), on the input file:

- ``reference``: max over elements of ``||f(g.x) - g.f(x)|| / ||g.f(x)||`` per output (the failing outputs'
  max for a failing check), g: identity, 16 Haar rotations (``scipy Rotation.random``), for o3/e3 the
  inversion and 8 rotations composed with it, for e3 a N(0, 1) translation on each and a pure translation;
  the output moved with e3nn's ``Irreps.D_from_matrix`` (positions ``x R^T + t``, cartesian ``R P R^T``);
  under ``perm:axis=0``: identity, the transposition (0 1) and 8 seeded random permutations, ``x[p]``,
  ``p_inv[edge_index]``, ``batch[p]``, node outputs ``y[p]``;
- ``reference_e3nn_own`` (e3nn models): ``e3nn.util.test.equivariance_error`` with its own random
  rotations (ntrials 8; parity for o3/e3, ``10 * randn`` translations for e3): max abs per output.

At check time ``check_heldout3d.py`` recomputes both on the very elements eqcheck tested (their matrices and
translations are in eqcheck's JSON) and compares eqcheck's numbers with them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ beside these files or ../heldout/
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "heldout"))
import heldout3d_models as hm  # noqa: E402
import heldout3d_refs as refs  # noqa: E402
from heldout_common import REPO, entry, rel  # noqa: E402  (the 2-D set's helpers, reused)

OUT = REPO / "build" / "heldout3d"
MODELS = OUT / "models"
INPUTS = OUT / "inputs"
MANIFEST = OUT / "manifest.json"
PYSPEC = OUT / "heldout3d_models.py"
LOG: list[str] = []
F32_EXACT = 1e-4   # the bar for exact float32 models (worst exact-element rel error)
F64_EXACT = 1e-9


def log(msg):
    print(msg, flush=True)
    LOG.append(msg)


# ------------------------------------------------------------------------------ the set
def c(suffix, group, args=(), expected="pass", **extra):
    """One check of a model: CLI args, expected verdict and what to hold eqcheck to."""
    return dict(suffix=suffix, group=group, args=list(args), expected=expected, **extra)


IRR_GATE = "2x0e+1x1o+1x2e"
TP_ACTS = ["--act", "x1=2x0e+2x1o+1x2e", "--act", "x2=1x0e+1x1o"]
TP_OUT = "2x0e+1x1o+1x1e+1x2e"
GRAPH_IN = {"x": "set", "edge_index": "edge_index"}

#: model -> (formats, input kinds, intended output kinds, ONNX output names, checks, options)
SET: dict[str, dict] = {
    # ---------------------------------------------------------------- e3nn
    "e3nn_gate": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn: 2 blocks of sph. harmonics (l<=2, o3.spherical_harmonics: torch.fx cannot trace it, eqcheck "
             "uses hooks) of relative vectors, radial MLP -> FullyConnectedTensorProduct weights, index_add over all "
             f"pairs with a smooth radius cutoff, Gate, o3.Linear; pos [5,20,3] -> {IRR_GATE} per node [5,20,10]",
        checks=[c("so3", "so3", formats=("pyspec", "onnx")),
                c("o3", "o3", expect_repr={0: IRR_GATE}, formats=("pyspec", "onnx")),
                c("e3", "e3", expect_repr={0: IRR_GATE}),
                c("e3_declared", "e3", ["--output-type", IRR_GATE], formats=("pyspec", "onnx"))]),
    "e3nn_gate_traced": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn_gate with an o3.SphericalHarmonics submodule instead of the function: traceable by torch.fx",
        checks=[c("o3", "o3", expect_repr={0: IRR_GATE}), c("e3", "e3", formats=("pyspec",))]),
    "e3nn_gate_broken": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn_gate followed by a plain nn.Linear(10, 10) ('plain') mixing its irreps channels",
        checks=[c("so3", "so3", expected="fail", culprit="plain", failing=[0]),
                c("e3_declared", "e3", ["--output-type", IRR_GATE], expected="fail", culprit="plain", failing=[0])]),
    "e3nn_gate_traced_broken": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn_gate_traced followed by a plain nn.Linear(10, 10) ('plain')",
        checks=[c("so3", "so3", expected="fail", culprit="plain", failing=[0]),
                c("e3_declared", "e3", ["--output-type", IRR_GATE], expected="fail", culprit="plain", failing=[0])]),
    "e3nn_gate_absolute": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn_gate plus o3.SphericalHarmonics of the absolute positions ('sh_abs') -> o3.Linear added to the "
             "first node features: exact about the origin, broken by translations",
        checks=[c("so3", "so3", formats=("onnx",)), c("o3", "o3", formats=("pyspec", "onnx")),
                c("e3", "e3", expected="fail", culprit="sh_abs", failing=[0]),
                c("e3_declared", "e3", ["--output-type", IRR_GATE], expected="fail", culprit="sh_abs", failing=[0],
                  formats=("pyspec", "onnx"))]),
    "e3nn_gate_traced_absolute": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=[IRR_GATE], names=["irreps"], e3nn=True,
        note="e3nn_gate_absolute with the traceable spherical harmonics",
        checks=[c("e3_declared", "e3", ["--output-type", IRR_GATE], expected="fail", culprit="sh_abs", failing=[0])]),
    "e3nn_gate_feats": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions", "feats": "2x0e+1x1o"}, outs=["1x0e+1x1o"],
        names=["irreps"], e3nn=True,
        note="e3nn gate network with node features feats [3,16,5] of irreps 2x0e+1x1o (declared with --act) "
             "-> 1x0e+1x1o per node",
        checks=[c("o3_act", "o3", ["--act", "feats=2x0e+1x1o"], expect_repr={0: "1x0e+1x1o"}, formats=("onnx",)),
                c("e3_act", "e3", ["--act", "feats=2x0e+1x1o", "--output-type", "1x0e+1x1o"])]),
    "e3nn_gate_f64": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["1x0e+1x1o+1x2e"], names=["irreps"], e3nn=True,
        dtype="float64", exact_tol=F64_EXACT,
        note="e3nn gate network in float64 (built under the float64 default dtype), pos [5,16,3] -> 1x0e+1x1o+1x2e",
        checks=[c("e3", "e3")]),
    "e3nn_radius_graph": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=["1x0e+1x1o"], names=["irreps"], e3nn=True,
        note="one cloud pos [40,3] without a batch axis, radius graph by hand (nonzero of d < 1.8), e3nn "
             "tensor-product convolution -> 1x0e+1x1o per node [40,4]",
        checks=[c("so3", "so3", formats=("onnx",)), c("e3", "e3", expect_repr={0: "1x0e+1x1o"})]),
    "e3nn_tp": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"x1": "2x0e+2x1o+1x2e", "x2": "1x0e+1x1o"}, outs=[TP_OUT],
        names=["irreps"], e3nn=True,
        note="no positions: o3.FullyConnectedTensorProduct(2x0e+2x1o+1x2e, 1x0e+1x1o -> 2x0e+1x1o+1x1e+1x2e) "
             "and o3.Linear on x1 [128,13], x2 [128,4]",
        checks=[c("o3_act", "o3", TP_ACTS, expect_repr={0: TP_OUT}),
                c("so3_act", "so3", TP_ACTS, formats=("onnx",)),
                c("o3_declared", "o3", TP_ACTS + ["--output-type", TP_OUT], formats=("pyspec", "onnx")),
                c("o3_no_act", "o3", [], accept_usage_error="no input", formats=("pyspec",))]),
    "e3nn_tp_broken": dict(
        formats=("pyspec", "onnx"), ins={"x1": "2x0e+2x1o+1x2e", "x2": "1x0e+1x1o"}, outs=[TP_OUT],
        names=["irreps"], e3nn=True,
        note="e3nn_tp followed by a plain nn.Linear(13, 13) ('plain')",
        checks=[c("o3_declared", "o3", TP_ACTS + ["--output-type", TP_OUT], expected="fail", culprit="plain",
                  failing=[0])]),
    # ---------------------------------------------------------------- EGNN
    "egnn_pair": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"feats": "invariant", "coors": "positions"},
        outs=["invariant", "positions"], names=["feats_out", "coors_out"],
        note="egnn_pytorch.EGNN(dim=8, m_dim=12) x2: (feats [2,10,8], coors [2,10,3]) -> (feats, coors)",
        checks=[c("e3", "e3", expect_repr={0: "invariant", 1: "positions"}),
                c("e3_declared", "e3", ["--output-type", "{0}=invariant", "--output-type", "{1}=positions"],
                  formats=("pyspec", "onnx"))]),
    "egnn_pair_absolute": dict(
        formats=("pyspec", "onnx"), ins={"feats": "invariant", "coors": "positions"},
        outs=["invariant", "positions"], names=["feats_out", "coors_out"],
        note="egnn_pair with a Linear of the absolute coordinates added to the features first ('coord_embed'): "
             "the features break; the coordinates move by egnn's tiny initial coordinate update only (init_eps "
             "1e-3), so their error stays below the tolerance (reference 4e-7)",
        checks=[c("e3", "e3", expected="fail", culprit="coord_embed", failing=[0])]),
    "egnn_tokens": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"tokens": "invariant", "coors": "positions"},
        outs=["invariant", "positions"], names=["feats_out", "coors_out"], int_inputs={"tokens": 6},
        note="egnn_pytorch.EGNN_Network(num_tokens=6, dim=8, depth=2, 4 nearest neighbours): atom types "
             "tokens [2,12] int64 (nn.Embedding), coors [2,12,3]",
        checks=[c("e3", "e3", expect_repr={0: "invariant", 1: "positions"}, formats=("onnx", "pt2")),
                c("e3_no_range", "e3", accept_usage_error="--input", formats=("pyspec",)),
                c("e3_input", "e3", ["--input", "{input}"], expect_repr={0: "invariant", 1: "positions"},
                  formats=("pyspec",))]),
    # ---------------------------------------------------------------- energy + forces
    "pair_energy_forces": dict(
        formats=("pyspec", "pt2"), ins={"pos": "positions"}, outs=["invariant", "1o"], names=["energy", "forces"],
        note="hand-written pair potential (MLP on Gaussian RBFs x cosine cutoff + repulsion), forces = "
             "-autograd.grad(E, pos, create_graph=True) in forward; pos [2,10,3] -> (energy [2], forces [2,10,3])",
        checks=[c("e3", "e3", expect_repr={0: "invariant", 1: "1x1o"}),
                c("e3_declared", "e3", ["--output-type", "{0}=invariant", "--output-type", "{1}=1o"],
                  formats=("pyspec",))]),
    "pair_energy_forces_single": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["invariant", "1o"], names=["energy", "forces"],
        note="the pair potential on one cloud pos [12,3] without a batch axis: energy [] and forces [12,3]",
        checks=[c("e3", "e3", expect_repr={1: "1x1o"})]),
    "pair_energy_forces_field": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["invariant", "1o"], names=["energy", "forces"],
        note="the pair potential plus a uniform external field E.sum_i x_i ('field'): both outputs break",
        checks=[c("so3", "so3", expected="fail", culprit="field", failing=[0, 1]),
                c("e3_declared", "e3", ["--output-type", "{0}=invariant", "--output-type", "{1}=1o"],
                  expected="fail", culprit="field", failing=[0, 1])]),
    "pair_energy_forces_fix": dict(
        formats=("pyspec", "pt2"), ins={"pos": "positions"}, outs=["invariant", "1o"], names=["energy", "forces"],
        note="the pair potential with the z sign of the forces flipped after autograd ('force_fix'): the energy "
             "is right, the forces are not",
        checks=[c("e3", "e3", expected="fail", culprit="force_fix", failing=[1]),
                c("so3_declared", "so3", ["--output-type", "{1}=1o"], expected="fail", culprit="force_fix",
                  failing=[1], formats=("pyspec",))]),
    "pair_energy_forces_f64": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["invariant", "1o"], names=["energy", "forces"],
        dtype="float64", exact_tol=F64_EXACT,
        note="the pair potential in float64 (module.double())",
        checks=[c("e3_dtype", "e3", ["--dtype", "float64"]), c("e3", "e3")]),
    "rbf_energy": dict(
        formats=("pyspec", "onnx", "pt2", "ts"), ins={"pos": "positions"}, outs=["invariant"], names=["energy"],
        note="invariant energy only: per-atom sums of Gaussian RBFs of distances, MLP, sum: pos [2,12,3] -> [2,1]",
        checks=[c("e3", "e3")]),
    # ---------------------------------------------------------------- MLP on raw coordinates
    "coord_mlp": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=["invariant"], names=["out"],
        note="per point Linear(3,32) ('inp') -> SiLU -> Linear(32,32) -> tanh, sum over points -> Linear(32,1)",
        checks=[c("so3", "so3", expected="fail", culprit="inp", failing=[0])]),
    "coord_mlp_flat": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions"}, outs=["invariant"], names=["out"],
        note="pos [2,8,3] flattened to [2,24], Linear(24,32) ('inp') -> ReLU -> Linear(32,4)",
        checks=[c("so3", "so3", expected="fail", culprit="inp", failing=[0])]),
    # ---------------------------------------------------------------- pseudovectors and pseudoscalars
    "cross_pseudovector": dict(
        formats=("pyspec", "onnx", "pt2", "ts"), ins={"pos": "positions"}, outs=["1e"], names=["cross"],
        note="per point (x_i - c) x (x_{i+1} - c): a pseudovector [2,16,3]",
        checks=[c("o3_found", "o3", expect_repr={0: "1x1e"}),
                c("o3_as_1o", "o3", ["--output-type", "1o"], expected="fail", no_culprit=True, failing=[0]),
                c("o3_as_pseudovector", "o3", ["--output-type", "pseudovector"], formats=("pyspec", "onnx")),
                c("so3_as_1o", "so3", ["--output-type", "1o"], formats=("pyspec", "onnx")),
                c("e3_found", "e3", expect_repr={0: "1x1e"}, formats=("pyspec",))]),
    "triple_pseudoscalar": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions"}, outs=["2x0o"], names=["triple"],
        note="per point two triple products (a x b).c of centred neighbours: 2x0o [2,16,2]",
        checks=[c("o3_found", "o3", expect_repr={0: "2x0o"}),
                c("o3_as_2x0e", "o3", ["--output-type", "2x0e"], expected="fail", no_culprit=True, failing=[0]),
                c("so3", "so3")]),
    "triple_pseudoscalar_1": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["0o"], names=["triple"],
        note="one triple product per point: a pseudoscalar [2,16,1] (parity-blind as 0e)",
        checks=[c("o3_as_0o", "o3", ["--output-type", "0o"]),
                c("o3_as_0e", "o3", ["--output-type", "0e"], expected="fail", no_culprit=True, failing=[0]),
                c("so3_as_0e", "so3", ["--output-type", "0e"]),
                c("o3_auto", "o3", note_check="a 1-channel pseudoscalar left to auto: the model is O(3)-equivariant "
                                              "(as 0o); eqcheck finds types on >= 2 channels only")]),
    # ---------------------------------------------------------------- exact about the origin only
    "radial_absolute": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=["1o"], names=["out"],
        note="out_i = g(|x_i|) x_i, |x_i| of the absolute position ('absnorm'): exact under O(3) about the "
             "origin, broken by translations",
        checks=[c("so3", "so3"), c("o3", "o3", expect_repr={0: "1x1o"}),
                c("e3", "e3", expected="fail", culprit="absnorm", failing=[0]),
                c("e3_declared", "e3", ["--output-type", "1o"], expected="fail", culprit="absnorm", failing=[0],
                  formats=("pyspec",))]),
    # ---------------------------------------------------------------- extras
    "centred_offset": dict(
        formats=("pyspec", "onnx"), ins={"pos": "positions"}, outs=["1o"], names=["out"],
        note="(x_i - c)(1 + tanh|x_i - c|) + v0, v0 a fixed vector ('offset'): broken under rotations",
        checks=[c("so3", "so3", expected="fail", culprit="offset", failing=[0]),
                c("so3_declared", "so3", ["--output-type", "1o"], expected="fail", culprit="offset", failing=[0])]),
    "gyration_tensor": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions"}, outs=["cartesian"], names=["gyration"],
        note="gyration tensor mean_i (x_i - c)(x_i - c)^T: rank-2 Cartesian [2,3,3]",
        checks=[c("o3_cartesian", "o3", ["--output-type", "cartesian"]),
                c("e3_cartesian", "e3", ["--output-type", "cartesian"], formats=("pyspec",)),
                c("e3_auto", "e3", formats=("pyspec",),
                  note_check="a [2,3,3] Cartesian tensor left to auto (the README does not promise it is found)")]),
    "gyration_aniso": dict(
        formats=("pyspec",), ins={"pos": "positions"}, outs=["cartesian"], names=["gyration"],
        note="gyration tensor plus a fixed anisotropic diag(0.5, 0, -0.5) ('aniso')",
        checks=[c("so3_cartesian", "so3", ["--output-type", "cartesian"], expected="fail", culprit="aniso",
                  failing=[0])]),
    "positions_velocities": dict(
        formats=("pyspec", "onnx", "pt2"), ins={"pos": "positions", "vel": "1o"}, outs=["1o"], names=["out"],
        note="inputs pos [2,12,3] (positions) and vel [2,12,3] (vectors): a(.) vel + b(.) (x - c) per point",
        checks=[c("o3", "o3", expect_repr={0: "1x1o"}), c("e3", "e3"),
                c("e3_act", "e3", ["--act", "vel=1o"], formats=("pyspec",))]),
    # ---------------------------------------------------------------- sparse graphs
    "sparse_gin": dict(
        formats=("pyspec", "onnx", "pt2"), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(20, 60),
        note="GIN-style message passing with index_add_ (sum and degree-normalised mean): x [20,6], "
             "edge_index [2,60] int64 -> [20,5]",
        checks=[c("perm0", "perm:axis=0")]),
    "sparse_gin_pool": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["invariant"], names=["out"], graph=(20, 60),
        note="sparse_gin with a graph output: mean over nodes [1,5]",
        checks=[c("perm0", "perm:axis=0")]),
    "sparse_gin_nodeemb": dict(
        formats=("pyspec", "onnx", "pt2"), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(48, 150),
        note="sparse_gin (48 nodes) plus a learned vector per node index ('nodeemb', a table[arange(N)])",
        checks=[c("perm0", "perm:axis=0", expected="fail", culprit="nodeemb", failing=[0])]),
    "sparse_gin_embedding": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(48, 150),
        note="sparse_gin (48 nodes) plus nn.Embedding(48, 6)(torch.arange(N)) added in the top-level forward",
        checks=[c("perm0", "perm:axis=0", expected="fail", culprit=["add", "node_embedding"], failing=[0])]),
    "pyg_gcn": dict(
        formats=("pyspec", "onnx"), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(20, 60),
        note="torch_geometric.nn.GCNConv(6,16) -> ReLU -> GCNConv(16,4)",
        checks=[c("perm0", "perm:axis=0")]),
    "pyg_gat": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(20, 60),
        note="torch_geometric.nn.GATConv(6,8,heads=2) -> ELU -> GATConv(16,4)",
        checks=[c("perm0", "perm:axis=0")]),
    "pyg_sage": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(20, 60),
        note="torch_geometric.nn.SAGEConv(6,16) -> ReLU -> SAGEConv(16,4)",
        checks=[c("perm0", "perm:axis=0")]),
    "pyg_graphconv": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(20, 60),
        note="torch_geometric.nn.GraphConv(6,16) -> ReLU -> GraphConv(16,4)",
        checks=[c("perm0", "perm:axis=0")]),
    "pyg_gcn_nodeemb": dict(
        formats=("pyspec",), ins=GRAPH_IN, outs=["set"], names=["out"], graph=(48, 150),
        note="pyg_gcn (48 nodes) plus a learned vector per node index ('nodeemb')",
        checks=[c("perm0", "perm:axis=0", expected="fail", culprit="nodeemb", failing=[0])]),
    "pyg_pooled": dict(
        formats=("pyspec",), ins={"x": "set", "edge_index": "edge_index", "batch": "batch"}, outs=["invariant"],
        names=["out"], graph=(20, 60), batch=True,
        note="GraphConv x2 then global_mean_pool over a batch vector (2 graphs): [2,4]",
        checks=[c("perm0", "perm:axis=0")]),
}


# ------------------------------------------------------------------------------ inputs
def make_feeds(name, model, spec, seed):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if spec.get("dtype") == "float64" else np.float32
    feeds = {}
    shapes = model.example_input_shapes
    for arg, kind in spec["ins"].items():
        shape = tuple(shapes[arg])
        if kind == "edge_index":
            n, e = spec["graph"]
            if spec.get("batch"):  # two graphs: edges stay inside each half
                half = n // 2
                a = rng.integers(0, half, (2, e // 2))
                b = rng.integers(half, n, (2, e - e // 2))
                feeds[arg] = np.concatenate([a, b], 1).astype(np.int64)
            else:
                feeds[arg] = rng.integers(0, n, (2, e)).astype(np.int64)
        elif kind == "batch":
            n = shape[0]
            feeds[arg] = np.repeat(np.arange(2), n // 2).astype(np.int64)
        elif arg in (spec.get("int_inputs") or {}):
            feeds[arg] = rng.integers(0, spec["int_inputs"][arg], shape).astype(np.int64)
        else:
            feeds[arg] = rng.standard_normal(shape).astype(dtype)
    return feeds


# ------------------------------------------------------------------------------ exports
def _diff(got, ref):
    return max(float(np.abs(np.asarray(g, dtype=np.float64) - np.asarray(r, dtype=np.float64)).max())
               for g, r in zip(got, ref))


def _onnx_culprit_nodes(path: Path, module: str | list | None) -> list[str]:
    """Node names of the ONNX graph that belong to module(s) ``module``: by the dynamo exporter's
    ``pkg.torch.onnx.name_scopes`` metadata, or by the legacy exporter's ``/module/`` node names."""
    import onnx
    if not module:
        return []
    mods = [module] if isinstance(module, str) else list(module)
    g = onnx.load(str(path), load_external_data=False).graph
    names = []
    for n in g.node:
        meta = {p.key: p.value for p in n.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes", "")
        if any(f"'{m}'" in scopes or f"/{m}/" in n.name for m in mods):
            names.append(n.name)
    return names


def export_all(name, model, spec, feeds):
    """{fmt: (file, max abs diff)} and {fmt: failure} for the formats the spec asks for."""
    import onnxruntime as ort
    MODELS.mkdir(parents=True, exist_ok=True)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    ref = [t.detach().numpy() for t in refs.run(model, feeds)]
    files, failures = {}, {}
    if "onnx" in spec["formats"]:
        p = MODELS / f"{name}.onnx"
        errs = []
        for how in ("dynamo", "legacy"):
            try:
                if p.exists():
                    p.unlink()
                if how == "dynamo":
                    torch.onnx.export(model, args, str(p), input_names=list(feeds), output_names=spec["names"],
                                      opset_version=18, verbose=False)
                else:
                    torch.onnx.export(model, args, str(p), dynamo=False, input_names=list(feeds),
                                      output_names=spec["names"], opset_version=17)
                sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                got = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
                d = _diff(got, ref)
                if d > 1e-4 * max(1.0, max(float(np.abs(r).max()) for r in ref)):
                    raise ValueError(f"the exported graph computes something else (max |diff| {d:.2e})")
                files["onnx"] = (rel(p), d, how)
                break
            except Exception as exc:  # noqa: BLE001
                errs.append(f"{how}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}")
        if "onnx" not in files:
            failures["onnx"] = "; ".join(errs)
        elif errs:
            log(f"  {name}: onnx via the legacy exporter ({errs[0]})")
    if "pt2" in spec["formats"]:
        p = MODELS / f"{name}.pt2"
        try:
            ep = torch.export.export(model, args)
            torch.export.save(ep, str(p))
            got = [t.detach().numpy() for t in refs.as_list(torch.export.load(str(p)).module()(*args))]
            files["pt2"] = (rel(p), _diff(got, ref), "torch.export")
        except Exception as exc:  # noqa: BLE001
            failures["pt2"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    if "ts" in spec["formats"]:
        p = MODELS / f"{name}.ts"
        try:
            try:
                sm = torch.jit.script(model)
                how = "script"
            except Exception:  # noqa: BLE001
                sm = torch.jit.trace(model, args)
                how = "trace"
            sm.save(str(p))
            got = [t.detach().numpy() for t in refs.as_list(torch.jit.load(str(p))(*args))]
            files["ts"] = (rel(p), _diff(got, ref), how)
        except Exception as exc:  # noqa: BLE001
            failures["ts"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    for fmt, msg in failures.items():
        log(f"  {name}: {fmt} export FAILED: {msg}")
    return files, failures


# ------------------------------------------------------------------------------ references
def references(model, spec, feeds, group):
    """(per-output worst rel error, per-output per-element {label: (rel, abs)}, description)."""
    outs = spec["outs"]
    if group.startswith("perm"):
        n = next(v.shape[0] for k, v in feeds.items() if spec["ins"][k] == "set")
        per = refs.errors_perm(model, feeds, spec["ins"], outs, refs.perm_elements(n))
        desc = "by hand: identity, transposition (0 1), 8 seeded random permutations (numpy); x[p], " \
               "p_inv[edge_index], batch[p]; node outputs y[p]"
    else:
        per = refs.errors3d(model, feeds, spec["ins"], outs, refs.haar_elements(group))
        desc = ("e3nn Irreps.D_from_matrix / x R^T + t / R P R^T by hand: identity, 16 Haar rotations (scipy)"
                + (", the inversion and 8 rotations composed with it" if group in ("o3", "e3") else "")
                + (", a N(0,1) translation on each and a pure translation" if group in ("e3", "se3") else ""))
    return refs.worst(per), per, desc


def out_name(spec, fmt, i):
    """The name eqcheck gives output i: the ONNX output name; for PyTorch formats 'output', 'output1', ..."""
    if fmt == "onnx":
        return spec["names"][i]
    return "output" if i == 0 else f"output{i}"


def pyspec_file(factory):
    return f"{rel(PYSPEC)}:{factory}"


# ------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    opts = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    INPUTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "heldout3d_models.py", PYSPEC)
    import e3nn
    import egnn_pytorch  # noqa: F401
    import torch_geometric
    log(f"torch {torch.__version__}, e3nn {e3nn.__version__}, torch_geometric {torch_geometric.__version__}")
    entries = []
    previous = json.loads(MANIFEST.read_text()) if (opts.only and MANIFEST.exists()) else []
    for seed, (name, spec) in enumerate(SET.items()):
        if opts.only and not any(s in name for s in opts.only):
            entries += [e for e in previous if e["model"] == name]
            continue
        try:
            model = getattr(hm, name)()
            feeds = make_feeds(name, model, spec, 100 + seed)
            npz = INPUTS / f"{name}.npz"
            np.savez(npz, **feeds)
            files, failures = export_all(name, model, spec, feeds)
            formats = {}
            if "pyspec" in spec["formats"]:
                formats["pyspec"] = (pyspec_file(name), 0.0, "factory")
            formats.update(files)
            groups = sorted({ck["group"] for ck in spec["checks"]})
            ref_by_group = {g: references(model, spec, feeds, g) for g in groups}
            e3nn_own = {}
            if spec.get("e3nn"):
                for g in groups:
                    e3nn_own[g] = refs.e3nn_own(model, feeds, spec["ins"], spec["outs"], g)
            for g, (w, _, _) in ref_by_group.items():
                log(f"{name} {g}: reference rel per output {['%.3e' % v for v in w]}"
                    + (f"; e3nn equivariance_error (own rotations, max abs) {['%.3e' % v for v in e3nn_own[g]]}"
                       if g in e3nn_own else ""))
            log("  formats: " + ", ".join(f"{f} ({how}, |diff| {d:.1e})" for f, (_, d, how) in formats.items()))
            for ck in spec["checks"]:
                for fmt, (file, diff, how) in formats.items():
                    if ck.get("formats") and fmt not in ck["formats"]:
                        continue
                    args = [a.format(*[out_name(spec, fmt, i) for i in range(len(spec["outs"]))], input=rel(npz))
                            for a in ck["args"]]
                    if fmt == "ts":  # a TorchScript file does not say its input shapes
                        shapes = model.example_input_shapes
                        for arg in spec["ins"]:
                            args += ["--input-shape", (f"{arg}=" if len(spec["ins"]) > 1 else "")
                                     + ",".join(map(str, shapes[arg]))]
                    # an exported graph model cannot say the range of its edge index: eqcheck asks for --input
                    needs_input = fmt != "pyspec" and "edge_index" in spec["ins"].values()
                    if needs_input:
                        args += ["--input", rel(npz)]
                    w, per, desc = ref_by_group[ck["group"]]
                    failing_idx = ck.get("failing") or []
                    ref_val = max(w[i] for i in failing_idx) if failing_idx else max(w)
                    extra = dict(
                        input_npz=rel(npz), reference_elements=desc, reference_per_output=w,
                        reference_per_element=[{k: v[0] for k, v in d.items()} for d in per],
                        output_kinds=spec["outs"], input_kinds=spec["ins"], pyspec=pyspec_file(name),
                        output_names=[out_name(spec, fmt, i) for i in range(len(spec["outs"]))],
                        export=how, export_max_abs_diff=diff, export_failures=failures,
                        max_exact_error=spec.get("exact_tol", F32_EXACT), e3nn=bool(spec.get("e3nn")),
                        reference_comparable=ck["expected"] == "fail")
                    if spec.get("e3nn"):
                        extra["reference_e3nn_own"] = e3nn_own[ck["group"]]
                        extra["reference_e3nn_own_how"] = ("e3nn.util.test.equivariance_error, its own rand_matrix, "
                                                           "ntrials=8, max abs per output")
                    if ck["expected"] == "fail":
                        extra["expect_failing_outputs"] = [out_name(spec, fmt, i) for i in failing_idx]
                        if ck.get("no_culprit"):
                            extra["expect_no_culprit"] = True
                            extra["expect_culprit"] = None
                        elif ck.get("culprit"):
                            extra["expect_culprit"] = ck["culprit"]
                            if fmt == "onnx":
                                extra["expect_culprit_nodes"] = _onnx_culprit_nodes(MODELS / f"{name}.onnx",
                                                                                    ck["culprit"])
                            if fmt == "ts":
                                extra["expect_culprit"] = None
                                extra["culprit_note"] = "TorchScript: output only (no per-layer analysis)"
                    if ck.get("expect_repr"):
                        extra["expect_representation"] = {out_name(spec, fmt, i): v
                                                          for i, v in ck["expect_repr"].items()}
                    if ck.get("accept_usage_error"):
                        extra["accept_usage_error"] = ck["accept_usage_error"]
                    if ck.get("note_check"):
                        extra["note_check"] = ck["note_check"]
                    entries.append(entry(f"{name}.{fmt}.{ck['suffix']}", name, file, fmt, ck["group"],
                                         ck["expected"], ref_val, spec["note"], args, **extra))
        except Exception:  # noqa: BLE001
            log(f"{name} FAILED:\n" + traceback.format_exc())
    names = [e["name"] for e in entries]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"duplicate check names {sorted(dup)}")
    for e in entries:
        e["source"] = "make_heldout3d.py"
    entries.sort(key=lambda e: e["name"])
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, MANIFEST)
    (OUT / "make_heldout3d.log").write_text("\n".join(LOG) + "\n")
    print(f"{len(entries)} entries in {rel(MANIFEST)}")


if __name__ == "__main__":
    main()
