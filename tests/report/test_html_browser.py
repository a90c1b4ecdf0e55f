"""The HTML report in a real browser: headless Chromium lays out the chart and loads nothing besides the
page (skipped where no chromium is installed: apt-get install -y chromium)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import eqcheck
from eqcheck.report.html import render

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "render_html_in_chromium.py"


def _browser():
    spec = importlib.util.spec_from_file_location("render_html_in_chromium", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


browser = _browser()
pytestmark = pytest.mark.skipif(browser.find_chromium() is None, reason="no chromium on PATH")


def test_broken_p4cnn_report_draws_its_chart_and_loads_nothing(sample, tmp_path) -> None:
    result = eqcheck.verify(sample("p4cnn_broken"), "p4")
    page = tmp_path / "report.html"
    page.write_text(render(result), encoding="utf-8")
    measured = browser.open_report(page, tmp_path / "report.png")
    assert browser.problems(measured, failing=True) == []
    assert measured["requests"] == [page.resolve().as_uri()] and measured["resources"] == []
    assert measured["verdict"] == "FAIL"
    assert measured["first_failing"] == f"first failing: {result.first_failing_layer}"
    assert measured["chart_width"] > 1000 and measured["polylines_drawn"] >= 1
    assert measured["points"] == 2 * len(result.layers)
    # one row per testing element (the engine records each layer's error per element) and one for the local error
    elements = len(result.layers[0].element_errors)
    assert elements == len(result.output.elements) == 4
    assert measured["heat_cells_drawn"] == (elements + 1) * len(result.layers)
    shot = (tmp_path / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000


def test_the_check_catches_a_page_that_loads_from_the_network(sample, tmp_path) -> None:
    result = eqcheck.verify(sample("p4cnn"), "p4")
    leaky = render(result).replace("</main>", '<img src="http://192.0.2.1/pixel.png"></main>')
    page = tmp_path / "leaky.html"
    page.write_text(leaky, encoding="utf-8")
    measured = browser.open_report(page)
    assert "http://192.0.2.1/pixel.png" in measured["foreign_requests"]
    assert any("loads something" in problem for problem in browser.problems(measured, failing=False))
