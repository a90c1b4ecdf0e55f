"""ONNX models through onnxruntime. This path never imports torch."""
from __future__ import annotations

import os

from pathlib import Path

import numpy as np

from eqcheck.errors import ModelLoadError, ModelRunError, UsageError
from eqcheck.models.base import InputSpec, ModelRunner, first_line, missing_file

ONNX_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16", "tensor(int64)": "int64", "tensor(int32)": "int32",
    "tensor(bool)": "bool", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int16)": "int16",
    "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
}


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UsageError("--device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise UsageError(f"unknown device {device!r} (cpu, cuda)")


def _shape(dims) -> tuple[int | None, ...] | None:
    """Static dims as ints, dynamic ones None; no dims at all (a scalar, or a shape not declared) is
    unknown: the user gives it."""
    if not dims:
        return None
    return tuple(d if isinstance(d, int) and d > 0 else None for d in dims)


def _dtype(node) -> str:
    if node.type not in ONNX_DTYPES:
        raise UsageError(f"input {node.name!r} takes {node.type}, which eqcheck cannot generate or transform "
                         f"(it feeds numbers: {', '.join(sorted(set(ONNX_DTYPES.values())))})")
    return ONNX_DTYPES[node.type]


def worker_threads() -> int:
    """The threads a session may use: ``EQCHECK_THREADS`` (a worker of ``eqcheck check --jobs``: its share of
    the cores), else 0 (onnxruntime's default: every physical core)."""
    try:
        return max(0, int(os.environ.get("EQCHECK_THREADS", "0")))
    except ValueError:
        return 0


def session_options():
    """The options every eqcheck session shares."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # FATAL only: ERROR lines would reach stderr beside our one line
    # threads that spin between the many short runs of a check only burn the other cores (and slow
    # numpy between runs): benchmarks/bench_layers_analysis.py --no-spin
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = worker_threads()
    return options


def plain_session(model: bytes | str, device: str, optimize: bool, weights: dict[str, np.ndarray] | None = None):
    """A session for a copy of a model that outputs more of its tensors (eqcheck.layers, eqcheck.structure);
    ``weights``: the values of the initializers the copy marks as held in memory (onnx_proto.take_weights),
    read by the session where they are, not copied."""
    import onnxruntime as ort

    options = session_options()
    if weights:
        options.add_external_initializers(list(weights), [ort.OrtValue.ortvalue_from_numpy(w) for w in weights.values()])
    # small models: the session that is quickest to build; large ones: fused, without the layout
    # transformations of ORT_ENABLE_ALL (blocked convolution weights), whose building outweighs what they
    # save in the one or two runs of a capture session: per layer 2.7 s against 3.5 s on a ResNet-50 under
    # p4m, 0.36 s against 0.40 s on a ResNet-18 under p4 (medians of interleaved runs, 2026-12-04)
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    # no arena: a capture session lives for one or two runs, and a fresh arena's memory is fresh pages
    # every check (page faults cost more than the allocations); on large models it would also keep
    # each capture's peak
    options.enable_cpu_mem_arena = False
    # Dropout kept as written, as in the model's own session (OnnxRunner): the output check may run here
    return ort.InferenceSession(model, options, providers=_providers(device), disabled_optimizers=["EliminateDropout"])


class OnnxRunner(ModelRunner):
    """An onnxruntime session over a file (external weights beside it) or an in-memory ModelProto."""

    format = "onnx"

    def __init__(self, source: str | Path | bytes, description: str, device: str = "cpu") -> None:
        import onnxruntime as ort

        self.description = description
        self.device = device
        self.notes = []
        self.source = source
        options = session_options()
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise ModelLoadError(missing_file(path))
            if path.stat().st_size == 0:
                raise ModelLoadError(f"model file is empty: {path}")
            source = str(path)
        try:
            # onnxruntime deletes Dropout nodes even when the graph asks for training_mode=True,
            # which would hide the non-determinism the graph declares: keep them as written
            self.session = ort.InferenceSession(source, options, providers=_providers(device),
                                                disabled_optimizers=["EliminateDropout"])
        except UsageError:
            raise
        except Exception as error:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelLoadError(f"could not load ONNX model {description}: {first_line(error)}") from None
        self.inputs = [InputSpec(name=i.name, shape=_shape(i.shape), dtype=_dtype(i)) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        #: eqcheck.structure.scan's results, per input shapes (the model does not change)
        self.scans: dict[tuple, tuple] = {}
        self.batch_dynamic = all(spec.shape and spec.shape[0] is None for spec in self.inputs)

    def index_range(self, name: str) -> int | None:
        """The rows of the table an integer input gathers from (``Gather(table, input)`` on an initializer,
        as an exported embedding is); read from the graph only when an integer input asks."""
        from eqcheck.models.onnx_proto import read_model

        try:
            model = read_model(self.source)
        except Exception:
            return None
        tables = {t.name: tuple(t.dims) for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == name \
                    and node.input[0] in tables:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                dims = tables[node.input[0]]
                if -len(dims) <= axis < len(dims):
                    return int(dims[axis])
        return None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return [np.asarray(o) for o in self.session.run(None, feeds)]
        except Exception as error:
            # onnxruntime puts the useful part (which axis, got, expected) on the lines after the first
            text = " ".join(str(error).split()).replace(" Please fix either the inputs/outputs or the model.", "")
            raise ModelRunError(f"the model could not run: {text or first_line(error)}") from None
