"""Read strided and padded ops out of a model, with the spatial sizes they see (CONVENTIONS section 5)."""
from __future__ import annotations

import math
from dataclasses import dataclass

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


def scan_onnx(runner, shapes: dict[str, tuple[int, ...]], model=None, nodes=None) -> list[WindowOp]:
    """Conv and pooling nodes of the top-level graph, with spatial sizes from shape inference.
    ``model``: the runner's model already parsed (weights inline), copied rather than read again;
    ``nodes``: the names of the only nodes wanted (no inference at all when none of them is a window op)."""
    import onnx
    from onnx import shape_inference

    if model is not None:
        parsed = model
        model = onnx.ModelProto()
        model.CopyFrom(parsed)
    else:
        source = runner.source
        model = (onnx.load_from_string(source) if isinstance(source, bytes)
                 else onnx.load(str(source), load_external_data=False))
    if not any(node.op_type in WINDOW_OPS and (nodes is None or node.name in nodes) for node in model.graph.node):
        return []
    for tensor in model.graph.initializer:  # inference reads weights' dims, not their values
        if tensor.data_type in FLOAT_TYPES and tensor.raw_data and math.prod(tensor.dims) > 64:
            tensor.ClearField("raw_data")
    for graph_input in model.graph.input:
        if graph_input.name in shapes:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, value in zip(dims, shapes[graph_input.name]):
                dim.Clear()
                dim.dim_value = int(value)
    inferred = shape_inference.infer_shapes(model)
    wanted = {node.input[0] for node in inferred.graph.node if node.op_type in WINDOW_OPS and node.input}
    known = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input):
        if info.name in wanted:
            dims = info.type.tensor_type.shape.dim
            known[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    initializers = {i.name: tuple(i.dims) for i in model.graph.initializer}
    ops = []
    for node in inferred.graph.node:
        if node.op_type not in WINDOW_OPS or (nodes is not None and node.name not in nodes):
            continue
        shape = known.get(node.input[0])
        if not shape or len(shape) != 4 or None in shape[-2:]:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
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
    """How many input pixels one pixel of the coarsest feature map spans (1 when nothing strides)."""
    stride = 1
    for op in ops:
        out = (op.size[0] + op.pad_begin[0] + op.pad_end[0] - op.kernel[0]) // op.stride[0] + 1
        if out > 0 and input_size % out == 0:
            stride = max(stride, input_size // out)
    return stride


def scan(runner: ModelRunner, feeds, shapes, model=None, nodes=None) -> list[WindowOp]:
    """Best effort: an empty list where the model cannot be read (TorchScript, exported programs).
    An ONNX model's scan is kept on its runner per input shapes: the engine (for the stride of an
    invariant output) and the diagnoses of a failing check would otherwise each run shape inference.
    ``model``: the ONNX model already parsed, if the caller holds it; ``nodes``: the names of the only
    ops wanted (for ONNX, no shape inference is run when none of them is a convolution or pooling)."""
    try:
        if runner.format == "onnx":
            one = {k: (1,) + tuple(int(d) for d in v[1:]) for k, v in shapes.items()}
            scans = getattr(runner, "scans", None)
            key = tuple(sorted(one.items()))
            if scans is not None and key in scans:
                ops = list(scans[key])
            elif nodes is not None:
                ops = scan_onnx(runner, one, model, set(nodes))
            else:
                ops = scan_onnx(runner, one, model)
                if scans is not None:
                    scans[key] = tuple(ops)
            return ops if nodes is None else [op for op in ops if op.name in nodes]
        if runner.format == "pytorch":
            return scan_torch(runner, feeds)
    except Exception:  # the scan only adds explanations; never let it stop a check
        return []
    return []
