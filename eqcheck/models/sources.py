"""The files a check reads, found without importing or loading anything: the model file (and an ONNX
model's external data), a factory's source file, inputs, weights. Reports may never overwrite them."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from eqcheck.models.loader import looks_like_python_spec
from eqcheck.report.targets import ReadFile, onnx_external_data


def module_source(module: str) -> Path | None:
    """Where ``import module`` would find its source, looked up on ``sys.path`` (the working folder first)
    without importing a package on the way."""
    parts = module.split(".")
    for entry in ["", *sys.path]:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def model_reads(model: object, report_paths: Iterable[str] = ()) -> list[ReadFile]:
    """The files the model spec ``model`` reads; for an ONNX file, those of ``report_paths`` that it may
    name as external data."""
    if not isinstance(model, (str, Path)):
        return []
    text = str(model)
    if looks_like_python_spec(text):
        target = text.rpartition(":")[0]
        source = Path(target) if target.endswith(".py") else module_source(target)
        return [ReadFile(source, "the model's source file")] if source is not None else []
    path = Path(text)
    reads = [ReadFile(path, "the model")]
    if path.is_file() and path.suffix == ".onnx":
        reads += onnx_external_data(path, report_paths)
    return reads


def check_reads(model: object, inputs: object = None, weights: object = None,
                report_paths: Iterable[str] = ()) -> list[ReadFile]:
    """Every file one model's check reads."""
    reads = model_reads(model, report_paths)
    if isinstance(inputs, (str, Path)):
        reads.append(ReadFile(Path(inputs), "the input file"))
    if isinstance(weights, (str, Path)):
        reads.append(ReadFile(Path(weights), "the weights file"))
    return reads
