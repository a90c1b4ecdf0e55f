#!/usr/bin/env python
"""Held-out escnn and e2cnn models (run in .venv-escnn):

    /work/main/.venv-escnn/bin/python benchmarks/zoo/heldout/make_heldout_escnn.py

Each model is built with seeds fixed, batch-norm statistics warmed up, put in eval mode, exported with
``.export()`` to plain torch, and saved as ``build/heldout/escnn/<m>.onnx`` (legacy exporter,
dynamo=False, opset 17, dynamic batch) and ``<m>.pt2`` (torch.export, static batch 2). The reference
errors use the library's own ``GeometricTensor.transform(g)`` on input and output, run on the exported
model (the file's own computation) on ``<m>_input.npz``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import random
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_common import OUT, entry, gaussian, rel, rel_err, replace_source_entries, save_npz, smooth  # noqa: E402

with contextlib.redirect_stderr(io.StringIO()):
    import escnn
    from escnn import gspaces
    from escnn import nn as enn
    from escnn.nn.modules.masking_module import build_mask
try:
    import e2cnn
    from e2cnn import gspaces as e2gspaces
    from e2cnn import nn as e2nn
except Exception as exc:  # noqa: BLE001
    e2cnn = None
    E2CNN_ERROR = f"{type(exc).__name__}: {exc}"

DIR = OUT / "escnn"
SOURCE = "make_heldout_escnn.py"
BATCH = 2


# ----------------------------------------------------------------------------------------------
class DiskMask(torch.nn.Module):
    """x * escnn's MaskModule mask (rotation invariant)."""

    def __init__(self, size, margin=45.0):
        super().__init__()
        self.register_buffer("mask", build_mask(size, dim=2, margin=margin, sigma=2.0))

    def forward(self, x):
        return x * self.mask


class NormReLU(torch.nn.Module):
    """Norm nonlinearity on fields of the given sizes: v -> relu(|v| - b) v / |v| (equivariant for
    any orthogonal field representation). Plain torch, used as is on both sides."""

    def __init__(self, sizes):
        super().__init__()
        self.sizes = list(sizes)
        self.bias = torch.nn.Parameter(0.1 * torch.rand(len(sizes)))

    def forward(self, x):
        parts, start = [], 0
        for i, d in enumerate(self.sizes):
            v = x[:, start:start + d]
            n = torch.sqrt((v * v).sum(1, keepdim=True) + 1e-8)
            parts.append(v * torch.relu(n - self.bias[i]) / n)
            start += d
        return torch.cat(parts, 1)


class Net(torch.nn.Module):
    """Named stages; equivariant modules get GeometricTensors, the others raw tensors."""

    def __init__(self, stages, lib):
        super().__init__()
        self.stages = torch.nn.ModuleDict(OrderedDict(stages))
        self.lib = lib

    def forward(self, x):
        for m in self.stages.values():
            if isinstance(m, self.lib.EquivariantModule):
                x = m(self.lib.GeometricTensor(x, m.in_type)).tensor
            else:
                x = m(x)
        return x

    def export(self):
        self.eval()
        mods = []
        for name, m in self.stages.items():
            e = m.export() if isinstance(m, self.lib.EquivariantModule) else copy.deepcopy(m)
            mods.append((name, e))
        return torch.nn.Sequential(OrderedDict(mods)).eval()

    def in_type(self):
        return next(m for m in self.stages.values() if isinstance(m, self.lib.EquivariantModule)).in_type

    def out_type(self):
        return [m for m in self.stages.values() if isinstance(m, self.lib.EquivariantModule)][-1].out_type


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# models: each returns (lib, gspace, stages, spec)
def triv(gs, n):
    return enn.FieldType(gs, n * [gs.trivial_repr])


def reg(gs, n):
    return enn.FieldType(gs, n * [gs.regular_repr])


