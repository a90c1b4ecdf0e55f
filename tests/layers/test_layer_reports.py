"""The per-layer table in the terminal, the layers in JSON, and the command-line options."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

import eqcheck
from eqcheck.cli import main
from eqcheck.errors import EXIT_NOT_EQUIVARIANT, EXIT_USAGE
from eqcheck.report import terminal
from eqcheck.report.json_report import dumps, from_dict, to_dict

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
BROKEN = "/conv4_broken_plain/plain_conv2d/Conv"


@pytest.fixture(scope="module")
def broken():
    return eqcheck.verify(SAMPLES / "p4cnn_broken.onnx", "p4")


def test_terminal_shows_every_layer_and_marks_the_first_failing_one(broken) -> None:
    stream = io.StringIO()
    terminal.render(broken, Console(file=stream, width=200, highlight=False, color_system=None))
    text = stream.getvalue()
    lines = [line for line in text.splitlines() if line.strip().startswith(BROKEN)]
    assert len(lines) == 1 and "FAIL <- first" in lines[0] and "1.44e+00" in lines[0]
    assert "/bn4/BatchNormalization" in text and "regular:field-major (kept)" in text
    assert "why: " + BROKEN in text


def test_json_lists_the_layers_in_execution_order_and_reads_back(broken) -> None:
    data = json.loads(dumps(broken))
    assert data["first_failing_layer"] == BROKEN
    first = data["layers"][0]
    assert set(first) >= {"name", "tensor", "op", "shape", "representation", "max_rel_error", "local_rel_error",
                          "passed", "representation_source", "representation_margin", "cumulative_passed"}
    assert first["name"] == "/conv1/Conv" and first["shape"] == [2, 40, 26, 26] and first["passed"] is True
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in broken.layers]
    back = from_dict(to_dict(broken))
    assert back.layers == broken.layers and back.first_failing_layer == BROKEN


def test_command_line_options(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    path = tmp_path / "r.json"
    code = main(["verify", str(SAMPLES / "p4cnn_broken.onnx"), "-g", "p4", "--no-per-layer", "-q", "--json", str(path)])
    assert code == EXIT_NOT_EQUIVARIANT
    data = json.loads(path.read_text())
    assert data["layers"] == [] and data["first_failing_layer"] is None
    code = main(["verify", str(SAMPLES / "p4cnn_broken.onnx"), "-g", "p4", "-q", "--json", str(path),
                 "--layer-type", "/conv4_broken_plain/*Conv=regular:field-major"])
    assert code == EXIT_NOT_EQUIVARIANT
    layer = next(x for x in json.loads(path.read_text())["layers"] if x["name"] == BROKEN)
    assert layer["representation_source"] == "given"
    capsys.readouterr()
    code = main(["verify", str(SAMPLES / "p4cnn_broken.onnx"), "-g", "p4", "--layer-type", "nothing=image"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.strip() == "eqcheck: error: --layer-type names no layer: 'nothing'"
