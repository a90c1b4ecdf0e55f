"""ONNX layers: top-level tensors as extra outputs of a copy of the model, broken tensors replaced by inputs."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from eqcheck.errors import ModelRunError
from eqcheck.layers.buffers import BufferPool
from eqcheck.layers.onnx_views import derive_views, is_view, view_inputs
from eqcheck.layers.trace import LayerTracer, Site, stack_items
from eqcheck.models import onnx_proto
from eqcheck.models.base import ModelRunner
from eqcheck.models.onnx_runner import plain_session

SCOPE_KEYS = ("pkg.torch.onnx.name_scopes",)


#: above this many bytes of weights, capture sessions are optimized (they take longer to build and run
#: faster: a large model's runs outweigh the building)
OPTIMIZED_WEIGHTS_BYTES = 16 * 2**20
#: above this many bytes, the weights are held in a file that capture sessions read, not in memory
#: beside every session's own copy (ResNet-50's 97 MiB: 0.08 GiB of peak memory)
FILE_WEIGHTS_BYTES = 64 * 2**20


def needed_nodes(io: list[tuple[tuple[str, ...], tuple[str, ...]]], inner: list[set[str]],
                 wanted: set[str], patched: frozenset = frozenset()) -> list[bool]:
    """Which nodes (``(inputs, outputs)`` each, in graph order) compute ``wanted``, and what they read,
    subgraph reads included; a ``patched`` tensor is fed, so what computes it is not needed for the
    nodes that read it (subgraphs still read the tensor itself)."""
    keep = [False] * len(io)
    changed = True
    while changed:  # one pass backwards where the nodes are sorted, as ONNX asks; more where not
        changed = False
        for position in range(len(io) - 1, -1, -1):
            inputs, outputs = io[position]
            if not keep[position] and not wanted.isdisjoint(outputs):
                keep[position] = changed = True
                wanted.update(i for i in inputs if i not in patched)
                wanted.update(inner[position])
    return keep


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


#: bytes of tensors the output check's forward passes may leave for the analysis to read (RecordingRunner)
RECORD_BUDGET = 1 << 28


#: AttributeProto.GRAPH and AttributeProto.GRAPHS
GRAPH_ATTRIBUTES = (5, 10)
#: the standard ops with subgraphs (other domains' ops are looked at too)
GRAPH_OPS = {"If", "Loop", "Scan", "SequenceMap"}


def _subgraph_names(node) -> set[str]:
    """Every name a node's subgraphs (If/Loop/Scan bodies) read, from any depth."""
    names: set[str] = set()
    for attr in node.attribute:
        if attr.type not in GRAPH_ATTRIBUTES:
            continue
        graphs = [attr.g] if attr.type == GRAPH_ATTRIBUTES[0] else list(attr.graphs)
        for graph in graphs:
            for inner in graph.node:
                names.update(inner.input)
                names |= _subgraph_names(inner)
    return names


