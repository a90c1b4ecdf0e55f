"""How a tensor transforms under a group element: trivial, image, regular fields, set axis, graph, sparse graph edges."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from eqcheck.actions.spatial import apply_spatial
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element


@dataclass(frozen=True)
class Representation:
    """The action on one tensor ``[B, ...]``; ``spec`` parses back with :func:`parse_representation`."""

    spec: str = "invariant"
    #: True when the action moves the last two axes (and a comparison mask may apply there)
    spatial: bool = False

    def apply(self, element: Element, x: np.ndarray, *, stride: int = 1, zero_fill: bool = False,
              order: int = 3) -> np.ndarray:
        return x

    def fits(self, group: Group, shape: tuple[int, ...], set_size: int | None = None) -> str | None:
        """None when this action can act on a tensor of ``shape``, else the reason why not."""
        return None


@dataclass(frozen=True, eq=False)
class FittedAction(Representation):
    """An action fitted to one tensor's data (its matrices or row orders, one per tested element): those
    are its identity, so two fits are two actions, compared and hashed as objects."""

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def _spatial_fits(group: Group, shape: tuple[int, ...], min_rank: int) -> str | None:
    if not group.spatial:
        return f"{group.spec} does not act on images"
    if len(shape) < min_rank:
        return f"needs a tensor of rank {min_rank} or more, got shape {list(shape)}"
    if group.rotates:
        h, w = shape[-2:]
        if h != w:
            return f"rotations need square spatial axes, got {h}x{w}"
    return None


@dataclass(frozen=True)
class ImageAction(Representation):
    """Spatial only: every channel moves with the image, none is permuted."""

    spec: str = "image"
    spatial: bool = True

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        return apply_spatial(element, x, stride=stride, zero_fill=zero_fill, order=order)

    def fits(self, group, shape, set_size=None):
        return _spatial_fits(group, shape, 3)


LAYOUTS = ("5d", "field-major", "group-major")


@dataclass(frozen=True)
class RegularFieldAction(Representation):
    """Regular fields of the point group: spatial action, then a channel permutation from the group law.

    ``5d``: ``[B, C, |H|, ...]``; ``field-major``: ``[B, C*|H|, ...]`` with channel ``field*|H| + j``;
    ``group-major``: channel ``j*C + field``. ``convention`` names the element order (escnn, groupy),
    ``orientation`` the direction the group axis rolls (ccw: +k, cw: -k).
    """

    spec: str = "regular"
    spatial: bool = True
    layout: str = "5d"
    convention: str = "escnn"
    orientation: str = "ccw"

    def permutation(self, group: Group, element: Element) -> np.ndarray:
        return group.point_group.regular_permutation(element.point, self.convention, self.orientation)

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3, group: Group | None = None):
        perm = self.permutation(group, element)
        size = len(perm)
        if self.layout == "5d":
            moved = x[:, :, perm]
        elif self.layout == "field-major":
            moved = x.reshape(x.shape[0], -1, size, *x.shape[2:])[:, :, perm].reshape(x.shape)
        else:
            moved = x.reshape(x.shape[0], size, -1, *x.shape[2:])[:, perm].reshape(x.shape)
        if x.ndim >= (5 if self.layout == "5d" else 4):
            moved = apply_spatial(element, moved, stride=stride, zero_fill=zero_fill, order=order)
        return moved

    def fits(self, group, shape, set_size=None):
        if group.point_group is None:
            return f"{group.spec} has no finite point group, so no regular fields"
        if self.convention == "groupy" and not (group.point_group.mirrors and group.point_group.n == 4):
            return "the GrouPy order is defined for p4m only"
        if self.convention == "axis0" and not (group.point_group.mirrors and group.point_group.n % 2 == 0):
            return "the axis=0 order is defined for dN with N even"
        size = group.point_group.order
        if self.layout == "5d":
            if len(shape) != 5 or shape[2] != size:
                return f"5-D regular fields need shape [B, C, {size}, H, W], got {list(shape)}"
        elif len(shape) < 2 or shape[1] % size:
            return f"needs a channel count divisible by |H| = {size}, got shape {list(shape)}"
        if len(shape) >= 4:
            return _spatial_fits(group, shape, 4)
        return None


@dataclass(frozen=True)
class SetAction(Representation):
    """Permutes one set axis: ``x.take(p, axis)``."""

    spec: str = "set"
    axis: int = 1

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        perm = element.permutation
        if not perm:
            return x
        return np.take(x, np.asarray(perm), axis=self.axis)

    def fits(self, group, shape, set_size=None):
        if not group.permutes_sets:
            return f"{group.spec} does not permute sets"
        if len(shape) <= self.axis:
            return f"no axis {self.axis} in shape {list(shape)}"
        if set_size is not None and shape[self.axis] != set_size:
            return f"axis {self.axis} has size {shape[self.axis]}, the set has {set_size} elements"
        return None


@dataclass(frozen=True)
class GraphAction(Representation):
    """A graph adjacency ``[B, N, N, ...]``: the same permutation on both node axes."""

    spec: str = "graph"

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        perm = element.permutation
        if not perm:
            return x
        index = np.asarray(perm)
        return np.take(np.take(x, index, axis=1), index, axis=2)

    def fits(self, group, shape, set_size=None):
        if not group.permutes_sets:
            return f"{group.spec} does not permute sets"
        if len(shape) < 3 or shape[1] != shape[2]:
            return f"a graph needs shape [B, N, N, ...], got {list(shape)}"
        if set_size is not None and shape[1] != set_size:
            return f"the graph has {shape[1]} nodes, the set has {set_size} elements"
        return None


def edge_order(element, count: int) -> np.ndarray | None:
    """The order ``s`` in which a node permutation lists a sparse graph's ``count`` edges (CONVENTIONS 9:
    edges may be reordered by any permutation): new edge k is old edge ``s[k]``. Drawn from the node
    permutation itself (seeded by it), so that the edge index, the edge features and every per-edge
    output of one element read the same ``s``, on every run; None for the identity."""
    perm = element.permutation
    if not perm or all(i == p for i, p in enumerate(perm)) or count < 2:
        return None
    seed = zlib.crc32(np.asarray(perm, dtype=np.int64).tobytes()) ^ count
    return np.random.default_rng(seed).permutation(count)


def relabel_nodes(element, x: np.ndarray) -> np.ndarray:
    """Node labels (an edge index's values) after the node permutation ``x' = x[p]``: ``p_inv[x]``."""
    return np.argsort(np.asarray(element.permutation))[x].astype(x.dtype, copy=False)


@dataclass(frozen=True)
class EdgeIndexAction(Representation):
    """A sparse graph's ``edge_index`` ``[2, E]`` (PyTorch Geometric): its values name nodes, so a node
    permutation relabels them, ``p_inv[edge_index]``, and lists the edges in its own order ``s``
    (edge_order; CONVENTIONS 9)."""

    spec: str = "edge_index"

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        perm = element.permutation
        if not perm:
            return x
        relabelled = relabel_nodes(element, x)
        edges = edge_order(element, x.shape[1])
        return relabelled if edges is None else relabelled[:, edges]

    def fits(self, group, shape, set_size=None):
        if not group.permutes_sets or group.set_axis != 0:
            return f"{group.spec} does not permute the nodes of a sparse graph (perm:axis=0)"
        if len(shape) != 2 or shape[0] != 2:
            return f"an edge index needs shape [2, E], got {list(shape)}"
        return None


@dataclass(frozen=True)
class EdgeAction(Representation):
    """Values per edge of a sparse graph (edge features ``[E, F]``, messages, an edge-level output): their
    edges listed in the node permutation's order ``s`` (edge_order), ``x.take(s, axis)``."""

    spec: str = "edge"
    axis: int = 0

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        edges = edge_order(element, x.shape[self.axis]) if x.ndim > self.axis else None
        return x if edges is None else np.take(x, edges, axis=self.axis)

    def fits(self, group, shape, set_size=None):
        if not group.permutes_sets or group.set_axis != 0:
            return f"{group.spec} does not permute the nodes of a sparse graph (perm:axis=0)"
        if len(shape) <= self.axis:
            return f"no axis {self.axis} in shape {list(shape)}"
        return None  # as many edges as nodes: the data tells an edge-level tensor from a node-level one


def apply_representation(rep: Representation, group: Group, element: Element, x: np.ndarray,
                         **kwargs) -> np.ndarray:
    """Act with ``element`` on ``x``; the one entry point the engine uses."""
    if isinstance(rep, RegularFieldAction):
        return rep.apply(element, x, group=group, **kwargs)
    return rep.apply(element, x, **kwargs)
