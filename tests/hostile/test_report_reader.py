"""`eqcheck report` on a malformed file names the field in one line (exit 2): deep nesting, wrong types,
missing fields, a file that is not a result."""
from __future__ import annotations

import json

import pytest

from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_USAGE

from .conftest import assert_one_error_line, run


@pytest.fixture(scope="module")
def saved(tmp_path_factory, sample) -> dict:
    path = tmp_path_factory.mktemp("saved") / "r.json"
    from eqcheck.cli import main

    assert main(["verify", sample("p4cnn"), "--group", "p4", "--json", str(path), "-q"]) == EXIT_EQUIVARIANT
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def sample():
    from pathlib import Path

    return lambda name: str(Path(__file__).resolve().parents[2] / "sample_models" / f"{name}.onnx")


def damaged(data: dict, change) -> dict:
    copy = json.loads(json.dumps(data))
    change(copy)
    return copy


CASES = [
    (lambda d: d.__setitem__("outputs", 5), "outputs must be a non-empty list"),
    (lambda d: d.__setitem__("outputs", [5]), "outputs[0] must be an object, not a number"),
    (lambda d: d.pop("run"), "missing field run"),
    (lambda d: d["outputs"][0]["elements"][0].__setitem__("rel_error", "x"),
     "outputs[0].elements[0].rel_error must be a number, not a string"),
    (lambda d: d["outputs"][0]["elements"][0].pop("passed"), "missing field outputs[0].elements[0].passed"),
    (lambda d: d["run"].__setitem__("inputs", [1]), "run.inputs must be an object, not a list"),
    (lambda d: d["run"].__setitem__("seed", "0"), "run.seed must be an integer, not a string"),
    (lambda d: d.__setitem__("layers", {}), "layers must be a list, not an object"),
    (lambda d: d.__setitem__("passed", 1), "passed must be true or false, not a number"),
    (lambda d: d.__setitem__("format_version", 99), "unsupported result format_version 99"),
]


@pytest.mark.parametrize("change, message", CASES)
def test_a_malformed_result_names_the_field(capsys, tmp_path, saved, change, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(damaged(saved, change)))
    code, out, err = run(capsys, "report", path)
    assert message in assert_one_error_line(err, code, EXIT_USAGE)
    assert out == ""


@pytest.mark.parametrize("text, message", [("[" * 100000 + "]" * 100000, "nested too deeply"),
                                           ("[1, 2]", "must be an object, not a list"),
                                           ("{", "is not JSON"), ("", "is not JSON")])
def test_files_that_are_no_result_are_usage_errors(capsys, tmp_path, text, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, _, err = run(capsys, "report", path)
    assert message in assert_one_error_line(err, code, EXIT_USAGE)


def test_a_version_1_result_still_reads_back(capsys, tmp_path, saved) -> None:
    old = {key: value for key, value in saved.items() if key != "outputs"}
    old.update(format_version=1, output=saved["outputs"][0])
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(old))
    code, out, _ = run(capsys, "report", path, "-q")
    assert code == EXIT_EQUIVARIANT and out.startswith("PASS")


def test_a_saved_result_still_reads_back(capsys, tmp_path, saved) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(saved))
    code, out, _ = run(capsys, "report", path, "-q")
    assert code == EXIT_EQUIVARIANT and out.startswith("PASS")
