#!/usr/bin/env python
"""Build the plain-PyTorch part of the eqcheck validation zoo.

Run with the project's virtualenv:

    /work/main/.venv/bin/python benchmarks/zoo/make_torch_zoo.py

Copies benchmarks/zoo/torch_models.py to build/zoo/torch_models.py (the "pyspec"
files: "build/zoo/torch_models.py:<factory>"), builds every factory, and saves each
model as ONNX (legacy exporter, opset 17, dynamic batch), TorchScript (trace) and
.pt2 (torch.export), checking each file against the torch output.  Entries go to
build/zoo/manifest.json (replacing the ones this script wrote before).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sys
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import onnx
import onnxruntime as ort
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from zoo_common import ZOO, rel, replace_source_entries  # noqa: E402

SOURCE = "make_torch_zoo.py"
OUT = ZOO / "torch"
PYSPEC = ZOO / "torch_models.py"
FAILURES: list[str] = []

# name -> (input shape, dynamic axes of input and output besides batch, list of manifest
#          variants (group, expected, output_type, broken_layer, broken_module, note, extra))
SPECS = OrderedDict()
SPECS["transformer_set"] = dict(
    shape=[2, 10, 16], dyn={},
    variants=[dict(group="perm", expected="pass", output_type="set", broken_layer=None,
                   note="torch.nn.TransformerEncoder (d_model 16, 4 heads, ff 32, 2 layers, "
                        "dropout 0, batch_first, eval), no positional embedding: permutation-"
                        "equivariant on axis 1 (set axis). The legacy ONNX export has a dynamic "
                        "batch axis but a FIXED set size N=10 (MultiheadAttention's reshapes "
                        "are traced with N as a constant)",
                   extra=dict(set_axis=1))])
SPECS["transformer_posemb"] = dict(
    shape=[2, 10, 16], dyn={},
    variants=[dict(group="perm", expected="fail", output_type="set",
                   broken_layer="parameter 'pos' (learned positional embedding [1, 10, 16]) "
                                "added to the input before the encoder",
                   broken_module="pos",
                   note="same TransformerEncoder with a learned positional embedding added "
                        "to the input: not permutation-equivariant",
                   extra=dict(set_axis=1))])
SPECS["cnn_circular"] = dict(
    shape=[2, 3, 32, 32], dyn={},
    variants=[dict(group="translation", expected="pass", output_type="image", broken_layer=None,
                   note="3 x Conv2d 3x3 padding_mode='circular' + ReLU, no stride: exact for "
                        "circular shifts (torch.roll)")])
SPECS["cnn_zeropad"] = dict(
    shape=[2, 3, 32, 32], dyn={},
    variants=[
        dict(group="translation", expected="fail", output_type="image",
             broken_layer="zero padding of the Conv2d layers (modules '0', '2', '4', "
                          "padding=1, padding_mode='zeros'): the border breaks circular shifts",
             broken_module="0",
             note="same CNN with zero padding: fails for circular shifts (border)"),
        dict(group="translation:interior", expected="pass", output_type="image",
             broken_layer=None,
             note="zero-padded CNN: exact for zero-fill shifts compared away from the "
                  "border (receptive-field radius 3 = margin)",
             extra=dict(margin=3)),
    ])
SPECS["cnn_circular_stride2"] = dict(
    shape=[2, 3, 32, 32], dyn={},
    variants=[dict(group="translation", expected="pass", output_type="image", broken_layer=None,
                   note="circular CNN with a stride-2 second conv (32 -> 16): exact only for "
                        "shifts that are multiples of 2 (output shifts by t/2); an odd shift "
                        "has no exact counterpart: a checker should test multiples of the "
                        "total stride 2 and say so ('pass' means: pass on those shifts)",
                   extra=dict(total_stride=2, exact_shift_multiple=2))])
SPECS["cnn_dropout_train"] = dict(
    shape=[2, 3, 32, 32], dyn={},
    variants=[dict(group="translation", expected="fail", output_type="image",
                   broken_layer="module '2': nn.Dropout(p=0.3) left in train mode "
                                "(non-deterministic: even the identity shows an error)",
                   broken_module="2",
                   note="cnn_circular + Dropout(0.3) in TRAIN mode. The ONNX file is exported "
                        "with training=TrainingMode.TRAINING and keeps a Dropout node with "
                        "training_mode=True, BUT onnxruntime's graph optimisations (level "
                        "BASIC and above, i.e. the default) remove that node: with default "
                        "SessionOptions the ONNX model is deterministic and exactly "
                        "shift-equivariant; only with graph_optimization_level=ORT_DISABLE_ALL "
                        "does it draw a new mask per run. 'fail' is the model's meaning; a "
                        "checker should disable ORT optimisations or flag the Dropout node",
                   extra=dict(nondeterministic=True))])
SPECS["cnn_manual_dropout"] = dict(
    shape=[2, 3, 32, 32], dyn={},
    variants=[dict(group="translation", expected="fail", output_type="image",
                   broken_layer="module '2': hand-written dropout (x * (rand_like(x) >= 0.3) "
                                "/ 0.7), active in eval mode; ONNX: RandomUniformLike",
                   broken_module="2",
                   note="cnn_circular + a hand-written random dropout mask that is active in "
                        "every mode: non-deterministic in torch and in onnxruntime (default "
                        "optimisations keep RandomUniformLike)",
                   extra=dict(nondeterministic=True))])


def load_pyspec():
    ZOO.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "torch_models.py", PYSPEC)
    spec = importlib.util.spec_from_file_location("zoo_torch_models", PYSPEC)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ort_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def find_onnx_node(path, module):
    m = onnx.load(str(path), load_external_data=False)
    for node in m.graph.node:
        if node.op_type == "Constant":
            continue
        if node.name.startswith(f"/{module}/") or module in node.input or any(
                i.startswith(f"{module}.") for i in node.input):
            return node.name
    return None


def build(name, factory, spec, log):
    model = factory()
    nondet = any(v.get("extra", {}).get("nondeterministic") for v in spec["variants"])
    g = torch.Generator().manual_seed(7)
    x = torch.randn(*spec["shape"], generator=g)
    with torch.no_grad():
        y = model(x).numpy()
    files = []   # (path, format, extra dict)

    # pyspec
    files.append((f"{rel(PYSPEC)}:{name}", "pyspec",
                  dict(factory=name, dynamic_batch=True)))

    # ONNX, legacy exporter
    p = OUT / f"{name}.onnx"
    try:
        dyn_in = {0: "batch", **spec["dyn"]}
        kw = {}
        if nondet:
            kw["training"] = torch.onnx.TrainingMode.TRAINING
            kw["do_constant_folding"] = False
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            torch.onnx.export(model, (x,), str(p), dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": dyn_in, "output": dict(dyn_in)}, **kw)
        sess = ort_session(p)
        y1 = sess.run(None, {"input": x.numpy()})[0]
        extra = dict(exporter="torch.onnx legacy (dynamo=False)", opset=17,
                     dynamic_batch=True)
        if nondet:
            y2 = sess.run(None, {"input": x.numpy()})[0]
            extra["ort_default_two_runs_max_abs_diff"] = float(np.abs(y1 - y2).max())
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            s0 = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
            extra["ort_no_optimisation_two_runs_max_abs_diff"] = float(np.abs(
                s0.run(None, {"input": x.numpy()})[0] - s0.run(None, {"input": x.numpy()})[0]).max())
            log(f"  onnx ok (nondeterministic: two runs differ by "
                f"{extra['ort_default_two_runs_max_abs_diff']:.2e} with default ORT options, "
                f"{extra['ort_no_optimisation_two_runs_max_abs_diff']:.2e} with ORT_DISABLE_ALL)")
        else:
            d = float(np.abs(y1 - y).max())
            x1 = x[:1]   # the batch axis is dynamic
            with torch.no_grad():
                d = max(d, float(np.abs(sess.run(None, {"input": x1.numpy()})[0]
                                        - model(x1).numpy()).max()))
            extra["export_max_abs_diff"] = d
            log(f"  onnx ok max|diff|={d:.2e}")
        files.append((rel(p), "onnx", extra))
    except Exception as exc:
        log(f"  onnx FAILED {type(exc).__name__}: {exc}")
        FAILURES.append(f"{name}: legacy ONNX: {type(exc).__name__}: {str(exc)[:500]}")

    # TorchScript
    p = OUT / f"{name}.ts"
    try:
        with torch.no_grad():
            ts = torch.jit.trace(model, (x,), check_trace=not nondet)
        ts.save(str(p))
        extra = dict(exporter="torch.jit.trace", dynamic_batch=True)
        if not nondet:
            with torch.no_grad():
                extra["export_max_abs_diff"] = float(np.abs(torch.jit.load(str(p))(x).numpy() - y).max())
        files.append((rel(p), "torchscript", extra))
        log(f"  torchscript ok {extra.get('export_max_abs_diff', '')}")
    except Exception as exc:
        log(f"  torchscript FAILED {type(exc).__name__}: {exc}")
        FAILURES.append(f"{name}: TorchScript: {type(exc).__name__}: {str(exc)[:500]}")

    # torch.export
    p = OUT / f"{name}.pt2"
    try:
        ep = torch.export.export(model, (x,))
        torch.export.save(ep, str(p))
        extra = dict(exporter="torch.export.export + torch.export.save", dynamic_batch=False)
        if not nondet:
            with torch.no_grad():
                extra["export_max_abs_diff"] = float(
                    np.abs(torch.export.load(str(p)).module()(x).numpy() - y).max())
        files.append((rel(p), "pt2", extra))
        log(f"  pt2 ok {extra.get('export_max_abs_diff', '')}")
    except Exception as exc:
        log(f"  pt2 FAILED {type(exc).__name__}: {str(exc)[:300]}")
        FAILURES.append(f"{name}: torch.export: {type(exc).__name__}: {str(exc)[:500]}")

    entries = []
    for f, fmt, extra in files:
        for v in spec["variants"]:
            e = OrderedDict(name=f"torch_{name}", file=f, format=fmt, group=v["group"],
                            input_shape=spec["shape"], expected=v["expected"],
                            output_type=v["output_type"], note=v["note"],
                            broken_layer=v["broken_layer"])
            e["output_shape"] = list(y.shape)
            e.update(v.get("extra", {}))
            e.update(extra)
            if v.get("broken_module") is not None:
                e["broken_module"] = v["broken_module"]
                if fmt == "onnx":
                    e["broken_onnx_node"] = find_onnx_node(Path(f), v["broken_module"])
            entries.append(e)
    return entries


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)         # dropout masks drawn while checking the exports
    ort.set_seed(0)
    log = lambda s: print(s, flush=True)  # noqa: E731
    OUT.mkdir(parents=True, exist_ok=True)
    mod = load_pyspec()
    entries = []
    for name, spec in SPECS.items():
        log(f"[{name}]")
        try:
            entries += build(name, getattr(mod, name), spec, log)
        except Exception:
            traceback.print_exc()
            FAILURES.append(f"{name}: {traceback.format_exc(limit=3)}")
    replace_source_entries(SOURCE, entries)
    log(f"wrote {len(entries)} torch entries to the manifest")
    for f in FAILURES:
        log("FAILURE " + f)


if __name__ == "__main__":
    main()