def m_c4_vector():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1 = triv(gs, 2), reg(gs, 4)
    tout = enn.FieldType(gs, [gs.irrep(1)])
    st = [("conv1", enn.R2Conv(t0, t1, 5, padding=2)), ("bn1", enn.InnerBatchNorm(t1)),
          ("relu1", enn.ReLU(t1)), ("conv2", enn.R2Conv(t1, t1, 3, padding=1)), ("relu2", enn.ReLU(t1)),
          ("conv3", enn.R2Conv(t1, tout, 3, padding=1))]
    return enn, gs, st, dict(H=21, note="escnn C4: R2Conv+IBN+ReLU (4 regular), R2Conv+ReLU, R2Conv -> one "
                                        "irrep(1) (vector) field [2,2,21,21]")


def m_d4_mixed():
    gs = gspaces.flipRot2dOnR2(N=4)
    t0, t1 = triv(gs, 2), reg(gs, 3)
    G = gs.fibergroup
    tout = enn.FieldType(gs, [gs.trivial_repr, G.irrep(1, 1), gs.regular_repr])
    st = [("conv1", enn.R2Conv(t0, t1, 5, padding=2)), ("bn1", enn.InnerBatchNorm(t1)),
          ("relu1", enn.ReLU(t1)), ("conv2", enn.R2Conv(t1, tout, 3, padding=1))]
    return enn, gs, st, dict(H=21, note="escnn D4 (flipRot2dOnR2(4)): R2Conv+IBN+ReLU (3 regular), R2Conv -> "
                                        "trivial + irrep(1,1) + regular = 11 channels")


def m_c8_quotient():
    gs = gspaces.rot2dOnR2(N=8)
    H = 33
    t0, t1 = triv(gs, 2), reg(gs, 3)
    tout = enn.FieldType(gs, [gs.quotient_repr(2)])
    st = [("mask", DiskMask(H)), ("conv1", enn.R2Conv(t0, t1, 5, padding=2)), ("relu1", enn.ReLU(t1)),
          ("conv2", enn.R2Conv(t1, tout, 5, padding=2))]
    return enn, gs, st, dict(H=H, smooth=True,
                             note="escnn C8: disk mask, R2Conv+ReLU (3 regular), R2Conv -> one quotient "
                                  "C8/C2 field (4 channels)")


def _so2(k):
    def build():
        gs = gspaces.rot2dOnR2(N=-1, maximum_frequency=4)
        G = gs.fibergroup
        H = 33
        t0 = triv(gs, 2)
        hidden_reps = 3 * [G.irrep(0)] + 2 * [G.irrep(1)] + 2 * [G.irrep(2)]
        t1 = enn.FieldType(gs, hidden_reps)
        tout = enn.FieldType(gs, [G.irrep(k)])
        st = [("mask", DiskMask(H)), ("conv1", enn.R2Conv(t0, t1, 5, padding=2)),
              ("norm1", NormReLU([r.size for r in hidden_reps])),
              ("conv2", enn.R2Conv(t1, tout, 5, padding=2))]
        return enn, gs, st, dict(H=H, smooth=True,
                                 note=f"escnn SO(2) (max freq 4): disk mask, R2Conv -> 3 trivial + 2 irrep(1) + "
                                      f"2 irrep(2), norm-ReLU (plain torch), R2Conv -> one irrep({k}) field")
    return build


def m_c8_regular():
    gs = gspaces.rot2dOnR2(N=8)
    H = 33
    t0, t1, tout = triv(gs, 2), reg(gs, 2), reg(gs, 3)
    st = [("mask", DiskMask(H)), ("conv1", enn.R2Conv(t0, t1, 5, padding=2)), ("relu1", enn.ReLU(t1)),
          ("conv2", enn.R2Conv(t1, tout, 3, padding=1))]
    return enn, gs, st, dict(H=H, smooth=True,
                             note="escnn C8: disk mask, R2Conv+ReLU (2 regular), R2Conv -> 3 regular C8 fields "
                                  "(24 channels)")


