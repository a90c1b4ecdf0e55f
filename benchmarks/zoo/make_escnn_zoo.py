#!/usr/bin/env python
"""Build the escnn part of the eqcheck validation zoo.

Run with the separate escnn virtualenv (see /work/shared/design/THIRD_PARTY.md):

    /work/main/.venv-escnn/bin/python benchmarks/zoo/make_escnn_zoo.py

For every model below it
  1. builds the network with escnn (gspaces.rot2dOnR2 / flipRot2dOnR2), seeds fixed;
  2. warms the batch-norm running statistics up on random data, then calls .eval();
  3. measures escnn's own equivariance error: f(g.x) vs g.f(x) with
     ``GeometricTensor.transform`` on the gspace's ``testing_elements`` (rel error
     ||a-b||/||b|| in float64, CONVENTIONS section 3);
  4. ``.export()``s the escnn modules to plain torch (escnn's FourierPointwise has no
     export: it is re-implemented below with escnn's own A / Ainv matrices) and checks
     that the exported network gives the same output as the escnn one;
  5. saves the exported network as
        <name>.onnx          legacy exporter, opset 17, dynamic batch axis
        <name>.dynamo.onnx   dynamo exporter (+ <name>.dynamo.onnx.data if it writes one), static batch
        <name>.ts            TorchScript (torch.jit.trace)
        <name>.pt2           torch.export.save (ExportedProgram)
     and checks each file against the torch output (onnxruntime / torch.jit.load / torch.export.load);
  6. writes the entries into build/zoo/manifest.json (replacing the ones it wrote before).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import random
import sys
import time
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_common import (SMOOTH_GROUPS, ZOO, input_seed, make_input, rel,  # noqa: E402
                        replace_source_entries)

with contextlib.redirect_stderr(io.StringIO()):   # py3nj warning
    from escnn import gspaces
    from escnn import nn as enn
    from escnn.nn.modules.masking_module import build_mask

OUT = ZOO / "escnn"
SOURCE = "make_escnn_zoo.py"
BATCH = 2


# --------------------------------------------------------------------------------------
# plain-torch pieces (used as-is on both the escnn side and the exported side)
# --------------------------------------------------------------------------------------
class DiskMask(torch.nn.Module):
    """x * mask, the mask being escnn's MaskModule mask (1 inside a disk, smooth decay).

    escnn's MaskModule has no .export(); the mask is rotation-invariant, so this plain
    module is an exact stand-in for it on both sides."""

    def __init__(self, size: int, margin: float, sigma: float = 2.0):
        super().__init__()
        self.register_buffer("mask", build_mask(size, dim=2, margin=margin, sigma=sigma))

    def forward(self, x):
        return x * self.mask


class FourierPointwiseExport(torch.nn.Module):
    """Plain torch re-implementation of escnn.nn.FourierPointwise (ReLU on N samples of
    each band-limited SO(2) field), with escnn's own A (Fourier -> samples) and Ainv."""

    def __init__(self, m: "enn.FourierPointwise"):
        super().__init__()
        self.n_fields = len(m.in_type)
        self.rho = m.rho.size
        self.register_buffer("A", m.A.detach().clone())
        self.register_buffer("Ainv", m.Ainv.detach().clone())

    def forward(self, x):
        b, _, h, w = x.shape
        x = x.reshape(b, self.n_fields, self.rho, h, w)
        s = torch.einsum("bcfhw,gf->bcghw", x, self.A)
        s = torch.relu(s)
        y = torch.einsum("bcghw,fg->bcfhw", s, self.Ainv)
        return y.reshape(b, -1, h, w)


class ZooNet(torch.nn.Module):
    """A chain of named stages: escnn EquivariantModules (fed GeometricTensors) and
    plain torch modules (fed raw tensors).  ``export()`` gives a torch.nn.Sequential
    whose children have the same names, so ONNX node names read /<stage>/<Op>."""

    def __init__(self, stages):
        super().__init__()
        self.stages = torch.nn.ModuleDict(OrderedDict(stages))

    def forward(self, x):
        for m in self.stages.values():
            if isinstance(m, enn.EquivariantModule):
                x = m(enn.GeometricTensor(x, m.in_type)).tensor
            else:
                x = m(x)
        return x

    def export(self):
        self.eval()
        mods = []
        for name, m in self.stages.items():
            if isinstance(m, enn.FourierPointwise):
                e = FourierPointwiseExport(m)
            elif isinstance(m, enn.EquivariantModule):
                e = m.export()
            else:
                e = copy.deepcopy(m)
            mods.append((name, e))
        return torch.nn.Sequential(OrderedDict(mods)).eval()


