"""Reshaping ops computed in numpy (eqcheck.layers.onnx_views) against onnxruntime running them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from eqcheck.layers.onnx_views import derive_views, is_view

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def _every_tensor_an_output(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    existing = {o.name for o in copy.graph.output}
    copy.graph.output.extend(onnx.ValueInfoProto(name=o) for n in copy.graph.node for o in n.output
                             if o and o not in existing)
    return copy


def _run_all(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor, unoptimized (as a capture copy runs: the same kernels, the same numbers)."""
    full = _every_tensor_an_output(model)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(full.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def _views_model(opset: int) -> onnx.ModelProto:
    """x [B, 6, 4, 5] through every view op, each in the forms its opset has."""
    axes_as_input = opset >= 13
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "shape0"], ["reshaped"]),          # [0, -1, 5]: copies B
        helper.make_node("Flatten", ["r"], ["flat2"], axis=2),
        helper.make_node("Flatten", ["r"], ["flat_neg"], axis=-1),
        helper.make_node("Unsqueeze", ["r", "axes_u"] if axes_as_input else ["r"], ["unsq"],
                         **({} if axes_as_input else {"axes": [1, -1]})),
        helper.make_node("Squeeze", ["unsq", "axes_s"] if axes_as_input else ["unsq"], ["sq"],
                         **({} if axes_as_input else {"axes": [1]})),
        helper.make_node("Squeeze", ["unsq"], ["sq_all"]),                   # every axis of size 1
        helper.make_node("Identity", ["sq_all"], ["same"]),
        helper.make_node("Shape", ["r"], ["dims"]),                          # a shape computed at run time
        helper.make_node("Reshape", ["flat2", "dims"], ["back"]),
        helper.make_node("Neg", ["back"], ["y"]),
    ]
    initializers = [numpy_helper.from_array(np.array([0, -1, 5], dtype=np.int64), "shape0")]
    if axes_as_input:
        initializers += [numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "axes_u"),
                         numpy_helper.from_array(np.array([1], dtype=np.int64), "axes_s")]
    graph = helper.make_graph(nodes, "views", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 6, 4, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("batch", [1, 3])
def test_every_view_op_matches_onnxruntime(opset: int, batch: int) -> None:
    model = _views_model(opset)
    x = np.random.default_rng(0).standard_normal((batch, 6, 4, 5)).astype(np.float32)
    expected = _run_all(model, {"x": x})
    views = [n for n in model.graph.node if is_view(n)]
    assert {n.op_type for n in views} == {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
    known = {k: v for k, v in expected.items() if k not in {n.output[0] for n in views}}
    known["x"] = x
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    derive_views(views, known, constants)
    for node in views:
        name = node.output[0]
        assert known[name].shape == expected[name].shape, (node.op_type, name)
        np.testing.assert_array_equal(known[name], expected[name])


def test_a_capture_outputs_no_view_and_still_reads_every_view() -> None:
    from eqcheck.layers.capture_onnx import OnnxTracer
    from eqcheck.models.onnx_runner import OnnxRunner

    path = SAMPLES / "p4cnn.onnx"
    tracer = OnnxTracer(OnnxRunner(path, "p4cnn"))
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    captured = tracer.reference({"input": x})
    views = set(tracer.views)
    assert len(views) >= 10 and not views & set(tracer.produced)  # reshapes of the feature maps
    expected = _run_all(onnx.load(str(path)), {"input": x})
    for name in views:
        np.testing.assert_array_equal(captured[name], expected[name])
    assert {s.output for s in tracer.sites} >= views  # still layers of the table
    tracer.close()