def m_e2_d4_axis0_reg():
    gs = e2gspaces.FlipRot2dOnR2(N=4, axis=0.0)
    t0 = e2nn.FieldType(gs, 2 * [gs.trivial_repr])
    t1 = e2nn.FieldType(gs, 3 * [gs.regular_repr])
    tout = e2nn.FieldType(gs, 2 * [gs.regular_repr])
    st = [("conv1", e2nn.R2Conv(t0, t1, 5, padding=2)), ("bn1", e2nn.InnerBatchNorm(t1)),
          ("relu1", e2nn.ReLU(t1)), ("conv2", e2nn.R2Conv(t1, tout, 3, padding=1))]
    return e2nn, gs, st, dict(H=21, note="e2cnn FlipRot2dOnR2(4, axis=0): R2Conv+IBN+ReLU (3 regular), R2Conv -> "
                                         "2 regular D4 fields (16 channels, e2cnn axis=0 order)")


def m_e2_d4_inv():
    gs = e2gspaces.FlipRot2dOnR2(N=4, axis=0.0)
    t0 = e2nn.FieldType(gs, 2 * [gs.trivial_repr])
    t1 = e2nn.FieldType(gs, 3 * [gs.regular_repr])
    gp = e2nn.GroupPooling(t1)
    st = [("conv1", e2nn.R2Conv(t0, t1, 5, padding=2)), ("relu1", e2nn.ReLU(t1)),
          ("conv2", e2nn.R2Conv(t1, t1, 3, padding=1)), ("relu2", e2nn.ReLU(t1)),
          ("gpool", gp), ("avgpool", e2nn.PointwiseAdaptiveAvgPool(gp.out_type, 1)),
          ("flatten", torch.nn.Flatten(1)), ("fc", torch.nn.Linear(3, 6))]
    return e2nn, gs, st, dict(H=21, invariant=True,
                              note="e2cnn FlipRot2dOnR2(4, axis=0): 2 x (R2Conv+ReLU, 3 regular), GroupPooling, "
                                   "global avg pool, Linear -> 6 invariant logits")


def m_e2_d4_gpool_map():
    gs = e2gspaces.FlipRot2dOnR2(N=4, axis=0.0)
    t0 = e2nn.FieldType(gs, 2 * [gs.trivial_repr])
    t1 = e2nn.FieldType(gs, 3 * [gs.regular_repr])
    st = [("conv1", e2nn.R2Conv(t0, t1, 5, padding=2)), ("relu1", e2nn.ReLU(t1)),
          ("gpool", e2nn.GroupPooling(t1))]
    return e2nn, gs, st, dict(H=21, note="e2cnn FlipRot2dOnR2(4, axis=0): R2Conv+ReLU (3 regular), GroupPooling -> "
                                         "3 invariant channels [2,3,21,21] (an image)")