# --------------------------------------------------------------------------------------
# model definitions
# --------------------------------------------------------------------------------------
def trivial(gs, n):
    return enn.FieldType(gs, n * [gs.trivial_repr])


def regular(gs, n):
    return enn.FieldType(gs, n * [gs.regular_repr])


def invariant_head(gs, t, n_classes=10):
    """GroupPooling -> global average pool -> flatten -> Linear (logits)."""
    gp = enn.GroupPooling(t)
    return [
        ("gpool", gp),
        ("avgpool", enn.PointwiseAdaptiveAvgPool2D(gp.out_type, 1)),
        ("flatten", torch.nn.Flatten(1)),
        ("fc", torch.nn.Linear(gp.out_type.size, n_classes)),
    ]


def conv_bn_relu(i, tin, tout, k, stride=1, bn=True):
    p = (k - 1) // 2
    s = [(f"conv{i}", enn.R2Conv(tin, tout, k, padding=p, stride=stride))]
    if bn:
        s.append((f"bn{i}", enn.InnerBatchNorm(tout)))
    s.append((f"relu{i}", enn.ReLU(tout, inplace=False)))
    return s


def m_c4_inv():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 16)
    st = conv_bn_relu(1, t0, t1, 5)
    st.append(("pool1", enn.PointwiseMaxPool2D(t1, 3, stride=2)))  # 29 -> 14: (29-3) % 2 == 0
    st += conv_bn_relu(2, t1, t2, 3)
    st += invariant_head(gs, t2)
    return gs, st, dict(
        H=29, group="p4", expected="pass", output_type="invariant",
        note="escnn C4 G-CNN: R2Conv(5x5)+InnerBatchNorm+ReLU, PointwiseMaxPool 3/2 "
             "(29 -> 14, grid stays centred since (29-3)%2==0), R2Conv(3x3)+IBN+ReLU, "
             "GroupPooling, global avg pool, Linear -> 10 invariant logits")


def m_c4_reg():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 4)
    st = conv_bn_relu(1, t0, t1, 5) + conv_bn_relu(2, t1, t1, 3)
    st.append(("conv3", enn.R2Conv(t1, t2, 3, padding=1)))
    return gs, st, dict(
        H=33, group="p4", expected="pass", output_type="regular",
        note="escnn C4 G-CNN, stride-free: 3 R2Conv (5,3,3) with InnerBatchNorm+ReLU; "
             "output 4 regular C4 fields = 16 channels (channel = field*4 + j), 33x33")


def m_d4_inv():
    gs = gspaces.flipRot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 4), regular(gs, 8)
    st = conv_bn_relu(1, t0, t1, 5)
    st.append(("pool1", enn.PointwiseMaxPool2D(t1, 3, stride=2)))  # 29 -> 14
    st += conv_bn_relu(2, t1, t2, 3)
    st += invariant_head(gs, t2)
    return gs, st, dict(
        H=29, group="p4m", expected="pass", output_type="invariant",
        note="escnn D4 (flipRot2dOnR2(4)) G-CNN: R2Conv(5)+IBN+ReLU, PointwiseMaxPool 3/2 "
             "(29 -> 14), R2Conv(3)+IBN+ReLU, GroupPooling, global avg pool, Linear -> 10 logits")


def m_d4_reg():
    gs = gspaces.flipRot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 4), regular(gs, 2)
    st = conv_bn_relu(1, t0, t1, 5) + conv_bn_relu(2, t1, t1, 3)
    st.append(("conv3", enn.R2Conv(t1, t2, 3, padding=1)))
    return gs, st, dict(
        H=33, group="p4m", expected="pass", output_type="regular",
        note="escnn D4 G-CNN, stride-free: 3 R2Conv with IBN+ReLU; output 2 regular D4 "
             "fields = 16 channels, escnn order (index 4*f + k is r^k f), 33x33")


def m_c4_plainconv():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 4)
    st = conv_bn_relu(1, t0, t1, 5, bn=False)
    st.append(("plain", torch.nn.Conv2d(t1.size, t1.size, 3, padding=1)))
    st.append(("conv2", enn.R2Conv(t1, t2, 3, padding=1)))
    return gs, st, dict(
        H=33, group="p4", expected="fail", output_type="regular",
        broken=("plain", "torch.nn.Conv2d(32, 32, 3, padding=1) applied to the raw tensor "
                         "between two R2Conv layers (unconstrained filters)"),
        note="C4 R2Conv+ReLU, then a plain torch Conv2d, then R2Conv; regular output "
             "(4 C4 fields), 33x33")


