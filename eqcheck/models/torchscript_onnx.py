"""A TorchScript model as ONNX, for its per-layer table: TorchScript runs no forward hooks and torch.fx
cannot trace it, but torch's TorchScript-based ONNX exporter (``dynamo=False``) reads a loaded
ScriptModule's graph and names each node by the module that made it (``/body/1/Conv``), which is what
the ONNX capture needs. The output check still runs the TorchScript model itself."""
from __future__ import annotations

import io
import warnings

import numpy as np

from eqcheck.errors import ModelLoadError
from eqcheck.guard import silenced
from eqcheck.models.base import first_line
from eqcheck.models.onnx_runner import OnnxRunner
from eqcheck.models.torch_runner import TorchRunner

#: the opset the export asks for (onnxruntime here runs up to 28; the exporter writes up to 20)
EXPORT_OPSET = 18


def exported_to_onnx(runner: TorchRunner, feeds: dict[str, np.ndarray]) -> OnnxRunner:
    """``runner``'s TorchScript module exported with ``feeds`` as its example inputs (batch axis dynamic
    where the runner's is), as an ONNX runner that shares ``runner``'s notes; ModelLoadError where the
    export fails (control flow or operators the exporter does not know, autograd inside forward) or
    gives other outputs than the model."""
    import torch

    names = [spec.name for spec in runner.inputs]
    args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in names)
    outputs = list(runner.output_names)
    # a batch axis left free where the model's is, for stacked captures; fixed shapes where a free one
    # cannot be exported (an op that needs the rank, as ``x.dim()`` checks do)
    shapes = [{name: {0: f"{name}_axis0"} for name in names + outputs}] if runner.batch_dynamic else []
    error = None
    for dynamic in [*shapes, None]:
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings(), silenced():
                warnings.simplefilter("ignore")
                torch.onnx.export(runner.module, args, buffer, dynamo=False, input_names=names,
                                  output_names=outputs, dynamic_axes=dynamic, opset_version=EXPORT_OPSET,
                                  training=torch.onnx.TrainingMode.PRESERVE)
            break
        except Exception as failed:
            error = failed
    else:
        raise ModelLoadError(f"its ONNX export failed ({_short(error)})")
    exported = OnnxRunner(buffer.getvalue(), f"{runner.description} (exported to ONNX)")
    if exported.output_names != outputs or [s.name for s in exported.inputs] != names:
        raise ModelLoadError(f"its ONNX export has inputs {[s.name for s in exported.inputs]} and outputs "
                             f"{exported.output_names}, not the model's {names} and {outputs}")
    exported.notes = runner.notes
    return exported


def _short(error: Exception, limit: int = 160) -> str:
    """The exporter's first sentence (its messages run to paragraphs)."""
    text = first_line(error).split(". ")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."