# (model, builder, [(check suffix, group, args, elements-filter)])
# elements: "exact" = right angles (and mirrors), "c4" = the right angles only, "all" = every testing element
CHECKS = [
    ("esc_c4_vector", m_c4_vector, [
        ("p4_irrep1", "p4", ["--output-type", "irrep(1)"], "all"),
        ("p4_vector", "p4", ["--output-type", "vector"], "all"),
        ("p4_auto", "p4", [], "all"),
    ]),
    ("esc_d4_mixed", m_d4_mixed, [
        ("p4m_declared", "p4m", ["--output-type", "trivial+irrep(1,1)+regular"], "all"),
        ("p4m_auto", "p4m", [], "all"),
        ("p4_auto", "p4", [], "c4"),
    ]),
    ("esc_c8_quotient", m_c8_quotient, [
        ("c8_declared", "c8", ["--output-type", "quotient(2)"], "all"),
        ("c8_auto", "c8", [], "all"),
        ("c8_declared_tol01", "c8", ["--output-type", "quotient(2)", "--approx-tol", "0.1"], "all"),
        ("p4_declared", "p4", ["--output-type", "quotient(2)@c8"], "c4"),
    ]),
    ("esc_so2_irrep1", _so2(1), [
        ("so2_declared", "so2", ["--output-type", "irrep(1)"], "all"),
        ("so2_declared_tol01", "so2", ["--output-type", "irrep(1)", "--approx-tol", "0.1"], "all"),
        ("so2_auto", "so2", [], "all"),
        ("c4_declared", "c4", ["--output-type", "irrep(1)"], "c4"),
        ("c4_auto", "c4", [], "c4"),
    ]),
    ("esc_so2_irrep2", _so2(2), [
        ("so2_declared", "so2", ["--output-type", "irrep(2)"], "all"),
        ("so2_declared_tol01", "so2", ["--output-type", "irrep(2)", "--approx-tol", "0.1"], "all"),
        ("so2_auto", "so2", [], "all"),
        ("c4_declared", "c4", ["--output-type", "irrep(2)@so2"], "c4"),
        ("c4_auto", "c4", [], "c4"),
    ]),
    ("esc_c8_regular", m_c8_regular, [
        ("p4_auto", "p4", [], "c4"),
        ("p4_declared", "p4", ["--output-type", "3*regular@c8"], "c4"),
        ("c8_regular", "c8", ["--output-type", "regular"], "all"),
        ("c8_regular_tol01", "c8", ["--output-type", "regular", "--approx-tol", "0.1"], "all"),
    ]),
    ("e2_d4_axis0_reg", m_e2_d4_axis0_reg, [
        ("p4m_axis0_auto", "p4m:axis=0", [], "all"),
        ("p4m_axis0_regular", "p4m:axis=0", ["--output-type", "regular"], "all"),
        ("p4m_auto", "p4m", [], "all"),
    ]),
    ("e2_d4_inv", m_e2_d4_inv, [
        ("p4m_auto", "p4m", [], "all"),
        ("p4m_invariant", "p4m", ["--output-type", "invariant"], "all"),
    ]),
    ("e2_d4_gpool_map", m_e2_d4_gpool_map, [
        ("p4m_auto", "p4m", [], "all"),
    ]),
]


def warm_bn(net, H, n_in, seed):
    if not any("BatchNorm" in type(m).__name__ for m in net.stages.values()):
        return
    g = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(0.5 + 1.5 * torch.randn(8, n_in, H, H, generator=g))
    net.eval()


def is_right_angle(gs, el) -> bool:
    m = np.asarray(gs.basespace_action(el) if hasattr(gs, "basespace_action") else None, dtype=np.float64)
    return bool(np.allclose(m, np.round(m), atol=1e-6))