def m_c4_plainconv_inv():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 8)
    st = conv_bn_relu(1, t0, t1, 5, bn=False)
    st.append(("plain", torch.nn.Conv2d(t1.size, t1.size, 3, padding=1)))
    st += conv_bn_relu(2, t1, t2, 3, bn=False)
    st += invariant_head(gs, t2)
    return gs, st, dict(
        H=33, group="p4", expected="fail", output_type="invariant",
        broken=("plain", "torch.nn.Conv2d(32, 32, 3, padding=1) applied to the raw tensor "
                         "between two R2Conv layers"),
        note="like c4_plainconv but with GroupPooling + global pooling + Linear: the "
             "error is diluted by pooling (small rel error, compare with the spread)")


def m_c4_stride2_even():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 4)
    st = conv_bn_relu(1, t0, t1, 5, bn=False)
    st += conv_bn_relu(2, t1, t1, 3, stride=2, bn=False)  # 32 -> 16: (32+2-3) % 2 == 1
    st.append(("conv3", enn.R2Conv(t1, t2, 3, padding=1)))
    return gs, st, dict(
        H=32, group="p4", expected="fail", output_type="regular",
        broken=("conv2", "R2Conv 3x3 stride 2 padding 1 on a 32x32 map: (32+2-3) % 2 == 1, "
                         "the subsampling grid is not centred, rotated inputs are sampled "
                         "on a shifted grid"),
        note="C4 G-CNN with a stride-2 R2Conv on an even input size (32 -> 16); "
             "regular output 4 C4 fields, 16x16")


def m_c4_stride2_odd():
    gs = gspaces.rot2dOnR2(N=4)
    t0, t1, t2 = trivial(gs, 3), regular(gs, 8), regular(gs, 4)
    st = conv_bn_relu(1, t0, t1, 5, bn=False)
    st += conv_bn_relu(2, t1, t1, 3, stride=2, bn=False)  # 33 -> 17: (33+2-3) % 2 == 0
    st.append(("conv3", enn.R2Conv(t1, t2, 3, padding=1)))
    return gs, st, dict(
        H=33, group="p4", expected="pass", output_type="regular",
        note="same network as c4_stride2_even but on 33x33: (33+2-3) % 2 == 0, the "
             "stride-2 grid stays centred, exact; regular output 4 C4 fields, 17x17")


def m_c8_inv():
    gs = gspaces.rot2dOnR2(N=8)
    H = 41
    t0, t1, t2 = trivial(gs, 3), regular(gs, 4), regular(gs, 8)
    st = [("mask", DiskMask(H, margin=45.0))]
    st += conv_bn_relu(1, t0, t1, 5) + conv_bn_relu(2, t1, t2, 3)
    st += invariant_head(gs, t2)
    return gs, st, dict(
        H=H, group="c8", expected="pass", output_type="invariant",
        note="escnn C8 (rot2dOnR2(8)) G-CNN with escnn's disk mask on the input "
             "(MaskModule mask, margin 45%), R2Conv(5)+IBN+ReLU, R2Conv(3)+IBN+ReLU, "
             "GroupPooling, global avg pool, Linear -> 10 logits. Exact (float32) at "
             "multiples of 90 deg; at 45 deg only approximately (interpolation): "
             "check with smooth inputs")


