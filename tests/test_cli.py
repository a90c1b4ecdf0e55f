"""The command line: exit codes, one clear error line, the quiet and JSON outputs, colours."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from eqcheck.cli import main
from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_MODEL, EXIT_NOT_EQUIVARIANT, EXIT_USAGE

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _plain_terminal(plain_terminal) -> None:
    """Every test here reads the output as a CI log would (tests/conftest.py: plain_terminal)."""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("eqcheck: error: ")
    assert "Traceback" not in err


def test_readme_command_passes(capsys, sample) -> None:
    code, out, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4")
    assert code == EXIT_EQUIVARIANT
    assert err == ""
    for element in ("rot90", "rot180", "rot270"):
        assert element in out
    verdict = [line for line in out.splitlines() if line.startswith("PASS")]
    assert len(verdict) == 1 and "is equivariant to p4" in verdict[0] and "1.00e-05" in verdict[0]
    assert float(re.search(r"max rel error ([0-9.e+-]+)", verdict[0]).group(1)) < 1e-5


def test_plain_cnn_is_not_equivariant(capsys, sample) -> None:
    code, out, _ = run(capsys, "verify", sample("z2cnn"), "--group", "p4")
    assert code == EXIT_NOT_EQUIVARIANT
    assert re.search(r"^FAIL .* is not equivariant to p4: 3 of 4 elements fail", out, re.M)


def test_installed_script_gives_the_exit_codes(eqcheck_script) -> None:
    passed = subprocess.run([eqcheck_script, "verify", "sample_models/p4cnn.onnx", "--group", "p4"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert passed.returncode == 0, passed.stderr
    assert "PASS" in passed.stdout and passed.stderr == ""
    failed = subprocess.run([eqcheck_script, "verify", "sample_models/z2cnn.onnx", "--group", "p4", "-q"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and failed.stdout.startswith("FAIL")
    missing = subprocess.run([eqcheck_script, "verify", "no/such/model.onnx", "--group", "p4"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 3 and missing.stdout == ""
    assert_one_error_line(missing.stderr)


def test_model_that_fails_inside_onnxruntime_gives_one_line(tmp_path, eqcheck_script) -> None:
    """onnxruntime logs its own ERROR lines to the process's stderr unless told not to."""
    import numpy as np
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 3, 3], np.zeros(54, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"])], "channels_mismatch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 1, 9, 9])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], initializer=[weight])
    path = tmp_path / "mismatch.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    done = subprocess.run([eqcheck_script, "verify", str(path), "--group", "p4"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_MODEL
    assert_one_error_line(done.stderr)
    assert "could not run" in done.stderr and "\x1b" not in done.stderr


@pytest.mark.parametrize("case, args, expected_code, expected_text", [
    ("missing file", ["verify", "{folder}/absent.onnx", "--group", "p4"], EXIT_MODEL, "not found"),
    ("not a model", ["verify", "{folder}/factories.py", "--group", "p4"], EXIT_MODEL, "not a PyTorch archive"),
    ("truncated onnx", ["verify", "{truncated_onnx}", "--group", "p4"], EXIT_MODEL, "could not load ONNX"),
    ("garbage .pt", ["verify", "{garbage_pt}", "--group", "p4"], EXIT_MODEL, "not a PyTorch archive"),
    ("unknown group", ["verify", "{onnx}", "--group", "p5"], EXIT_USAGE, "unknown group 'p5'"),
    ("malformed shape", ["verify", "{onnx}", "--group", "p4", "--input-shape", "2,one,9,9"], EXIT_USAGE,
     "malformed shape"),
    ("wrong rank", ["verify", "{onnx}", "--group", "p4", "--input-shape", "2,1,9"], EXIT_USAGE, "rank 4"),
    ("not square", ["verify", "{factories}:plain_conv", "--group", "p4", "--input-shape", "1,1,9,11"], EXIT_USAGE,
     "square"),
    ("unknown option", ["verify", "{onnx}", "--group", "p4", "--bogus"], EXIT_USAGE, "--bogus"),
    ("missing group", ["verify", "{onnx}"], EXIT_USAGE, "--group"),
    ("factory file missing", ["verify", "{folder}/nowhere.py:build", "--group", "p4"], EXIT_MODEL, "not found"),
    ("shape the torch model rejects", ["verify", "{factories}:WidthNine", "--group", "p4", "--input-shape",
                                       "1,1,11,11"], EXIT_MODEL, "expected width 9, got 11"),
    ("shape the onnx model rejects", ["verify", "{onnx_static}", "--group", "p4", "--input-shape", "1,1,11,11"],
     EXIT_MODEL, "Expected: 9"),
    ("weights for an onnx file", ["verify", "{onnx}", "--group", "p4", "--weights", "{state_dict}"], EXIT_USAGE,
     "--weights"),
    ("missing input file", ["verify", "{onnx}", "--group", "p4", "--input", "{folder}/none.npz"], EXIT_USAGE,
     "input file not found"),
    ("input file of the wrong rank", ["verify", "{onnx}", "--group", "p4", "--input", "{rank3_npy}"], EXIT_USAGE,
     "rank 4"),
    ("input file that is no array", ["verify", "{onnx}", "--group", "p4", "--input", "{onnx}"], EXIT_USAGE,
     "neither .npy nor .npz"),
    ("perm on an image model's pixels", ["verify", "{onnx}", "--group", "perm:axis=7"], EXIT_USAGE, "axis 7"),
])
def test_bad_input_gives_one_error_line(capsys, tmp_path, exported, case, args, expected_code,
                                       expected_text) -> None:
    import numpy as np

    np.save(tmp_path / "rank3.npy", np.zeros((2, 9, 9), np.float32))
    paths = {name: str(value) for name, value in vars(exported).items()} | {"rank3_npy": tmp_path / "rank3.npy"}
    code, out, err = run(capsys, *(a.format(**paths) for a in args))
    assert code == expected_code, (case, err)
    assert_one_error_line(err)
    assert expected_text in err, (case, err)
    assert out == ""