class OnnxTracer(LayerTracer):
    """Reads the runner's model (weights included), never the tensors inside If/Loop bodies."""

    def __init__(self, runner) -> None:
        self.device = runner.device
        self.stacked = runner.batch_dynamic
        source = runner.source
        raw = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        self.model = onnx_proto.parse_model(raw)
        if any(t.data_location == onnx_proto.EXTERNAL for t in self.model.graph.initializer):
            onnx_proto.load_external_data(self.model, Path(source).parent)
        #: the weights, held once: every capture copy of the model is its graph alone, whose sessions
        #: read these arrays (nothing serialized twice); above FILE_WEIGHTS_BYTES, a file they read
        self.weights = onnx_proto.take_weights(self.model)
        size = sum(w.nbytes for w in self.weights.values())
        #: a model whose weights exceed OPTIMIZED_WEIGHTS_BYTES: its capture sessions are optimized, and
        #: the output check runs through the capture (RecordingRunner)
        self.large = size > OPTIMIZED_WEIGHTS_BYTES
        graph = self.model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.initializers]
        dynamic = set(self.graph_inputs)
        self.nodes = list(graph.node)
        #: each node's inputs and outputs (protobuf fields are slow to read again and again)
        self.io = [(tuple(node.input), tuple(o for o in node.output if o)) for node in self.nodes]
        self.inner = [_subgraph_names(node) if node.op_type in GRAPH_OPS or node.domain not in ("", "ai.onnx")
                      else set() for node in self.nodes]
        for (inputs, outputs), inner in zip(self.io, self.inner):
            if not dynamic.isdisjoint(inputs) or not dynamic.isdisjoint(inner):
                dynamic.update(outputs)
        self.dynamic = dynamic
        #: ops that only reshape a tensor that depends on an input: their outputs are computed from
        #: their inputs in numpy (eqcheck.layers.onnx_views), never outputs of a capture copy
        self.views = {node.output[0]: node for node, (inputs, _) in zip(self.nodes, self.io)
                      if is_view(node) and inputs[0] in dynamic}
        shapes = {name for node in self.views.values() for name in view_inputs(node)[1:]}
        #: what the views read (their data, shape and axes inputs): a patch of one is stacked for them
        self.view_reads = {name for node in self.views.values() for name in view_inputs(node)}
        #: the views' shape and axes inputs that are weights
        self.view_constants = {name: self.weights[name] if name in self.weights
                               else onnx_proto.tensor_array(self.initializers[name])
                               for name in shapes if name in self.initializers}
        self._folder = None  # the weights go to a file only once the views' constants are read from them
        if size > FILE_WEIGHTS_BYTES:
            import tempfile

            self._folder = tempfile.TemporaryDirectory(prefix="eqcheck-layers-")
            onnx_proto.store_weights(self.model, self.weights, self._folder.name, "weights.bin")
            self.weights = {}
        #: what a full capture outputs: every tensor that depends on an input (constants and what is
        #: computed from weights alone are never layers) but the views, and the views' other inputs
        self.produced = list(dict.fromkeys(
            [o for _, outputs in self.io for o in outputs if o in dynamic and o not in self.views]
            + [n for n in shapes if n not in self.initializers and n not in self.graph_inputs]))
        self.sites = []
        self.axes: dict[str, int] = {}
        self.layouts: dict[str, tuple[int, int]] = {}
        self.ref: dict[str, np.ndarray] = {}
        self._sessions: dict[tuple, object] = {}
        #: forward passes the output check made through the full capture (feeds, every tensor)
        self._records: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        self._recorded_bytes = 0
        #: the captures' output buffers, used again by the next chunk of layers once let go
        self._pool = BufferPool()
        #: whether capture runs write into the pool's buffers (until a run refutes an output's shape)
        self._binding = True

    @property
    def scan_model(self):
        """The parsed model, for eqcheck.structure.scan_onnx (which reads the weights' dims, not their values)."""
        return self.model

    def _capture_session(self, names: list[str], patched: frozenset = frozenset()):
        """A copy of the model that also outputs ``names``; readers of a ``patched`` tensor read the
        graph input ``NAME@patch`` instead, and the nodes that only fed patched tensors are left out."""
        key = (frozenset(names), patched)
        if key not in self._sessions:
            self._sessions = {}  # the previous capture's session goes before the next one is built
            self._sessions[key] = self._build_session(names, patched)
        return self._sessions[key]

    def _build_session(self, names: list[str], patched: frozenset):
        model = self._capture_model(names, patched)
        if self._folder is not None:  # the copy refers to the weights file written once
            path = Path(self._folder.name) / "capture.onnx"
            path.write_bytes(model.SerializeToString())
            return plain_session(str(path), self.device, self.large)
        weights = {t.name: self.weights[t.name] for t in model.graph.initializer if t.name in self.weights}
        return plain_session(model.SerializeToString(), self.device, self.large, weights)

    def _capture_names(self, sites, patched) -> tuple[list[str], list[str]]:
        """The tensors a capture of ``sites`` reads, and what its copy of the model outputs for them."""
        outputs = {s.output for s in sites}
        # what the sites read from earlier layers is fed where it is patched, not computed again
        names = list(dict.fromkeys(k for s in sites for k in (s.output, *s.inputs)
                                   if k not in self.graph_inputs and (k in outputs or k not in patched)))
        everything = len(sites) == len(self.sites) and not patched
        return names, (self.produced if everything else self._requested(names, patched))

    def _capture_model(self, names: list[str], patched: frozenset):
        """A copy of the model whose outputs are ``names`` (the model's own where there are none),
        holding only the nodes that compute them, readers of a patched tensor reading ``NAME@patch``:
        a chunk of a large model's layers runs the part of the model up to that chunk, from its patch."""
        proto = onnx_proto.messages()
        model = proto.ModelProto()
        model.CopyFrom(self.model)
        model.graph.ClearField("node")
        own = {o.name: o for o in self.model.graph.output}
        names = list(dict.fromkeys(names)) or list(own)  # a patched tensor too: its readers read NAME@patch
        keep = needed_nodes(self.io, self.inner, set(names), patched)
        model.graph.node.extend(node for node, k in zip(self.nodes, keep) if k)
        reads = {name for (inputs, _), inner, k in zip(self.io, self.inner, keep) if k for name in (*inputs, *inner)}
        unread = {t.name for t in self.model.graph.initializer if t.name not in reads}
        if unread:  # weights no kept node reads are left out (onnxruntime refuses values for them)
            model.graph.ClearField("initializer")
            model.graph.initializer.extend(t for t in self.model.graph.initializer if t.name not in unread)
            model.graph.ClearField("input")
            model.graph.input.extend(i for i in self.model.graph.input if i.name not in unread)
        if patched:
            read = set()
            for node in model.graph.node:
                for position, name in enumerate(node.input):
                    if name in patched:
                        node.input[position] = f"{name}@patch"
                        read.add(name)
            for name in sorted(read):  # a patch no kept node reads is not an input of the copy
                patch = model.graph.input.add()
                patch.name = f"{name}@patch"
                patch.type.tensor_type.elem_type = onnx_proto.tensor_type(self._dtypes[name])
        model.graph.ClearField("output")
        model.graph.output.extend(own[n] if n in own else proto.ValueInfoProto(name=n) for n in names)
        return model

    def _run(self, session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in session.get_outputs()]
        try:
            values = session.run(None, feeds)
        except Exception as error:
            raise ModelRunError(f"the layer capture could not run: {str(error).splitlines()[0]}") from None
        return dict(zip(names, values))

    def _run_into(self, session, feeds: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """``_run`` for a run of ``count`` items, its floating outputs written into the pool's buffers (their
        shapes: the reference's, the batch axis ``count`` times as long; a tensor not yet cut is taken to be
        batch first where its first axis is the batch). Where a run refutes a shape (a guess, or a shape
        that depends on the data), that run and every later one is made as ``_run`` makes it."""
        names = [o.name for o in session.get_outputs()]
        shapes = {name: shape for name in names if (shape := self._run_shape(name, count)) is not None}
        if not shapes or not self._binding:
            return self._run(session, feeds)
        buffers = dict(zip(shapes, self._pool.take([(shape, self._dtypes[name]) for name, shape in shapes.items()])))
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in names:
            if name in buffers:
                buffer = buffers[name]
                binding.bind_output(name, "cpu", 0, buffer.dtype, list(buffer.shape), buffer.ctypes.data)
            else:
                binding.bind_output(name, "cpu")
        try:
            session.run_with_iobinding(binding)
        except Exception:
            self._binding = False
            return self._run(session, feeds)  # what it gives, or the model's own error as _run gives it
        produced = binding.get_outputs()
        return {name: buffers[name] if name in buffers else produced[position].numpy()
                for position, name in enumerate(names)}

    def _run_shape(self, name: str, count: int) -> tuple[int, ...] | None:
        """The shape of a floating tensor in a run of ``count`` items, where it is known (or guessed)."""
        ref = self.ref.get(name)
        if ref is None or ref.dtype.kind != "f" or ref.ndim == 0:
            return None
        shape = list(ref.shape)
        if count > 1:
            axis, _ = self.layouts.get(name, (0 if shape[0] == self.batch else None, 1))
            if axis is None:
                return None
            shape[axis] *= count
        return tuple(shape)

    def _requested(self, names: list[str], patched=frozenset()) -> list[str]:
        """What a capture copy must output for ``names``: a view's inputs in place of the view, but those
        that are patched (fed: a view of them is computed from the patch)."""
        requested, pending = [], list(names)
        while pending:
            name = pending.pop()
            if name in self.views:
                pending.extend(n for n in view_inputs(self.views[name]) if n not in patched)
            elif name not in self.graph_inputs and name not in self.view_constants:
                requested.append(name)
        return list(dict.fromkeys(reversed(requested)))

    def _with_views(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        derive_views(self.views.values(), values, self.view_constants)
        return values

    def record(self, feeds: dict[str, np.ndarray], output_names: list[str]) -> list[np.ndarray] | None:
        """The model's outputs for ``feeds`` by the full capture, its every tensor kept (within
        RECORD_BUDGET) for the analysis to read instead of running the same pass again; None where the
        capture cannot give them (the caller runs the model itself)."""
        try:
            values = self._run(self._capture_session(self.produced), feeds)
        except Exception:  # a copy that cannot be built or run: the model runs itself (and says why)
            return None
        seen = {**values, **feeds}
        self._with_views(seen)
        if any(name not in seen for name in output_names):
            return None
        size = sum(np.asarray(v).nbytes for v in values.values())
        if self._recorded_bytes + size <= RECORD_BUDGET:
            self._records.append((feeds, values))
            self._recorded_bytes += size
        return [seen[name] for name in output_names]

    def _match(self, feeds: dict[str, np.ndarray]) -> int | None:
        """The position of a recorded pass on these very feeds."""
        for position, (fed, _) in enumerate(self._records):
            if fed.keys() == feeds.keys() and all(
                    a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))
                    for a, b in ((fed[k], feeds[k]) for k in feeds)):
                return position
        return None

    def recorded_groups(self, items):
        """The items grouped as the output check's recorded passes hold them: each pass a run of
        consecutive items, stacked in that order among inputs the analysis does not read (the unrelated
        input, where the output check stacked it with the transformed ones; the elements that move an
        image off its grid, which the layers are not checked on). None where the records do not hold every
        item; the records are then let go (the reference, read first, was their last use)."""
        grouping: list[list[int]] = []
        taken: list[int] = []
        while (start := sum(len(group) for group in grouping)) < len(items):
            found = next(((position, len(held)) for position, (fed, _) in enumerate(self._records)
                          if position not in taken and (held := _items_held(fed, items, start)[0])), None)
            if found is None:
                self._records, self._recorded_bytes = [], 0
                return None
            taken.append(found[0])
            grouping.append(list(range(start, start + found[1])))
        return grouping

    def _recorded_passes(self, items, groups) -> list[tuple[int, list[int], int]] | None:
        """For every group (consecutive items), the recorded pass that ran its items, a different one each:
        its position, which of its stacked items they are, and how many items it stacked; None where one
        is missing. Each pass is read once: the reference and the identity element are two passes, which
        a random model tells apart."""
        found: list[tuple[int, list[int], int]] = []
        for group in groups:
            taken = {position for position, _, _ in found}
            for position, (fed, _) in enumerate(self._records):
                held, count = _items_held(fed, items, group[0]) if position not in taken else ([], 0)
                if len(held) >= len(group):
                    found.append((position, held[:len(group)], count))
                    break
            else:
                return None
        return found

    def _stacked_feeds(self, items, group) -> dict[str, np.ndarray]:
        return {n: stack_items([items[i][n] for i in group], 0) for n in self.graph_inputs}

    def reference(self, feeds):
        found = self._match(feeds)
        if found is not None:
            captured = self._records.pop(found)[1]
        else:
            captured = self._run(self._capture_session(self.produced), feeds)
        captured.update(feeds)
        self._with_views(captured)
        self.ref = captured
        self.batch = next(iter(feeds.values())).shape[0]
        self._dtypes = {k: np.asarray(v).dtype for k, v in captured.items()}
        floating = {k for k, v in captured.items() if k in self.dynamic and np.asarray(v).dtype.kind == "f"}
        names: dict[str, int] = {}
        for node, (inputs, node_outputs) in zip(self.nodes, self.io):
            outputs = [o for o in node_outputs if o in floating]
            if not outputs:
                continue
            name = layer_name(node)
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name}#{names[name]}"
            self.sites.append(Site(
                name=name, op=node.op_type, output=outputs[0], tensor=outputs[0], node=node.name,
                inputs=tuple(i for i in inputs if i in floating),
                constants=tuple(i for i in inputs if i and i not in self.dynamic)))
        return captured

    def capture(self, sites, items, groups, identity=None, patches=None):
        patches = patches or {}
        names, requested = self._capture_names(sites, patches)
        # the output check's own passes, grouped as they ran (LayerAnalysis.run groups them so)
        recorded = self._recorded_passes(items, groups) if not patches and self._records else None
        replayed = recorded is not None
        session = None if replayed else self._capture_session(requested, frozenset(patches))
        inputs = {i.name for i in session.get_inputs()} if session is not None else set()
        # a patch is stacked where the copy or a view reads it; the others are what the capture gives
        # those tensors, item by item as they are
        stacked = [name for name in patches if f"{name}@patch" in inputs or name in self.view_reads]
        runs: list[tuple[dict[str, np.ndarray], int]] = []
        places: list[int] = []  # each item's place among the runs' items
        for index, group in enumerate(groups):
            fed = {name: np.ascontiguousarray(stack_items([patches[name][i] for i in group], *self.layouts[name],
                                                          copy=False))
                   for name in stacked}
            start = sum(count for _, count in runs)
            if replayed:  # every tensor of the recorded pass, those asked for among them
                position, held, count = recorded[index]
                feeds, values = (dict(part) for part in self._records[position])
                places.extend(start + k for k in held)  # its other items are read by no one
            else:
                places.extend(range(start, start + len(group)))
                count = len(group)
                feeds = self._stacked_feeds(items, group)
                values = self._run_into(session, {**{n: v for n, v in feeds.items() if n in inputs},
                                                  **{f"{n}@patch": v for n, v in fed.items() if f"{n}@patch" in inputs}},
                                        len(group))
            values.update(feeds)
            # a view reads its input as the graph's nodes do: the patch, where that input is patched
            seen = {**values, **{name: value for name, value in fed.items() if name not in self.views}}
            self._with_views(seen)
            values.update({name: seen[name] for name in self.views if name in seen})
            values.update({name: value for name, value in fed.items() if name not in values})
            runs.append((values, count))
        if replayed:  # what is left (the unrelated input's pass) is read by no one
            self._records, self._recorded_bytes = [], 0
        keys = dict.fromkeys(names + [i for s in sites for i in s.inputs])
        order = [i for group in groups for i in group]
        captured = self.split_captured(keys, runs, places[order.index(identity)] if identity in order else None)
        if len(places) < sum(count for _, count in runs):  # the items of recorded passes no one reads
            captured = {key: [cut[p] for p in places] for key, cut in captured.items()}
        for name in keys:
            if name in patches and name not in captured and name in self.layouts:
                captured[name] = [patches[name][i] for i in order]
        return captured

    def close(self):
        self._sessions = {}
        self._pool.clear()
        self._records, self._recorded_bytes = [], 0
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


