"""ONNX files read and written with protobuf alone: the ``onnx`` package's generated messages, loaded
without the package itself.

``import onnx`` loads its C++ checker, its reference evaluator's tables and ``ml_dtypes`` (0.5-1.4 s
here), none of which eqcheck needs to read a graph, add outputs to it or move weights to a file: those
are protobuf messages. This module loads ``onnx/onnx_ml_pb2.py`` (generated code that imports only
``google.protobuf``) under its own name, so that a later ``import onnx`` (shape inference, for the
causes of a failing check) reuses the very same message classes.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from eqcheck.errors import ModelLoadError

_MESSAGES = "onnx.onnx_ml_pb2"

#: TensorProto.DataType -> numpy dtype (the types a capture feeds or a view reads)
TENSOR_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
                 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}
#: TensorProto.DataLocation EXTERNAL
EXTERNAL = 1


def messages() -> ModuleType:
    """The generated ONNX protobuf module (``ModelProto``, ``ValueInfoProto``, ``TensorProto``...)."""
    module = sys.modules.get(_MESSAGES)
    if module is not None:
        return module
    package = importlib.util.find_spec("onnx")  # finds the package's folder without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ModelLoadError("the onnx package is not installed: pip install onnx")
    path = Path(next(iter(package.submodule_search_locations))) / "onnx_ml_pb2.py"
    spec = importlib.util.spec_from_file_location(_MESSAGES, path)
    if spec is None or spec.loader is None or not path.exists():
        import onnx  # an unusual layout: the package itself, slow but right

        return onnx.onnx_ml_pb2
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MESSAGES] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[_MESSAGES]
        raise
    return module


def parse_model(data: bytes):
    model = messages().ModelProto()
    model.ParseFromString(data)
    return model


def read_model(source: bytes | str | Path):
    """The model as stored (weights in external files stay there)."""
    return parse_model(bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes())


def with_outputs(raw: bytes, model, names) -> bytes:
    """The model's bytes with ``names`` added to its outputs, merged by protobuf: nothing re-serialized
    (``model``: ``raw`` parsed, whose outputs are not added twice)."""
    proto = messages()
    fragment = proto.ModelProto()
    existing = {o.name for o in model.graph.output}
    fragment.graph.output.extend(proto.ValueInfoProto(name=n) for n in dict.fromkeys(names) if n not in existing)
    return raw + fragment.SerializeToString()


def attribute_value(attribute):
    """A NodeProto attribute's value by its type (AttributeProto.AttributeType), as onnx.helper gives it."""
    kind = attribute.type
    singles = {1: "f", 2: "i", 3: "s", 4: "t", 5: "g", 11: "sparse_tensor", 13: "tp"}
    lists = {6: "floats", 7: "ints", 8: "strings", 9: "tensors", 10: "graphs", 12: "sparse_tensors", 14: "type_protos"}
    if kind in singles:
        return getattr(attribute, singles[kind])
    if kind in lists:
        return list(getattr(attribute, lists[kind]))
    return None


def tensor_array(tensor) -> np.ndarray:
    """An initializer's values (data inline), for the dtypes in TENSOR_DTYPES."""
    dtype = TENSOR_DTYPES.get(tensor.data_type)
    if dtype is None:
        raise ValueError(f"tensor {tensor.name!r}: data type {tensor.data_type} is not read here")
    shape = tuple(tensor.dims)
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(
            dtype, copy=False).reshape(shape)
    field = {1: "float_data", 11: "double_data", 7: "int64_data", 12: "uint64_data", 13: "uint64_data"}.get(
        tensor.data_type, "int32_data")
    if tensor.data_type == 10:  # float16 in int32_data: each entry holds the value's 16 bits, not the value
        return np.asarray(list(tensor.int32_data), dtype=np.uint16).view(np.float16).reshape(shape)
    return np.asarray(list(getattr(tensor, field)), dtype=dtype).reshape(shape)


def tensor_type(dtype) -> int:
    """The TensorProto.DataType of a numpy dtype."""
    wanted = np.dtype(dtype)
    for code, numpy_type in TENSOR_DTYPES.items():
        if np.dtype(numpy_type) == wanted:
            return code
    raise ValueError(f"no ONNX tensor type for {wanted}")


def external_location(tensor) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def load_external_data(model, folder: str | Path) -> None:
    """Read every initializer stored in an external file into the model (onnx's external data layout:
    ``location``, ``offset``, ``length`` relative to the model's folder)."""
    for tensor in model.graph.initializer:
        if tensor.data_location != EXTERNAL:
            continue
        entries = external_location(tensor)
        path = Path(folder) / entries["location"]
        try:
            with open(path, "rb") as handle:
                handle.seek(int(entries.get("offset", 0)))
                length = entries.get("length")
                tensor.raw_data = handle.read(int(length)) if length is not None else handle.read()
        except OSError as error:
            raise ModelLoadError(f"cannot read the weights of {tensor.name!r} from {path}: {error.strerror}") from None
        tensor.data_location = 0
        del tensor.external_data[:]


#: where a weight taken out of a model (take_weights) says it is stored: eqcheck hands its values to
#: onnxruntime itself (SessionOptions.add_external_initializers)
IN_MEMORY = "eqcheck-in-memory"


def take_weights(model, threshold: int = 1024) -> dict[str, np.ndarray]:
    """Every initializer of at least ``threshold`` bytes that numpy holds, taken out of ``model`` as an
    array (read-only, the model's own bytes where they are inline), the initializer left as its name,
    type and dims, marked as stored outside (``IN_MEMORY``): copies of the model are then their graph
    alone, and every session built from one reads the same arrays."""
    weights = {}
    for tensor in model.graph.initializer:
        dtype = TENSOR_DTYPES.get(tensor.data_type)
        if dtype is None or tensor.data_location == EXTERNAL:
            continue
        size = int(np.prod(tensor.dims, dtype=np.int64)) * np.dtype(dtype).itemsize
        if size < threshold:
            continue
        weights[tensor.name] = tensor_array(tensor)
        for name in ("raw_data", "float_data", "double_data", "int32_data", "int64_data", "uint64_data"):
            tensor.ClearField(name)
        del tensor.external_data[:]
        for key, value in (("location", IN_MEMORY), ("offset", "0"), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        tensor.data_location = EXTERNAL
    return weights


def store_weights(model, weights: dict[str, np.ndarray], folder: str | Path, location: str) -> None:
    """Write the weights take_weights took out of ``model`` to ``folder/location`` (one file, offsets
    aligned as onnx aligns them) and point their initializers there: sessions then read them from the
    file, and nothing holds them in memory in between."""
    with open(Path(folder) / location, "wb") as handle:
        for tensor in model.graph.initializer:
            if tensor.name not in weights:
                continue
            data = np.ascontiguousarray(weights[tensor.name]).astype(np.dtype(weights[tensor.name].dtype).newbyteorder("<"),
                                                                      copy=False)
            offset = handle.tell()
            padding = (-offset) % 4096
            handle.write(b"\0" * padding)
            offset += padding
            handle.write(data.tobytes())
            del tensor.external_data[:]
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(data.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
