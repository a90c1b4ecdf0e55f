"""PyTorch layers from the model's graph: every leaf module call and every functional op between them.

A Python module is traced with ``torch.fx`` (leaf modules kept whole: modules without children, torch's
own, and eqcheck.nn-declared ones; containers traced through), a ``.pt2`` is its own exported graph (ops
grouped into the leaf module that ran them, from ``nn_module_stack``). The graph then runs node by node,
so any node's value can be captured or replaced: a ``torch.roll`` between modules is a layer
(``forward.roll``), a container never is, and a module called twice gives ``name#1``, ``name#2``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqcheck.errors import ModelRunError
from eqcheck.layers.glue import op_name
from eqcheck.layers.trace import LayerTracer, Site, numbered, stack_items
from eqcheck.models.base import first_line


@dataclass
class GraphLayer:
    """Consecutive graph nodes that make one layer: each value read outside them is one of its outputs.
    ``call``: which call of its module (an exported graph's ``nn_module_stack`` key, ``c`` / ``c@1``)."""

    nodes: list = field(default_factory=list)
    module_path: str | None = None
    module_type: str | None = None
    call: str | None = None


def _op_name(target) -> str:
    """glue.op_name, a Python function's or method's name without its underscores (``__add__``, ``mul_``)."""
    text = str(target)
    return op_name(target) if text.startswith("aten.") else (op_name(target).strip("_") or text)


def _type_name(value) -> str:
    text = value if isinstance(value, str) else getattr(value, "__name__", str(value))
    return text.rsplit(".", 1)[-1].strip("'>")


def _stack(node) -> list[tuple[str, str]]:
    """``(module path, type name)`` from the outermost module to the innermost that ran ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    return [(str(path), _type_name(kind)) for path, kind in stack.values()]


def is_layer_module(module) -> bool:
    """Kept whole as one layer: declared by its author (eqcheck.nn attributes, e3nn's ``irreps_out``), one of
    torch's own modules (but not its containers), or a module without children."""
    import torch

    if getattr(module, "eqcheck_output_type", None) is not None or getattr(module, "irreps_out", None) is not None:
        return True
    if isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
        return False
    return module.__module__.startswith("torch.nn") or next(module.children(), None) is None


def declared_types(module) -> dict[str, str | None]:
    """The types a module states, as Site fields: eqcheck.nn's class attributes (``declared_group``,
    ``declared_in``, ``declared_out``), or e3nn's ``irreps_in`` (``irreps_in1`` and ``irreps_in2`` of a
    tensor product) and ``irreps_out``, which hold under any 3-D group."""
    if module is None:
        return {}
    out = getattr(module, "eqcheck_output_type", None)
    if out is not None:
        return {"declared_group": getattr(module, "eqcheck_group", None),
                "declared_in": getattr(module, "eqcheck_input_type", None), "declared_out": out}
    irreps_out = getattr(module, "irreps_out", None)
    if irreps_out is None:
        return {}
    irreps_in = getattr(module, "irreps_in", None)
    irreps_in = getattr(module, "irreps_in1", None) if irreps_in is None else irreps_in
    second = getattr(module, "irreps_in2", None)
    return {"declared_in": None if irreps_in is None else str(irreps_in), "declared_out": str(irreps_out),
            "declared_in2": None if second is None else str(second)}


def trace_module(module):
    """The module as a ``torch.fx.GraphModule`` whose call_module nodes are its layer modules, in-place
    ops made explicit (``functional_inplace``), or None when it cannot be traced symbolically (control
    flow on values, ``*args``, and the like). Arguments with defaults are traced at their defaults."""
    import inspect

    import torch

    class LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return is_layer_module(m)

    try:
        parameters = inspect.signature(module.forward).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            return None
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        graph = LeafTracer().trace(module, concrete_args=defaults or None)
        traced = torch.fx.GraphModule(module, graph)
        functional_inplace(traced.graph)
        traced.recompile()
        return traced
    except Exception:
        return None


#: in-place ops called as functions (``x += y`` traces to ``operator.iadd``)
_INPLACE_FUNCTIONS = {"iadd", "isub", "imul", "itruediv", "ifloordiv", "ipow", "iand", "ior", "ixor"}


def _is_inplace(node) -> bool:
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("_")
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in _INPLACE_FUNCTIONS
    return False


def functional_inplace(graph) -> None:
    """After an in-place op (``y.mul_(w)``), the nodes that read ``y`` read the op's result instead: the
    op is then a layer whose output is what they read, and a break it makes is its own."""
    order = {node: index for index, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        if not _is_inplace(node) or not node.args or not hasattr(node.args[0], "users"):
            continue
        target = node.args[0]
        for user in list(target.users):
            if user is not node and order.get(user, -1) > order[node]:
                user.replace_input_with(target, node)


class GraphTracer(LayerTracer):
    """Layers of a ``torch.fx.GraphModule``, captured by running its graph node by node."""

    def __init__(self, runner, graph_module, root=None) -> None:
        self.runner = runner
        self.graph_module = graph_module
        self.root = root if root is not None else graph_module
        #: traced by eqcheck from the module's Python code (not a .pt2's own graph): where the traced
        #: graph does not run as the model does, hooks on the same modules stand in
        self.from_python = root is not None
        self.module = self.root  # what names code between layers (analysis.build_rows); every op is one here
        self.calls: list = []
        self.stacked = runner.batch_dynamic
        self.input_names = [spec.name for spec in runner.inputs]
        nodes = list(graph_module.graph.nodes)
        # the model's inputs first; arguments traced at their defaults keep them (fx's placeholder default)
        placeholders = [n for n in nodes if n.op == "placeholder"][:len(self.input_names)]
        if len(placeholders) != len(self.input_names) or any(
                not n.args for n in nodes if n.op == "placeholder" and n not in placeholders):
            raise ModelRunError(f"the traced graph does not take the model's {len(self.input_names)} input(s)")
        self.keys = {n: n.name for n in nodes}
        self.keys.update(zip(placeholders, self.input_names))
        self.live = _depends_on(nodes, set(placeholders))
        self.layers = _group_layers(nodes, self.live)
        self.ending = LayerEnds(self.layers)
        self.sites: list[Site] = []
        self.axes: dict[str, int] = {}
        self.layouts: dict[str, tuple[int, int]] = {}
        self.ref: dict[str, np.ndarray] = {}
        self.batch = 0

    # ---- running the graph -----------------------------------------------------------------------
    def _run(self, feeds, wanted: set[str] | None, replace: dict) -> dict[str, np.ndarray]:
        import torch

        keys, values = self.keys, {}
        live, ending = self.live, self.ending

        class Run(torch.fx.Interpreter):
            def run_node(self, node):
                out = super().run_node(node)
                if node.op == "output" or node in ending.deferred:
                    return out
                for member in (*ending.last.get(node, ()), node):
                    value = out if member is node else self.env[member]
                    tensor = first_float(value) if member in live else None
                    if tensor is None:
                        continue
                    key = keys[member]
                    if wanted is None or key in wanted:
                        values[key] = to_numpy(tensor).copy()  # a later in-place op must not change it
                    if key in replace:  # what the layer computed is captured; what reads it reads the patch
                        value = _replaced(value, tensor, replace[key].to(tensor.dtype))
                        if member is node:
                            out = value
                        else:
                            self.env[member] = value
                return out

        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.runner.device) for n in self.input_names]
        precision = self.runner.precision  # TF32 as the check runs it
        try:
            with torch.no_grad(), precision():
                Run(self.graph_module).run(*tensors)
        except ModelRunError:
            raise
        except Exception as error:
            raise ModelRunError(f"the layer capture could not run: {first_line(error)}") from None
        return values

    def reference(self, feeds):
        self.ref = self._run(feeds, None, {})
        self.batch = next(iter(feeds.values())).shape[0]
        self.sites = self._sites()
        return self.ref

    def _sites(self) -> list[Site]:
        keys = self.keys
        drafts = []
        for index, layer in enumerate(self.layers):
            members = set(layer.nodes)
            # every value the layer hands on is an output of its own (e3nn's Extract hands on three): an
            # error that only one of them carries is then seen where it is made
            outputs = [n for n in layer.nodes if keys[n] in self.ref
                       and (n.op == "call_module" or _used_outside(n, members))]
            if not outputs:
                continue
            inputs = []
            for node in layer.nodes:
                for source in node.all_input_nodes:
                    if source not in members and keys[source] in self.ref and keys[source] not in inputs:
                        inputs.append(keys[source])
            name, op, module, constants = self._describe(layer)
            for position, output in enumerate(outputs):
                label = name if len(outputs) == 1 else f"{name}[{position}]"
                drafts.append((label, op, module, constants, keys[output], tuple(inputs), index))
        sites = []
        for (_, op, module, constants, output, inputs, index), name in zip(drafts, numbered([d[0] for d in drafts])):
            sites.append(Site(
                name=name, op=op, output=output, inputs=inputs, node=name, constants=constants, span=(index, index),
                **declared_types(module)))
        return sites

    def _describe(self, layer: GraphLayer) -> tuple[str, str, object, tuple[str, ...]]:
        """``(name, op, module, constants)``: a layer module by its path and class; an op by the module
        whose forward runs it and the op (``forward.roll`` at the top), or by the parameter it reads
        (``pos`` for ``x + self.pos``)."""
        if layer.module_path is not None:
            module = _submodule(self.root, layer.module_path)
            # an exported graph names the class that ran (its own copy of the module is a plain Module)
            op = layer.module_type or (type(module).__name__ if module is not None else "module")
            return layer.module_path, op, module, ()
        node = layer.nodes[-1]
        op = _op_name(node.target)
        attrs = tuple(str(s.target) for s in node.all_input_nodes if s.op == "get_attr" and s not in self.live
                      and not str(s.target).startswith("_tensor_constant"))  # fx's own name for a literal
        stack = _stack(node)
        scope = stack[-1][0] if stack and stack[-1][0] else ""
        if attrs:
            return attrs[0], op, None, attrs
        return f"{scope}.{op}" if scope else f"forward.{op}", op, None, ()

    def capture(self, sites, items, groups, identity=None, patches=None):
        wanted = {k for s in sites for k in (s.output, *s.inputs)}
        runs = torch_runs(self, items, groups, patches or {}, lambda feeds, replace: self._run(feeds, wanted, replace))
        return self.split_captured(wanted, runs, identity)


class LayerEnds:
    """A layer's values are read when its last node has run: a value it writes in place afterwards (e3nn's
    ``Extract`` fills ``x.new_zeros(...)`` through ``narrow(...).copy_(...)``) is then complete, and a patch
    of it is what the next layers read, while the layer's own nodes read what it computed."""

    def __init__(self, layers: list[GraphLayer]) -> None:
        #: by a layer's last node, the layer's other values that later layers read (read when it has run)
        self.last: dict = {}
        for layer in layers:
            members = set(layer.nodes)
            handed_on = [n for n in layer.nodes[:-1] if _used_outside(n, members)]
            if handed_on:
                self.last[layer.nodes[-1]] = handed_on
        self.deferred = {node for nodes in self.last.values() for node in nodes}


def torch_runs(tracer, items, groups, patches, run) -> list[tuple[dict[str, np.ndarray], int]]:
    """``run(feeds, replace)`` for each group of items, stacked as the tracer's layouts say, with the
    patched tensors (per item) as torch tensors on the runner's device: ``(values by key, item count)``."""
    import torch

    runs = []
    for group in groups:
        feeds = {n: stack_items([items[i][n] for i in group], 0) for n in tracer.input_names}
        replace = {k: torch.from_numpy(np.ascontiguousarray(stack_items([v[i] for i in group], *tracer.layouts[k])))
                   .to(tracer.runner.device) for k, v in patches.items()}
        runs.append((run(feeds, replace), len(group)))
    return runs


def _depends_on(nodes, sources: set) -> set:
    """The nodes whose value depends on ``sources`` (the model's inputs): activations, not constants."""
    live = set(sources)
    for node in nodes:
        if any(s in live for s in node.all_input_nodes):
            live.add(node)
    return live


def _used_outside(node, members: set) -> bool:
    return any(user not in members for user in node.users)


def _group_layers(nodes, live: set) -> list[GraphLayer]:
    """Live nodes in graph order, one layer per call_module node (a traced Python module) or per run of
    consecutive ops that the same leaf module ran (an exported graph), else one per op."""
    paths = {path for node in nodes for path, _ in _stack(node)}
    leaves = {p for p in paths if p and not any(q.startswith(p + ".") for q in paths)}
    layers: list[GraphLayer] = []
    for node in nodes:
        if node not in live or node.op in ("placeholder", "output", "get_attr"):
            continue
        if node.op == "call_module":
            if str(node.target).startswith("_guards"):
                continue
            layers.append(GraphLayer([node], str(node.target)))
            continue
        stack = _stack(node)
        path, kind = stack[-1] if stack else ("", None)
        call = list((node.meta.get("nn_module_stack") or {"": None}))[-1]
        if path in leaves:
            if layers and layers[-1].module_path == path and layers[-1].call == call:
                layers[-1].nodes.append(node)
            else:
                layers.append(GraphLayer([node], path, kind, call))
        else:
            layers.append(GraphLayer([node]))
    return layers


def _submodule(root, path: str):
    try:
        return root.get_submodule(path)
    except (AttributeError, TypeError):
        return None


def first_float(value):
    """The first floating-point tensor of a module's or op's output (nested tuples, lists, dicts), or None."""
    import torch

    from eqcheck.models.torch_runner import flatten_outputs

    return next((t for t in flatten_outputs(value) if isinstance(t, torch.Tensor) and t.is_floating_point()), None)


def to_numpy(tensor) -> np.ndarray:
    """A tensor as a numpy array on the CPU (bfloat16 as float32)."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()


def _replaced(out, tensor, new):
    """``out`` with its first floating tensor replaced (a tensor, or a tuple or list holding one)."""
    if out is tensor:
        return new
    if isinstance(out, (tuple, list)):
        return type(out)(new if item is tensor else item for item in out)
    return out
