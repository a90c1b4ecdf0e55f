"""The JUnit reporter on hand-built results: valid XML, one testcase per element and per layer, failures
that hold the error and the tolerance, and gold files (timestamps and versions scrubbed)."""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from eqcheck.checks import ModelOutcome
from eqcheck.config import ModelEntry
from eqcheck.gate import gate_checks
from eqcheck.report import junit
from eqcheck.result import Diagnosis, ElementResult, LayerResult, RunInfo, TensorCheck, VerificationResult

GOLD = Path(__file__).parent / "gold"


def scrub(text: str) -> str:
    """Times and versions change from run to run and release to release: the gold files hold placeholders."""
    text = re.sub(r'time="[0-9.]+"', 'time="TIME"', text)
    return re.sub(r'(name="eqcheck_version" value=")[^"]*"', r'\1VERSION"', text)


def assert_gold(name: str, text: str) -> None:
    path = GOLD / name
    if os.environ.get("EQCHECK_UPDATE_GOLD"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (EQCHECK_UPDATE_GOLD=1 rewrites it)"


def element(name: str, rel: float, passed: bool, exact: bool = True, nonfinite: bool = False) -> ElementResult:
    return ElementResult(element=name, rel_error=rel, max_abs_error=rel * 2, passed=passed, exact=exact,
                         interpolation_floor=None if exact else 1e-3, spread_ratio=rel / 0.9, nonfinite=nonfinite)


def layer(name: str, local: float, passed: bool, cumulative: float | None = None) -> LayerResult:
    return LayerResult(name=name, op=name.rsplit("/", 1)[-1].split("_")[0], shape=(2, 8, 6, 6),
                       representation="image", max_rel_error=cumulative if cumulative is not None else local,
                       local_rel_error=local, passed=passed, cumulative_passed=passed)


def hand_built(passed: bool = False, model: str = "models/broken.onnx") -> VerificationResult:
    """A p4 check: rot90 and rot270 fail on the output, Conv_2 makes the error, Conv_3 adds to it."""
    elements = (element("e", 0.0, True), element("rot90", 0.8, passed), element("rot180", 2e-6, True),
                element("rot270", 0.7, passed))
    output = TensorCheck(name="logits", shape=(2, 10), representation="invariant", elements=elements,
                         max_rel_error=2e-6 if passed else 0.8, spread=0.9, passed=passed,
                         representation_source="auto")
    layers = (layer("/Conv_1", 1e-7, True), layer("/Conv_2", 0.5, passed), layer("/Relu", 0.0, True, 0.4),
              layer("/Conv_3", 0.3, passed, 0.7))
    run = RunInfo(model=model, model_format="onnx", group="p4", inputs={"input": (2, 1, 9, 9)},
                  input_actions={"input": "image"}, input_source="generated", dtype="float32", seed=0,
                  device="cpu", samples=8, forward_passes=1, eqcheck_version="9.9.9", command="eqcheck verify")
    diagnoses = () if passed else (Diagnosis("plain-layer", "/Conv_2 (Conv) is a plain layer on an image",
                                             layer="/Conv_2"),)
    return VerificationResult(run=run, tolerance=1e-5, approximate_tolerance=0.05, outputs=(output,), passed=passed,
                              non_determinism=0.0, diagnoses=diagnoses, layers=layers,
                              first_failing_layer=None if passed else "/Conv_2", elapsed_s=0.25)


def cases(xml: str) -> list[ET.Element]:
    return ET.fromstring(xml).findall("./testsuite/testcase")


def test_failing_model_has_a_testcase_per_element_and_layer_and_failures_with_tolerance() -> None:
    xml = junit.render(hand_built())
    root = ET.fromstring(xml)
    testcases = cases(xml)
    assert [c.get("name") for c in testcases] == ["output e", "output rot90", "output rot180", "output rot270",
                                                  "layer /Conv_1", "layer /Conv_2", "layer /Relu", "layer /Conv_3"]
    failures = {c.get("name"): c.find("failure") for c in testcases if c.find("failure") is not None}
    assert list(failures) == ["output rot90", "output rot270", "layer /Conv_2", "layer /Conv_3"]
    assert failures["output rot90"].get("message") == "rel error 8.00e-01 > tol 1.00e-05"
    assert failures["layer /Conv_2"].get("message") == "local rel error 5.00e-01 > tol 1.00e-05 (first failing layer)"
    assert "why: /Conv_2 (Conv) is a plain layer" in failures["layer /Conv_2"].text
    assert "cumulative rel error 7.00e-01" in failures["layer /Conv_3"].text
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("8", "4", "0")
    suite = root.find("testsuite")
    assert suite.get("name") == "eqcheck models/broken.onnx [p4]" and suite.get("time") == "0.250"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["first_failing_layer"] == "/Conv_2" and properties["tolerance"] == "1.00e-05"
    assert_gold("eqcheck_junit_failing.xml", scrub(xml))


def test_passing_model_has_no_failure() -> None:
    xml = junit.render(hand_built(passed=True))
    root = ET.fromstring(xml)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "0", "0")
    assert not list(root.iter("failure"))


