"""Run a PyTorch callable (module, exported program, TorchScript) on numpy arrays."""
from __future__ import annotations

import contextlib
import inspect

import numpy as np

from eqcheck.errors import ModelRunError, UsageError
from eqcheck.models.base import InputSpec, ModelRunner, first_line

TORCH_DTYPES = ("float32", "float64", "float16", "bfloat16")


def flatten_outputs(value) -> list:
    """Tensors of an output in a fixed order: a tensor, nested tuples/lists/dicts, or ``.tensor`` holders."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_outputs(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten_outputs(v)]
    if hasattr(value, "tensor"):  # escnn GeometricTensor and the like
        return flatten_outputs(value.tensor)
    return []


def output_names_of(value) -> list[str]:
    """A name for each tensor of ``flatten_outputs(value)``: dict keys (``energy``, ``forces``; nested keys
    joined by dots), else ``output``, ``output1``, ... by position."""
    import torch

    def walk(item, path: str | None) -> list[str | None]:
        if isinstance(item, torch.Tensor):
            return [path]
        if isinstance(item, dict):
            return [n for k, v in item.items() for n in walk(v, f"{path}.{k}" if path else str(k))]
        if isinstance(item, (list, tuple)):
            return [n for v in item for n in walk(v, path)]
        if hasattr(item, "tensor"):
            return walk(item.tensor, path)
        return []

    names = walk(value, None)
    positional = [f"output{i}" if i else "output" for i in range(len(names))]
    named = [n if n else positional[i] for i, n in enumerate(names)]
    return named if len(set(named)) == len(named) else positional


def positional_input_names(module) -> list[str]:
    """Names of the required positional arguments of ``forward`` (or of a plain callable)."""
    target = getattr(module, "forward", module)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return ["input"]
    names = [p.name for p in params
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names or ["input"]


def declared_input_shapes(module) -> list[tuple[int, ...]] | None:
    """The ``example_input_shape`` (one input) or ``example_input_shapes`` (a list in argument order, or a
    mapping from argument names) a module carries, if any."""
    one = getattr(module, "example_input_shape", None)
    many = getattr(module, "example_input_shapes", None)
    try:
        if one is not None:
            return [_dims(one)]
        if isinstance(many, dict):
            names = positional_input_names(module)
            return [_dims(many[name]) for name in names] if set(names) <= set(many) else None
        if many is not None:
            return [_dims(shape) for shape in many]
    except (TypeError, ValueError):
        from eqcheck.errors import ModelLoadError

        raise ModelLoadError(f"the model's example_input_shape(s) must be positive integers, not "
                             f"{one if one is not None else many!r}") from None
    return None


def declared_input_dtypes(module) -> dict[str, str]:
    """``example_input_dtypes``: argument name -> numpy dtype name (``{"edge_index": "int64"}``); inputs
    it does not name are float."""
    declared = getattr(module, "example_input_dtypes", None)
    if not isinstance(declared, dict):
        return {}
    known = {"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"}
    return {str(k): str(v) for k, v in declared.items() if str(v) in known}


def _dims(shape) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if not dims or any(d < 1 for d in dims) or any(isinstance(d, bool) for d in shape):
        raise ValueError(shape)
    return dims


@contextlib.contextmanager
def default_float_dtype(dtype):
    """torch's default float dtype set to ``dtype`` (None: left alone) while the model's code runs: the
    tensors it makes as it is built or as it runs (``torch.zeros(n, 3)``) in the dtype it is checked in."""
    import torch

    if dtype is None:
        yield
        return
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


class TorchRunner(ModelRunner):
    """A torch callable under ``no_grad``, in eval mode unless ``train_mode``, on ``device``, in ``dtype``."""

    def __init__(self, module, description: str, fmt: str, inputs: list[InputSpec], *,
                 device: str = "cpu", dtype: str | None = None, batch_dynamic: bool = True,
                 allow_tf32: bool = False, train_mode: bool = False,
                 index_ranges: dict[str, int] | None = None, declared_types: dict | None = None) -> None:
        import torch

        self.description = description
        self.format = fmt
        self.device = device
        self.notes = []
        self.batch_dynamic = batch_dynamic
        self.allow_tf32 = allow_tf32
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available to torch here")
        if device != "cpu" and not device.startswith("cuda"):
            raise UsageError(f"unknown device {device!r} (cpu, cuda)")
        if dtype is not None and dtype not in TORCH_DTYPES:
            raise UsageError(f"unknown dtype {dtype!r} ({', '.join(TORCH_DTYPES)})")
        try:
            if train_mode and hasattr(module, "train"):
                module.train()
                self.notes.append("the model runs in train mode (dropout active, batch statistics)")
            elif hasattr(module, "eval") and getattr(module, "training", False):
                module.eval()
                self.notes.append("the model was put in eval mode (--train-mode keeps dropout and batch statistics)")
        except NotImplementedError:  # torch.export's program.module() refuses train()/eval(): its mode is fixed
            pass
        if hasattr(module, "to"):
            try:
                module = module.to(device)
                if dtype is not None:
                    module = module.to(getattr(torch, dtype))
            except Exception as error:
                raise ModelRunError(f"could not move the model to {device}/{dtype}: {first_line(error)}") from None
        self.module = module
        self.float_dtype = dtype
        param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        model_dtype = dtype or (str(param.dtype).replace("torch.", "") if param is not None else "float32")
        self.inputs = [InputSpec(s.name, s.shape, model_dtype if s.dtype.startswith("float") else s.dtype,
                                 s.dtype_known) for s in inputs]
        self.output_names = ["output"]
        self._named = False  # the names come from the first run's return value (a dict's keys)
        self.index_ranges = dict(index_ranges or {})
        self._declared_types = dict(declared_types or {})

    @property
    def declared_types(self) -> dict:
        return self._declared_types

    def index_range(self, name: str) -> int | None:
        return self.index_ranges.get(name)

    def precision(self):
        """Strict fp32 on GPUs unless TF32 is asked for: TF32 convolutions make exact models look 1e-3 off;
        a model checked in float64 makes its own tensors in float64."""
        import torch

        stack = contextlib.ExitStack()
        if self.float_dtype == "float64":
            stack.enter_context(default_float_dtype(torch.float64))
        if not self.device.startswith("cuda"):
            return stack
        previous = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = self.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32

        def restore():
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous

        stack.callback(restore)
        return stack

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(self.device) for spec in self.inputs]
        try:
            with torch.no_grad(), self.precision():
                returned = self.module(*tensors)
                outputs = flatten_outputs(returned)
        except Exception as error:
            raise ModelRunError(f"the model could not run: {first_line(error)}") from None
        if not outputs:
            raise ModelRunError("the model returned no tensor")
        if not self._named or len(self.output_names) != len(outputs):
            self.output_names, self._named = output_names_of(returned), True
        return [o.detach().float().cpu().numpy() if o.dtype == torch.bfloat16 else o.detach().cpu().numpy()
                for o in outputs]