def m_so2_inv():
    gs = gspaces.rot2dOnR2(N=-1, maximum_frequency=6)
    H = 41
    L = 3
    t0 = trivial(gs, 3)
    act1 = enn.FourierPointwise(gs, 6, gs.fibergroup.bl_irreps(L), type="regular", N=16,
                                function="p_relu", inplace=False)
    act2 = enn.FourierPointwise(gs, 6, gs.fibergroup.bl_irreps(L), type="regular", N=16,
                                function="p_relu", inplace=False)
    t3 = trivial(gs, 16)
    st = [("mask", DiskMask(H, margin=45.0)),
          ("conv1", enn.R2Conv(t0, act1.in_type, 5, padding=2)),
          ("act1", act1),
          ("conv2", enn.R2Conv(act1.out_type, act2.in_type, 5, padding=2)),
          ("act2", act2),
          ("conv3", enn.R2Conv(act2.out_type, t3, 3, padding=1)),
          ("relu3", enn.ReLU(t3, inplace=False)),
          ("avgpool", enn.PointwiseAdaptiveAvgPool2D(t3, 1)),
          ("flatten", torch.nn.Flatten(1)),
          ("fc", torch.nn.Linear(16, 10))]
    return gs, st, dict(
        H=H, group="so2", expected="pass", output_type="invariant",
        note="escnn SO(2) (rot2dOnR2(-1, maximum_frequency=6)) steerable CNN: disk mask, "
             "R2Conv to 6 band-limited fields (frequencies 0..3) + FourierPointwise ReLU "
             "(N=16 samples) twice, R2Conv to 16 invariant fields, ReLU, global avg pool, "
             "Linear -> 10 logits. Exact at multiples of 90 deg, approximate elsewhere: "
             "check with smooth (band-limited) inputs; escnn's own transform uses "
             "order-2 spline interpolation")


MODELS = OrderedDict([
    ("c4_inv", m_c4_inv),
    ("c4_reg", m_c4_reg),
    ("d4_inv", m_d4_inv),
    ("d4_reg", m_d4_reg),
    ("c4_plainconv", m_c4_plainconv),
    ("c4_plainconv_inv", m_c4_plainconv_inv),
    ("c4_stride2_even", m_c4_stride2_even),
    ("c4_stride2_odd", m_c4_stride2_odd),
    ("c8_inv", m_c8_inv),
    ("so2_inv", m_so2_inv),
])


# --------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------
def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warm_up_batchnorm(net, H, n_in, seed):
    """Give InnerBatchNorm non-trivial running statistics (equivariant: shared per field)."""
    has_bn = any(isinstance(m, enn.InnerBatchNorm) for m in net.stages.values())
    if not has_bn:
        return
    g = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            x = 0.5 + 1.5 * torch.randn(8, n_in, H, H, generator=g)
            net(x)


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def escnn_check(net, in_type, out_type, x, elements):
    """rel error of escnn's own model under GeometricTensor.transform, per element."""
    with torch.no_grad():
        gx = enn.GeometricTensor(x, in_type)
        y = net(x)
        out = OrderedDict()
        for el in elements:
            a = net(gx.transform(el).tensor)
            if out_type is None:
                b = y
            else:
                b = enn.GeometricTensor(y, out_type).transform(el).tensor
            out[str(el)] = rel_err(a.numpy(), b.numpy())
    return out


def is_rot90(el, gs):
    """True when g acts on the plane by a multiple of 90 degrees (possibly with a flip),
    i.e. when no interpolation is involved: its 2x2 base-space matrix is integer."""
    m = np.asarray(gs.basespace_action(el), dtype=np.float64)
    return bool(np.allclose(m, np.round(m), atol=1e-6))


def escnn_builtin_check(stages):
    """escnn's own EquivariantModule.check_equivariance() on the escnn-only part of a
    model (10x10 random input, 20 random elements, mean abs error per element).
    Only meaningful for modules that are exact on a 10x10 grid."""
    mods = [m for m in stages.values() if isinstance(m, enn.EquivariantModule)]
    seq = enn.SequentialModule(*mods).eval()
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), torch.no_grad():
            res = seq.check_equivariance(atol=1e-4, rtol=1e-3)
        return {"mean_abs_error_max": float(max(e for _, e in res)), "passed": True}
    except AssertionError as exc:
        return {"passed": False, "error": str(exc)[:300]}


# --------------------------------------------------------------------------------------
# exporting
# --------------------------------------------------------------------------------------
def find_onnx_node(path, module):
    """Name of an ONNX node belonging to torch module `module` (its weight input, its
    name scope, or its metadata)."""
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    for node in m.graph.node:
        if node.op_type == "Constant":
            continue
        if node.name.startswith(f"/{module}/") or any(
                i == f"{module}.weight" or i.startswith(f"{module}.") for i in node.input):
            return node.name
    for node in m.graph.node:
        for p in node.metadata_props:
            if module in p.value.split("/") or f"'{module}'" in p.value or p.value.startswith(module + "."):
                return node.name
    return None


