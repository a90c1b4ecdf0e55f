"""The files a check reads, found without importing or loading anything: the model file (and an ONNX
model's external data), a factory's source file, inputs, weights. Reports may never overwrite them."""
from __future__ import annotations

import sys
from collections.abc import Iterator
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


def _python_sources(source: Path) -> list[Path]:
    """The files a Python spec's import may read: every ``.py`` beside its file (the modules it imports
    from there), and the ``__init__.py`` files of the packages above it."""
    folder = source.resolve().parent
    files = sorted(folder.glob("*.py"))
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
        files += sorted(folder.glob("*.py"))
    return files


def model_reads(model: object) -> Iterator[ReadFile]:
    """The files the model spec ``model`` reads: the model file and an ONNX model's external data, or the
    Python source of a ``file.py:attr`` / ``package.module:attr`` spec and the files beside it. A
    generator: nothing is scanned unless a report path exists to compare with."""
    if not isinstance(model, (str, Path)):
        return
    text = str(model)
    if looks_like_python_spec(text):
        target = text.rpartition(":")[0]
        source = Path(target) if target.endswith(".py") else module_source(target)
        if source is not None:
            yield from (ReadFile(path, "a source file of the model") for path in _python_sources(source))
        return
    path = Path(text)
    yield ReadFile(path, "the model")
    if path.is_file():  # an ONNX model, whatever its suffix, may name external data
        yield from onnx_external_data(path)


def check_reads(model: object, inputs: object = None, weights: object = None) -> Iterator[ReadFile]:
    """Every file one model's check reads (a generator, as ``model_reads``)."""
    yield from model_reads(model)
    if isinstance(inputs, (str, Path)):
        yield ReadFile(Path(inputs), "the input file")
    if isinstance(weights, (str, Path)):
        yield ReadFile(Path(weights), "the weights file")
