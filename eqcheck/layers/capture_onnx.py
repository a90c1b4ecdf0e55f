"""ONNX layers: top-level tensors as extra outputs of a copy of the model, broken tensors replaced by inputs."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from eqcheck.errors import ModelRunError
from eqcheck.layers.trace import LayerTracer, Site, split_runs, stack_items

SCOPE_KEYS = ("pkg.torch.onnx.name_scopes",)


#: above this many bytes of weights, capture copies share one weights file instead of carrying them
SHARED_WEIGHTS_BYTES = 16 * 2**20


def _session(model_bytes: bytes | str, device: str, optimize: bool):
    import onnxruntime as ort

    from eqcheck.models.onnx_runner import _providers

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads would slow numpy
    # small models: the session that is quickest to build; large ones: the one that runs fastest
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.enable_cpu_mem_arena = not optimize  # on large models an arena would keep each capture's peak
    return ort.InferenceSession(model_bytes, options, providers=_providers(device))


def _scopes(node) -> list[str] | None:
    """The torch module path of a node from the dynamo exporter's metadata, root first."""
    props = {p.key: p.value for p in node.metadata_props}
    if SCOPE_KEYS[0] in props:
        try:
            return [str(s) for s in ast.literal_eval(props[SCOPE_KEYS[0]])]
        except (ValueError, SyntaxError):
            return None
    if "namespace" in props:  # ": Sequential/conv1: Conv2d/conv2d: aten.conv2d.default"
        return [part.split(":")[0].strip() for part in props["namespace"].split("/")]
    return None


def layer_name(node) -> str:
    """Node names as exported (``/conv1/Conv``); dynamo nodes get their module path (``conv1/node_Conv_0``)."""
    name = node.name or node.output[0]
    scopes = _scopes(node)
    if scopes:
        path = ".".join(s for s in scopes[1:-1] if s)
        if path and not name.startswith("/"):
            return f"{path}/{name}"
    return name


def _subgraph_names(node) -> set[str]:
    """Every name a node's subgraphs (If/Loop/Scan bodies) read, from any depth."""
    import onnx

    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for graph in graphs:
            for inner in graph.node:
                names.update(inner.input)
                names |= _subgraph_names(inner)
    return names