def export_all(name, exported, x, y_ref, spec, base_entry, log):
    """Writes the four files, checks each against y_ref, returns manifest entries."""
    import onnx
    import onnxruntime as ort
    entries = []
    xn = x.numpy()

    def entry(path, fmt, **extra):
        e = dict(base_entry)
        e.update(file=rel(path), format=fmt, **extra)
        return e

    def ort_run(path, xin):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: xin})[0]

    # 1. legacy ONNX exporter, opset 17, dynamic batch
    p = OUT / f"{name}.onnx"
    try:
        torch.onnx.export(exported, (x,), str(p), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
        d = float(np.abs(ort_run(p, xn) - y_ref).max())
        d1 = float(np.abs(ort_run(p, xn[:1]) - y_ref[:1]).max())  # dynamic batch works
        e = entry(p, "onnx", exporter="torch.onnx legacy (dynamo=False)", opset=17,
                  dynamic_batch=True, export_max_abs_diff=max(d, d1))
        if spec.get("broken"):
            e["broken_onnx_node"] = find_onnx_node(p, spec["broken"][0])
        entries.append(e)
        log(f"  legacy onnx ok   max|diff|={max(d, d1):.2e}")
    except Exception as exc:
        log(f"  legacy onnx FAILED: {type(exc).__name__}: {exc}")
        FAILURES.append(f"{name}: legacy ONNX export: {type(exc).__name__}: {str(exc)[:500]}")

    # 2. dynamo ONNX exporter (opset 18+, weights maybe in <file>.data), static batch
    p = OUT / f"{name}.dynamo.onnx"
    for old in (p, Path(str(p) + ".data")):
        if old.exists():
            old.unlink()
    try:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            torch.onnx.export(exported, (x,), str(p), dynamo=True,
                              input_names=["input"], output_names=["output"])
        opset = next(o.version for o in onnx.load(str(p), load_external_data=False).opset_import
                     if o.domain in ("", "ai.onnx"))
        d = float(np.abs(ort_run(p, xn) - y_ref).max())
        data = Path(str(p) + ".data")
        e = entry(p, "onnx", exporter="torch.onnx dynamo (dynamo=True)", opset=int(opset),
                  dynamic_batch=False, export_max_abs_diff=d,
                  external_data=rel(data) if data.exists() else None)
        if spec.get("broken"):
            e["broken_onnx_node"] = find_onnx_node(p, spec["broken"][0])
        entries.append(e)
        log(f"  dynamo onnx ok   opset {opset} max|diff|={d:.2e} "
            f"external data: {data.exists()}")
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}"
        log(f"  dynamo onnx FAILED: {msg[:2000]}")
        FAILURES.append(f"{name}: dynamo ONNX export: {msg[:500]}")

    # 3. TorchScript (trace)
    p = OUT / f"{name}.ts"
    try:
        with torch.no_grad():
            ts = torch.jit.trace(exported, (x,))
        ts.save(str(p))
        with torch.no_grad():
            d = float(np.abs(torch.jit.load(str(p))(x).numpy() - y_ref).max())
        entries.append(entry(p, "torchscript", exporter="torch.jit.trace", dynamic_batch=True,
                             export_max_abs_diff=d))
        log(f"  torchscript ok   max|diff|={d:.2e}")
    except Exception as exc:
        log(f"  torchscript FAILED: {type(exc).__name__}: {exc}")
        FAILURES.append(f"{name}: TorchScript trace: {type(exc).__name__}: {str(exc)[:500]}")

    # 4. torch.export -> .pt2
    p = OUT / f"{name}.pt2"
    try:
        ep = torch.export.export(exported, (x,))
        torch.export.save(ep, str(p))
        with torch.no_grad():
            d = float(np.abs(torch.export.load(str(p)).module()(x).numpy() - y_ref).max())
        entries.append(entry(p, "pt2", exporter="torch.export.export + torch.export.save",
                             dynamic_batch=False, export_max_abs_diff=d))
        log(f"  pt2 ok           max|diff|={d:.2e}")
    except Exception as exc:
        log(f"  pt2 FAILED: {type(exc).__name__}: {exc}")
        FAILURES.append(f"{name}: torch.export (.pt2): {type(exc).__name__}: {str(exc)[:500]}")
    return entries


FAILURES: list[str] = []


