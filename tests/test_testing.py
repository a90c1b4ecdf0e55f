"""eqcheck.testing.assert_equivariant: one function under three names, a pytest failure that lists the worst
elements and the first failing layer, and the result returned when the model passes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eqcheck
import eqcheck.api
import eqcheck.testing
from eqcheck.report.text import failure_message

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def test_one_function_under_three_names() -> None:
    assert eqcheck.assert_equivariant is eqcheck.api.assert_equivariant is eqcheck.testing.assert_equivariant


def test_passing_model_returns_its_result(sample) -> None:
    result = eqcheck.testing.assert_equivariant(sample("p4cnn"), "p4", per_layer=False, seed=1)
    assert result.passed and result.run.seed == 1 and result.output.max_rel_error < 1e-5


def test_failing_model_raises_with_the_worst_elements_and_the_first_failing_layer(sample) -> None:
    with pytest.raises(AssertionError) as error:
        eqcheck.testing.assert_equivariant(sample("z2cnn"), "p4")
    message = str(error.value)
    lines = message.splitlines()
    assert lines[0].startswith("FAIL  ") and "is not equivariant to p4: 3 of 4 elements fail" in lines[0]
    worst = [line.split()[0] for line in lines if line.endswith("FAIL") and line.startswith("  ")]
    assert sorted(worst) == ["rot180", "rot270", "rot90"]
    assert "first failing layer: /conv1/Conv" in lines
    assert message == failure_message(eqcheck.verify(sample("z2cnn"), "p4"))


def test_options_reach_verify(monkeypatch, sample) -> None:
    seen, real_verify = {}, eqcheck.api.verify

    def fake_verify(model, group, **options):
        seen.update(model=model, group=group, **options)
        return real_verify(sample("p4cnn"), "p4", per_layer=False)

    monkeypatch.setattr(eqcheck.api, "verify", fake_verify)
    eqcheck.assert_equivariant("my.onnx", "p4m", tol=1e-3, input_shape=(2, 1, 8, 8))
    assert seen == {"model": "my.onnx", "group": "p4m", "tol": 1e-3, "input_shape": (2, 1, 8, 8)}


def test_pytest_shows_a_readable_failure(tmp_path) -> None:
    test_file = tmp_path / "test_model.py"
    test_file.write_text(textwrap.dedent(f"""
        from eqcheck.testing import assert_equivariant

        def test_plain_cnn():
            assert_equivariant({str(SAMPLES / 'z2cnn.onnx')!r}, "p4")
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    shown = [line[1:].strip() for line in run.stdout.splitlines() if line.startswith("E ")]
    assert shown[0].startswith("AssertionError: FAIL ") and "is not equivariant to p4" in shown[0]
    assert "first failing layer: /conv1/Conv" in shown
    assert any(line.startswith("rot180") and line.endswith("FAIL") for line in shown)
    assert "eqcheck/testing.py" not in run.stdout  # the helper's own frame is hidden
