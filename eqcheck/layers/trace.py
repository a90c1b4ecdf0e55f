"""What a layer capture yields: layers (sites) in execution order, tensors per item, their batch axes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from eqcheck.batching import MAX_CHUNK_BYTES, MAX_CHUNK_SAMPLES, chunk_indices


@dataclass
class Site:
    """One layer: an ONNX node or one call of a torch module, and the tensors it reads and writes.

    ``output`` and ``inputs`` are keys of captured tensors; ``inputs`` holds only activations (tensors
    that carry the batch), in argument order. ``span`` is the (enter, exit) event index of a torch call,
    so that nesting is known; ``declared_*`` come from eqcheck.nn class attributes.
    """

    name: str
    op: str
    output: str
    inputs: tuple[str, ...] = ()
    tensor: str | None = None
    node: str | None = None
    declared_group: str | None = None
    declared_in: str | None = None
    declared_out: str | None = None
    #: the type a layer states for its second input (e3nn's ``irreps_in2`` of a tensor product)
    declared_in2: str | None = None
    span: tuple[int, int] | None = None
    #: code between modules (torch), found where an error appears with no module to blame
    glue: bool = False
    #: inputs that are constants (initializers, parameters) and are never transformed
    constants: tuple[str, ...] = ()


class LayerTracer(ABC):
    """Runs a model with every layer's output captured, optionally with some tensors replaced."""

    sites: list[Site]
    #: the items of one run are stacked along the batch axis (else each item is run alone)
    stacked: bool = True
    #: batch axis of every captured tensor, and how items sit on it: ``(axis, outer)`` (see split_runs)
    axes: dict[str, int]
    layouts: dict[str, tuple[int, int]]
    #: every tensor of the reference run, by key
    ref: dict[str, np.ndarray]
    #: the batch of the reference run (a merged batch axis is told apart by it)
    batch: int = 0
    #: the model's outputs that code after the last layer computes (torch): output name by key
    output_keys: dict[str, str] = {}
    #: the parsed model eqcheck.structure.scan reads window ops from (ONNX), else None
    scan_model = None

    @abstractmethod
    def reference(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One run on the untransformed inputs: every capturable tensor by key; fills ``sites``."""

    @abstractmethod
    def capture(self, sites: list[Site], items: list[dict[str, np.ndarray]], groups: list[list[int]],
                identity: int | None = None,
                patches: dict[str, list[np.ndarray]] | None = None) -> dict[str, list[np.ndarray]]:
        """The tensors these sites read and write, for every item (run in ``groups`` of items).

        Item ``identity`` is the untransformed input again (it tells merged batch layouts apart);
        ``patches`` replace tensors, per item, for everything that reads them; a patched tensor is
        captured as its layer computed it.
        """

    def recorded_groups(self, items: list[dict[str, np.ndarray]]) -> list[list[int]] | None:
        """The items grouped as the output check's own forward passes ran them, where every pass was
        recorded for the captures to read (capture_onnx.RecordingRunner); None where they were not.
        Asked once, after the reference."""
        return None

    def close(self) -> None:
        """Release sessions and hooks."""

    def split_captured(self, keys, runs: list[tuple[dict[str, np.ndarray], int]],
                       identity: int | None) -> dict[str, list[np.ndarray]]:
        """The captured tensors of several runs (each ``(values by key, item count)``) cut into items,
        for the ``keys`` every run and the reference hold; their batch axes and layouts are recorded
        (the first capture of a tensor finds its layout; later ones cut it the same way)."""
        result = {}
        for key in keys:
            if key in runs[0][0] and key in self.ref:
                split = split_runs(self.ref[key], [(values[key], count) for values, count in runs],
                                   self.layouts.get(key), identity=identity, batch=self.batch)
                if split is not None:
                    result[key], self.layouts[key] = split
                    self.axes[key] = split[1][0]
        return result


def numbered(names: list[str]) -> list[str]:
    """Each name as it is where it occurs once, else ``name#k`` for its k-th occurrence (a module or an op
    called several times)."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if counts[name] == 1 else f"{name}#{seen[name]}")
    return out


