"""Layer by layer: every output's action and errors, and, where a layer breaks equivariance, one more run
in which every layer reads exact inputs."""
from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from eqcheck.actions.parse import group_convention, parse_representation, parse_type, regular_spec
from eqcheck.actions.representations import LAYOUTS, FittedAction, RegularFieldAction, Representation
from eqcheck.compare import Geometry
from eqcheck.discovery import too_few_samples
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.layers.expectation import Expectation, moves_alike
from eqcheck.layers.infer import (
    CLEAR_MARGIN, FOUND_MAX_ERROR, Choice, choose, find_irreps, find_matrices, find_permutation, find_row_order,
    score, scoring_elements,
)
from eqcheck.layers.layer_actions import RowOrderAction, layer_candidates, parse_layer_type
from eqcheck.layers.local import TensorErrors, spread64, tensor_errors, tensor_geometry, transformed_input
from eqcheck.layers.trace import LayerTracer, Site, run_groups, to_batch_first
from eqcheck.tolerance import Tolerance

#: bytes of captured tensors (all items, views and patches included) one chunk of layers may hold. Smaller
#: chunks are not more passes (each chunk's session is a subgraph fed the tensors carried into it) and their
#: buffers are reused from chunk to chunk: 256 MiB halved both time and peak memory of a ResNet-50 p4m check
#: against 1 GiB (9.3 s, 1.81 GiB to 4.8 s, 0.86 GiB); 128 MiB gained nothing more and cost at 256x256 images
LAYER_MEMORY_BUDGET = 1 << 28
#: runs with exact inputs after the first capture of a chunk: the first, then one more each time it
#: changed the action of a tensor that a layer reads (a pooling after a break is found invariant there;
#: a retyped tensor costs two: one to type what follows it afresh, one to make that exact)
MAX_EXACT_RUNS = 5
#: ops that only reshape their input's data (ONNX op types and torch module classes)
RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Unflatten"}
#: the same, lower case, with torch's methods that reshape (``x.view``, ``x.flatten``, ``x.reshape``)
RESHAPE_OPS = {name.lower() for name in RESHAPES} | {"view", "reshape", "flatten"}
#: ops that only move, copy or select their inputs' numbers (ONNX op types, torch modules, functions and
#: methods, lower case): given exact inputs, one whose output changes shape has an action of its own that
#: eqcheck may not name (a flattened image, tokens in a transposed layout), not an error it makes
DATA_MOVES = {name.lower() for name in RESHAPES} | {
    "view", "flatten", "unflatten", "permute", "transpose", "t", "contiguous", "expand", "expand_as", "repeat",
    "tile", "getitem", "cat", "concat", "stack", "split", "chunk", "movedim", "swapaxes", "narrow", "select",
    "slice", "gather", "depthtospace", "spacetodepth", "pixel_shuffle", "pixel_unshuffle"}


#: data moves that cut a tensor into pieces or join pieces (a circular pad exported as slices and a concat):
#: after a break, the action their output keeps from its input is a guess that a patch must not rest on
PIECES = {"slice", "concat", "cat", "narrow", "select", "getitem", "split", "chunk", "gather"}


#: ops that multiply their inputs (ONNX op types and torch names, lower case)
PRODUCTS = {"mul", "einsum", "matmul", "outer", "bmm"}
#: ops that scatter-add their inputs' numbers onto other rows (ONNX op types and torch names, lower case)
SCATTERS = {"scatterelements", "scatternd", "scatter_add", "index_add", "scatter_reduce"}


@dataclass
class View:
    """One captured tensor: reference and one item per testing element, as captured and batch first."""

    raw_ref: np.ndarray
    raw_items: list[np.ndarray]
    axis: int
    ref: np.ndarray
    items: list[np.ndarray]
    geometry: Geometry
    expect: Expectation
    #: ``||h(x') - h(x)|| / ||h(x)||``: only interpolated elements need it, so it is computed for them
    spread: float = float("nan")
    #: the tensor for the unrelated input, when one was run
    raw_other: np.ndarray | None = None
    #: errors already measured on this view, per action (a layer read before a break and given the same
    #: action after it has its cumulative errors measured once)
    measured: dict = dataclasses.field(default_factory=dict)

    def release(self) -> None:
        """Let go of the items and transformed copies once the view's errors are measured (its reference
        and its errors stay)."""
        self.raw_items, self.items, self.raw_other = [], [], None
        self.expect.forget()