def test_interpolated_and_nonfinite_elements_say_which_tolerance() -> None:
    result = hand_built()
    elements = (element("e", 0.0, True), element("rot30", 0.2, False, exact=False),
                element("rot90", float("nan"), False, nonfinite=True))
    result = replace(result, outputs=(replace(result.output, elements=elements),), layers=())
    failures = [c.find("failure") for c in cases(junit.render(result))]
    assert failures[0] is None
    assert failures[1].get("message").startswith("rel error 2.00e-01, tol 5.00e-02 and at most 0.1 of the spread")
    assert failures[2].get("message") == "NaN or Inf in the output (rel error nan, tol 1.00e-05)"
    assert "rel error nan" in failures[2].text


def test_names_with_markup_and_control_characters_stay_valid_xml() -> None:
    xml = junit.render(hand_built(model='a<b>&"c"\x01.onnx'))
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.get("name") == 'eqcheck a<b>&"c"\\x01.onnx [p4]'


def outcome(name: str, result: VerificationResult | None, expect: str = "pass", error: str | None = None,
            code: int = 0) -> ModelOutcome:
    return ModelOutcome(ModelEntry(name=name, model=name, expect=expect), "p4", result=result, error=error,
                        error_exit_code=code)


def test_check_report_has_a_suite_per_model() -> None:
    outcomes = (outcome("good.onnx", hand_built(True, "good.onnx")), outcome("bad.onnx", hand_built(False, "bad.onnx")),
                outcome("known.onnx", hand_built(False, "known.onnx"), expect="fail"),
                outcome("fixed.onnx", hand_built(True, "fixed.onnx"), expect="fail"),
                outcome("gone.onnx", None, error="model file not found: gone.onnx", code=3))
    xml = junit.render_checks(outcomes, gate_checks(outcomes))
    root = ET.fromstring(xml)
    counts = {s.get("name"): (s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"))
              for s in root.findall("testsuite")}
    assert counts == {"eqcheck good.onnx [p4]": ("8", "0", "0", "0"), "eqcheck bad.onnx [p4]": ("8", "4", "0", "0"),
                      "eqcheck known.onnx [p4]": ("8", "0", "0", "4"), "eqcheck fixed.onnx [p4]": ("9", "1", "0", "0"),
                      "eqcheck gone.onnx [p4]": ("1", "0", "1", "0")}
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("34", "5", "1", "4")
    assert root.find(".//error").get("message") == "model file not found: gone.onnx"
    assert_gold("eqcheck_junit_check.xml", scrub(xml))


@pytest.mark.parametrize("value", ["0.250", "12.000"])
def test_scrub_hides_times_and_versions(value) -> None:
    text = f'<testsuite time="{value}"><property name="eqcheck_version" value="1.2.3" /></testsuite>'
    assert scrub(text) == '<testsuite time="TIME"><property name="eqcheck_version" value="VERSION" /></testsuite>'