def run_groups(items: list[dict[str, np.ndarray]], stacked: bool, max_batch: int | None) -> list[list[int]]:
    """Which items share one forward pass: the chunks of ``eqcheck.batching``, or one item per pass."""
    if not stacked:
        return [[i] for i in range(len(items))]
    sizes = [next(iter(feeds.values())).shape[0] for feeds in items]
    per_sample = max(sum(a.nbytes for a in items[0].values()) // max(sizes[0], 1), 1)
    limit = max_batch or max(min(MAX_CHUNK_BYTES // per_sample, MAX_CHUNK_SAMPLES), sizes[0])
    return chunk_indices(sizes, limit)


def batch_axis(ref_shape: tuple[int, ...], run_shape: tuple[int, ...], count: int) -> int | None:
    """The axis that holds the batch: the one axis that grew ``count`` times from the reference run."""
    if len(ref_shape) != len(run_shape):
        return None
    grown = [a for a, (r, s) in enumerate(zip(ref_shape, run_shape)) if r != s]
    if count == 1:
        return 0 if ref_shape and ref_shape == run_shape else None
    if len(grown) != 1 or run_shape[grown[0]] != ref_shape[grown[0]] * count:
        return None
    return grown[0]


def _cut(array: np.ndarray, axis: int, count: int, outer: int) -> list[np.ndarray]:
    """Items of a stacked axis laid out ``(outer, count, rest)``: ``outer == 1`` is the usual batch-major
    stacking; ``outer > 1`` is a batch merged inside another axis (``[N*B, D]`` after a seq-first reshape)."""
    if count == 1:
        return [array]
    if outer == 1:  # np.split's views, without its argument handling
        size = array.shape[axis] // count
        head = (slice(None),) * axis
        return [array[head + (slice(k * size, (k + 1) * size),)] for k in range(count)]
    shape = array.shape
    size = shape[axis] // count
    grid = array.reshape(shape[:axis] + (outer, count, size // outer) + shape[axis + 1:])
    return [np.take(grid, k, axis=axis + 1).reshape(shape[:axis] + (size,) + shape[axis + 1:]) for k in range(count)]


def stack_items(arrays: list[np.ndarray], axis: int, outer: int = 1, copy: bool = True) -> np.ndarray:
    """The inverse of ``_cut``: items joined along ``axis`` the way the model stacks its batch. ``copy``:
    False where the result is only read (fed to onnxruntime): items that ``_cut`` made from one array, in
    its order, are that array again, not a copy of it (what a chunk of layers carries to the next)."""
    if len(arrays) == 1:
        return arrays[0]
    if outer == 1:
        joined = None if copy else _uncut(arrays, axis)
        return joined if joined is not None else np.concatenate(arrays, axis=axis)
    shape = arrays[0].shape
    parts = [a.reshape(shape[:axis] + (outer, shape[axis] // outer) + shape[axis + 1:]) for a in arrays]
    merged = shape[:axis] + (shape[axis] * len(arrays),) + shape[axis + 1:]
    return np.stack(parts, axis=axis + 1).reshape(merged)


def _uncut(arrays: list[np.ndarray], axis: int) -> np.ndarray | None:
    """The read-only view of memory that ``arrays`` lie in one after another along ``axis`` (the slices
    ``_cut`` made of one array), or None where they do not."""
    first = arrays[0]
    if first.ndim <= axis or first.shape[axis] == 0:
        return None
    step = first.strides[axis] * first.shape[axis]
    start = first.__array_interface__["data"][0]
    root = first
    while isinstance(root.base, np.ndarray):
        root = root.base
    for k, array in enumerate(arrays):
        base = array
        while isinstance(base.base, np.ndarray):
            base = base.base
        if (base is not root or array.shape != first.shape or array.strides != first.strides
                or array.dtype != first.dtype or array.__array_interface__["data"][0] != start + k * step):
            return None
    shape = first.shape[:axis] + (first.shape[axis] * len(arrays),) + first.shape[axis + 1:]
    return np.lib.stride_tricks.as_strided(first, shape=shape, strides=first.strides, writeable=False)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = float(np.abs(b64).max()) if b64.size else 0.0
    return a64.shape == b64.shape and bool(np.all(np.abs(a64 - b64) <= 1e-4 * (scale or 1.0)))


def split_runs(reference: np.ndarray, runs: list[tuple[np.ndarray, int]], layout: tuple[int, int] | None = None,
               identity: int | None = None, batch: int | None = None) -> tuple[list[np.ndarray], tuple[int, int]] | None:
    """The tensors of several runs (each ``(array, item count)``) cut into items, and their layout
    ``(batch axis, outer)``; None when the tensor carries no batch. Without a ``layout``, the batch axis
    is the one that grew with the item count, and where it is merged with another axis (its size is
    not the input's ``batch``) the item ``identity`` (the untransformed input run again) tells how:
    it must reproduce ``reference``."""
    ref_shape = tuple(reference.shape)
    if layout is None:
        multi = next(((a, c) for a, c in runs if c > 1), None)
        axis = batch_axis(ref_shape, tuple((multi or runs[0])[0].shape), multi[1] if multi else 1)
        if axis is None:
            return None
        outer = 1
        size = ref_shape[axis]
        if identity is not None and multi is not None and len(runs) == 1 and size > 1 and size != batch:
            array, count = runs[0]
            for candidate in [1] + [d for d in range(2, size + 1) if size % d == 0]:
                if _same(_cut(array, axis, count, candidate)[identity], reference):
                    outer = candidate
                    break
        layout = (axis, outer)
    axis, outer = layout
    items: list[np.ndarray] = []
    for array, count in runs:
        if array.ndim <= axis or array.shape[axis] != ref_shape[axis] * count:
            return None
        items.extend(_cut(array, axis, count, outer))
    return items, layout


def to_batch_first(x: np.ndarray, axis: int) -> np.ndarray:
    return x if axis == 0 else np.moveaxis(x, axis, 0)


def from_batch_first(x: np.ndarray, axis: int) -> np.ndarray:
    return x if axis == 0 else np.moveaxis(x, 0, axis)
