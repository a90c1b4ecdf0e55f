"""``pytest --eqcheck``: every model of [tool.eqcheck] is a test item beside the project's tests; a broken
model fails its item (named, with the verdict and the first failing layer), a known failure is an xfail,
``-k`` selects among them, ``eqcheck = true`` in pytest's ini options turns it on, and without it nothing
is collected."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "models").mkdir()
    for name in ("p4cnn", "z2cnn", "p4cnn_broken"):
        shutil.copy(SAMPLES / f"{name}.onnx", tmp_path / "models" / f"{name}.onnx")
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.eqcheck]
        group = "p4"

        [[tool.eqcheck.models]]
        path = "models/p4cnn.onnx"

        [[tool.eqcheck.models]]
        path = "models/z2cnn.onnx"

        [[tool.eqcheck.models]]
        path = "models/p4cnn_broken.onnx"
        expect = "fail"
    """))
    (tmp_path / "test_project.py").write_text("def test_the_project_s_own_test():\n    assert True\n")
    return tmp_path


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-q", "-rA", *args], cwd=folder, capture_output=True, text=True, timeout=600)


def test_a_broken_model_fails_its_item_and_is_named(project) -> None:
    done = _pytest(project, "--eqcheck")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 2 passed, 1 xfailed" in done.stdout
    assert "FAILED pyproject.toml::eqcheck[models/z2cnn.onnx]" in done.stdout
    assert "first failing layer: /conv1/Conv" in done.stdout and "is not equivariant to p4" in done.stdout
    assert "PASSED pyproject.toml::eqcheck[models/p4cnn.onnx]" in done.stdout


def test_k_selects_among_the_models_and_nothing_is_collected_without_the_option(project) -> None:
    chosen = _pytest(project, "--eqcheck", "-k", "p4cnn and not broken")
    assert chosen.returncode == 0 and "1 passed, 3 deselected" in chosen.stdout and "z2cnn" not in chosen.stdout
    plain = _pytest(project)
    assert plain.returncode == 0 and "1 passed" in plain.stdout and "eqcheck[" not in plain.stdout


def test_the_ini_option_turns_it_on(project) -> None:
    config = project / "pyproject.toml"
    config.write_text(config.read_text() + "\n[tool.pytest.ini_options]\neqcheck = true\n")
    done = _pytest(project)
    assert done.returncode == 1 and "1 failed, 2 passed, 1 xfailed" in done.stdout