@dataclass
class Analysed:
    """What the analysis found for one tensor: its action, the capture it was first seen in (where
    errors become visible) and the latest one (where every break before it was made exact)."""

    site: Site
    choice: Choice
    view: View
    first: View
    local: TensorErrors
    cumulative: TensorErrors | None = None
    input_action: Representation | None = None
    #: fails on its own, but the error vanishes in the layers after it: part of an equivariant block
    absorbed: bool = False
    #: a reshape of this tensor's data: its errors are those of the tensor it reshapes
    copy_of: "Analysed | None" = None
    #: its inputs were made exact with actions that the last run (MAX_EXACT_RUNS) still changed: its
    #: "local" error may include what earlier layers made, so it says nothing about the layer itself
    mixed: bool = False
    #: no action eqcheck knows explains it, and nothing says the layer made an error: a shape-changing
    #: move of exact data, or a layer reading such a tensor (``--layer-type`` can declare it)
    undetermined: bool = False

    def finish(self, analysis: "LayerAnalysis") -> None:
        """The cumulative error, under the action the layer was finally given."""
        if self.copy_of is not None and self.copy_of.cumulative is not None:
            self.cumulative = self.copy_of.cumulative
        elif self.first is self.view:
            self.cumulative = self.local
        else:
            self.cumulative = analysis.errors(self.first, self.choice.rep)