def test_quiet_prints_the_verdict_line_only(capsys, sample) -> None:
    code, out, err = run(capsys, "verify", sample("z2cnn"), "--group", "p4", "-q")
    assert code == EXIT_NOT_EQUIVARIANT and err == ""
    assert out.splitlines() == [out.strip()]
    assert out.startswith("FAIL ") and "3 of 4 elements fail" in out and "rot90" not in out


def test_quiet_verdict_is_one_line_at_the_default_width(capsys, monkeypatch, sample) -> None:
    monkeypatch.delenv("COLUMNS")
    code, out, _ = run(capsys, "verify", sample("z2cnn"), "--group", "p4", "-q")
    assert code == EXIT_NOT_EQUIVARIANT
    assert len(out.splitlines()) == 1, out


def test_json_report_file(capsys, tmp_path, sample) -> None:
    path = tmp_path / "report.json"
    code, out, _ = run(capsys, "verify", sample("z2cnn"), "--group", "p4", "-q", "--json", path)
    assert code == EXIT_NOT_EQUIVARIANT and out.startswith("FAIL")
    data = json.loads(path.read_text())
    assert data["format_version"] == 2
    assert data["passed"] is False and data["group"] == "p4" and data["tolerance"] == 1e-5
    output = data["outputs"][0]
    assert output["representation"] == "invariant"
    elements = output["elements"]
    assert [e["element"] for e in elements] == ["e", "rot90", "rot180", "rot270"]
    assert output["max_rel_error"] == max(e["rel_error"] for e in elements) > 0.5
    assert elements[0]["rel_error"] == 0.0 and elements[0]["max_abs_error"] == 0.0
    assert all(e["max_abs_error"] > 0 for e in elements[1:])
    layer_keys = {"name", "tensor", "op", "shape", "representation", "max_rel_error", "local_rel_error", "passed"}
    assert data["layers"] and all(layer_keys <= set(layer) for layer in data["layers"])
    assert data["first_failing_layer"] == data["layers"][0]["name"]  # a plain CNN breaks at its first conv
    assert data["run"]["command"].startswith("eqcheck verify ") and "z2cnn.onnx" in data["run"]["command"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_json_to_stdout_is_parseable(capsys, sample) -> None:
    code, out, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4", "--json", "-")
    assert code == EXIT_EQUIVARIANT
    data = json.loads(out)  # the terminal report went to stderr
    assert data["passed"] is True and data["outputs"][0]["max_rel_error"] < 1e-5
    assert "PASS" in err


def test_json_write_to_a_missing_folder_is_a_usage_error(capsys, tmp_path, sample) -> None:
    target = tmp_path / "no_such_folder" / "report.json"
    code, _, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4", "-q", "--json", target)
    assert code == EXIT_USAGE
    assert_one_error_line(err)
    assert "does not exist" in err
    assert not target.parent.exists() and list(tmp_path.iterdir()) == []


def test_json_write_onto_a_folder_is_a_usage_error(capsys, tmp_path, sample) -> None:
    target = tmp_path / "report.json"
    target.mkdir()
    code, _, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4", "-q", "--json", target)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"] and not any(target.iterdir())
    assert code == EXIT_USAGE
    assert_one_error_line(err)