def c4_elements(gs):
    """The rotations by multiples of 90 degrees of the gspace's fibre group."""
    G = gs.fibergroup
    if isinstance(G, escnn.group.DihedralGroup):
        return [G.element((0, k)) for k in range(4)]
    if isinstance(G, escnn.group.CyclicGroup):
        return [G.element(k * G.order() // 4) for k in range(4)]
    return [G.element(k * np.pi / 2) for k in range(4)]


def elements_for(lib, gs, which):
    """(exact elements, interpolated elements) of the gspace for a check."""
    if lib is enn:
        all_els = list(gs.testing_elements)
        exact = [e for e in all_els if is_right_angle(gs, e)]
        interp = [e for e in all_els if not is_right_angle(gs, e)]
        if which == "c4":
            exact = c4_elements(gs)
            interp = []
        if gs.fibergroup.order() < 0:  # SO(2): testing elements are sampled angles; add the right angles
            exact = c4_elements(gs)
            interp = [e for e in all_els if not is_right_angle(gs, e)][:16] if which == "all" else []
        return exact, interp
    # e2cnn FlipRot2dOnR2(4): every testing element is exact
    return list(gs.testing_elements), []


def lib_errors(lib, net, x, in_type, out_type, elements, invariant):
    out = OrderedDict()
    with torch.no_grad():
        gx = lib.GeometricTensor(x, in_type)
        y = net(x)
        for el in elements:
            a = net(gx.transform(el).tensor)
            b = y if invariant else lib.GeometricTensor(y, out_type).transform(el).tensor
            out[str(el)] = rel_err(a.numpy(), b.numpy())
    return out


def export(name, exported, x, y_ref):
    import onnxruntime as ort
    DIR.mkdir(parents=True, exist_ok=True)
    files = {}
    p = DIR / f"{name}.onnx"
    torch.onnx.export(exported, (x,), str(p), dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    d = float(np.abs(sess.run(None, {"input": x.numpy()})[0] - y_ref).max())
    files["onnx"] = (rel(p), d)
    p = DIR / f"{name}.pt2"
    ep = torch.export.export(exported, (x,))
    torch.export.save(ep, str(p))
    with torch.no_grad():
        d = float(np.abs(torch.export.load(str(p)).module()(x).numpy() - y_ref).max())
    files["pt2"] = (rel(p), d)
    return files


def main():
    entries = []
    for idx, (name, build, checks) in enumerate(CHECKS):
        if name.startswith("e2_") and e2cnn is None:
            print(f"{name}: SKIPPED, e2cnn does not import: {E2CNN_ERROR}")
            continue
        seed = 7000 + idx
        seed_all(seed)
        lib, gs, stages, spec = build()
        net = Net(stages, lib)
        H = spec["H"]
        in_type, out_type = net.in_type(), net.out_type()
        warm_bn(net, H, in_type.size, seed)
        net.eval()
        exported = net.export()
        shape = (BATCH, in_type.size, H, H)
        xn = smooth(shape, seed) if spec.get("smooth") else gaussian(shape, seed)
        x = torch.from_numpy(xn)
        with torch.no_grad():
            y_lib = net(x).numpy()
            y_exp = exported(x).numpy()
        diff = float(np.abs(y_lib - y_exp).max())
        files = export(name, exported, x, y_exp)
        npz = save_npz(DIR / f"{name}_input.npz", input=xn)
        invariant = bool(spec.get("invariant"))
        print(f"{name}: out {list(y_exp.shape)} type {getattr(out_type, 'representation', out_type).name if not invariant else 'invariant'}; "
              f"lib vs export {diff:.1e}; files {[(f, f'{d:.1e}') for f, d in files.values()]}")
        for suffix, group, args, which in checks:
            exact, interp = elements_for(lib, gs, which)
            e_exact = lib_errors(lib, exported, x, in_type, out_type, exact, invariant)
            e_interp = lib_errors(lib, exported, x, in_type, out_type, interp, invariant) if interp else {}
            ref = max(e_exact.values())
            print(f"   {suffix:<20} {group:<11} exact elements max {ref:.2e}"
                  + (f", interpolated max {max(e_interp.values()):.2e}" if e_interp else ""))
            for fmt, (file, d) in files.items():
                entries.append(entry(
                    f"{name}.{fmt}.{suffix}", name, file, fmt, group, "pass", ref, spec["note"], args,
                    reference_elements=f"{lib.__name__.split('.')[0]} GeometricTensor.transform over "
                                       f"{[str(e) for e in exact]} (exact)",
                    reference_per_element=e_exact,
                    reference_interp_max=max(e_interp.values()) if e_interp else None,
                    reference_interp_elements=len(e_interp),
                    reference_comparable=True, input_npz=npz, input_shape=list(shape),
                    output_shape=list(y_exp.shape), export_max_abs_diff=d, lib_vs_export=diff,
                    library=lib.__name__.split(".")[0],
                    library_version=(escnn.__version__ if lib is enn else getattr(e2cnn, "__version__", "0.2.3")),
                    max_exact_error=1e-5, seed=seed))
    replace_source_entries(SOURCE, entries)
    print(f"{len(entries)} entries from {SOURCE}")


if __name__ == "__main__":
    main()
