"""torch is an extra: with it hidden (``sys.modules["torch"] = None``, as if not installed), an ONNX model is
checked (per layer too) and never imports it, and a PyTorch model gets one line saying how to install it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
WITHOUT_TORCH = ("import sys; sys.modules['torch'] = None\n"
                 "from eqcheck.cli import main\n"
                 "code = main(sys.argv[1:])\n"
                 "assert sys.modules.get('torch') is None, 'torch was imported'\n"
                 "sys.exit(code)\n")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True, text=True, timeout=300)


def test_an_onnx_model_is_checked_without_torch() -> None:
    done = _run("verify", str(SAMPLES / "p4cnn.onnx"), "--group", "p4", "-q")
    assert done.returncode == 0, done.stderr
    broken = _run("verify", str(SAMPLES / "p4cnn_broken.onnx"), "--group", "p4")
    assert broken.returncode == 1 and "FAIL <-" in broken.stdout  # the per-layer table, still no torch


def test_a_pytorch_model_without_torch_says_how_to_install_it() -> None:
    for model in (f"{SAMPLES / 'models.py'}:p4cnn", str(SAMPLES / "README.md")):
        done = _run("verify", model, "--group", "p4")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 3 and len(lines) == 1, done.stderr
        assert "pip install 'eqcheck[torch]'" in lines[0]