class LayerAnalysis:
    """Reads every layer from the captures, finds where errors are made, and re-runs from there."""

    def __init__(self, tracer: LayerTracer, group: Group, elements: list[Element], tolerance: Tolerance,
                 geometry: Geometry, set_size: int | None, input_actions: Mapping[str, Representation],
                 layer_types: Mapping[str, str], input_size: int | None, batched: bool = True,
                 output_actions: Mapping[str, Representation] | None = None) -> None:
        self.tracer, self.group, self.elements, self.tolerance = tracer, group, elements, tolerance
        self.geometry, self.set_size, self.input_size = geometry, set_size, input_size
        #: False where axis 0 of every tensor is no batch (a graph or a point cloud run alone)
        self.batched = batched
        #: the actions the output check settled on (declared, chosen or found), by output name: the model's
        #: outputs have them
        self.output_actions = dict(output_actions or {})
        self.known: dict[str, Representation] = dict(input_actions)
        self.layer_types = dict(layer_types)
        self.used_types: set[str] = set()
        self.scoring = scoring_elements(group, elements)
        self.analysed: dict[str, Analysed] = {}
        self.glue: dict[str, Analysed] = {}
        #: per tensor a layer reads, its value for every item made exact: rho(g) h(x) in place of h(g x),
        #: under the action it was patched with
        self.patches: dict[str, list[np.ndarray]] = {}
        self.patched_with: dict[str, Representation] = {}
        #: per tensor an earlier chunk wrote and a later one reads, its captured values (every item)
        self.carried: dict[str, list[np.ndarray]] = {}
        #: an unrelated input (item 0) is run only where interpolated elements need the spread
        self.offset = 1 if any(not e.exact for e in elements) else 0
        self.identity = next((self.offset + i for i, e in enumerate(elements) if e.is_identity), None)
        self.inputs = set(input_actions)
        self.site_outputs: set[str] = set()
        self.output_capture: dict[str, list[np.ndarray]] = {}
        self.notes: list[str] = []
        self.groups: list[list[int]] = []
        self._candidates: dict[tuple[int, ...], list[Representation]] = {}
        #: per tensor, the layers that read it and state its type (_read_as), listed once
        self._reader_types: dict[str, list[tuple[Site, str]]] | None = None

    # ---- one tensor --------------------------------------------------------------------------------
    def view(self, key: str, ref: np.ndarray, captured: dict[str, list[np.ndarray]]) -> View | None:
        if key not in captured or key not in self.tracer.axes:
            return None
        axis = self.tracer.axes[key]
        raw = captured[key][self.offset:]
        items = [to_batch_first(a, axis) for a in raw]
        batch_ref = to_batch_first(ref, axis)
        geometry = tensor_geometry(batch_ref.shape, self.input_size, self.geometry)
        spread = spread64(batch_ref, to_batch_first(captured[key][0], axis)) if self.offset else float("nan")
        return View(ref, raw, axis, batch_ref, items, geometry, Expectation(self.group, batch_ref, geometry), spread,
                    captured[key][0] if self.offset else None)

    def _declared(self, site: Site, spec: str | None, shape) -> Representation | None:
        if spec is None or site.declared_group not in (None, self.group.name):
            return None
        try:
            if self.group.point_cloud:  # e3nn's irreps_in / irreps_out
                rep = parse_type(spec, self.group, tuple(shape))
            else:  # eqcheck.nn layers compute escnn's order, whatever order the group's ``regular`` means
                rep = parse_representation(spec, tuple(shape), "escnn", group_convention(self.group),
                                           field_group=self.group.field_group)
        except UsageError:
            return None
        return rep if rep.fits(self.group, tuple(shape), self.set_size) is None else None

    def _read_as(self, key: str, shape) -> Representation | None:
        """The type a layer that reads ``key`` states for it (e3nn's ``irreps_in``, ``irreps_in2``): what
        writes it is judged under the type its reader takes (a cat of scalars and vectors before an
        ``o3.Linear``), and is made exact under it. 3-D groups only: an irreps string names one action,
        while a 2-D layer's ``regular`` input is found (with its margin) as well as declared."""
        if not self.group.point_cloud:
            return None
        if self._reader_types is None:  # the sites are known once the reference is captured
            self._reader_types = {}
            for site in self.tracer.sites:
                for position, spec in enumerate((site.declared_in, site.declared_in2)):
                    if spec and position < len(site.inputs):
                        self._reader_types.setdefault(site.inputs[position], []).append((site, spec))
        for site, spec in self._reader_types.get(key, ()):
            declared = self._declared(site, spec, shape)
            if declared is not None:
                return declared
        return None

    def _override(self, site: Site, shape) -> Representation | None:
        for pattern, spec in self.layer_types.items():
            if fnmatch.fnmatchcase(site.name, pattern) or (site.tensor and fnmatch.fnmatchcase(site.tensor, pattern)):
                self.used_types.add(pattern)
                rep = parse_layer_type(spec, tuple(shape), self.group)
                reason = rep.fits(self.group, tuple(shape), self.set_size)
                if reason:
                    raise UsageError(f"--layer-type {pattern}={spec}: {reason}")
                return rep
        return None

    def choose_output(self, site: Site, view: View, input_action: Representation | None,
                      inputs_exact: bool = True, earlier: Representation | None = None) -> Choice:
        """Given (--layer-type), declared (eqcheck.nn), or the candidate with the smallest error; a layer
        that breaks equivariance says nothing about the action of its output, so it keeps its input's.
        Channel permutations are looked for only where the layer's inputs are exact (``inputs_exact``):
        after a break no action explains a tensor, and the search would cost the most there (``earlier``:
        the action an earlier capture gave the tensor)."""
        shape = view.ref.shape
        given = self._override(site, shape)
        if given is not None:
            return Choice(given, float("nan"), None, "given")
        declared = self._declared(site, site.declared_out, shape) or self._read_as(site.output, shape)
        if declared is not None:
            return Choice(declared, float("nan"), None, "declared")
        elements = [self.elements[i] for i in self.scoring]
        observed = [view.items[i] for i in self.scoring]
        kept = same_kind(input_action, self.group, shape, self.set_size) if input_action is not None else None
        if not inputs_exact and kept is not None:  # only an action the output recovers would replace it
            choice = choose(view.expect, self.candidates(shape), elements, observed, first=kept,
                            cap=self.tolerance.exact, batched=self.batched)
            return choice if choice is not None else Choice(kept, math.nan, None, "kept")
        choice = choose(view.expect, self.candidates(shape), elements, observed,
                        first=kept, batched=self.batched)  # most layers keep their input's action: score it first
        if choice.error > self.tolerance.exact and inputs_exact:
            choice = self._found_instead(view, choice, earlier)
        if choice.error > self.tolerance.exact and choice.source == "auto" and kept is not None:
            return Choice(kept, choice.error, None, "kept")
        return choice

    def _found_instead(self, view: View, choice: Choice, earlier: Representation | None = None) -> Choice:
        """The representation found from the data (irreps, a channel permutation, orthogonal matrices),
        where it explains the tensor at least twice as well as ``choice``; the one found in an earlier
        capture of the tensor (``earlier``) where it still does (a fit repeated on the same numbers is
        another object, so the tensor would seem to change its action from run to run)."""
        indices = range(len(self.elements)) if self.group.point_cloud else self.scoring
        elements = [self.elements[i] for i in indices]
        observed = [view.items[i] for i in indices]
        found = None
        if isinstance(earlier, RowOrderAction):  # one order per element: scored on all of them
            elements, observed = self.elements, view.items
        if isinstance(earlier, FittedAction) and earlier.fits(self.group, tuple(view.ref.shape), self.set_size) is None:
            error = score(view.expect, earlier, elements, observed)
            found = Choice(earlier, error, None, "found") if error < FOUND_MAX_ERROR else None
        if found is None and self.group.permutes_sets:
            found = find_row_order(view.expect, self.elements, view.items, self.set_size)
        elif found is None:
            found = (find_irreps(view.expect, elements, observed, self.tolerance.exact) if self.group.point_cloud
                     else find_permutation(view.expect, elements, observed)
                     or find_matrices(view.expect, elements, observed))
        if found is not None and found.error < 0.5 * choice.error:
            return Choice(found.rep, found.error, (choice.error + 1e-12) / (found.error + 1e-12), "found")
        return choice

    def candidates(self, shape: tuple[int, ...]) -> list[Representation]:
        """layer_candidates for a shape, listed once per shape (most shapes recur layer after layer)."""
        shape = tuple(shape)
        if shape not in self._candidates:
            self._candidates[shape] = layer_candidates(self.group, shape, self.set_size)
        return self._candidates[shape]

    def errors(self, view: View, rep: Representation) -> TensorErrors:
        if rep not in view.measured:
            view.measured[rep] = tensor_errors(view.expect, rep, self.elements, view.items, self.tolerance,
                                               view.spread)
        return view.measured[rep]

    def record(self, site: Site, view: View, source: Analysed | None = None,
               exact: frozenset = frozenset()) -> Analysed:
        """The layer read from a capture in which its inputs are exact: running it on ``rho(g) h`` is
        what produced these outputs, so their error is its local error (``exact``: the tensors that
        capture made exact)."""
        input_action = next((self.known[k] for k in site.inputs if k in self.known), None)
        if site.declared_in and site.inputs:
            input_action = self._declared(site, site.declared_in, self.tracer.ref[site.inputs[0]].shape) or input_action
        if (site.op.lower() in RESHAPE_OPS and source is not None and source.local.passed
                and input_action is not None):
            reshaped = self._reshaped(site, view, source, input_action)
            if reshaped is not None:
                return reshaped
        # an input no action explains carries no known error: where the output fits an action, the part
        # of the model before it was equivariant (e3nn's vector components combined into harmonics)
        unknown_input = any(self.analysed[k].undetermined for k in site.inputs if k in self.analysed)
        inputs_exact = all(self.analysed[k].local.passed or self.analysed[k].undetermined for k in site.inputs
                           if k in self.analysed and k not in exact)
        earlier = self.analysed.get(site.output)
        choice = self.choose_output(site, view, input_action, inputs_exact, earlier and earlier.choice.rep)
        analysed = self._store(self.analysed, site, choice, view, input_action)
        read = [a for k in site.inputs if (a := self.analysed.get(k) or self.glue.get(k)) is not None]
        if not analysed.local.passed and (any(self._guessed(a) for a in read) or (
                site.op.lower() in DATA_MOVES and any(a.choice.source == "kept" and not a.local.passed for a in read))):
            # it read what a layer that broke wrote, made exact under a guess (no action explains that tensor,
            # or one fitted to its data before the break), or numbers it only moves from such a layer (a cat
            # of scalars and a broken vector): what it shows is that guess, not an error of its own
            analysed.undetermined = True
        elif not analysed.local.passed and choice.source not in ("given", "declared"):
            # a move into a shape no action of its input's kind fits (an image flattened to tokens); a cat
            # of channels or a crop keeps an image's shape and is judged as one
            moved = (site.op.lower() in DATA_MOVES and inputs_exact and input_action is not None
                     and same_kind(input_action, self.group, view.ref.shape, self.set_size) is None
                     and any(self.tracer.ref[k].shape != view.raw_ref.shape for k in site.inputs if k in self.tracer.ref))
            # an op that only moves or scatters numbers, whose output no named action fits and too few samples
            # cannot reveal one (irreps scattered onto 40 nodes): not judged, not blamed
            combined = (site.op.lower() in DATA_MOVES | SCATTERS and choice.source == "kept"
                        and too_few_samples(view.ref, last_axis=self.group.point_cloud))
            # a product of two data tensors (weights aside): its action is their tensor product,
            # which has no name here (e3nn's raw outer products before the Clebsch-Gordan contraction)
            product = (site.op.lower() in PRODUCTS and choice.source in ("kept", "auto")
                       and sum(1 for k in site.inputs if k in self.known) >= 2)
            analysed.undetermined = unknown_input or moved or combined or product
        return analysed

    def _guessed(self, a: Analysed) -> bool:
        """Whether a tensor's action is a guess: it was not made exact (undetermined), or a layer that broke
        wrote it and no action explains it, or it keeps one fitted to the data of its input."""
        if a.undetermined:
            return True
        if a.local.passed:
            return False
        return ((a.choice.source == "auto" and a.choice.error > self.tolerance.exact)
                or (a.choice.source == "kept" and isinstance(a.choice.rep, FittedAction)))

    def _reshaped(self, site: Site, view: View, source: Analysed, input_action: Representation) -> Analysed | None:
        """A reshape of an exact tensor that keeps its action (``[B, C*|H|, H, W]`` to ``[B, C, |H|, H, W]``):
        the same numbers in another shape, so the same errors and margin: told by the channel maps where
        the actions are regular (or found permutations), else checked on the data of one element."""
        rep = same_kind(input_action, self.group, view.ref.shape, self.set_size)
        if (rep is None or view.ref.size != source.view.ref.size or view.ref.shape[0] != source.view.ref.shape[0]
                or self._override(site, view.ref.shape) is not None):
            return None
        first = self.scoring[0]
        batch_first = view.axis == 0 and source.view.axis == 0  # a C-order reshape of the batch-first arrays
        for layout in self._layouts(rep, view.ref.shape, source):
            alike = moves_alike(self.group, self.elements, layout, tuple(view.ref.shape), input_action,
                                tuple(source.view.ref.shape)) if batch_first else None
            if alike or (alike is None and view.expect.ranking_error(layout, self.elements[first], view.items[first])
                         <= self.tolerance.exact):
                rep = layout
                break
        else:
            return None
        self.known[site.output] = rep
        earlier = self.analysed.get(site.output)
        self.analysed[site.output] = Analysed(site, Choice(rep, source.choice.error, source.choice.margin, "auto"),
                                              view, earlier.first if earlier else view, source.local, None,
                                              input_action, copy_of=source)
        return self.analysed[site.output]

    def _layouts(self, rep: Representation, shape, source: Analysed) -> list[Representation]:
        """The action a reshape keeps: ``rep``, then, for a regular field, its other layouts that fit
        the shape (``[B, C*|H|, H, W]`` fits field-major when C = |H| too, though the reshape to
        ``[B, C, |H|, H, W]`` keeps the 5d one). Each is the source's action on the same numbers, so
        ranking would pick it too, with no smaller margin; the other layouts are tried only where the
        source won its own ranking by a margin that is not exact anyway (see CLEAR_MARGIN)."""
        if (isinstance(rep, RegularFieldAction) and source.choice.source == "auto"
                and (source.choice.margin is None or source.choice.margin >= CLEAR_MARGIN)):
            return [rep] + [other for other in fitting_layouts(rep, self.group, shape, self.set_size)
                            if other.layout != rep.layout]
        return [rep]

    def record_glue(self, key: str, consumer: Site | None, view: View,
                    known: Representation | None = None, source: str = "output") -> Analysed:
        """Code between modules (torch): its action is the one that explains its output best; ``known``
        where it fits: the model's output, the one its check settled on (``source`` "output"), or the
        input type its reader states ("declared")."""
        indices = self.scoring
        if known is not None and known.fits(self.group, tuple(view.ref.shape), self.set_size) is None:
            choice = Choice(known, math.nan, None, source)
        else:
            choice = choose(view.expect, self.candidates(view.ref.shape), [self.elements[i] for i in indices],
                            [view.items[i] for i in indices], batched=self.batched)
            if choice.error > self.tolerance.exact:
                earlier = self.glue.get(key)
                choice = self._found_instead(view, choice, earlier and earlier.choice.rep)
        site = Site(name=key, op="glue", output=key, glue=True,
                    span=(consumer.span[0], consumer.span[0]) if consumer and consumer.span else None,
                    node=consumer.node if consumer else None)
        return self._store(self.glue, site, choice, view, None)

    def _store(self, table: dict[str, Analysed], site: Site, choice: Choice, view: View,
               input_action: Representation | None) -> Analysed:
        self.known[site.output] = choice.rep
        earlier = table.get(site.output)
        table[site.output] = Analysed(site, choice, view, earlier.first if earlier else view,
                                      self.errors(view, choice.rep), None, input_action)
        view.expect.keep_only(choice.rep)  # the other candidates' copies are not read again
        return table[site.output]

    # ---- a chunk of layers -------------------------------------------------------------------------
    def _read(self, sites: list[Site], views: dict[str, View], exact: frozenset) -> list[Analysed]:
        """Record every layer (and the code before it that no module ran), in execution order (``exact``:
        the tensors the capture made exact)."""
        order: list[Analysed] = []
        seen: set[str] = set()
        for site in sites:
            for position, key in enumerate(site.inputs):
                if key in views and key not in self.inputs and key not in self.site_outputs and key not in seen:
                    seen.add(key)
                    # what a layer that states its input type (e3nn's irreps_in) reads has that type
                    spec = (site.declared_in, site.declared_in2)[position] if position < 2 else None
                    declared = self._declared(site, spec, views[key].ref.shape)
                    order.append(self.record_glue(key, site, views[key], declared, "declared"))
            if site.output in views:
                inputs = [k for k in site.inputs if k in views]
                source = next((a for a in reversed(order) if len(inputs) == 1 and a.site.output == inputs[0]),
                              self.analysed.get(inputs[0]) if len(inputs) == 1 else None)  # an earlier chunk's
                order.append(self.record(site, views[site.output], source, exact))
        return order

    def _recovered(self, order: list[Analysed]) -> dict[str, bool]:
        """Whether each error vanishes further down: it passes, or every layer reading it recovers."""
        readers: dict[str, list[str]] = {}
        for a in order:
            if not a.site.glue:
                for key in a.site.inputs:
                    readers.setdefault(key, []).append(a.site.output)
        recovered: dict[str, bool] = {}
        for a in reversed(order):
            after = [recovered[r] for r in readers.get(a.site.output, []) if r in recovered]
            recovered[a.site.output] = a.local.passed or (bool(after) and all(after))
        return recovered

    def _patch(self, rep: Representation, view: View) -> list[np.ndarray]:
        other = [view.raw_other] if view.raw_other is not None else []
        return other + [transformed_input(view.expect, rep, g, view.axis, view.raw_ref.dtype) for g in self.elements]

    def _capture_and_read(self, sites: list[Site], reference, items, patches, exact: bool = True,
                          rerun_identity: bool = True) -> list[Analysed]:
        """Capture ``sites`` with ``patches`` fed to what reads them (``exact``: made exact, else the values
        an earlier chunk's capture gave them) and read every layer; ``rerun_identity``: False where the
        untransformed input is known to give the reference again (a deterministic model)."""
        if patches and exact and self.identity is not None and not rerun_identity:
            # the untransformed input with exact inputs is the reference run: not run again (the first
            # capture runs it: a batch axis merged with another is cut by finding the reference in it)
            groups = [kept for group in self.groups if (kept := [i for i in group if i != self.identity])]
            captured = self.tracer.capture(sites, items, groups, None, patches)
            for key, values in captured.items():
                values.insert(self.identity, reference[key])
        else:
            captured = self.tracer.capture(sites, items, self.groups, self.identity, patches)
        self.output_capture.update((k, captured[k]) for k in self.tracer.output_keys if k in captured)
        keys = {k for s in sites for k in (s.output, *s.inputs)}
        views = {k: v for k in keys if (v := self.view(k, reference[k], captured)) is not None}
        return self._read(sites, views, frozenset(patches) if exact else frozenset())

    def _mark(self, order: list[Analysed], recovered: dict[str, bool]) -> bool:
        """Mark the layers whose error vanishes further down (``recovered``, from the first capture) as
        absorbed; whether a layer is left that breaks equivariance for good."""
        fixed = {"given", "declared"}  # an action someone stated is a contract: no block excuses it
        broken = False
        for a in order:
            undone = recovered.get(a.site.output, False)
            if a.local.passed or (a.undetermined and not undone):
                continue
            if undone and a.choice.source not in fixed:
                a.absorbed = True  # inside a block that is equivariant as a whole (padding, heads)
                a.undetermined = False  # what it carries is undone further down: that is known
            else:
                broken = True
        return broken

    def _exact_tensors(self, chunk: list[Site]) -> dict[str, tuple[Representation, View]]:
        """What the layers of ``chunk`` read or write that has an action to make it exact with (what a
        layer writes may be read by code between modules): every such tensor but those whose action is
        not known (undetermined) or whose error is undone further down (absorbed: its readers expect it)."""
        wanted = {}
        for key in _chunk_tensors(chunk):
            a = self.analysed.get(key) or self.glue.get(key)
            if key in self.inputs or a is None or a.undetermined or a.absorbed or self._guessed_piece(a):
                continue
            wanted[key] = (a.choice.rep, a.view)
        return wanted

    def _guessed_piece(self, a: Analysed) -> bool:
        """A piece cut or joined after a break (PIECES: a slice of a padded border), whose action was kept
        from its input without a measure: not made exact, so what reads it reads it as its layer computes
        it from exact inputs, and the run tells whether the block it belongs to is equivariant."""
        return (a.site.op.lower() in PIECES and a.choice.source == "kept" and math.isnan(a.choice.error)
                and any(self.tracer.ref[k].shape != a.view.raw_ref.shape for k in a.site.inputs if k in self.tracer.ref))

    def _changed(self, chunk: list[Site], wanted: dict[str, tuple[Representation, View]]) -> set[str]:
        """The chunk's tensors whose patch must change: made exact under another action, or no longer."""
        changed = {k for k in wanted if self.patched_with.get(k) != wanted[k][0]}
        return changed | {k for k in self.patched_with if k not in wanted and k in _chunk_tensors(chunk)}

    def _stale(self, chunk: list[Site], changed: set[str], wanted: dict) -> set[str]:
        """Where a tensor is now made exact under another action than before, every tensor after it was
        typed from the old patch (a message tensor found to be a reordering of rows after the run that
        made it exact: what was read from it until then was read under a guess): their patches are
        dropped, and their new actions not yet applied, for the next run, which computes them from exact
        inputs and types them afresh; they are made exact in the run after."""
        order = list(_chunk_tensors(chunk))
        retyped = next((i for i, k in enumerate(order) if k in changed and k in wanted and k in self.patched_with
                        and self.patched_with[k] != wanted[k][0]), None)
        if retyped is None:
            return set()
        return {k for k in order[retyped + 1:] if k in self.patched_with or k in changed}

    def analyse(self, chunk: list[Site], reference: dict[str, np.ndarray], items) -> None:
        """Capture the chunk on the transformed inputs: every tensor's cumulative error, and the actions
        up to the first layer that breaks equivariance. Where one does (an error no layer further down
        undoes), capture it again with every tensor a layer reads made exact (``rho(g) h`` in place of
        ``h(g x)``): then every layer's error is its own, whatever broke before it; again where that run
        changed the action of a tensor that a layer reads."""
        # what earlier chunks wrote is fed as their capture gave it, not computed again
        carried = {k: self.carried[k] for k in _chunk_tensors(chunk) if k in self.carried}
        order = self._capture_and_read(chunk, reference, items, carried, exact=False)
        # where the untransformed input gave every tensor again, the runs with exact inputs need not run it
        deterministic = all(a.local.identity <= self.tolerance.exact for a in order)
        recovered = self._recovered(order)
        if not self._mark(order, recovered) and not self.patches:
            self._finish()
            return
        for run in range(MAX_EXACT_RUNS):
            wanted = self._exact_tensors(chunk)
            changed = self._changed(chunk, wanted)
            if run and not changed:
                break
            stale = self._stale(chunk, changed, wanted) if run else set()
            for key in changed | stale:  # a stale tensor is read as computed in this run, made exact in the next
                if key in wanted and key not in stale:
                    rep, view = wanted[key]
                    self.patches[key], self.patched_with[key] = self._patch(rep, view), rep
                else:
                    self.patches.pop(key, None)
                    self.patched_with.pop(key, None)
            again = _reading(chunk, changed | stale, set(self.patches), set(self.glue)) if run else chunk
            # every patch of the chunk: code between modules may read a tensor no layer lists
            reads = {k: self.patches[k] for k in _chunk_tensors(chunk) if k in self.patches}
            reads.update((k, v) for k, v in carried.items() if k not in reads)  # not made exact: as captured
            rerun = self._capture_and_read(again, reference, items, reads, rerun_identity=not deterministic)
            # an error that vanishes further down in this run, where the tensor was not made exact (a piece
            # of a padded border read as its layer made it): part of a block that is equivariant as a whole
            recovered.update((k, True) for k, undone in self._recovered(rerun).items() if undone and k not in reads)
            self._mark(rerun, recovered)
        else:
            changed = self._changed(chunk, self._exact_tensors(chunk))
            if changed:
                self.notes.append(f"per-layer analysis: after {MAX_EXACT_RUNS} runs with exact inputs, the actions "
                                  f"of {len(changed)} tensor(s) still changed; the local errors of the layers reading "
                                  f"them are not given (-)")
                for site in chunk:
                    if changed.intersection(site.inputs) and site.output in self.analysed:
                        self.analysed[site.output].mixed = True
        self._finish()

    def _release(self, needed: set[str]) -> None:
        """After a chunk: what later chunks read is carried (its captured values, and its patch where it
        has one); every other tensor's items, patches and transformed copies are let go, so that the
        memory held is one chunk's."""
        for key, a in [*self.analysed.items(), *self.glue.items()]:
            if key in needed:
                if key not in self.carried:
                    first = a.first
                    self.carried[key] = ([first.raw_other] if first.raw_other is not None else []) + list(first.raw_items)
                continue
            self.patches.pop(key, None)
            self.carried.pop(key, None)
            for view in (a.view, a.first):
                view.release()

    def _finish(self) -> None:
        for a in [*self.analysed.values(), *self.glue.values()]:
            if a.cumulative is None:
                a.finish(self)

    def run(self, feeds, items, max_batch: int | None, budget: int,
            progress: Callable[[int, int], None] | None) -> None:
        reference = self.tracer.reference(feeds)
        # where the output check's passes were recorded, the first capture reads them, grouped as they ran
        self.groups = self.tracer.recorded_groups(items) or run_groups(items, self.tracer.stacked, max_batch)
        self.site_outputs = {s.output for s in self.tracer.sites}
        chunks = chunk_sites(self.tracer.sites, reference, len(items), budget)
        read_later: list[set[str]] = []
        reads: set[str] = set()
        for chunk in reversed(chunks):
            read_later.insert(0, set(reads))
            reads |= {k for s in chunk for k in s.inputs}
        for done, chunk in enumerate(chunks):
            self.analyse(chunk, reference, items)
            self._release(read_later[done])
            if progress:
                progress(done + 1, len(chunks))
        for key, name in self.tracer.output_keys.items():
            if key in reference and key in self.output_capture:
                view = self.view(key, reference[key], self.output_capture)
                if view is not None:
                    self.record_glue(key, None, view, self.output_actions.get(name)).finish(self)
        unused = set(self.layer_types) - self.used_types
        if unused:
            raise UsageError(f"--layer-type names no layer: {sorted(unused)[0]!r}")


