"""PyTorch layers by forward hooks, for a model whose forward cannot be traced (capture_graph.py does the
rest): hooks on the layer modules (leaves, torch's own, declared ones; never containers), broken outputs
replaced by hooks; code between modules is found where an error appears that no module made."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqcheck.errors import ModelRunError
from eqcheck.layers.capture_graph import declared_types, first_float, is_layer_module, to_numpy, torch_runs
from eqcheck.layers.trace import LayerTracer, Site, numbered
from eqcheck.models.base import first_line
from eqcheck.models.torch_runner import flatten_outputs


def output_key(index: int) -> str:
    """The capture's key of the model's ``index``-th output tensor (flatten_outputs' order)."""
    return "<output>" if index == 0 else f"<output{index}>"


def _arg_key(arg, produced: list, index: int, position: int) -> str | None:
    """The key of a tensor argument: the latest layer output (or model input) it is, else its own key."""
    import torch

    if not isinstance(arg, torch.Tensor):
        return None
    for tensor, key in reversed(produced):
        if tensor is arg:
            return key
    return f"{index}:in{position}"


def _replaced(out, tensor, new):
    """``out`` with its first floating tensor replaced (a tensor, or a tuple or list holding one)."""
    if out is tensor:
        return new
    if isinstance(out, (tuple, list)):
        return type(out)(new if item is tensor else item for item in out)
    return None  # other containers are left alone: the layers after it keep their captured inputs


@dataclass
class Call:
    """One module call of the reference run: what it read and wrote, and when it started and ended."""

    name: str
    module: object
    enter: int
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    exit: int = -1
    output: object = None
    arg_keys: list = field(default_factory=list)


def layer_modules(root) -> list[tuple[str, object]]:
    """``(path, module)`` of the modules that are layers, outermost first; none inside another."""
    found: list[tuple[str, object]] = []
    for name, module in root.named_modules():
        if name and is_layer_module(module) and not any(name.startswith(p + ".") for p, _ in found):
            found.append((name, module))
    return found


class TorchTracer(LayerTracer):
    """Hooks on named modules; a module called k times gives layers ``name#1`` .. ``name#k``."""

    def __init__(self, runner) -> None:
        module = runner.module
        self.module = module
        self.runner = runner
        self.stacked = runner.batch_dynamic
        self.input_names = [spec.name for spec in runner.inputs]
        self.modules = layer_modules(module)
        self.sites = []
        self.calls: list[Call] = []
        self.axes: dict[str, int] = {}
        self.layouts: dict[str, tuple[int, int]] = {}
        self.ref: dict[str, np.ndarray] = {}
        self.output_keys: dict[str, str] = {}

    def _forward(self, feeds, on_enter, on_exit, produced: list | None = None):
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.runner.device) for n in self.input_names]
        if produced is not None:
            produced.extend(zip(tensors, self.input_names))
        handles = []
        for name, m in self.modules:
            handles.append(m.register_forward_pre_hook(  # may return (args, kwargs) to replace them
                lambda mod, args, kwargs, name=name: on_enter(name, mod, args, kwargs), with_kwargs=True))
            handles.append(m.register_forward_hook(  # may return an output to replace it
                lambda mod, args, kwargs, out, name=name: on_exit(name, mod, out), with_kwargs=True))
        precision = self.runner.precision  # TF32 as the check runs it
        try:
            with torch.no_grad(), precision():
                output = self.module(*tensors)
        except ModelRunError:
            raise
        except Exception as error:
            raise ModelRunError(f"the layer capture could not run: {first_line(error)}") from None
        finally:
            for handle in handles:
                handle.remove()
        return tensors, output

    def reference(self, feeds):
        calls, stack, clock = self.calls, [], [0]
        captured: dict[str, np.ndarray] = {n: np.asarray(feeds[n]) for n in self.input_names}
        produced: list[tuple[object, str]] = []  # (tensor, key), latest last: who wrote what a call reads

        def enter(name, mod, args, kwargs):
            index = len(calls)
            call = Call(name, mod, clock[0], tuple(args), dict(kwargs))
            clock[0] += 1
            inplace = getattr(mod, "inplace", False)
            for position, arg in enumerate(args):
                key = _arg_key(arg, produced, index, position)
                if key is not None and key not in captured:
                    captured[key] = to_numpy(arg).copy() if inplace else to_numpy(arg)
                    produced.append((arg, key))  # a later call reading the same tensor shares the key
                elif key is not None and inplace:
                    captured[key] = captured[key].copy()  # the module is about to overwrite it
                call.arg_keys.append(key)
            calls.append(call)
            stack.append((index, call))

        def leave(name, mod, out):
            index, call = stack.pop()
            call.exit, clock[0] = clock[0], clock[0] + 1
            call.output = first_float(out)
            if call.output is not None:
                key = f"{index}:out"
                captured[key] = to_numpy(call.output)
                produced.append((call.output, key))

        _, output = self._forward(feeds, enter, leave, produced)
        names = self.runner.output_names
        for index, tensor in enumerate(flatten_outputs(output)):  # computed by code after the last module
            if tensor.is_floating_point() and not any(t is tensor for t, _ in produced) and index < len(names):
                key = output_key(index)
                captured[key], self.output_keys[key] = to_numpy(tensor), names[index]
        self.ref = captured
        self.batch = next(iter(feeds.values())).shape[0]
        self.sites = self._sites()
        return captured

    def _sites(self) -> list[Site]:
        sites = []
        for index, (call, name) in enumerate(zip(self.calls, numbered([c.name for c in self.calls]))):
            if call.output is None:
                continue
            mod = call.module
            sites.append(Site(
                name=name, op=type(mod).__name__, output=f"{index}:out", node=call.name,
                inputs=tuple(k for k in call.arg_keys if k is not None),
                **declared_types(mod),
                span=(call.enter, call.exit)))
        return sites

    def capture(self, sites, items, groups, identity=None, patches=None):
        wanted = {k for s in sites for k in (s.output, *s.inputs)} | set(self.output_keys)
        runs = torch_runs(self, items, groups, patches or {},
                          lambda feeds, replace: self._capture_run(feeds, wanted, replace))
        return self.split_captured(wanted, runs, identity)

    def _capture_run(self, feeds, wanted: set[str], replace: dict) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {n: feeds[n] for n in self.input_names if n in wanted}
        outputs: dict[str, object] = {}
        order = iter(range(len(self.calls)))
        stack = []

        def enter(name, mod, args, kwargs):
            index = next(order, None)
            if index is None or self.calls[index].name != name:
                raise ModelRunError("transformed inputs took another path through the model's modules")
            if getattr(mod, "inplace", False):
                for key, tensor in outputs.items():
                    if any(a is tensor for a in args):
                        values[key] = values[key].copy()
            stack.append(index)
            patched, changed = list(args), False
            for position, key in enumerate(self.calls[index].arg_keys):
                own = key == f"{index}:in{position}"
                if own and key in wanted:
                    values[key] = to_numpy(args[position]).copy()
                # code's result read by several modules is keyed by its first reader: every reader gets the
                # patch (a module's output is patched where the module returns it)
                if key in replace and (own or not key.endswith(":out")):
                    patched[position], changed = replace[key].to(args[position].dtype), True
            return (tuple(patched), kwargs) if changed else None

        def leave(name, mod, out):
            index = stack.pop()
            key = f"{index}:out"
            tensor = first_float(out)
            if key in wanted and tensor is not None:
                values[key], outputs[key] = to_numpy(tensor), tensor
            if key in replace and tensor is not None:
                return _replaced(out, tensor, replace[key].to(tensor.dtype))
            return None

        _, output = self._forward(feeds, enter, leave)
        for index, tensor in enumerate(flatten_outputs(output)):
            if output_key(index) in wanted:
                values[output_key(index)] = to_numpy(tensor)
        return values

    def close(self):
        self.calls = []