def build_one(idx, name, fn, log):
    seed = 1000 + idx
    seed_all(seed)
    gs, stages, spec = fn()
    net = ZooNet(stages)
    H = spec["H"]
    in_type = next(m for m in net.stages.values() if isinstance(m, enn.EquivariantModule)).in_type
    n_in = in_type.size
    warm_up_batchnorm(net, H, n_in, seed)
    net.eval()

    out_type = None
    if spec["output_type"] == "regular":
        out_type = [m for m in net.stages.values() if isinstance(m, enn.EquivariantModule)][-1].out_type

    shape = [BATCH, n_in, H, H]
    approx = spec["group"] in SMOOTH_GROUPS
    # the same input as build/zoo/<name>_input.npz (make_input_npz.py)
    x_seed = input_seed(f"escnn_{name}")
    x = torch.from_numpy(make_input(shape, x_seed, smooth=approx))

    t0 = time.time()
    elements = list(gs.testing_elements)
    per_el = escnn_check(net, in_type, out_type, x, elements)
    rot90 = {k: v for (k, v), el in zip(per_el.items(), elements) if is_rot90(el, gs)}
    log(f"  escnn check ({len(elements)} elements, {time.time() - t0:.1f}s): "
        f"max rel {max(per_el.values()):.3e}, max at multiples of 90 deg "
        f"{max(rot90.values()):.3e}")

    with torch.no_grad():
        y_escnn = net(x).numpy()
        exported = net.export()
        y_ref = exported(x).numpy()
    exp_diff = float(np.abs(y_ref - y_escnn).max())
    log(f"  export vs escnn max|diff| = {exp_diff:.2e}")

    base = OrderedDict(
        name=f"escnn_{name}",
        file=None, format=None,
        group=spec["group"],
        input_shape=shape,
        expected=spec["expected"],
        output_type=spec["output_type"],
        note=spec["note"],
        broken_layer=None,
    )
    if spec.get("broken"):
        mod, why = spec["broken"]
        base["broken_layer"] = f"module '{mod}': {why}"
        base["broken_module"] = mod
    if spec["output_type"] == "regular":
        base["regular_field_size"] = int(gs.fibergroup.order())
        base["regular_fields"] = len(out_type)
        base["regular_layout"] = ("escnn: channel = field*|H| + j; C4/C8 j = rotation index; "
                                  "D4 j = 4*f + k is element r^k f")
    base["output_shape"] = list(y_ref.shape)
    base["gspace"] = repr(gs)
    base["escnn_rel_error"] = max(per_el.values())
    base["escnn_rel_error_rot90"] = max(rot90.values())
    base["escnn_rel_error_per_element"] = per_el
    base["escnn_check"] = (
        "own check: rel = ||f(g.x) - g.f(x)||_2 / ||g.f(x)||_2 (float64 over the batch) with "
        "escnn GeometricTensor.transform on gspace.testing_elements, escnn module (not the "
        "export) in eval mode, input "
        + ("Gaussian-smoothed noise (sigma 2 px); transform of non-90-deg angles is "
           "escnn's order-2 spline rotation" if approx else "standard normal noise")
        + f"; the input is the one of input_npz (seed {x_seed})")
    base["escnn_vs_export_max_abs_diff"] = exp_diff
    if not approx and not spec.get("broken") and not any(
            isinstance(m, (enn.PointwiseMaxPool2D,)) or getattr(m, "stride", 1) != 1
            for m in net.stages.values()):
        base["escnn_builtin_check_equivariance"] = escnn_builtin_check(net.stages)
        log(f"  escnn builtin check_equivariance: {base['escnn_builtin_check_equivariance']}")
    base["seed"] = seed

    OUT.mkdir(parents=True, exist_ok=True)
    return export_all(name, exported, x, y_ref, spec, base, log)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--only", nargs="*", help="build only these models (names)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"torch {torch.__version__}, escnn zoo -> {OUT}")
    entries = []
    names = list(MODELS)
    for idx, name in enumerate(names):
        if args.only and name not in args.only:
            continue
        log(f"[{name}]")
        t0 = time.time()
        try:
            entries += build_one(idx, name, MODELS[name], log)
        except Exception:
            traceback.print_exc()
            FAILURES.append(f"{name}: build failed: {traceback.format_exc(limit=3)}")
        log(f"  ({time.time() - t0:.1f}s)")
    if args.only:   # keep the other escnn entries
        from zoo_common import load_manifest
        rebuilt = {e["name"] for e in entries}
        old = [e for e in load_manifest() if e.get("source") == SOURCE and e["name"] not in rebuilt]
        entries = old + entries
    replace_source_entries(SOURCE, entries)
    log(f"wrote {len(entries)} escnn entries to the manifest")
    if FAILURES:
        log("FAILURES:")
        for f in FAILURES:
            log("  " + f)


if __name__ == "__main__":
    main()
