"""The actions a layer's tensor may carry besides those of model inputs and outputs: a permutation on
several set axes (attention maps), channels permuted by a homomorphism found from the data; the
candidates for a tensor, and ``--layer-type`` values."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqcheck.actions.parse import candidate_representations, parse_type
from eqcheck.actions.representations import FittedAction, Representation, SetAction, relabel_nodes
from eqcheck.actions.spatial import apply_spatial
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element


@dataclass(frozen=True)
class SetAxesAction(Representation):
    """The same permutation on several axes (a graph or attention map ``[B, heads, N, N]``)."""

    spec: str = "set:axes=2,3"
    axes: tuple[int, ...] = (2, 3)

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        if not element.permutation:
            return x
        index = np.asarray(element.permutation)
        for axis in self.axes:
            x = np.take(x, index, axis=axis)
        return x

    def fits(self, group, shape, set_size=None):
        if not group.permutes_sets:
            return f"{group.spec} does not permute sets"
        if any(a >= len(shape) or shape[a] != set_size for a in self.axes):
            return f"axes {self.axes} of shape {list(shape)} are not all of the set size {set_size}"
        return None


@dataclass(frozen=True)
class ChannelPermutationAction(Representation):
    """Channels permuted by a homomorphism found from the data (one permutation per point-group element)."""

    spec: str = "channel-permutation"
    spatial: bool = True
    #: (point element, permutation) pairs: new[i] = old[perm[i]] on the flattened channel axes
    table: tuple = ()

    def permutation(self, element: Element) -> np.ndarray:
        return dict(self.table)[element.point]

    def fits(self, group, shape, set_size=None):
        size = len(self.table[0][1]) if self.table else 0
        if len(shape) < 4 or int(np.prod(shape[1:-2])) != size:
            return f"needs {size} channels on a spatial tensor, got shape {list(shape)}"
        return None

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        perm = self.permutation(element)
        channels = x.reshape(x.shape[0], len(perm), *x.shape[-2:])[:, perm].reshape(x.shape)
        return apply_spatial(element, channels, stride=stride, zero_fill=zero_fill, order=order)


@dataclass(frozen=True, eq=False)
class RowOrderAction(FittedAction):
    """Rows (axis 0) listed in the order the data shows, one order per tested element (by label): what a
    sparse graph's node permutation does to a tensor of rows that are neither its nodes nor the input's
    edges (messages over the edges and the self loops a layer adds, edges it sorts or filters). Found by
    matching each row to a row of the reference (infer.find_row_order)."""

    spec: str = "rows (found)"
    #: element label -> index array, ``new[i] = old[order[i]]``
    orders: dict = field(default_factory=dict)
    #: the values name nodes (an index tensor: the targets of the messages): relabelled as edge_index's
    node_labels: bool = False

    @property
    def size(self) -> int:
        return len(next(iter(self.orders.values()))) if self.orders else 0

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        if self.node_labels and element.permutation:
            x = relabel_nodes(element, x)
        return np.take(x, self.orders[element.label], axis=0)

    def fits(self, group, shape, set_size=None):
        if not shape or shape[0] != self.size:
            return f"found for {self.size} rows, the tensor has shape {list(shape)}"
        return None


def layer_candidates(group: Group, shape: tuple[int, ...], set_size: int | None) -> list[Representation]:
    """Every action that fits a batch-first tensor of ``shape``, simplest first: those of the output
    check, plus a set axis (or a pair of them, as in attention maps) anywhere after the batch; a set on
    axis 0 where the group permutes axis 0 (a graph without a batch: each run holds one)."""
    candidates = candidate_representations(group, shape, set_size, 0 if group.set_axis == 0 else 1)
    if group.permutes_sets and set_size:
        axes = [a for a in range(2, len(shape)) if shape[a] == set_size]
        candidates += [SetAction(spec=f"set:axis={a}", axis=a) for a in axes]
        candidates += [SetAxesAction(spec=f"set:axes={a},{a + 1}", axes=(a, a + 1))
                       for a in range(2, len(shape) - 1) if shape[a] == shape[a + 1] == set_size]
    return candidates


def parse_layer_type(spec: str, shape: tuple[int, ...], group: Group) -> Representation:
    """A ``--layer-type`` value: any output type spec under ``group`` (``regular`` in its convention,
    irreps under a 3-D group), or ``set:axes=A,B``."""
    name, _, option = spec.strip().lower().partition(":")
    if name == "set" and option.startswith("axes="):
        try:
            axes = tuple(int(a) for a in option[5:].split(","))
        except ValueError:
            raise UsageError(f"--layer-type {spec!r}: axes must be integers (set:axes=2,3)") from None
        return SetAxesAction(spec=f"set:axes={','.join(map(str, axes))}", axes=axes)
    return parse_type(spec, group, shape)
