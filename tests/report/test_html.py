"""The HTML report: one self-contained page, names escaped, the chart marks the tolerance and the first
failing layer; gold files of hand-built results (set EQCHECK_UPDATE_GOLD=1 to rewrite them)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eqcheck.report.html import render
from eqcheck.report.html_chart import LogScale, heat_color, layer_elements
from eqcheck.report.json_report import dumps, from_dict
from eqcheck.report.text import fmt, verdict_line
from eqcheck.result import (
    Candidate, Diagnosis, ElementResult, LayerResult, RunInfo, TensorCheck, VerificationResult,
)

GOLD = Path(__file__).parent / "gold"

#: a version no release has: the gold files must not depend on the installed one
VERSION = "9.9.9.dev0+test"


def _run(model: str, group: str, command: str | None, notes: tuple[str, ...] = ()) -> RunInfo:
    return RunInfo(model=model, model_format="onnx", group=group, inputs={"input": (2, 1, 28, 28)},
                   input_actions={"input": "image"}, input_source="generated", dtype="float32", seed=0,
                   device="cpu", samples=8, forward_passes=1, eqcheck_version=VERSION, command=command,
                   notes=notes)


def _layer(name: str, op: str, cumulative: float, local: float | None, passed: bool = True,
           cumulative_passed: bool = True, source: str = "auto", rep: str = "regular:5d",
           element_errors: tuple[float, ...] = ()) -> LayerResult:
    return LayerResult(name=name, op=op, shape=(2, 10, 4, 8, 8), representation=rep, max_rel_error=cumulative,
                       local_rel_error=local, passed=passed, tensor=f"{name}_output_0", representation_source=source,
                       representation_margin=1e6, cumulative_passed=cumulative_passed,
                       element_errors=element_errors)


def broken() -> VerificationResult:
    """p4, rot90..rot270 fail; the third layer (a name with markup in it) makes the error."""
    elements = (ElementResult("e", 0.0, 0.0, True, spread_ratio=0.0),
                ElementResult("rot90", 0.652, 1.6, False, spread_ratio=1.01),
                ElementResult("rot180", 0.673, 1.45, False, spread_ratio=1.04),
                ElementResult("rot270", 0.691, 1.96, False, spread_ratio=1.07))
    bad = '/conv<3>/plain&"conv"/Conv'
    layers = (
        _layer("/conv1/Conv", "Conv", 8.0e-8, 8.0e-8, element_errors=(0.0, 8.0e-8, 7.5e-8, 7.9e-8)),
        _layer("/relu1/Relu", "Relu", 9.0e-8, 9.0e-8, element_errors=(0.0, 9.0e-8, 8.5e-8, 8.9e-8)),
        _layer(bad, "Conv", 1.44, 1.44, passed=False, cumulative_passed=False, source="kept",
               element_errors=(0.0, 1.40, 1.44, 1.38)),
        _layer("/bn4/BatchNormalization", "BatchNormalization", 1.49, 0.0, cumulative_passed=False,
               element_errors=(0.0, 1.45, 1.49, 1.41)),
        _layer("/conv5/Conv", "Conv", 1.22, 2.0e-7, cumulative_passed=False,
               element_errors=(0.0, 1.20, 1.22, 1.19)),
        _layer("/group_pool/ReduceMax", "ReduceMax", 0.691, 4.8e-7, cumulative_passed=False, rep="invariant",
               element_errors=(0.0, 0.652, 0.673, 0.691)),
    )
    output = TensorCheck(name="output", shape=(2, 10), representation="invariant", elements=elements,
                         max_rel_error=0.691, spread=0.646, passed=False, representation_source="auto",
                         candidates=(Candidate("invariant", 0.691),))
    cause = Diagnosis("plain-layer", f"{bad} (Conv) is a plain layer between group layers: <not tied> by p4",
                      layer=bad)
    return VerificationResult(
        run=_run("models/a&b <broken>.onnx", "p4",
                 "eqcheck verify 'models/a&b <broken>.onnx' --group p4 --json out.json"),
        tolerance=1e-5, approximate_tolerance=5e-2, outputs=(output,), passed=False, non_determinism=0.0,
        diagnoses=(cause,), layers=layers, first_failing_layer=bad, elapsed_s=0.25)


def passing() -> VerificationResult:
    """so2 with interpolated elements (floors), a block of layers with no action, zeros, notes."""
    elements = (ElementResult("e", 0.0, 0.0, True, spread_ratio=0.0),
                ElementResult("rot90", 3.2e-7, 4.2e-7, True, spread_ratio=1.5e-6),
                ElementResult("rot20.8197", 3.3e-3, 4.0e-3, True, exact=False, interpolation_floor=8.2e-3,
                              spread_ratio=1.6e-2))
    layers = (
        _layer("/mask/Mul", "Mul", 0.0, 0.0, rep="image"),
        _layer("/conv1/Conv", "Conv", 1.36, 1.36, source="block", rep="none", cumulative_passed=False),
        _layer("/act1/Relu", "Relu", 1.10, 1.10, source="block", rep="none", cumulative_passed=False),
        _layer("/conv3/Conv", "Conv", 2.0e-7, 2.0e-7, rep="image"),
        _layer("/fc/Gemm", "Gemm", 3.3e-7, 3.3e-7, rep="invariant"),
    )
    output = TensorCheck(name="output", shape=(2, 10), representation="invariant", elements=elements,
                         max_rel_error=3.3e-3, spread=0.21, passed=True, representation_source="auto")
    notes = ("per-layer errors use the 2 elements that act exactly on the grid",)
    return VerificationResult(
        run=_run("zoo/so2_inv.onnx", "so2", "eqcheck verify zoo/so2_inv.onnx --group so2", notes),
        tolerance=1e-5, approximate_tolerance=5e-2, outputs=(output,), passed=True, non_determinism=0.0,
        diagnoses=(Diagnosis("interpolation", "1 angle(s) off the right angles need interpolation", "note"),),
        layers=layers, elapsed_s=0.5)


def nonfinite() -> VerificationResult:
    """NaN and infinity in the output and the layers, a layer with no local error, no command recorded."""
    elements = (ElementResult("e", 0.0, 0.0, True),
                ElementResult("perm1", math.nan, math.nan, False, nonfinite=True),
                ElementResult("perm2", math.inf, math.inf, False, nonfinite=True))
    layers = (_layer("/set1/MatMul", "MatMul", 1e-7, None, rep="set"),
              _layer("/set1/Log", "Log", math.nan, math.nan, passed=False, cumulative_passed=False, rep="set"),
              _layer("/set1/Div", "Div", math.inf, 0.0, cumulative_passed=False, rep="set"))
    output = TensorCheck(name="output", shape=(2, 10, 4), representation="set", elements=elements,
                         max_rel_error=math.nan, spread=1.0, passed=False)
    return VerificationResult(run=_run("deepsets_nan.onnx", "perm", None), tolerance=1e-5,
                              approximate_tolerance=5e-2, outputs=(output,), passed=False, non_determinism=0.0,
                              layers=layers, first_failing_layer="/set1/Log", elapsed_s=0.1)


@pytest.fixture
def broken_result() -> VerificationResult:
    return broken()


@pytest.fixture
def passing_result() -> VerificationResult:
    return passing()


@pytest.fixture
def nonfinite_result() -> VerificationResult:
    return nonfinite()


def scrub(page: str, version: str) -> str:
    """The version and anything that looks like a timestamp become placeholders."""
    page = page.replace(version, "[VERSION]")
    return re.sub(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", "[TIMESTAMP]", page)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]


@pytest.mark.parametrize("name", ["broken", "passing", "nonfinite"])
def test_matches_gold(name, request) -> None:
    result = request.getfixturevalue(f"{name}_result")
    page = scrub(render(result), result.run.eqcheck_version)
    gold = GOLD / f"html_{name}.html"
    if os.environ.get("EQCHECK_UPDATE_GOLD"):
        gold.write_text(page, encoding="utf-8")
    assert "[VERSION]" in page and result.run.eqcheck_version not in page
    assert page == gold.read_text(encoding="utf-8"), f"{gold} differs: EQCHECK_UPDATE_GOLD=1 rewrites it"


def test_rendering_is_deterministic(broken_result) -> None:
    assert render(broken_result) == render(broken_result)


@pytest.mark.parametrize("name", ["broken", "passing", "nonfinite"])
def test_self_contained(name, request) -> None:
    page = render(request.getfixturevalue(f"{name}_result"))
    tags = Tags(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert not [t for t, _ in tags.tags if t in ("link", "script", "img", "iframe", "object", "embed")]
    assert not [a for _, a in tags.tags if "src" in a or "href" in a]
    assert "@import" not in page and "url(" not in page
    assert len(page) < 100_000


def test_verdict_and_numbers_come_from_the_result(broken_result) -> None:
    page = render(broken_result)
    tags = Tags(page)
    text = "".join(tags.text)
    assert tags.find("div", class_="verdict fail") and "FAIL" in text
    assert verdict_line(broken_result).split("  ", 1)[1] in text
    for element in broken_result.output.elements:
        assert fmt(element.rel_error) in text and fmt(element.max_abs_error) in text
    assert "3 of 4" in text and fmt(broken_result.tolerance) in text
    # the card shows the result's own number, even one that disagrees with its elements: nothing is recomputed
    odd = dataclasses.replace(broken_result, outputs=(dataclasses.replace(broken_result.output, max_rel_error=0.123),))
    assert "1.23e-01" in render(odd) and "1.23e-01" not in page


def test_passing_verdict(passing_result) -> None:
    tags = Tags(render(passing_result))
    text = "".join(tags.text)
    assert tags.find("div", class_="verdict pass") and "PASS" in text
    assert "interp. floor" in text and "8.20e-03" in text and "rot20.8197 ~" in text
    assert "per-layer errors use the 2 elements" in text and "ok, block" in text
    assert not tags.find("rect", class_="first-failing")


def test_every_name_is_escaped(broken_result) -> None:
    page = render(broken_result)
    assert "<broken>" not in page and "<3>" not in page and "<not tied>" not in page
    assert "a&amp;b &lt;broken&gt;.onnx" in page
    assert "/conv&lt;3&gt;/plain&amp;&quot;conv&quot;/Conv" in page
    tags = Tags(page)  # parsing gives the names back exactly
    assert "/conv<3>/plain&\"conv\"/Conv" in "".join(tags.text)


def test_command_that_reproduces_the_run(broken_result, nonfinite_result) -> None:
    page = render(broken_result)
    match = re.search(r'<pre id="command">(.*?)</pre>', page, re.S)
    assert match and match.group(1) == ("eqcheck verify &#x27;models/a&amp;b &lt;broken&gt;.onnx&#x27; --group p4 "
                                        "--json out.json")
    assert "not recorded" in render(nonfinite_result)


def test_chart_marks_tolerance_and_first_failing_layer(broken_result) -> None:
    page = render(broken_result)
    tags = Tags(page)
    assert tags.find("svg", id="layer-chart") and tags.find("svg", id="layer-heatmap")
    assert len(tags.find("line", class_="tolerance")) == 1 and "tolerance 1.00e-05" in page
    assert len(tags.find("polyline", class_="series")) == 1  # the cumulative error, unbroken
    assert len(tags.find("rect", class_="point local")) >= 1  # local errors: a marker per layer, no line
    chart = page[page.index('id="layer-chart"'):page.index("</svg>")]
    assert "first failing: /conv&lt;3&gt;/plain&amp;&quot;conv&quot;/Conv" in chart
    band = re.search(r'<rect class="first-failing" x="([\d.]+)" y="\d+" width="([\d.]+)"', chart)
    x, width = float(band.group(1)), float(band.group(2))
    assert x == pytest.approx(120 + 2 * width, abs=0.2)  # the third of six columns
    first_rows = tags.find("tr", class_="first")
    assert len(first_rows) == 1 and "FAIL &larr; first" in page
    assert page.count('<rect class="point local"') == 6 and page.count('<circle class="point"') == 6


def test_heat_map_is_layers_by_elements_when_the_result_has_them(broken_result) -> None:
    tags = Tags(render(broken_result))
    assert len(tags.find("rect", class_="cell")) == 6 * (4 + 1)  # four elements and the local row
    assert [name for name, _ in layer_elements(broken_result)] == ["e", "rot90", "rot180", "rot270"]
    assert "Layers × elements" in "".join(tags.text)


def test_heat_map_falls_back_to_cumulative_and_local(passing_result) -> None:
    tags = Tags(render(passing_result))
    text = "".join(tags.text)
    assert len(tags.find("rect", class_="cell")) == 5 * 2 and "cumulative and local error" in text
    assert "inside an equivariant block" in text


def test_layer_elements_match_exact_elements_when_interpolated_ones_are_skipped(passing_result) -> None:
    layers = tuple(dataclasses.replace(layer, element_errors=(0.0, 1e-7)) for layer in passing_result.layers)
    result = dataclasses.replace(passing_result, layers=layers)
    assert layer_elements(result) == [("e", 1e-5), ("rot90", 1e-5)]
    assert len(Tags(render(result)).find("rect", class_="cell")) == 5 * 3


def test_zero_nan_and_missing_values_are_clamped(nonfinite_result, passing_result) -> None:
    page = render(nonfinite_result)
    chart = page[page.index('id="layer-chart"'):page.index("</svg>")]
    assert ">nan/inf</text>" in chart and ">0</text>" in chart  # bands of their own on the log axis
    assert "nan" in chart and "inf" in chart and "NaN/Inf" in page
    assert "-</td>" in page  # the layer with no local error
    for number in re.findall(r'\s(?:cx|cy|x|y|width|height)="([^"]+)"', chart):
        assert math.isfinite(float(number))
    assert ">0</text>" in render(passing_result)


def test_log_scale() -> None:
    scale = LogScale.around([0.0, 1e-7, 1.4, math.nan, None], 1e-5)
    assert (scale.lo, scale.hi) == (-7, 1)
    assert scale.fraction(0.0) == 0.0 and scale.fraction(math.nan) == 1.0 and scale.fraction(math.inf) == 1.0
    assert scale.fraction(1e-3) == pytest.approx(0.5) and scale.fraction(1e-30) == 0.0
    assert LogScale.around([1e-40, 1.0], 1e-5) == LogScale(-14, 0)  # at most 14 decades


def test_heat_colors_go_from_green_below_the_tolerance_to_red_above() -> None:
    def rgb(color: str) -> tuple[int, int, int]:
        return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    below, at, above, far = (rgb(heat_color(v, 1e-5)) for v in (1e-8, 1e-5, 1e-3, 10.0))
    assert below[1] > below[0] and at[1] > at[0]  # green
    assert above[0] > above[2] and far[0] > far[1] and far[0] < above[0]  # red, darker further up
    assert heat_color(0.0, 1e-5) == heat_color(1e-30, 1e-5) and heat_color(None, 1e-5) == "#eceff1"


def test_no_layers(broken_result) -> None:
    page = render(dataclasses.replace(broken_result, layers=(), first_failing_layer=None))
    assert "holds no per-layer analysis" in page and "layer-chart" not in page


def test_many_layers_thin_the_labels(passing_result) -> None:
    layers = tuple(dataclasses.replace(passing_result.layers[3], name=f"/block{i}/conv/Conv", max_rel_error=1e-7 * i)
                   for i in range(1, 301))
    page = render(dataclasses.replace(passing_result, layers=layers))
    heat = page[page.index('id="layer-heatmap"'):]
    labels = re.findall(r'rotate\(-45\)">(/block\d+/conv/Conv)</text>', heat)
    assert 10 < len(labels) < 150 and len(page) < 600_000


def test_renders_the_same_from_saved_json(broken_result, nonfinite_result) -> None:
    again = from_dict(json.loads(dumps(broken_result)))
    assert again.layers[2].element_errors == (0.0, 1.40, 1.44, 1.38)
    assert render(again) == render(broken_result)
    assert "FAIL" in render(from_dict(json.loads(dumps(nonfinite_result))))  # null in place of NaN renders too
    data = json.loads(dumps(broken_result))
    for layer in data["layers"]:
        del layer["element_errors"]  # a result saved before the field existed
    assert "cumulative and local error" in render(from_dict(data))


def test_nan_counts_as_infinite_in_the_verdict_whatever_the_element_order() -> None:
    from dataclasses import replace

    from eqcheck.report.text import verdict_line

    result = nonfinite()
    e, nan_element, _ = result.output.elements
    for elements in ((nan_element, e), (e, nan_element)):  # max() over [nan, 0.0] alone would give nan
        again = replace(result, outputs=(replace(result.output, elements=elements),))
        assert "max rel error inf" in verdict_line(again)
