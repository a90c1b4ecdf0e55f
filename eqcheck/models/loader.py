"""Pick the runner for whatever names a model: a path, a ``file.py:attr`` spec, a module, a ModelProto."""
from __future__ import annotations

import sys
from pathlib import Path

from eqcheck.errors import ModelLoadError, UsageError
from eqcheck.models.base import ModelRunner, missing_file

TORCHSCRIPT_SUFFIXES = {".pt", ".pth", ".ts", ".jit", ".torchscript", ".zip"}


def looks_like_python_spec(text: str) -> bool:
    """``x.py:attr`` or ``pkg.mod:attr`` (and not a Windows drive or an existing file)."""
    target, sep, attr = text.rpartition(":")
    if not sep or not attr.isidentifier() or Path(text).exists():
        return False
    return target.endswith(".py") or all(part.isidentifier() for part in target.split("."))


#: what installs the PyTorch side of eqcheck
TORCH_EXTRA = "pip install 'eqcheck[torch]'"


def require_torch(what: str) -> None:
    """PyTorch models need torch, an extra (ONNX models never import it): one line saying how to get it."""
    import importlib.util

    if sys.modules.get("torch") is None and importlib.util.find_spec("torch") is None:
        raise ModelLoadError(f"{what}, and PyTorch is not installed here: {TORCH_EXTRA} (or pip install torch); "
                             f"ONNX models need no torch")


def load_model(model, *, device: str = "cpu", dtype: str | None = None, weights: str | None = None,
               unsafe_load: bool = False, allow_tf32: bool = False, train_mode: bool = False) -> ModelRunner:
    """A runner for ``model``; raises ModelLoadError with one clear line when it cannot be loaded."""
    torch_options = {"device": device, "dtype": dtype, "allow_tf32": allow_tf32, "train_mode": train_mode}
    if type(model).__name__ == "ModelProto":
        _refuse_weights(weights, "an ONNX model")
        return _onnx_runner(model.SerializeToString(), "<onnx.ModelProto>", device, dtype)
    if "torch" in sys.modules and not isinstance(model, (str, Path)):
        import torch

        if isinstance(model, torch.nn.Module) or callable(model):
            from eqcheck.models.torch_loading import load_weights, module_runner

            if weights is not None:
                load_weights(model, weights)
            return module_runner(model, type(model).__name__, **torch_options)
    if not isinstance(model, (str, Path)):
        raise ModelLoadError(f"cannot check a {type(model).__name__}: give a path, a spec, a module or a ModelProto")
    text = str(model)
    if looks_like_python_spec(text):
        require_torch(f"{text} is a Python model")
        from eqcheck.models.torch_loading import load_python_spec

        return load_python_spec(text, weights, **torch_options)
    _refuse_weights(weights, "a model file")
    path = Path(text)
    if not path.exists():
        raise ModelLoadError(missing_file(path))
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a model file")
    if path.suffix == ".onnx" or _is_onnx_protobuf(path):
        return _onnx_runner(path, str(path), device, dtype)
    require_torch(f"{path} is not ONNX: a PyTorch file")
    from eqcheck.models import torch_loading

    kind = torch_loading.archive_kind(path)
    if kind == "pt2":
        return torch_loading.load_exported_program(path, **torch_options)
    if kind == "torchscript":
        return torch_loading.load_torchscript(path, **torch_options)
    return torch_loading.load_pickle(path, unsafe_load, **torch_options)


def _onnx_runner(source, description: str, device: str, dtype: str | None) -> ModelRunner:
    """An ONNX model runs in the dtype it was exported in: a different ``--dtype`` is refused, not ignored."""
    from eqcheck.models.onnx_runner import OnnxRunner

    runner = OnnxRunner(source, description, device=device)
    own = {spec.dtype for spec in runner.inputs if spec.dtype.startswith("float")}
    if dtype is not None and own and own != {dtype}:
        runner.close()
        raise UsageError(f"--dtype {dtype}: an ONNX model cannot be cast; {description} takes "
                         f"{', '.join(sorted(own))} (re-export it in {dtype})")
    return runner


def _refuse_weights(weights: str | None, what: str) -> None:
    """``--weights`` fills a module built by a factory; silently ignoring it would check other weights."""
    if weights is not None:
        raise UsageError(f"--weights applies to a model given as file.py:factory or pkg.mod:attr, "
                         f"not to {what} (which carries its own weights)")


def _is_onnx_protobuf(path: Path) -> bool:
    """An ONNX file without the .onnx suffix: not a zip, and its first bytes are a protobuf ir_version field."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head[:1] == b"\x08" and not head.startswith(b"PK")
