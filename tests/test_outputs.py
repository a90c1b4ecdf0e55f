"""Every output is checked, each with its own type; the model passes only if every output does; every
report shows each output."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import eqcheck
from eqcheck.cli import main
from eqcheck.errors import EXIT_NOT_EQUIVARIANT, EXIT_USAGE


@pytest.fixture(autouse=True)
def _plain(plain_terminal) -> None:
    """Reports read as a CI log would (tests/conftest.py)."""


def two_outputs(broken_second: bool):
    """An exact p4 model whose second output is a feature map: from a P4 conv, or from a plain conv."""
    import torch
    from torch import nn

    from eqcheck.nn import GroupPool, P4ConvZ2, SpatialPool

    torch.manual_seed(0)

    class TwoHeads(nn.Module):
        example_input_shape = (2, 1, 9, 9)

        def __init__(self) -> None:
            super().__init__()
            self.lift = P4ConvZ2(1, 2, 3)
            self.pool = nn.Sequential(GroupPool("max"), SpatialPool("mean"))
            self.plain = nn.Conv2d(1, 3, 3)

        def forward(self, x):
            features = self.lift(x)
            second = self.plain(x) if broken_second else GroupPool("max")(features)
            return {"logits": self.pool(features), "features": second}

    return TwoHeads().eval()


def test_a_broken_second_output_fails_the_model() -> None:
    result = eqcheck.verify(two_outputs(True), "p4", per_layer=False)
    assert [o.name for o in result.outputs] == ["logits", "features"]  # a dict's outputs go by its keys
    first, second = result.outputs
    assert first.passed and first.representation == "invariant"
    assert not second.passed and second.max_rel_error > 0.1
    assert not result.passed and result.output is second


def test_both_outputs_exact_pass_with_their_own_types() -> None:
    result = eqcheck.verify(two_outputs(False), "p4", per_layer=False)
    assert result.passed
    assert [o.representation for o in result.outputs] == ["invariant", "image"]


def test_declared_types_per_output_and_output_selection() -> None:
    model = two_outputs(True)
    only_first = eqcheck.verify(model, "p4", output="logits", per_layer=False)
    assert only_first.passed and [o.name for o in only_first.outputs] == ["logits"]
    declared = eqcheck.verify(two_outputs(False), "p4", output_type=["logits=invariant", "features=image"],
                              per_layer=False)
    assert declared.passed and {o.representation_source for o in declared.outputs} == {"given"}
    wrong = eqcheck.verify(two_outputs(False), "p4", output_type=["features=invariant"], per_layer=False)
    assert not wrong.passed and wrong.outputs[0].passed


def two_output_onnx(tmp_path, broken_second: bool):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    if not broken_second:
        weight = (weight + np.rot90(weight, 1, (2, 3)) + np.rot90(weight, 2, (2, 3)) + np.rot90(weight, 3, (2, 3)))
    nodes = [helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[2, 3], keepdims=0),
             helper.make_node("Conv", ["x", "w"], ["features"], name="plain", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, 9, 9])],
                              [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", 1]),
                               helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", 2, 9, 9])],
                              [numpy_helper.from_array(np.ascontiguousarray(weight, dtype=np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"two_{'broken' if broken_second else 'exact'}.onnx"
    onnx.save(model, str(path))
    return path


def test_every_report_shows_each_output(capsys, tmp_path) -> None:
    path = two_output_onnx(tmp_path, broken_second=True)
    json_path, html_path, junit_path = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.xml"
    code = main(["verify", str(path), "--group", "p4", "--json", str(json_path), "--html", str(html_path),
                 "--junit", str(junit_path)])
    out = capsys.readouterr().out
    assert code == EXIT_NOT_EQUIVARIANT
    assert "output     pooled [2, 1] as invariant" in out and "output     features [2, 2, 9, 9]" in out
    assert "1 of 2 outputs fail (features: 3 of 4 elements)" in out
    assert "output pooled" in out and "output features" in out  # one element table each
    data = json.loads(json_path.read_text())
    assert data["format_version"] == 2 and [o["name"] for o in data["outputs"]] == ["pooled", "features"]
    assert [o["passed"] for o in data["outputs"]] == [True, False] and data["passed"] is False
    assert data["first_failing_layer"] == "plain"
    page = html_path.read_text()
    assert "Output pooled, per group element" in page and "Output features, per group element" in page
    cases = [c.get("name") for c in ET.parse(junit_path).getroot().iter("testcase")]
    assert "output pooled rot90" in cases and "output features rot90" in cases


def test_exact_two_output_onnx_passes(capsys, tmp_path) -> None:
    code = main(["verify", str(two_output_onnx(tmp_path, broken_second=False)), "--group", "p4", "-q"])
    assert code == 0 and "2 outputs" in capsys.readouterr().out


def test_output_type_names_an_output(capsys, tmp_path) -> None:
    path = two_output_onnx(tmp_path, broken_second=False)
    code = main(["verify", str(path), "--group", "p4", "--output-type", "features=image", "--output-type",
                 "pooled=invariant", "-q"])
    assert code == 0
    code = main(["verify", str(path), "--group", "p4", "--output-type", "nothing=image"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "names no output of the model: 'nothing'" in err


def test_an_output_that_ignores_its_input_is_said_to() -> None:
    import torch

    class ZeroHead(torch.nn.Module):
        example_input_shape = (2, 1, 9, 9)

        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(81, 3)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, x):
            return self.head(x.flatten(1))

    result = eqcheck.verify(ZeroHead(), "p4", per_layer=False)
    assert result.passed  # trivially: the check says so
    assert any(d.code == "constant-output" for d in result.diagnoses)


def test_a_passing_model_names_no_failing_layer() -> None:
    result = eqcheck.verify(two_outputs(False), "p4")
    assert result.passed and result.first_failing_layer is None


def test_a_failing_output_nothing_typed_takes_the_type_its_last_exact_layer_computes() -> None:
    """typed_by_layers: the output's check under the type of the layer that wrote it, where that layer is
    exact on exact inputs (or states its type); never where the layer itself broke."""
    from eqcheck.actions.representations import ImageAction
    from eqcheck.compare import Geometry
    from eqcheck.engine import Measurement, typed_by_layers
    from eqcheck.result import ElementResult, LayerResult, TensorCheck

    def check(spec, error, source):
        return TensorCheck(name="output", shape=(2, 16, 7, 7), representation=spec, max_rel_error=error,
                           elements=(ElementResult("rot90", error, error, False),), spread=1.0, passed=False,
                           representation_source=source)

    regular = check("regular:field-major", 1.5, "layers")
    measurement = Measurement(outputs=(check("image", 0.8, "auto"),), elements=[], non_determinism=0.0,
                              forward_passes=1, geometry=Geometry(), actions={"output": ImageAction()},
                              alternatives={"output": {"regular:field-major": (regular, "the regular action"),
                                                       "image": (check("image", 0.8, "layers"), ImageAction())}})

    def last(passed, source="auto"):
        return LayerResult(name="/c3/Conv", op="Conv", shape=(2, 16, 7, 7), representation="regular:field-major",
                           max_rel_error=1.5, local_rel_error=1e-7 if passed else 0.9, passed=passed,
                           tensor="output", representation_source=source)

    retyped = typed_by_layers(measurement, [last(True)])
    assert retyped.outputs[0] is regular and retyped.actions["output"] == "the regular action"
    assert typed_by_layers(measurement, [last(False)]).outputs == measurement.outputs  # the layer broke
    assert typed_by_layers(measurement, [last(False, "declared")]).outputs[0] is regular  # it states its type
    assert typed_by_layers(measurement, [last(True, "kept")]).outputs == measurement.outputs
