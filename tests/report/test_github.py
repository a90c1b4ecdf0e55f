"""GitHub Actions output on hand-built results: escaped ``::error`` lines for a failing model and its first
failing layer, the Markdown summary (gold files), and the command line writing both only inside Actions."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from eqcheck.checks import ModelOutcome
from eqcheck.cli import main
from eqcheck.config import ModelEntry
from eqcheck.gate import gate_checks
from eqcheck.report import github
from eqcheck.result import Diagnosis, ElementResult, LayerResult, RunInfo, TensorCheck, VerificationResult

GOLD = Path(__file__).parent / "gold"


def assert_gold(name: str, text: str) -> None:
    path = GOLD / name
    if os.environ.get("EQCHECK_UPDATE_GOLD"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (EQCHECK_UPDATE_GOLD=1 rewrites it)"


def hand_built(passed: bool = False, model: str = "models/broken.onnx") -> VerificationResult:
    """A p4 check whose rot90 fails (unless ``passed``), made at layer /Conv_2."""
    elements = (ElementResult("e", 0.0, 0.0, True, spread_ratio=0.0),
                ElementResult("rot90", 2e-6 if passed else 0.8, 1.6, passed, spread_ratio=0.9),
                ElementResult("rot45", 0.01, 0.02, True, exact=False, interpolation_floor=0.004, spread_ratio=0.01))
    output = TensorCheck(name="logits", shape=(2, 10), representation="invariant", elements=elements,
                         max_rel_error=2e-6 if passed else 0.8, spread=0.9, passed=passed)
    layers = (LayerResult("/Conv_1", "Conv", (2, 8, 6, 6), "image", 1e-7, 1e-7, True),
              LayerResult("/Conv_2", "Conv", (2, 8, 4, 4), "image", 0.5, 0.5, passed))
    run = RunInfo(model=model, model_format="onnx", group="p4", inputs={"input": (2, 1, 8, 8)},
                  input_actions={"input": "image"}, input_source="generated", dtype="float32", seed=0,
                  device="cpu", samples=8, forward_passes=1, eqcheck_version="9.9.9")
    diagnoses = () if passed else (
        Diagnosis("plain-layer", "/Conv_2 (Conv) is a plain layer: weights not tied by p4", layer="/Conv_2"),
        Diagnosis("small-spread", "the spread is small", severity="note"))
    return VerificationResult(run=run, tolerance=1e-5, approximate_tolerance=0.05, outputs=(output,), passed=passed,
                              non_determinism=0.0, diagnoses=diagnoses, layers=layers,
                              first_failing_layer=None if passed else "/Conv_2", elapsed_s=0.1)


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert github.escape_data("50% a\nb\r") == "50%25 a%0Ab%0D"
    assert github.escape_property("a: b, c%") == "a%3A b%2C c%25"
    assert github.command("error", "t: x", "m: y", "z") == "::error title=t%3A x::m: y%0Az"
    # a line break inside one line's text came from data: shown escaped, never a line of the message
    assert github.command("error", "t\n::x", "a\n::set-env name=X::1") == \
        "::error title=t\\n%3A%3Ax::a\\n::set-env name=X::1"


def test_passing_model_has_no_annotation() -> None:
    assert github.annotations(hand_built(passed=True)) == []


def test_failing_model_annotates_its_verdict_and_first_failing_layer() -> None:
    lines = github.annotations(hand_built())
    assert len(lines) == 2 and all(line.startswith("::error title=eqcheck%3A ") for line in lines)
    assert "\n" not in "".join(lines)
    verdict, layer = lines
    assert verdict.startswith("::error title=eqcheck%3A models/broken.onnx is not equivariant to p4::FAIL  ")
    assert "1 of 3 elements fail" in verdict
    assert layer.startswith("::error title=eqcheck%3A first failing layer of models/broken.onnx::/Conv_2 (Conv)")
    assert "local rel error 5.00e-01 > tol 1.00e-05%0Awhy: /Conv_2 (Conv) is a plain layer" in layer
    assert "spread is small" not in layer  # notes are not causes
    assert_gold("eqcheck_github_annotations.txt", "\n".join(lines) + "\n")


def test_step_summary_is_markdown_with_the_elements_and_the_first_failing_layer() -> None:
    text = github.step_summary(hand_built(model="a|b.onnx"))
    lines = text.splitlines()
    assert lines[0] == "### eqcheck: FAIL <code>a&#124;b.onnx</code> under <code>p4</code>"
    assert "| rot90 | 8.00e-01 | 1.60e+00 | 9.00e-01 | **FAIL** |" in lines
    assert "| rot45 ~ | 1.00e-02 | 2.00e-02 | 1.00e-02 | ok |" in lines
    assert "First failing layer: <code>/Conv_2</code> (Conv), local rel error 5.00e-01 (tol 1.00e-05)" in lines
    assert any(line.startswith("FAIL  a\\|b.onnx is not equivariant") for line in lines)
    assert text.endswith("\n\n")  # appended summaries stay apart
    assert_gold("eqcheck_github_summary.md", text)


def test_check_annotations_name_each_model_that_broke_the_gate() -> None:
    def outcome(name, result, expect="pass", error=None):
        return ModelOutcome(ModelEntry(name, name, expect=expect), "p4", result, error, 3 if error else 0)

    outcomes = (outcome("good", hand_built(True)), outcome("bad", hand_built()),
                outcome("known", hand_built(), expect="fail"), outcome("fixed", hand_built(True), expect="fail"),
                outcome("gone", None, error="model file not found: gone"))
    verdict = gate_checks(outcomes)
    lines = github.check_annotations(outcomes, verdict)
    titles = [line.split("::")[1] for line in lines]
    assert titles == ["error title=eqcheck%3A bad is not equivariant to p4",
                      "error title=eqcheck%3A first failing layer of bad",
                      "notice title=eqcheck%3A known is a known failure",
                      "error title=eqcheck%3A fixed passed but is expected to fail",
                      "error title=eqcheck%3A gone could not be checked"]
    summary = github.check_step_summary(outcomes, verdict)
    assert "| <code>bad</code> | p4 | invariant | 8.00e-01 | 1.00e-05 | <code>/Conv_2</code> | **FAIL** |" in summary
    assert "| <code>gone</code> | p4 | - | - | - | - | **ERROR**: model file not found: gone |" in summary
    assert_gold("eqcheck_github_check_summary.md", summary)


@pytest.fixture
def actions(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def test_verify_in_actions_prints_annotations_and_appends_the_summary(capsys, sample, actions) -> None:
    assert main(["verify", sample("z2cnn"), "--group", "p4", "-q"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL ")
    assert [line.split("::")[1] for line in out[1:]] == [
        f"error title=eqcheck%3A {sample('z2cnn')} is not equivariant to p4",
        f"error title=eqcheck%3A first failing layer of {sample('z2cnn')}"]
    assert "/conv1/Conv (Conv)" in out[2]
    assert main(["verify", sample("p4cnn"), "--group", "p4", "-q"]) == 0
    assert "::" not in capsys.readouterr().out
    summary = actions.read_text()
    assert summary.startswith("earlier step\n### eqcheck: FAIL ")
    assert summary.count("### eqcheck: ") == 2 and "### eqcheck: PASS " in summary


def test_json_on_stdout_keeps_the_annotations_off_it(capsys, sample, actions) -> None:
    import json

    assert main(["verify", sample("z2cnn"), "--group", "p4", "--no-per-layer", "--json", "-"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is False
    assert "::error title=" in captured.err


def test_outside_actions_nothing_is_written(capsys, sample, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    assert main(["verify", sample("z2cnn"), "--group", "p4", "-q", "--no-per-layer"]) == 1
    assert "::" not in capsys.readouterr().out
    assert not (tmp_path / "summary.md").exists()


def test_unwritable_summary_is_a_warning_not_a_failure(capsys, sample, actions, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "summary.md"))
    assert main(["verify", sample("p4cnn"), "--group", "p4", "-q", "--no-per-layer"]) == 0
    assert "eqcheck: warning: cannot append to $GITHUB_STEP_SUMMARY" in capsys.readouterr().err