class OnnxTracer(LayerTracer):
    """Reads the runner's model (weights included), never the tensors inside If/Loop bodies."""

    def __init__(self, runner) -> None:
        import onnx

        self.device = runner.device
        self.stacked = runner.batch_dynamic
        source = runner.source
        if isinstance(source, (bytes, bytearray)):
            self.model = onnx.load_from_string(bytes(source))
        else:
            self.model = onnx.load(str(source), load_external_data=True)
            if any(t.data_location == onnx.TensorProto.EXTERNAL for t in self.model.graph.initializer):
                onnx.external_data_helper.load_external_data_for_model(self.model, str(Path(source).parent))
        graph = self.model.graph
        self._folder = None
        if sum(len(t.raw_data) for t in graph.initializer) > SHARED_WEIGHTS_BYTES:
            import tempfile

            self._folder = tempfile.TemporaryDirectory(prefix="eqcheck-layers-")
            onnx.save_model(self.model, str(Path(self._folder.name) / "model.onnx"), save_as_external_data=True,
                            all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024)
        self.initializers = {t.name: t for t in graph.initializer}
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.initializers]
        dynamic = set(self.graph_inputs)
        self.nodes = list(graph.node)
        self.inner = [_subgraph_names(node) for node in self.nodes]
        for node, inner in zip(self.nodes, self.inner):
            if (set(node.input) | inner) & dynamic:
                dynamic.update(o for o in node.output if o)
        self.dynamic = dynamic
        self.produced = [o for node in graph.node for o in node.output if o]
        self.sites = []
        self.axes: dict[str, int] = {}
        self.layouts: dict[str, tuple[int, int]] = {}
        self.ref: dict[str, np.ndarray] = {}
        self.ref_shapes: dict[str, tuple[int, ...]] = {}
        self._sessions: dict[tuple, object] = {}

    def _capture_session(self, names: list[str], patched: frozenset = frozenset()):
        """A copy of the model that also outputs ``names``; readers of a ``patched`` tensor read the
        graph input ``NAME@patch`` instead."""
        import onnx
        from onnx import helper

        key = (frozenset(names), patched)
        if key not in self._sessions:
            model = onnx.ModelProto()
            model.CopyFrom(self.model)
            for node in model.graph.node:
                for position, name in enumerate(node.input):
                    if name in patched:
                        node.input[position] = f"{name}@patch"
            for name in sorted(patched):
                dtype = helper.np_dtype_to_tensor_dtype(self._dtypes[name])
                model.graph.input.append(helper.make_tensor_value_info(f"{name}@patch", dtype, None))
            existing = {o.name for o in model.graph.output}
            for name in names:
                if name not in existing:
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
            self._sessions = {}  # the previous capture's session goes before the next one is built
            if self._folder is not None:  # the copy refers to the weights file written once
                path = Path(self._folder.name) / "capture.onnx"
                onnx.save_model(model, str(path))
                self._sessions[key] = _session(str(path), self.device, True)
            else:
                self._sessions[key] = _session(model.SerializeToString(), self.device, False)
        return self._sessions[key]

    def _run(self, session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in session.get_outputs()]
        try:
            values = session.run(None, feeds)
        except Exception as error:
            raise ModelRunError(f"the layer capture could not run: {str(error).splitlines()[0]}") from None
        return dict(zip(names, values))

    def reference(self, feeds):
        captured = self._run(self._capture_session(self.produced), feeds)
        captured.update(feeds)
        self.ref_shapes = {k: tuple(v.shape) for k, v in captured.items()}
        self.ref = captured
        self.batch = next(iter(feeds.values())).shape[0]
        self._dtypes = {k: np.asarray(v).dtype for k, v in captured.items()}
        floating = {k for k, v in captured.items() if k in self.dynamic and np.asarray(v).dtype.kind == "f"}
        names: dict[str, int] = {}
        for node in self.nodes:
            outputs = [o for o in node.output if o in floating]
            if not outputs:
                continue
            name = layer_name(node)
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name}#{names[name]}"
            self.sites.append(Site(
                name=name, op=node.op_type, output=outputs[0], tensor=outputs[0], node=node.name,
                inputs=tuple(i for i in node.input if i in floating),
                constants=tuple(i for i in node.input if i and i not in self.dynamic)))
        return captured

    def capture(self, sites, items, groups, identity=None, patches=None):
        patches = patches or {}
        names = list(dict.fromkeys(k for s in sites for k in (s.output, *s.inputs) if k not in self.graph_inputs))
        everything = len(sites) == len(self.sites) and not patches
        session = self._capture_session(self.produced if everything else names, frozenset(patches))
        runs: list[tuple[dict[str, np.ndarray], int]] = []
        for group in groups:
            feeds = {n: stack_items([items[i][n] for i in group], 0) for n in self.graph_inputs}
            for name, values in patches.items():
                feeds[f"{name}@patch"] = stack_items([values[i] for i in group], *self.layouts[name])
            values = self._run(session, feeds)
            values.update({n: feeds[n] for n in self.graph_inputs})
            runs.append((values, len(group)))
        result: dict[str, list[np.ndarray]] = {}
        for name in dict.fromkeys(names + [i for s in sites for i in s.inputs]):
            if name not in runs[0][0] or name not in self.ref:
                continue
            split = split_runs(self.ref[name], [(values[name], count) for values, count in runs], identity=identity,
                               batch=self.batch)
            if split is not None:
                result[name], self.layouts[name] = split
                self.axes[name] = split[1][0]
        return result

    def close(self):
        self._sessions = {}
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
