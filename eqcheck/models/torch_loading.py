"""Turn a PyTorch file or a ``file.py:attr`` / ``package.module:attr`` spec into a TorchRunner."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import logging
import os
import sys
import warnings
import zipfile
from pathlib import Path

from eqcheck.errors import ModelLoadError
from eqcheck.models.base import InputSpec, first_line, missing_file
from eqcheck.models.torch_runner import (
    TorchRunner, declared_input_dtypes, declared_input_shapes, default_float_dtype, positional_input_names,
)


def _import_path_hint(error: BaseException, path: Path) -> str:
    """Where a pickle names a module that is a file beside the model or in the working folder but not on
    the import path: how to put it there."""
    name = getattr(error, "name", None)
    if not isinstance(error, ModuleNotFoundError) or not name:
        return ""
    top = name.split(".")[0]
    for folder in dict.fromkeys([Path.cwd(), Path(path).resolve().parent]):
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            return (f"; {top} is in {folder}, which is not on the import path: run with PYTHONPATH={folder} "
                    f"(PYTHONPATH={folder} eqcheck verify ...)")
    return ""


def archive_kind(path: Path) -> str:
    """``torchscript``, ``pt2`` or ``pickle`` from the layout of a torch zip archive."""
    try:
        names = zipfile.ZipFile(path).namelist()
    except (zipfile.BadZipFile, OSError):
        raise ModelLoadError(f"not a PyTorch archive (corrupt or truncated?): {path}") from None
    if any("/code/" in n for n in names) or any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("archive_format") or n.endswith("models/model.json") for n in names):
        return "pt2"
    return "pickle"


#: argument names PyTorch Geometric gives integer inputs: an edge index (values: node labels, their range
#: set by the node count) and a batch vector (each node's graph: one graph, all zeros, when generated)
INTEGER_ARGUMENTS = {"edge_index": None, "batch": 1}


def module_inputs(module) -> tuple[list[InputSpec], dict[str, int]]:
    """The inputs of a Python module: names from ``forward``, shapes and dtypes it declares, and integer
    inputs found in its graph (an argument that indexes an ``nn.Embedding`` is indices below its rows) or
    by PyTorch Geometric's names (``edge_index``, ``batch``); with the index ranges so found."""
    names = positional_input_names(module)
    shapes = declared_input_shapes(module)
    dtypes = declared_input_dtypes(module)
    ranges = {**module_embedding_ranges(module, names), **declared_input_ranges(module, names)}
    for name in names if "edge_index" in names else []:  # a PyG signature, not any argument called batch
        if name in INTEGER_ARGUMENTS and name not in dtypes:
            dtypes[name] = "int64"
            if INTEGER_ARGUMENTS[name] is not None:
                ranges.setdefault(name, INTEGER_ARGUMENTS[name])
    for name in ranges:
        dtypes.setdefault(name, "int64")
    if shapes is None or len(shapes) != len(names):
        shapes = [None] * len(names)
    specs = [InputSpec(n, s, dtypes[n], dtype_known=True) if n in dtypes else InputSpec(n, s, dtype_known=False)
             for n, s in zip(names, shapes)]
    return specs, ranges


def declared_input_ranges(module, names: list[str]) -> dict[str, int]:
    """``example_input_ranges``: argument name -> how many values an integer input takes (``{"charge": 3}``:
    0, 1 or 2), for integer inputs whose range no embedding table says (``F.one_hot``, a lookup)."""
    declared = getattr(module, "example_input_ranges", None)
    if declared is None:
        return {}
    if not isinstance(declared, dict) or not all(
            name in names and isinstance(n, int) and not isinstance(n, bool) and n >= 1 for name, n in declared.items()):
        raise ModelLoadError(f"example_input_ranges must map the model's arguments ({', '.join(names)}) to "
                             f"positive integers, got {declared!r}")
    return dict(declared)