def _reading(chunk: list[Site], changed: set[str], patched: set[str], glue: set[str]) -> list[Site]:
    """The layers whose output depends on the ``changed`` tensors: their readers, and the readers of what
    those write that is not patched (a patched tensor's readers read the patch, whatever wrote it); and
    every layer after them that reads what code between modules computed (``glue``: that code may read
    any tensor before it, and its result is typed again from what it now reads)."""
    reach, sites, after = set(changed), [], False
    for site in chunk:
        if reach.intersection(site.inputs) or (after and glue.intersection(site.inputs)):
            sites.append(site)
            if site.output not in patched:
                reach.add(site.output)
        after = after or bool(reach.intersection((*site.inputs, site.output)))
    return sites


def _chunk_tensors(chunk: list[Site]) -> dict[str, None]:
    """The keys of what the chunk's layers read and write, in order."""
    return dict.fromkeys(k for s in chunk for k in (*s.inputs, s.output))


def same_kind(rep: Representation, group: Group, shape, set_size) -> Representation | None:
    """``rep`` if it fits ``shape``; for regular fields, the same order on the layout that fits (a reshape
    between ``[B, C, |H|, H, W]`` and ``[B, C*|H|, H, W]`` keeps the action); for irreps on a last axis
    (and positions where nothing translates), k copies of them where the last axis is k times as long
    (``[B, N, 3]`` flattened to ``[B, 3N]`` is ``Nx1o``: e3nn's layout of copies)."""
    if rep.fits(group, tuple(shape), set_size) is None:
        return rep
    if isinstance(rep, RegularFieldAction):
        return next(iter(fitting_layouts(rep, group, shape, set_size)), None)
    from eqcheck.actions.euclidean import IrrepsAction, PositionAction

    if isinstance(rep, PositionAction) and not group.translations:
        rep = IrrepsAction(spec="1x1o")
    if isinstance(rep, IrrepsAction) and shape and rep.irreps.dim and shape[-1] % rep.irreps.dim == 0 \
            and shape[-1] > rep.irreps.dim:
        irreps = rep.irreps.copies(shape[-1] // rep.irreps.dim)
        return IrrepsAction(spec=irreps.spec, irreps=irreps)
    return None


def fitting_layouts(rep: RegularFieldAction, group: Group, shape, set_size) -> list[RegularFieldAction]:
    """``rep``'s element order and orientation in each layout (LAYOUTS order) that fits ``shape``."""
    convention = group_convention(group)
    moved = (dataclasses.replace(rep, layout=layout,
                                 spec=regular_spec(layout, rep.convention, rep.orientation, convention))
             for layout in LAYOUTS)
    return [other for other in moved if other.fits(group, tuple(shape), set_size) is None]


def chunk_sites(sites: list[Site], reference: dict[str, np.ndarray], items: int, budget: int) -> list[list[Site]]:
    """Consecutive layers whose captured tensors (every item, views and patches too) fit in ``budget`` bytes:
    each tensor counted once in its chunk (a layer reads what the one before it wrote)."""
    chunks, current, used, held = [], [], 0, set()

    def cost(keys) -> int:
        return sum(reference[k].nbytes for k in keys if k not in held) * (2 * items + 2)

    for site in sites:
        keys = [k for k in dict.fromkeys((site.output, *site.inputs)) if k in reference]
        if current and used + cost(keys) > budget:
            chunks.append(current)
            current, used, held = [], 0, set()
        current.append(site)
        used += cost(keys)
        held.update(keys)
    if current:
        chunks.append(current)
    return chunks
