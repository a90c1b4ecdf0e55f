"""Rebuild every sample model's ONNX file deterministically (legacy exporter, opset 17, weights inside).

Run ``python sample_models/build.py [OUT_DIR]`` from anywhere; default output is this folder.
The broken layer of p4cnn_broken is its module ``conv4_broken_plain`` (a plain ``nn.Conv2d`` named
``plain_conv2d`` between two reshapes): its ONNX nodes are named ``/conv4_broken_plain/...``, the
convolution itself ``/conv4_broken_plain/plain_conv2d/Conv``.
"""
from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch

SAMPLE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SAMPLE_DIR.parent
OPSET_VERSION = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def load_models_module() -> ModuleType:
    """Load ``sample_models/models.py`` by file path (the way the tool loads a model spec)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    spec = importlib.util.spec_from_file_location("eqcheck_sample_models", SAMPLE_DIR / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_model(model: torch.nn.Module, path: Path) -> None:
    """Export one model with the legacy exporter, a dynamic batch axis and its weights in the file."""
    example = torch.randn(model.example_input_shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET_VERSION,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
            external_data=False,
        )


def build_all(out_dir: str | Path = SAMPLE_DIR) -> dict[str, Path]:
    """Write ``<name>.onnx`` for every factory in models.py into ``out_dir``; return name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = load_models_module()
    written: dict[str, Path] = {}
    for name, factory in models.MODEL_FACTORIES.items():
        path = out_dir / f"{name}.onnx"
        with torch.no_grad():
            export_model(factory(), path)
        written[name] = path
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_DIR
    for model_name, model_path in build_all(target).items():
        print(f"{model_path}  {model_path.stat().st_size} bytes")
