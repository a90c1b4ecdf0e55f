"""The JSON report: strict JSON (NaN and Inf become strings), and from_dict(to_dict(r)) renders the same JSON."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import eqcheck
from eqcheck.report.json_report import FORMAT_VERSION, dumps, from_dict, to_dict


def strict_loads(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def round_trip(result) -> tuple[str, str]:
    text = json.dumps(to_dict(result), allow_nan=False, sort_keys=True)
    again = json.dumps(to_dict(from_dict(strict_loads(text))), allow_nan=False, sort_keys=True)
    return text, again


@pytest.mark.parametrize("name, group", [("z2cnn", "p4"), ("p4_fcn", "p4"), ("deepsets", "perm"), ("p4cnn", "so2")])
def test_round_trip_gives_identical_json(sample, name, group) -> None:
    result = eqcheck.verify(sample(name), group)
    text, again = round_trip(result)
    assert text == again
    back = from_dict(strict_loads(text))
    assert back == result  # every number is finite here, so the dataclasses compare equal too
    assert back.output.elements == result.output.elements and back.run.inputs == result.run.inputs


def test_round_trip_keeps_diagnoses_and_interpolation_floors(sample) -> None:
    result = eqcheck.verify(sample("p4cnn"), "so2")
    back = from_dict(strict_loads(dumps(result)))
    assert [d.code for d in back.diagnoses] == [d.code for d in result.diagnoses] and back.diagnoses
    floors = [e.interpolation_floor for e in back.output.elements if not e.exact]
    assert floors and all(isinstance(f, float) and 0 < f < 1 for f in floors)


class NaNModel(nn.Module):
    def forward(self, x):
        return x * float("nan")


def test_nan_and_inf_are_written_as_strings_and_read_back() -> None:
    result = eqcheck.verify(NaNModel(), "p4", input_shape=(2, 1, 9, 9))
    assert math.isnan(result.output.elements[1].rel_error)
    text = dumps(result)
    data = strict_loads(text)  # refuses the NaN / Infinity constants json.dumps would write otherwise
    element = data["outputs"][0]["elements"][1]
    assert element["rel_error"] == "nan" and element["nonfinite"] is True and element["passed"] is False
    assert data["outputs"][0]["max_rel_error"] == "inf"  # NaN counts as infinite
    text_again, again = round_trip(result)
    assert text_again == again
    back = from_dict(data)
    assert math.isnan(back.output.elements[1].rel_error) and back.output.max_rel_error == math.inf
    assert not back.passed


def test_an_infinite_error_stays_infinite(sample) -> None:
    """||g.f(x)|| = 0 with f(g.x) != 0 gives an infinite error from finite outputs; it must not come back NaN."""
    from dataclasses import replace

    result = eqcheck.verify(sample("z2cnn"), "p4")
    output = replace(result.output, max_rel_error=math.inf,
                     elements=(replace(result.output.elements[1], rel_error=math.inf),) + result.output.elements[2:])
    layers = (replace(result.layers[0], max_rel_error=math.inf, local_rel_error=-math.inf),) + result.layers[1:]
    broken = replace(result, outputs=(output,), layers=layers)
    back = from_dict(strict_loads(dumps(broken)))
    assert back.output.max_rel_error == math.inf and back.output.elements[0].rel_error == math.inf
    assert back.layers[0].max_rel_error == math.inf and back.layers[0].local_rel_error == -math.inf
    assert back == broken


def test_results_written_with_null_numbers_still_read() -> None:
    result = eqcheck.verify(NaNModel(), "p4", input_shape=(2, 1, 9, 9))
    data = strict_loads(dumps(result))
    data["outputs"][0]["elements"][1]["rel_error"] = None  # how format 1 wrote NaN before
    assert math.isnan(from_dict(data).output.elements[1].rel_error)


def test_json_fields(sample) -> None:
    result = eqcheck.verify(sample("p4cnn_broken"), "p4", seed=3)
    data = strict_loads(dumps(result))
    assert data["format_version"] == FORMAT_VERSION == 2
    assert data["passed"] is False and data["group"] == "p4" and data["tolerance"] == 1e-5
    assert data["model"] == {"path": sample("p4cnn_broken"), "format": "onnx"}
    assert data["run"]["seed"] == 3 and data["run"]["inputs"] == {"input": [2, 1, 28, 28]}
    assert data["outputs"][0]["max_rel_error"] == result.output.max_rel_error
    assert [e["rel_error"] for e in data["outputs"][0]["elements"]] == [e.rel_error for e in result.output.elements]
    assert data["first_failing_layer"] == "/conv4_broken_plain/plain_conv2d/Conv"
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in result.layers]
    assert [layer["passed"] for layer in data["layers"]].count(False) >= 1


def test_unknown_format_version_is_refused(sample) -> None:
    data = to_dict(eqcheck.verify(sample("deepsets"), "perm"))
    data["format_version"] = 99
    with pytest.raises(ValueError, match="format_version"):
        from_dict(data)


def test_torch_model_result_round_trips() -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular").eval()
    result = eqcheck.verify(model, "translation", input_shape=(2, 1, 8, 8))
    text, again = round_trip(result)
    assert text == again and result.passed


def test_a_permutations_elements_carry_their_order_so_a_failing_one_can_be_reproduced(sample) -> None:
    result = eqcheck.verify(sample("deepsets"), "perm", per_layer=False)
    elements = strict_loads(dumps(result))["outputs"][0]["elements"]
    size = result.run.inputs["input"][1]
    assert elements[0]["element"] == "e" and elements[0]["permutation"] in (None, list(range(size)))
    moved = [e["permutation"] for e in elements[1:]]
    assert all(sorted(p) == list(range(size)) for p in moved) and any(p != list(range(size)) for p in moved)
    rotated = strict_loads(dumps(eqcheck.verify(sample("p4cnn"), "p4", per_layer=False)))
    assert all(e["permutation"] is None for e in rotated["outputs"][0]["elements"])
