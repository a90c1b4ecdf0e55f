"""ONNX ops that only reshape their data (Reshape, Flatten, Squeeze, Unsqueeze, Identity), computed in numpy.

Where such an op's output is an output of the model, onnxruntime copies what it would otherwise alias:
in a capture copy of the p4m sample model, whose every tensor is an output, those copies were a third of
the run (16 items: 23 ms with every tensor an output, 15 ms without the Reshape outputs). A capture
outputs the op's inputs instead (its data, and its shape or axes where they are computed), and the
tensor is that data reshaped here, a view, by the op's own rules.
"""
from __future__ import annotations

import math

import numpy as np

#: op type -> the inputs after the data that the op reads (shape or axes), by position
VIEW_OPS = {"Reshape": (1,), "Flatten": (), "Squeeze": (1,), "Unsqueeze": (1,), "Identity": ()}


def _attribute(node, name: str, default=None):
    from eqcheck.models.onnx_proto import attribute_value

    for attr in node.attribute:
        if attr.name == name:
            return attribute_value(attr)
    return default


def _axes(node, values: dict[str, np.ndarray]) -> list[int] | None:
    """Squeeze/Unsqueeze axes: the second input from opset 13, the attribute before."""
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in np.asarray(values[node.input[1]]).ravel()]
    axes = _attribute(node, "axes")
    return None if axes is None else [int(a) for a in axes]


def view_shape(node, data_shape: tuple[int, ...], values: dict[str, np.ndarray]) -> tuple[int, ...]:
    """The output shape of a VIEW_OPS node on data of ``data_shape`` (ONNX operator semantics)."""
    op = node.op_type
    if op == "Identity":
        return tuple(data_shape)
    if op == "Flatten":
        axis = int(_attribute(node, "axis", 1))
        axis = axis + len(data_shape) if axis < 0 else axis
        return (math.prod(data_shape[:axis]), math.prod(data_shape[axis:]))
    if op == "Reshape":
        target = [int(d) for d in np.asarray(values[node.input[1]]).ravel()]
        if not int(_attribute(node, "allowzero", 0)):
            target = [data_shape[i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(data_shape) // known if known else 0
        return tuple(target)
    axes = _axes(node, values)
    if op == "Squeeze":
        if axes is None:
            return tuple(d for d in data_shape if d != 1)
        drop = {a + len(data_shape) if a < 0 else a for a in axes}
        return tuple(d for i, d in enumerate(data_shape) if i not in drop)
    if op == "Unsqueeze":
        rank = len(data_shape) + len(axes)
        inserted = {a + rank if a < 0 else a for a in axes}
        rest = iter(data_shape)
        return tuple(1 if i in inserted else next(rest) for i in range(rank))
    raise ValueError(f"{op} is not a view op")


def is_view(node) -> bool:
    return node.op_type in VIEW_OPS and node.domain in ("", "ai.onnx") and len(node.output) == 1 \
        and bool(node.input) and bool(node.input[0])


def view_inputs(node) -> list[str]:
    """The tensors a view op reads: its data and its shape or axes input, where it has one."""
    return [node.input[0]] + [node.input[i] for i in VIEW_OPS[node.op_type] if i < len(node.input) and node.input[i]]


def derive_views(nodes, values: dict[str, np.ndarray], constants: dict[str, np.ndarray]) -> None:
    """Fill in ``values`` the output of every view op in ``nodes`` (graph order) whose inputs are known
    (in ``values``, else in ``constants``) and whose output is not there yet."""
    for node in nodes:
        output = node.output[0]
        if output in values or node.input[0] not in values:
            continue
        known = {name: values[name] if name in values else constants.get(name) for name in view_inputs(node)}
        if any(v is None for v in known.values()):
            continue
        data = values[node.input[0]]
        values[output] = data.reshape(view_shape(node, tuple(data.shape), known))