class RecordingRunner(ModelRunner):
    """The model as the output check runs it, every pass made by the tracer's full capture (every tensor
    kept: OnnxTracer.record), so that the per-layer analysis reads the verdict's own passes, its reference
    and its transformed inputs, instead of making them again. Used for models with large weights
    (OnnxTracer.large), whose passes are long: chosen by the model and its first pass, never by timing one,
    so that a check's numbers come from one session and the same on every run."""

    def __init__(self, runner: ModelRunner, tracer: OnnxTracer) -> None:
        self.runner, self.tracer = runner, tracer
        self.description, self.format, self.device = runner.description, runner.format, runner.device
        self.inputs, self.output_names, self.notes = runner.inputs, runner.output_names, runner.notes
        self.batch_dynamic = runner.batch_dynamic
        #: the model file and its window scans (eqcheck.structure), shared with the runner
        self.source, self.scans = runner.source, runner.scans
        #: whether the passes are captures: the first pass decides (a copy that cannot give the model's
        #: outputs, one of which is a weight, say, never does), None until then
        self.capturing: bool | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = self.tracer.record(feeds, self.output_names) if self.capturing is not False else None
        if self.capturing is None:
            self.capturing = outputs is not None
        # where the capture cannot run these feeds, the model's own error, as it gives it
        return outputs if outputs is not None else self.runner.run(feeds)

    @property
    def declared_types(self) -> dict:
        return self.runner.declared_types

    def index_range(self, name: str) -> int | None:
        return self.runner.index_range(name)


