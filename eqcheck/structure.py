"""Read strided and padded ops out of a model, with the spatial sizes they see (CONVENTIONS section 5)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqcheck.models.base import ModelRunner


@dataclass(frozen=True)
class WindowOp:
    """A convolution or pooling over the two spatial axes, per axis (h, w)."""

    name: str
    op: str
    size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad_begin: tuple[int, int]
    pad_end: tuple[int, int]

    def misalignment(self) -> list[str]:
        """Why this op moves the grid centre, if it does: one phrase per reason."""
        reasons = []
        for axis, name in enumerate(("H", "W")):
            n, k, s = self.size[axis], self.kernel[axis], self.stride[axis]
            p0, p1 = self.pad_begin[axis], self.pad_end[axis]
            if p0 != p1:
                reasons.append(f"asymmetric padding ({p0}, {p1}) on {name}")
            if s > 1 and (n + p0 + p1 - k) % s:
                reasons.append(f"stride {s} on size {n} with kernel {k}, padding {p0}+{p1}: "
                               f"(N + 2p - k) mod s = {(n + p0 + p1 - k) % s}")
        return list(dict.fromkeys(reasons))


WINDOW_OPS = ("Conv", "MaxPool", "AveragePool")
#: TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16: weights whose values shape inference never reads
FLOAT_TYPES = (1, 10, 11, 16)


def scan_onnx(runner, shapes: dict[str, tuple[int, ...]], model=None, nodes=None,
              tensor_shapes: dict[str, tuple[int, ...]] | None = None, feeds=None) -> list[WindowOp]:
    """Conv and pooling nodes of the top-level graph, with the spatial sizes they see.
    ``model``: the runner's model already parsed, read rather than parsed again; ``nodes``: the names of
    the only nodes wanted (nothing is run when none of them is a window op); ``tensor_shapes``: the
    shapes of the model's tensors where a run already gave them (the per-layer capture). Else the sizes
    come from one run on ``feeds`` of a copy that outputs the window ops' inputs (onnxruntime, weights
    inline), or from onnx's shape inference (weights in external files)."""
    from eqcheck.models.onnx_proto import attribute_value, messages

    raw = bytes(runner.source) if isinstance(runner.source, (bytes, bytearray)) else None
    if model is None:
        raw = raw if raw is not None else Path(runner.source).read_bytes()
        model = messages().ModelProto()
        model.ParseFromString(raw)
    windows = [node for node in model.graph.node
               if node.op_type in WINDOW_OPS and node.input and (nodes is None or node.name in nodes)]
    if not windows:
        return []
    inferred = model
    if tensor_shapes is not None:
        known = dict(tensor_shapes)
    elif feeds is not None and raw is not None and not any(t.data_location == 1 for t in model.graph.initializer):
        known = _run_shapes(runner, raw, model, feeds, [node.input[0] for node in windows])
    else:
        inferred, known = _inferred_shapes(model, shapes, messages())
    initializers = {i.name: tuple(i.dims) for i in model.graph.initializer}
    ops = []
    for node in inferred.graph.node:
        if node.op_type not in WINDOW_OPS or (nodes is not None and node.name not in nodes):
            continue
        shape = known.get(node.input[0])
        if not shape or len(shape) != 4 or None in shape[-2:]:
            continue
        attrs = {a.name: attribute_value(a) for a in node.attribute}
        kernel = tuple(attrs.get("kernel_shape") or initializers.get(node.input[1], (0, 0, 1, 1))[-2:])
        strides = tuple(attrs.get("strides", (1, 1)))
        pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        if auto_pad not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            total = [max((-(-n // s) - 1) * s + k - n, 0) for n, k, s in zip(shape[-2:], kernel, strides)]
            upper = auto_pad in (b"SAME_UPPER", "SAME_UPPER")
            begin = tuple(t // 2 if upper else t - t // 2 for t in total)
            pads = begin + tuple(t - b for t, b in zip(total, begin))
        ops.append(WindowOp(node.name or node.output[0], node.op_type, tuple(shape[-2:]), kernel, strides,
                            pads[:2], pads[2:4]))
    return ops


def _run_shapes(runner, raw: bytes, model, feeds, names: list[str]) -> dict[str, tuple[int, ...]]:
    """The shapes of ``names`` on one run of the model on ``feeds``, each an output of a copy."""
    from eqcheck.models.onnx_proto import with_outputs
    from eqcheck.models.onnx_runner import plain_session

    known = {name: tuple(np.shape(feeds[name])) for name in names if name in feeds}
    wanted = [name for name in names if name not in feeds]
    if wanted:
        session = plain_session(with_outputs(raw, model, wanted), runner.device, False)
        values = session.run(wanted, {name: feeds[name] for name in (i.name for i in session.get_inputs())})
        known.update((name, tuple(np.shape(value))) for name, value in zip(wanted, values))
    return known


def _inferred_shapes(model, shapes: dict[str, tuple[int, ...]], proto):
    """onnx's shape inference on a copy of ``model`` without its weights' values, the inputs set to
    ``shapes``: the inferred model and the shapes of the tensors window ops read."""
    from onnx import shape_inference

    copy = proto.ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:  # inference reads weights' dims, not their values
        if tensor.data_type in FLOAT_TYPES and tensor.raw_data and math.prod(tensor.dims) > 64:
            tensor.ClearField("raw_data")
    for graph_input in copy.graph.input:
        if graph_input.name in shapes:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, value in zip(dims, shapes[graph_input.name]):
                dim.Clear()
                dim.dim_value = int(value)
    inferred = shape_inference.infer_shapes(copy)
    wanted = {node.input[0] for node in inferred.graph.node if node.op_type in WINDOW_OPS and node.input}
    known = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input):
        if info.name in wanted:
            dims = info.type.tensor_type.shape.dim
            known[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return inferred, known


def scan_torch(runner, feeds) -> list[WindowOp]:
    """Conv2d and 2-D pooling modules, with the sizes they see on one forward pass (hooks)."""
    import torch

    module = runner.module
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        return []
    ops: list[WindowOp] = []
    window_types = (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)

    def pair(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    def hook_for(name):
        def hook(mod, args, _output):
            size = tuple(args[0].shape[-2:])
            kernel, stride = pair(mod.kernel_size), pair(mod.stride)
            padding = getattr(mod, "padding", 0)
            if padding == "same":
                total = [d * (k - 1) for d, k in zip(pair(getattr(mod, "dilation", 1)), kernel)]
                begin, end = tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
            elif padding == "valid":
                begin = end = (0, 0)
            else:
                begin = end = pair(padding)
            ops.append(WindowOp(name, type(mod).__name__, size, kernel, pair(stride), begin, end))
        return hook

    def is_window(mod) -> bool:
        # torch's own layers, and any layer that declares a kernel and a stride (eqcheck.nn's group convs)
        return isinstance(mod, window_types) or (hasattr(mod, "kernel_size") and hasattr(mod, "stride")
                                                 and not isinstance(mod, torch.nn.modules.conv._ConvNd))

    handles = [m.register_forward_hook(hook_for(n)) for n, m in module.named_modules() if is_window(m)]
    try:
        runner.run({k: v[:1] for k, v in feeds.items()})
    finally:
        for handle in handles:
            handle.remove()
    return ops


def total_stride(ops: list[WindowOp], input_size: int) -> int:
    """How many input pixels one pixel of the coarsest feature map spans (1 when nothing strides). A
    window that reduces its map to one pixel (a global pool, a conv as large as its input) leaves no grid
    to sample: it is no stride."""
    stride = 1
    for op in ops:
        out = (op.size[0] + op.pad_begin[0] + op.pad_end[0] - op.kernel[0]) // op.stride[0] + 1
        if out > 1 and input_size % out == 0:
            stride = max(stride, input_size // out)
    return stride


def scan(runner: ModelRunner, feeds, shapes, model=None, nodes=None,
         tensor_shapes: dict[str, tuple[int, ...]] | None = None) -> list[WindowOp]:
    """Best effort: an empty list where the model cannot be read (TorchScript, exported programs).
    An ONNX model's scan is kept on its runner per input shapes: the engine (for the stride of an
    invariant output) and the diagnoses of a failing check would otherwise each run shape inference.
    ``model``: the ONNX model already parsed, if the caller holds it; ``nodes``: the names of the only
    ops wanted (for ONNX, no shape inference is run when none of them is a convolution or pooling);
    ``tensor_shapes``: every tensor's shape where a capture ran the model (ONNX: no shape inference)."""
    try:
        if runner.format == "onnx":
            one = {k: (1,) + tuple(int(d) for d in v[1:]) for k, v in shapes.items()}
            scans = getattr(runner, "scans", None)
            key = tuple(sorted(one.items()))
            if scans is not None and key in scans:
                ops = list(scans[key])
            elif nodes is not None:
                ops = scan_onnx(runner, one, model, set(nodes), tensor_shapes, feeds)
            else:
                ops = scan_onnx(runner, one, model, feeds=feeds)
                if scans is not None:
                    scans[key] = tuple(ops)
            return ops if nodes is None else [op for op in ops if op.name in nodes]
        if runner.format == "pytorch":
            return scan_torch(runner, feeds)
    except Exception:  # the scan only adds explanations; never let it stop a check
        return []
    return []