def module_embedding_ranges(module, names: list[str]) -> dict[str, int]:
    """Arguments of ``forward`` that go straight into an ``nn.Embedding``: its row count, by argument name
    (from the torch.fx graph; nothing where the forward cannot be traced)."""
    import torch

    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        return {}
    from eqcheck.layers.capture_graph import trace_module

    traced = trace_module(module)
    if traced is None:
        return {}
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    ranges = {}
    for name, node in zip(names, placeholders):
        for user in node.users:
            table = traced.get_submodule(str(user.target)) if user.op == "call_module" else None
            if isinstance(table, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and user.args[:1] == (node,):
                ranges[name] = int(table.num_embeddings)
    return ranges


def _unsafe_globals(data: bytes) -> list[str]:
    """What unpickling ``data`` (a ``torch.save`` zip or a raw pickle) would import beyond weights."""
    import torch
    from torch import _weights_only_unpickler

    if data.startswith(b"PK\x03\x04"):
        try:
            return torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
        except Exception:
            return []  # not a torch.save archive: torch.load refuses it whatever the mode
    safe = set(_weights_only_unpickler._get_allowed_globals())
    try:
        return sorted(set(_weights_only_unpickler.get_globals_in_pkl(io.BytesIO(data))) - safe)
    except Exception:
        return ["(a pickle that cannot be read without running it)"]


def _config_entries(archive: zipfile.ZipFile) -> list[tuple[str, dict]]:
    """(folder, entry) for every payload of the archive's weights and constants configs."""
    entries = []
    for config in (n for n in archive.namelist() if n.endswith("_config.json")):
        try:
            table = json.loads(archive.read(config)).get("config", {})
        except (ValueError, AttributeError):
            continue  # torch.export.load refuses a damaged config itself
        folder = config.rsplit("/", 1)[0]
        entries += [(folder, e) for e in (table.values() if isinstance(table, dict) else ()) if isinstance(e, dict)]
    return entries


def _pickled_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Members torch.export.load unpickles, and how: ``.pt``/``.pkl`` files (sample inputs, legacy weights
    and constants) and payloads marked ``use_pickle`` are torch.load-ed ("torch"); constants whose
    ``path_name`` is an opaque or a custom object are unpickled as they are ("plain")."""
    from torch.export.pt2_archive.constants import CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX

    names = set(archive.namelist())
    pickled = {n: "torch" for n in names if n.endswith((".pt", ".pkl"))}
    for folder, entry in _config_entries(archive):
        path = entry.get("path_name")
        if not isinstance(path, str):
            continue
        if path.startswith((OPAQUE_OBJ_FILENAME_PREFIX, CUSTOM_OBJ_FILENAME_PREFIX)):
            pickled[f"{folder}/{path}"] = "plain"
        elif entry.get("use_pickle"):
            pickled.setdefault(f"{folder}/{path}", "torch")
    return pickled


def refuse_pickled_code(path: Path) -> None:
    """A ``.pt2`` archive may hold pickles (sample inputs, constants, weights) that torch.export.load would
    unpickle with ``weights_only=False`` or plain ``pickle.loads``; any that would import code, and any
    object it would unpickle as it is, is refused, naming what it imports."""
    unsafe: dict[str, list[str]] = {}
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for name, how in sorted(_pickled_members(archive).items()):
            if how == "plain":
                unsafe[name] = ["a Python object that torch.export.load unpickles with plain pickle"]
            elif name in names:
                found = _unsafe_globals(archive.read(name))
                if found:
                    unsafe[name] = found
    if unsafe:
        name, found = next(iter(unsafe.items()))
        shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
        raise ModelLoadError(f"{path}: {name} is a pickle that would import and run code ({shown}); eqcheck "
                             f"does not unpickle code (re-export the model without it)")


@contextlib.contextmanager
def _safe_torch_load():
    """torch.load forced to ``weights_only=True`` whatever its caller asks, and torch's log lines
    (tracebacks of its fallbacks) kept off the terminal."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def load_exported_program(path: Path, **options) -> TorchRunner:
    """A ``torch.export.save`` archive, loaded without unpickling code (``refuse_pickled_code``)."""
    import torch

    try:
        refuse_pickled_code(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(f"could not load exported program {path}: {first_line(error)}") from None
    try:
        with _safe_torch_load(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as error:
        raise ModelLoadError(f"could not load exported program {path}: {first_line(error)}") from None
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        shape = tuple(d if isinstance(d, int) else None for d in value.shape) if value is not None else None
        dtype = str(value.dtype).replace("torch.", "") if value is not None else "float32"
        inputs.append(InputSpec(name, shape, dtype))
    batch_dynamic = all(s.shape is None or s.shape[0] is None for s in inputs)
    return TorchRunner(program.module(), str(path), "pt2", inputs, batch_dynamic=batch_dynamic,
                       index_ranges=embedding_ranges(program.graph, set(placeholders)), **options)


def embedding_ranges(graph, names: set[str]) -> dict[str, int]:
    """Integer inputs that index an embedding table (``aten.embedding(weight, input)``): the table's rows."""
    ranges = {}
    for node in graph.nodes:
        if node.op == "call_function" and "embedding" in str(node.target) and len(node.args) >= 2:
            weight, indices = node.args[0], node.args[1]
            value = getattr(weight, "meta", {}).get("val")
            if getattr(indices, "name", None) in names and value is not None and value.ndim == 2:
                ranges[indices.name] = int(value.shape[0])
    return ranges


def load_torchscript(path: Path, **options) -> TorchRunner:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelLoadError(f"could not load TorchScript model {path}: {first_line(error)}") from None
    args = [a.name for a in module.forward.schema.arguments[1:] if not a.has_default_value()]
    runner = TorchRunner(module, str(path), "torchscript",
                         [InputSpec(a, None, dtype_known=False) for a in args or ["input"]],
                         **options)
    return runner


def load_pickle(path: Path, unsafe_load: bool, **options) -> TorchRunner:
    """A ``torch.save``-d whole module: refused unless ``unsafe_load``, naming what it would import."""
    import torch

    try:
        torch.load(str(path), weights_only=True, map_location="cpu")
        holds_weights_only = True
    except Exception:
        holds_weights_only = False
    if holds_weights_only:
        raise ModelLoadError(f"{path} holds weights (a state_dict), not a model: give the model as "
                             f"file.py:factory and these weights with --weights {path}")
    if not unsafe_load:
        try:
            classes = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as error:
            raise ModelLoadError(f"not a PyTorch model (corrupt or truncated?): {path}: {first_line(error)}") from None
        shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
        raise ModelLoadError(f"{path} is a pickled module; loading it would import and run code from: {shown}. "
                             f"Pass --unsafe-load if you trust it, or export it (torch.export / TorchScript / ONNX)")
    try:
        module = torch.load(str(path), weights_only=False, map_location="cpu")
    except Exception as error:
        raise ModelLoadError(f"could not unpickle {path}: {first_line(error)}{_import_path_hint(error, path)}") from None
    inputs, ranges = module_inputs(module)
    return TorchRunner(module, str(path), "pytorch", inputs, index_ranges=ranges, **options)


@contextlib.contextmanager
def _no_bytecode_files():
    """Importing a user's file writes no ``__pycache__`` beside it: a check leaves no file behind."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous


def import_attribute(spec: str):
    """``path/to/file.py:attr`` or ``package.module:attr``: the attribute, imported (which runs that code)."""
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ModelLoadError(missing_file(path))
        name = f"eqcheck_user_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            with _no_bytecode_files():
                module_spec.loader.exec_module(module)
        except Exception as error:
            raise ModelLoadError(f"could not import {path}: {type(error).__name__}: {first_line(error)}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            with _no_bytecode_files():
                module = importlib.import_module(target)
        except Exception as error:
            raise ModelLoadError(f"could not import {target}: {type(error).__name__}: {first_line(error)}") from None
    if not hasattr(module, attr):
        raise ModelLoadError(f"{target} has no attribute {attr!r}")
    return getattr(module, attr)


#: the torch seed a factory is called under (where it sets none itself): a check of a freshly initialised
#: model repeats exactly, and its float64 re-run builds the same architecture from the same seed
FACTORY_SEED = 0


def load_python_spec(spec: str, weights: str | None, **options) -> TorchRunner:
    """A module is the model; a class, or a function without required arguments, is its factory: called
    under a fixed torch seed, and in the float dtype asked for (``torch.set_default_dtype``), so that the
    constants a model computes as it is built (e3nn's Wigner 3j and change-of-basis matrices) have that
    precision; a cast after the fact would keep their float32 rounding."""
    import torch

    dtype = options.get("dtype")
    with default_float_dtype(getattr(torch, dtype) if dtype in ("float64", "float32") else None):
        obj = import_attribute(spec)
        is_factory = isinstance(obj, type) or (callable(obj) and not isinstance(obj, torch.nn.Module)
                                               and not _has_required_args(obj))
        if is_factory:
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(FACTORY_SEED)
                    obj = obj()
            except Exception as error:
                raise ModelLoadError(f"calling {spec}() failed: {type(error).__name__}: {first_line(error)}") from None
    if not callable(obj):
        raise ModelLoadError(f"{spec} is not a model or a factory of one")
    if weights is not None:
        load_weights(obj, weights)
    return module_runner(obj, spec, **options)


def module_runner(module, description: str, **options) -> TorchRunner:
    """A runner for a torch module; an escnn EquivariantModule is wrapped to take plain tensors and typed by
    its own in_type and out_type (eqcheck.models.escnn_module)."""
    from eqcheck.models.escnn_module import is_escnn_module, wrap

    if is_escnn_module(module):
        wrapped, types, shape = wrap(module)
        declared = declared_input_shapes(module)
        inputs = [InputSpec("input", declared[0] if declared else shape)]
        return TorchRunner(wrapped, description, "escnn", inputs, declared_types=types, **options)
    inputs, ranges = module_inputs(module)
    return TorchRunner(module, description, "pytorch", inputs, index_ranges=ranges, **options)


def _has_required_args(function) -> bool:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def load_weights(module, weights: str) -> None:
    """Load a state_dict with ``weights_only=True`` (never unpickles code)."""
    import torch

    path = Path(weights)
    if not path.is_file():
        raise ModelLoadError(missing_file(path, "weights file"))
    try:
        state = torch.load(str(path), weights_only=True, map_location="cpu")
        module.load_state_dict(state)
    except Exception as error:
        raise ModelLoadError(f"could not load weights {path}: {first_line(error)}") from None
