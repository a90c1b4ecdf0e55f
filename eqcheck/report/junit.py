"""The JUnit XML report: a testsuite per model, a testcase per group element of the output and per layer.

A failing element or layer carries a ``<failure>`` whose message holds its error and the tolerance it
was held to. The file has no timestamp: it renders the result alone, so a saved JSON result renders
the same file again (``eqcheck report``).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eqcheck.report.inert import printable
from eqcheck.report.text import fmt, verdict_line
from eqcheck.result import ElementResult, LayerResult, VerificationResult
from eqcheck.tolerance import MAX_SPREAD_RATIO

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict

#: what XML 1.0 cannot hold besides the control characters (which ``printable`` escapes)
_NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")


def _clean(text: str) -> str:
    """One line: XML 1.0 cannot hold most control characters, escaped or not, and CI viewers print
    messages raw, so every control character is shown escaped."""
    return _NOT_XML.sub("?", printable(text))


def _lines(lines: str | Sequence[str]) -> str:
    """A failure's text: each line cleaned, joined by our own line breaks."""
    return "\n".join(map(_clean, [lines] if isinstance(lines, str) else lines))


def _element_failure(result: VerificationResult, output, element: ElementResult) -> tuple[str, str]:
    """(message, details) for a failing element of one output."""
    where = (f"output {output.name} {list(output.shape)} as {output.representation}, "
             f"group {result.run.group}, element {element.element}")
    tolerance = result.tolerance if element.exact else result.approximate_tolerance
    if element.nonfinite:
        message = f"NaN or Inf in the output (rel error {fmt(element.rel_error)}, tol {fmt(tolerance)})"
    elif element.exact:
        message = f"rel error {fmt(element.rel_error)} > tol {fmt(tolerance)}"
    else:
        message = (f"rel error {fmt(element.rel_error)}, tol {fmt(tolerance)} and at most {MAX_SPREAD_RATIO} "
                   f"of the spread (rel/spread {fmt(element.spread_ratio)}); interpolated")
    details = (f"{where}: rel error {fmt(element.rel_error)}, max abs error {fmt(element.max_abs_error)}, "
               f"rel/spread {fmt(element.spread_ratio)}, tolerance {fmt(result.tolerance)} (exact elements), "
               f"{fmt(result.approximate_tolerance)} (interpolated)")
    return message, details


def _layer_failure(result: VerificationResult, layer: LayerResult) -> tuple[str, list[str]]:
    first = " (first failing layer)" if layer.name == result.first_failing_layer else ""
    message = f"local rel error {fmt(layer.local_rel_error)} > tol {fmt(result.tolerance)}{first}"
    details = (f"layer {layer.name} ({layer.op}) {list(layer.shape)} as {layer.representation}: local rel error "
               f"{fmt(layer.local_rel_error)} (the layer on an exact input), cumulative rel error "
               f"{fmt(layer.max_rel_error)}, tolerance {fmt(result.tolerance)}")
    causes = [d.message for d in result.diagnoses if d.layer == layer.name and d.severity == "cause"]
    return message, [details, *(f"why: {c}" for c in causes)]


def _testcase(suite: ET.Element, classname: str, name: str, failure: tuple[str, str | list[str]] | None,
              known_failure: bool) -> None:
    case = ET.SubElement(suite, "testcase", {"classname": _clean(classname), "name": _clean(name)})
    if failure is None:
        return
    message, details = failure
    if known_failure:
        ET.SubElement(case, "skipped", {"message": _clean(f'known failure (expect = "fail"): {message}')})
    else:
        ET.SubElement(case, "failure", {"message": _clean(message), "type": "not-equivariant"}).text = \
            _lines(details)


def _properties(suite: ET.Element, result: VerificationResult) -> None:
    run = result.run
    values = {"model": run.model, "format": run.model_format, "group": run.group,
              "output": ", ".join(f"{o.name} as {o.representation}" for o in result.outputs),
              "tolerance": fmt(result.tolerance), "approximate_tolerance": fmt(result.approximate_tolerance),
              "dtype": run.dtype, "device": run.device, "seed": str(run.seed),
              "first_failing_layer": result.first_failing_layer or "", "verdict": verdict_line(result),
              "eqcheck_version": run.eqcheck_version}
    properties = ET.SubElement(suite, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})


def _count(suite: ET.Element, time: float) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", f"{time:.3f}")


def _result_suite(root: ET.Element, result: VerificationResult, name: str, known_failure: bool = False,
                  unexpected_pass: bool = False) -> None:
    suite = ET.SubElement(root, "testsuite", {"name": _clean(name)})
    _properties(suite, result)
    for output in result.outputs:
        label = "output" if len(result.outputs) == 1 else f"output {output.name}"
        for element in output.elements:
            failure = None if element.passed else _element_failure(result, output, element)
            _testcase(suite, name, f"{label} {element.element}", failure, known_failure)
    for layer in result.layers:
        failure = None if layer.passed else _layer_failure(result, layer)
        _testcase(suite, name, f"layer {layer.name}", failure, known_failure)
    if unexpected_pass:
        _testcase(suite, name, 'expect = "fail"', ("passed, but the config expects it to fail",
                                                   "the model is equivariant now: remove expect = \"fail\""), False)
    _count(suite, result.elapsed_s)


def _error_suite(root: ET.Element, name: str, message: str) -> None:
    suite = ET.SubElement(root, "testsuite", {"name": _clean(name)})
    case = ET.SubElement(suite, "testcase", {"classname": _clean(name), "name": "load and run"})
    ET.SubElement(case, "error", {"message": _clean(message), "type": "model-error"}).text = _clean(message)
    _count(suite, 0.0)


def _document(root: ET.Element) -> str:
    suites = root.findall("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key)) for s in suites)))
    root.set("time", f"{sum(float(s.get('time')) for s in suites):.3f}")
    ET.indent(root, "  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def suite_name(model: str, group: str) -> str:
    return f"eqcheck {model} [{group}]"


def render(result: VerificationResult) -> str:
    """One model's JUnit XML."""
    root = ET.Element("testsuites", {"name": "eqcheck"})
    _result_suite(root, result, suite_name(result.run.model, result.run.group))
    return _document(root)


def render_checks(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> str:
    """The JUnit XML of ``eqcheck check``: a suite per listed model; known failures are skipped cases."""
    from eqcheck.gate import ERROR, KNOWN_FAILURE, UNEXPECTED_PASS

    root = ET.Element("testsuites", {"name": "eqcheck"})
    for outcome, status in zip(outcomes, verdict.statuses):
        name = suite_name(outcome.entry.name, outcome.group)
        if status == ERROR:
            _error_suite(root, name, outcome.error or "could not be checked")
        else:
            _result_suite(root, outcome.result, name, known_failure=status == KNOWN_FAILURE,
                          unexpected_pass=status == UNEXPECTED_PASS)
    return _document(root)
