"""The terminal report fits its width: at 80, 100 and 120 columns no line is longer, the first failing
layer's row holds its whole name and both errors on one line, no number is cut at a line end, and the
verdict's tolerance stays whole; longer layer names are shortened from the left."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

import eqcheck
from eqcheck.report.terminal import render, shorten_left

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
NUMBER = re.compile(r"\d\.\d\de[+-]\d\d")


@pytest.fixture(scope="module")
def broken():
    return eqcheck.verify(str(SAMPLES / "p4cnn_broken.onnx"), "p4")


def _lines(result, width: int) -> list[str]:
    console = Console(record=True, width=width, color_system=None, soft_wrap=True)
    render(result, console)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_broken_sample_fits_the_width(broken, width) -> None:
    lines = _lines(broken, width)
    assert max(len(line) for line in lines) <= width
    culprit = broken.first_failing_layer
    layer = next(x for x in broken.layers if x.name == culprit)
    row = [line for line in lines if line.startswith(culprit + " ")]
    assert len(row) == 1 and "FAIL <-" in row[0]
    assert f"{layer.max_rel_error:.2e}" in row[0] and f"{layer.local_rel_error:.2e}" in row[0]
    text = "\n".join(lines)
    assert "(tol 1.00e-05)" in text  # never split between "(tol" and its number
    for line in lines:  # a number at a line's end is whole: its exponent is there
        tail = line.rstrip().split(" ")[-1]
        if tail[:1].isdigit() and "e" in tail:
            assert NUMBER.search(tail), line


def test_long_layer_names_are_shortened_from_the_left_and_the_culprit_never(broken) -> None:
    long = "/encoder/stage_3/block_12/attention/output_projection/Conv"
    layers = tuple(replace(x, name=long + str(i)) if x.name != broken.first_failing_layer else x
                   for i, x in enumerate(broken.layers))
    lines = _lines(replace(broken, layers=layers), 80)
    assert max(len(line) for line in lines) <= 80
    shortened = [line for line in lines if line.startswith("\u2026")]
    assert len(shortened) == len(layers) - 1 and all("Conv" in line.split()[0] for line in shortened)
    assert any(line.startswith(broken.first_failing_layer + " ") for line in lines)
    assert shorten_left("abcdef", 4) == "\u2026def" and shorten_left("abc", 4) == "abc"


def test_a_legend_explains_each_mark_the_table_uses(broken) -> None:
    text = "\n".join(_lines(broken, 120))
    assert "(kept): " in text and "FAIL <- first: the first layer that makes an error" in text
    assert "ok, block:" not in text  # no layer is marked so