def test_forced_terminal_has_colours(capsys, monkeypatch, sample) -> None:
    """The control for the NO_COLOR test: forcing a terminal does produce escape codes."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    code, out, _ = run(capsys, "verify", sample("z2cnn"), "--group", "p4")
    assert code == EXIT_NOT_EQUIVARIANT
    assert ANSI.search(out)


def test_no_color_without_a_terminal_has_no_escape_codes(capsys, monkeypatch, sample) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = run(capsys, "verify", sample("z2cnn"), "--group", "p4")
    assert code == EXIT_NOT_EQUIVARIANT
    assert "FAIL" in out and not ANSI.search(out + err)


def test_no_color_on_a_terminal_has_no_escape_codes(capsys, monkeypatch, sample) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = run(capsys, "verify", sample("z2cnn"), "--group", "p4")
    assert code == EXIT_NOT_EQUIVARIANT
    assert "FAIL" in out and not ANSI.search(out + err), repr(out[:200])


def test_groups_lists_the_registry(capsys) -> None:
    code, out, _ = run(capsys, "groups")
    assert code == EXIT_EQUIVARIANT
    specs = {re.split(r"[\[: ]", line, maxsplit=1)[0] for line in out.splitlines()}
    assert {"p4", "p4m", "so2", "perm", "translation"} <= specs


def test_no_arguments_prints_the_help_not_an_error(capsys) -> None:
    code, out, err = run(capsys)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("Usage: eqcheck") and "verify" in err and "eqcheck: error" not in err


def test_help_exits_zero(capsys) -> None:
    code, out, _ = run(capsys, "verify", "--help")
    assert code == 0 and "--input-shape" in out and "--json" in out


def test_version(capsys) -> None:
    from eqcheck import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"eqcheck {__version__}"


def test_verify_help_teaches_by_example_and_completion_is_offered() -> None:
    import sys

    helped = subprocess.run([sys.executable, "-m", "eqcheck", "verify", "--help"], capture_output=True, text=True,
                            env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    examples = [line for line in helped.stdout.splitlines() if line.strip().startswith("eqcheck verify ")]
    assert helped.returncode == 0 and "Examples:" in helped.stdout and len(examples) == 3
    assert "regular:field-major" in helped.stdout  # the layouts are listed, whole
    top = subprocess.run([sys.executable, "-m", "eqcheck", "--help"], capture_output=True, text=True)
    assert "--install-completion" in top.stdout and "--show-completion" in top.stdout
    shown = subprocess.run([sys.executable, "-m", "eqcheck", "--show-completion", "bash"], capture_output=True,
                           text=True, env={"SHELL": "/bin/bash", "PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0 and "complete" in shown.stdout


def test_hints_name_the_type_that_fits_and_the_subgroup_that_passes(sample) -> None:
    import eqcheck

    declared = eqcheck.verify(sample("p4_fcn"), "p4", output_type="invariant", per_layer=False)
    (hint,) = [d for d in declared.diagnoses if d.code == "declared-type"]
    assert not declared.passed and "--output-type output=regular:5d" in hint.message
    rotations_only = eqcheck.verify(sample("p4cnn"), "p4m", per_layer=False)
    (subgroup,) = [d for d in rotations_only.diagnoses if d.code == "subgroup-only"]
    assert "--group p4 passes" in subgroup.message
    assert not [d for d in eqcheck.verify(sample("z2cnn"), "p4m", per_layer=False).diagnoses
                if d.code == "subgroup-only"]  # a plain CNN fails the rotations too


def test_did_you_mean_for_groups_types_files_and_the_import_path(capsys, tmp_path, monkeypatch, sample) -> None:
    code, _, err = run(capsys, "verify", sample("p4cnn"), "--group", "p4n")
    assert code == EXIT_USAGE and "did you mean 'p4'?" in err
    code, _, err = run(capsys, "verify", sample("p4_fcn"), "--group", "p4", "--output-type", "field-major")
    assert code == EXIT_USAGE and "did you mean 'regular:field-major'?" in err
    code, _, err = run(capsys, "verify", sample("p4cnn").replace("p4cnn", "p4cn"), "--group", "p4")
    assert code == EXIT_MODEL and "did you mean" in err and "p4cnn.onnx" in err
    torch = pytest.importorskip("torch")
    (tmp_path / "mymodel_for_hint.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mymodel_for_hint

    torch.save(mymodel_for_hint.Net(), tmp_path / "net.pt")
    monkeypatch.syspath_prepend("/nonexistent")  # the module stays importable in this process: drop it
    import sys

    sys.modules.pop("mymodel_for_hint")
    sys.path.remove(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "verify", "net.pt", "--group", "p4", "--unsafe-load", "--input-shape", "2,1,9,9")
    assert code == EXIT_MODEL and f"PYTHONPATH={tmp_path}" in err


def test_a_c4_regular_map_under_so2_is_pointed_to_p4(sample) -> None:
    import eqcheck

    result = eqcheck.verify(sample("p4_fcn"), "so2", per_layer=False)
    (hint,) = [d for d in result.diagnoses if d.code == "not-c4"]
    assert not result.passed and "check it under p4 or c4" in hint.message and "so2 cannot act" in hint.message