def _items_held(fed: dict[str, np.ndarray], items: list[dict[str, np.ndarray]], start: int) -> tuple[list[int], int]:
    """Which of the items stacked on axis 0 in a pass on ``fed`` are ``items[start]``, ``items[start + 1]``
    and so on, in that order (as many as it holds), and how many items it stacked; ``[]`` where it does
    not hold ``items[start]``."""
    first = items[start]
    if fed.keys() != first.keys():
        return [], 0
    if all(fed[name] is value for name, value in first.items()):
        return [0], 1
    sizes = {value.shape[0] if value.ndim else None for value in first.values()}
    size = sizes.pop() if len(sizes) == 1 else None
    if not size:
        return [], 0
    totals = {value.shape[0] if value.ndim else None for value in fed.values()}
    total = totals.pop() if len(totals) == 1 else None
    if not total or total % size:
        return [], 0
    held: list[int] = []
    for block in range(total // size):
        item = start + len(held)
        if item < len(items) and _stacked_at(fed, items[item], block * size, size):
            held.append(block)
    return held, total // size


def _stacked_at(fed: dict[str, np.ndarray], item: dict[str, np.ndarray], at: int, size: int) -> bool:
    """Whether every input of ``item`` is ``fed``'s samples ``at .. at + size``."""
    for name, have in fed.items():
        wanted = item[name]
        if not (have.ndim and have.dtype == wanted.dtype and have.shape[1:] == wanted.shape[1:]
                and wanted.shape[0] == size):
            return False
        block = have[at:at + size]
        # a few leading entries first: most blocks are other items
        if not (np.array_equal(block.reshape(-1)[:64], wanted.reshape(-1)[:64]) and np.array_equal(block, wanted)):
            return False
    return True
