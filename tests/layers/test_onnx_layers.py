"""Per-layer analysis of ONNX models: extra outputs of a copy, node names, blocks of ops, bounded memory."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import onnx
import torch
from torch import nn

import eqcheck
from eqcheck.layers.capture_onnx import layer_name

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def export(model: nn.Module, shape, path: Path, dynamic: bool = True) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(*shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None)
    return path


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().eval()


def test_the_sample_broken_p4cnn_names_its_broken_layer() -> None:
    result = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    assert result.first_failing_layer == "/conv4_broken_plain/plain_conv2d/Conv"
    failing = [layer for layer in result.layers if not layer.passed]
    assert [layer.name for layer in failing] == [result.first_failing_layer]
    first = failing[0]
    assert first.tensor == "/conv4_broken_plain/plain_conv2d/Conv_output_0" and first.op == "Conv"
    assert first.local_rel_error > 1.0 and first.representation == "regular:field-major"
    index = [layer.name for layer in result.layers].index(first.name)
    before, after = result.layers[:index], result.layers[index + 1:]
    assert all(layer.max_rel_error < 1e-5 for layer in before)
    assert all(layer.local_rel_error < 1e-5 < 0.1 < layer.max_rel_error for layer in after)
    assert any(d.code == "plain-layer" and d.layer == first.name for d in result.diagnoses)


def test_exact_sample_networks_pass_at_every_layer_as_regular_fields() -> None:
    result = eqcheck.verify(SAMPLES / "p4mcnn.onnx", "p4m")
    assert result.passed and result.first_failing_layer is None and all(layer.passed for layer in result.layers)
    actions = {layer.name: layer.representation for layer in result.layers}
    assert actions["/conv1/Conv"] == "regular:field-major"  # escnn order, rolled by +k (section 2)
    assert actions["/conv2/Reshape_3"] == "regular:5d"
    assert actions["/group_pool/ReduceMax"] == "image"


def test_circular_padding_is_a_block_that_passes_and_zero_padding_breaks_translations(tmp_path) -> None:
    def cnn(mode):
        return _seeded(lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode=mode), nn.ReLU(),
                                             nn.Conv2d(4, 2, 3, padding=1, padding_mode=mode)))

    circular = eqcheck.verify(export(cnn("circular"), (2, 2, 12, 12), tmp_path / "c.onnx"), "translation")
    assert circular.passed and circular.first_failing_layer is None
    blocks = [layer for layer in circular.layers if layer.representation_source == "block"]
    assert blocks and {layer.op for layer in blocks} <= {"Slice", "Concat", "Pad"}  # the padding's own ops
    assert all(layer.passed for layer in circular.layers)
    zeros = eqcheck.verify(export(cnn("zeros"), (2, 2, 12, 12), tmp_path / "z.onnx"), "translation")
    assert zeros.first_failing_layer == "/0/Conv"
    assert any(d.code == "zero-padding" and d.layer == "/0/Conv" for d in zeros.diagnoses)


def test_a_circular_pad_after_a_break_is_a_block_and_the_conv_that_reads_it_exact(tmp_path) -> None:
    # the legacy exporter writes circular padding as slices and concats: after the zero-padded conv breaks
    # translations, the next layer's pieces must not be made exact under a guessed action (the conv that
    # reads them then seemed to break too, at 0.6)
    model = _seeded(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                                          nn.Conv2d(4, 4, 3, padding=1),
                                          nn.Conv2d(4, 2, 3, padding=1, padding_mode="circular")))
    result = eqcheck.verify(export(model, (2, 1, 16, 16), tmp_path / "m.onnx"), "translation")
    layers = {layer.name: layer for layer in result.layers}
    assert not result.passed and result.first_failing_layer == "/2/Conv"
    assert [layer.name for layer in result.layers if not layer.passed] == ["/2/Conv"]
    assert layers["/3/Conv"].local_rel_error < 1e-6 and layers["/3/Conv"].max_rel_error > 0.1
    pieces = [layer for name, layer in layers.items() if name.startswith("/3/") and name != "/3/Conv"]
    assert pieces and all(layer.representation_source == "block" for layer in pieces)
    assert [d.layer for d in result.diagnoses] == ["/2/Conv"]


class SeqFirstPositional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(0.5 * torch.randn(1, 5, 8))
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x + self.pos)


def test_a_transformer_export_with_sequence_first_and_merged_heads_is_read_right(tmp_path) -> None:
    result = eqcheck.verify(export(_seeded(SeqFirstPositional), (2, 5, 8), tmp_path / "t.onnx"), "perm")
    assert result.first_failing_layer == "/Add"  # x + pos: nothing after it makes an error
    assert [layer.name for layer in result.layers if not layer.passed] == ["/Add"]
    actions = {layer.representation for layer in result.layers}
    assert {"set", "set:axis=2", "set:axes=2,3"} <= actions  # [N, B, D] moved batch-first; heads; scores
    assert any(d.code == "positional-embedding" for d in result.diagnoses)


def test_a_static_batch_is_run_one_item_at_a_time(tmp_path) -> None:
    path = export(_seeded(lambda: nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3))),
                  (2, 1, 9, 9), tmp_path / "static.onnx", dynamic=False)
    result = eqcheck.verify(path, "p4")
    assert result.first_failing_layer == "/0/Conv"  # a plain conv on an image
    assert len(result.layers) == 3


def test_bounded_memory_gives_the_same_rows(monkeypatch) -> None:
    import eqcheck.layers.analysis as analysis

    whole = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    original = analysis.analyze_layers

    def small(*args, **kwargs):
        return original(*args, **{**kwargs, "memory_budget": 200_000})  # a few layers per capture

    monkeypatch.setattr("eqcheck.api.analyze_layers", small)
    chunked = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    assert chunked.first_failing_layer == whole.first_failing_layer
    assert [(r.name, r.representation, r.passed) for r in chunked.layers] == \
        [(r.name, r.representation, r.passed) for r in whole.layers]
    assert np.allclose([r.max_rel_error for r in chunked.layers], [r.max_rel_error for r in whole.layers])


def test_dynamo_nodes_are_named_after_their_module_scope() -> None:
    node = onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="node_conv2d_1")
    entry = node.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", "['', 'plain', 'conv2d_1']"
    assert layer_name(node) == "plain/node_conv2d_1"
    legacy = onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="/plain/Conv")
    assert layer_name(legacy) == "/plain/Conv"
    spaced = onnx.helper.make_node("Relu", ["x"], ["y"], name="node_relu")
    entry = spaced.metadata_props.add()
    entry.key, entry.value = "namespace", ": torch.nn.Sequential/relu1: torch.nn.ReLU/relu: aten.relu.default"
    assert layer_name(spaced) == "relu1/node_relu"


def test_same_padding_with_an_even_kernel_is_named_as_the_cause(tmp_path) -> None:
    conv = nn.Conv2d(1, 2, 2, padding="same", bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # a filter that rotations leave alone: only the padding is off-centre
    model = nn.Sequential(conv, nn.ReLU())
    for checked, name in ((export(model, (2, 1, 9, 9), tmp_path / "same.onnx"), "/0/Conv"), (model, "0")):
        result = eqcheck.verify(checked, "p4", input_shape=[2, 1, 9, 9])
        assert result.first_failing_layer == name
        assert {d.code for d in result.diagnoses if d.layer == name} == {"asymmetric-padding", "even-kernel"}


def test_a_capture_copy_is_the_model_as_given_with_its_outputs_appended() -> None:
    from eqcheck.layers.capture_onnx import OnnxTracer
    from eqcheck.models.onnx_proto import parse_model, with_outputs
    from eqcheck.models.onnx_runner import OnnxRunner

    raw = (SAMPLES / "p4cnn.onnx").read_bytes()
    tracer = OnnxTracer(OnnxRunner(SAMPLES / "p4cnn.onnx", "p4cnn"))
    names = tracer.produced[:3]
    merged = onnx.load_from_string(with_outputs(raw, parse_model(raw), names))  # protobuf merges the two
    expected = onnx.load_from_string(raw)
    expected.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    assert merged == expected
    tracer.close()


def test_capture_copies_are_the_graph_alone_and_read_the_weights_held_once() -> None:
    from eqcheck.layers.capture_onnx import OnnxTracer
    from eqcheck.models.onnx_runner import OnnxRunner

    runner = OnnxRunner(SAMPLES / "p4cnn.onnx", "p4cnn")
    tracer = OnnxTracer(runner)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(SAMPLES / "p4cnn.onnx")).graph.initializer}
    large = {name for name, w in weights.items() if w.nbytes >= 1024}
    assert large and set(tracer.weights) == large
    for name in large:
        np.testing.assert_array_equal(tracer.weights[name], weights[name])
    copy = tracer._capture_model(tracer.produced, frozenset())
    assert len(copy.SerializeToString()) < 0.1 * (SAMPLES / "p4cnn.onnx").stat().st_size
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    captured = tracer.reference({"input": x})
    np.testing.assert_allclose(captured[runner.output_names[0]], runner.run({"input": x})[0], rtol=1e-4, atol=1e-5)
    tracer.close()


def test_a_patched_capture_runs_only_what_follows_the_patch() -> None:
    from eqcheck.layers.capture_onnx import OnnxTracer
    from eqcheck.models.onnx_runner import OnnxRunner

    tracer = OnnxTracer(OnnxRunner(SAMPLES / "p4cnn_broken.onnx", "p4cnn_broken"))
    tracer.reference({"input": np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)})
    broken = next(i for i, s in enumerate(tracer.sites) if s.name == "/conv4_broken_plain/plain_conv2d/Conv")
    after = tracer.sites[broken + 1:]
    patch = frozenset({tracer.sites[broken].output})
    names, _ = tracer._capture_names(after, patch)  # what the sites after the patch read and write
    patched = tracer._capture_model(names, patch)
    kept = {node.name for node in patched.graph.node}
    assert "/conv1/Conv" not in kept and tracer.sites[broken].node not in kept
    assert {s.node for s in after} <= kept
    tracer.close()


def test_a_stacked_capture_whose_tensors_do_not_stack_on_their_first_axis_is_still_cut_right() -> None:
    from onnx import TensorProto, helper

    from eqcheck.layers.capture_onnx import OnnxTracer
    from eqcheck.layers.trace import run_groups
    from eqcheck.models.onnx_runner import OnnxRunner

    # [B, 3] -> [3, B]: with B = 3 the first axis looks like the batch, but items stack on the second
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]), helper.make_node("Relu", ["t"], ["y"])],
        "transposed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, "batch"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    tracer = OnnxTracer(OnnxRunner(model.SerializeToString(), "transposed"))
    rng = np.random.default_rng(0)
    items = [{"x": rng.standard_normal((3, 3)).astype(np.float32)} for _ in range(4)]
    tracer.reference(items[0])
    captured = tracer.capture(tracer.sites, items, run_groups(items, True, None), identity=0)
    assert tracer.axes["t"] == 1
    assert all(np.array_equal(got, item["x"].T) for got, item in zip(captured["t"], items))
    tracer.close()


def test_the_window_scan_runs_once_per_check(monkeypatch) -> None:
    import eqcheck.structure as structure

    calls = []
    original = structure.scan_onnx

    def counted(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(structure, "scan_onnx", counted)
    result = eqcheck.verify(SAMPLES / "p4cnn.onnx", "translation")  # the engine scans; so do the diagnoses
    assert not result.passed and result.first_failing_layer is not None
    assert len(calls) == 1


def test_the_output_checks_passes_are_the_analysis_first_captures_where_they_run_one_by_one(monkeypatch) -> None:
    import eqcheck.batching as batching
    import eqcheck.layers.capture_onnx as capture_onnx

    reference = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    monkeypatch.setattr(batching, "STACK_BELOW_SECONDS", 0.0)  # every pass "slow": run one by one
    monkeypatch.setattr(capture_onnx, "OPTIMIZED_WEIGHTS_BYTES", 0)  # a "large" model: the verdict is recorded
    unpatched = []
    original = capture_onnx.OnnxTracer._run

    def counted(self, session, feeds):
        if not any(name.endswith("@patch") for name in feeds):
            unpatched.append(1)
        return original(self, session, feeds)

    monkeypatch.setattr(capture_onnx.OnnxTracer, "_run", counted)
    result = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    assert len(unpatched) == result.run.forward_passes  # the verdict's passes, and no other unpatched one
    assert result.first_failing_layer == reference.first_failing_layer == "/conv4_broken_plain/plain_conv2d/Conv"
    assert all(e.rel_error == 0.0 for o in result.outputs for e in o.elements if e.element == "e")
    for mine, theirs in zip(result.layers, reference.layers):
        assert mine.name == theirs.name and mine.representation == theirs.representation
        assert mine.max_rel_error == pytest.approx(theirs.max_rel_error, rel=1e-3, abs=1e-6)


class _Clock:
    """``time.perf_counter`` for eqcheck.batching: the first pass takes ``first`` seconds, the second
    ``second`` (the passes that decide whether the rest are stacked), then time stands still."""

    def __init__(self, first: float, second: float) -> None:
        self.stamps = iter([0.0, first, 10.0, 10.0 + second])
        self.last = 0.0

    def perf_counter(self) -> float:
        self.last = next(self.stamps, self.last)
        return self.last


@pytest.mark.parametrize("group", ["p4", "c8"])  # c8: the unrelated input is an item of the analysis too
@pytest.mark.parametrize("first, second", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)],
                         ids=["stacked-after-the-reference", "stacked-after-the-unrelated-input", "one-by-one"])
def test_the_output_checks_passes_are_the_analysis_first_captures_however_they_were_stacked(
        monkeypatch, group, first, second) -> None:
    import eqcheck.batching as batching
    import eqcheck.layers.capture_onnx as capture_onnx

    reference = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", group)
    monkeypatch.setattr(batching, "time", _Clock(first, second))
    monkeypatch.setattr(capture_onnx, "OPTIMIZED_WEIGHTS_BYTES", 0)  # a "large" model: the verdict is recorded
    unpatched = []
    for method in ("_run", "_run_into"):
        original = getattr(capture_onnx.OnnxTracer, method)

        def counted(self, session, feeds, *args, _original=original):
            if not any(name.endswith("@patch") for name in feeds):
                unpatched.append(1)
            return _original(self, session, feeds, *args)

        monkeypatch.setattr(capture_onnx.OnnxTracer, method, counted)
    result = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", group)
    stacked_passes = {(0.0, 0.0): 2, (1.0, 0.0): 3}.get((first, second), len(result.outputs[0].elements) + 2)
    assert result.run.forward_passes == stacked_passes  # the clock decided how the verdict stacked them
    assert len(unpatched) == result.run.forward_passes  # the verdict's passes, and no other unpatched one
    assert result.first_failing_layer == reference.first_failing_layer is not None
    assert len(result.layers) == len(reference.layers)
    for mine, theirs in zip(result.layers, reference.layers):
        assert mine.name == theirs.name and mine.representation == theirs.representation
        assert mine.max_rel_error == pytest.approx(theirs.max_rel_error, rel=1e-3, abs=1e-6)


def test_weights_held_in_a_file_give_the_same_layers(monkeypatch) -> None:
    import eqcheck.layers.capture_onnx as capture_onnx

    in_memory = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    monkeypatch.setattr(capture_onnx, "FILE_WEIGHTS_BYTES", 0)
    in_file = eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")
    assert in_file.first_failing_layer == in_memory.first_failing_layer is not None
    assert [(r.name, r.representation, r.passed) for r in in_file.layers] == \
        [(r.name, r.representation, r.passed) for r in in_memory.layers]


def test_a_float16_weight_stored_as_16_bit_patterns_keeps_its_values() -> None:
    from onnx import TensorProto, helper

    from eqcheck.models import onnx_proto

    w = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float16)
    tensor = helper.make_tensor("W", TensorProto.FLOAT16, w.shape, w.flatten().tolist(), raw=False)
    assert len(tensor.int32_data) == w.size and not tensor.raw_data
    parsed = onnx_proto.parse_model(helper.make_model(helper.make_graph(
        [], "g", [], [], [tensor])).SerializeToString()).graph.initializer[0]
    np.testing.assert_array_equal(onnx_proto.tensor_array(parsed), w)


def test_replayed_passes_keep_a_random_model_random_layer_by_layer(monkeypatch) -> None:
    from onnx import TensorProto, helper

    import eqcheck.batching as batching
    import eqcheck.layers.capture_onnx as capture_onnx

    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, (4, 1, 3, 3), rng.standard_normal(36).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("RandomNormalLike", ["c"], ["n"], scale=0.1, name="noise"),
             helper.make_node("Add", ["c", "n"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 9, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    monkeypatch.setattr(batching, "STACK_BELOW_SECONDS", 0.0)
    monkeypatch.setattr(capture_onnx, "OPTIMIZED_WEIGHTS_BYTES", -1)  # the verdict's passes are recorded
    result = eqcheck.verify(model, "p4", input_shape=[2, 1, 9, 9])
    assert result.non_determinism > 1e-3
    noise = next(layer for layer in result.layers if layer.name == "noise")
    assert noise.element_errors[0] > 1e-3  # the identity: the reference and its own pass are two passes
