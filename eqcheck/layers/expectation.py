"""``rho(g) x`` for every candidate action of a captured tensor, and the numbers that rank candidates:
the relative error in float32 differences, and lower bounds of it from a tensor's leading channels."""
from __future__ import annotations

import functools
import math

import numpy as np

from eqcheck.actions.representations import ImageAction, RegularFieldAction, Representation, apply_representation
from eqcheck.actions.spatial import apply_spatial, turn
from eqcheck.compare import Geometry
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.layers.layer_actions import ChannelPermutationAction
from eqcheck.metrics import squared_distance, sum_of_squares

#: the leading channels that bound a candidate's error before it is scored: 1 / PARTIAL_SLICES of them
PARTIAL_SLICES = 8


def fast_rel(observed: np.ndarray, expected: np.ndarray, mask: np.ndarray | None = None,
             norm2: float | None = None) -> float:
    """``||a - b|| / ||b||`` for ranking candidates (the difference in float32 is precise enough to
    rank; sums of squares in float64); ``norm2``: ``||b||^2`` where it is known."""
    if mask is not None:
        observed, expected = observed[..., mask], expected[..., mask]
    num = squared_distance(observed, expected, ranking_dtype(observed, expected))
    return ranking_ratio(num, sum_of_squares(expected) if norm2 is None else norm2)


def ranking_dtype(a: np.ndarray, b: np.ndarray):
    """float32 differences where both tensors are float32 or narrower (precise enough to rank)."""
    return np.float32 if a.dtype.itemsize <= 4 and b.dtype.itemsize <= 4 else np.float64


def ranking_ratio(num: float, den: float) -> float:
    """``sqrt(num / den)`` of two sums of squares; infinite where either is not finite."""
    if not (np.isfinite(num) and np.isfinite(den)):
        return float("inf")
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


@functools.lru_cache(maxsize=1024)
def regular_permutation(point_group, point, convention: str, orientation: str) -> np.ndarray:
    """``PointGroup.regular_permutation``, remembered: every layer asks for the same few."""
    return point_group.regular_permutation(point, convention, orientation)


def fibers(rep: Representation, group: Group, element: Element, shape: tuple[int, ...]) -> tuple[tuple, int, np.ndarray]:
    """Where the channel part of a regular (or found) action permutes: the shape to view a tensor of
    ``shape`` in, the axis of it that is permuted, and the permutation (RegularFieldAction's index
    arithmetic: entry ``j`` of that axis comes from entry ``perm[j]``)."""
    if isinstance(rep, ChannelPermutationAction):
        perm = rep.permutation(element)
        return (shape[0], len(perm), *shape[-2:]), 1, perm
    perm = regular_permutation(group.point_group, element.point, rep.convention, rep.orientation)
    size = len(perm)
    if rep.layout == "5d":
        return tuple(shape), 2, perm
    if rep.layout == "field-major":
        return (shape[0], -1, size, *shape[2:]), 2, perm
    return (shape[0], size, -1, *shape[2:]), 1, perm


def permute_fibers(rep: Representation, group: Group, element: Element, x: np.ndarray) -> np.ndarray:
    """The channel part of a regular (or found) action (np.take along the axis: the same entries as
    indexing with ``perm`` there, laid out in C order)."""
    shape, axis, perm = fibers(rep, group, element, x.shape)
    return np.take(x.reshape(shape), perm, axis=axis).reshape(x.shape)


#: a permutation read as views of this many runs at most (a regular action's: 1-4); more, and it is gathered
MAX_RUNS = 8
#: tensors of at least this many entries are compared through views of runs of channels (Expectation.distance2);
#: a smaller one is gathered, which costs less than the calls for each run (p4cnn_broken: 64 against 57 ms)
RUNS_FROM_ENTRIES = 1 << 19


@functools.lru_cache(maxsize=1024)
def _runs(perm: tuple[int, ...]) -> tuple[tuple[slice, slice], ...]:
    """``perm`` as runs of consecutive entries read in steps of +1 or -1: ``(target, source)`` slices with
    ``target`` of ``range(len(perm))`` reading ``source`` of the permuted axis."""
    runs, start = [], 0
    while start < len(perm):
        stop, step = start + 1, 1
        if stop < len(perm) and abs(perm[stop] - perm[start]) == 1:
            step = perm[stop] - perm[start]
            while stop < len(perm) and perm[stop] - perm[stop - 1] == step:
                stop += 1
        first, last = perm[start], perm[stop - 1]
        source = slice(first, last + 1) if step == 1 else slice(first, last - 1 if last else None, -1)
        runs.append((slice(start, stop), source))
        start = stop
    return tuple(runs)


def fiber_runs(rep: Representation, group: Group, element: Element, shape: tuple[int, ...]):
    """``(view shape, axis, runs)`` where the channel part of ``rep`` moves whole runs of channels (a
    regular action: a cyclic shift, reversed for a reflection), so that ``rho(g) x`` is read as views
    of ``x``; None where it is gathered."""
    view_shape, axis, perm = fibers(rep, group, element, shape)
    runs = _runs(tuple(int(p) for p in perm))
    return (view_shape, axis, runs) if len(runs) <= MAX_RUNS else None


@functools.lru_cache(maxsize=1024)
def channel_map(rep: Representation, group: Group, element: Element, channels: tuple[int, ...]) -> np.ndarray:
    """permute_fibers on channel numbers: for each channel of ``rho(g) x`` (batch and channel axes of
    shape ``channels`` flattened), the one of ``x`` it comes from (remembered, as the permutations are)."""
    index = np.arange(math.prod(channels)).reshape(tuple(channels) + (1, 1))
    return permute_fibers(rep, group, element, index).reshape(-1)


def moves_alike(group: Group, elements: list[Element], rep: Representation, shape: tuple[int, ...],
                source_rep: Representation, source_shape: tuple[int, ...]) -> bool | None:
    """Whether ``rep`` on a reshape (of ``shape``) of a tensor of ``source_shape`` moves every entry where
    ``source_rep`` moves it on the source, for every element: a reshape that keeps the batch and the
    image axes and regroups the channel axes in C order, under regular (or found channel) actions, is
    then the same action on the same numbers (same spatial part, same channel map), so its errors are
    the source's, with no data read. None where that cannot be told from the shapes (the data decides)."""
    kinds = (RegularFieldAction, ChannelPermutationAction)
    if (not isinstance(rep, kinds) or not isinstance(source_rep, kinds) or len(shape) < 3 or len(source_shape) < 3
            or shape[0] != source_shape[0] or shape[-2:] != source_shape[-2:]
            or math.prod(shape) != math.prod(source_shape)
            or any(len(axes) < (5 if getattr(action, "layout", "") == "5d" else 4)  # no image axes to move
                   for action, axes in ((rep, shape), (source_rep, source_shape)))):
        return None
    for element in elements:
        if element.point is None:
            return None
        if element.is_identity:
            continue
        if not np.array_equal(channel_map(rep, group, element, tuple(shape[:-2])),
                              channel_map(source_rep, group, element, tuple(source_shape[:-2]))):
            return False
    return True


class Expectation:
    """``rho(g) x`` for every candidate rho; the spatial part computed once per element, results kept
    (the same arrays serve ranking, the errors, and the transformed inputs of the next layers)."""

    def __init__(self, group: Group, reference: np.ndarray, geometry: Geometry, contiguous: bool = False) -> None:
        self.group, self.reference, self.geometry = group, reference, geometry
        #: spatial parts as contiguous copies (one gather per element, shared by every candidate, where
        #: ranking flattens each candidate's result), rather than views
        self.contiguous = contiguous
        self._spatial: dict[str, np.ndarray] = {}
        self._done: dict[tuple, np.ndarray] = {}
        self._norm2: float | None = None

    def __call__(self, rep: Representation, element: Element) -> np.ndarray:
        key = (rep, element.label)
        if key not in self._done:
            self._done[key] = self._compute(rep, element)
        return self._done[key]

    def keep_only(self, rep: Representation) -> None:
        """Drop the transformed copies of every action but ``rep`` (the one chosen: what the next layers
        read), so that a tensor holds its items and one action's copies, as chunk_sites counts."""
        for key in [key for key in self._done if key[0] != rep]:
            del self._done[key]

    def forget(self) -> None:
        """Drop every transformed copy kept (the tensor's analysis is done)."""
        self._spatial.clear()
        self._done.clear()

    def norm2(self, rep: Representation, element: Element, mask) -> float | None:
        """``||rho(g) x||^2`` where it is ``||x||^2`` (nothing masked, no zero fill: the actions only move
        entries), else None."""
        if mask is not None or self.geometry.zero_fill:
            return None
        if self._norm2 is None:
            self._norm2 = sum_of_squares(self.reference)
        return self._norm2

    def once(self, rep: Representation, element: Element) -> np.ndarray:
        """``rho(g) x`` as ``self(rep, element)``, not kept when it was not already: arrays read once
        (the errors over the whole batch) would otherwise hold fresh memory for the rest of the analysis."""
        done = self._done.get((rep, element.label))
        return done if done is not None else self._compute(rep, element)

    def distance2(self, rep: Representation, element: Element, seen: np.ndarray, dtype=np.float64,
                  keep: bool = False) -> float:
        """``||seen - rho(g) x||^2`` (metrics.squared_distance in ``dtype``), from the kept ``rho(g) x`` where
        there is one, else, for a large tensor whose channel part moves runs of channels and whose spatial
        part is flips and quarter turns, summed over views of the reference run by run: ``rho(g) x`` is not
        made (a copy of the tensor per element, and fresh pages for every large one). Where it is made,
        ``keep``: it is kept, as ``self(rep, element)`` keeps it."""
        done = self._done.get((rep, element.label))
        runs = None
        if (done is None and self.reference.size >= RUNS_FROM_ENTRIES
                and isinstance(rep, (RegularFieldAction, ChannelPermutationAction))
                and element.point is not None and not element.is_identity and not self.geometry.zero_fill
                and self._turns(element) and seen.shape == self.reference.shape
                and self.reference.ndim >= (5 if getattr(rep, "layout", "") == "5d" else 4)):
            runs = fiber_runs(rep, self.group, element, self.reference.shape)
        if runs is None:
            expected = done if done is not None else (self(rep, element) if keep else self.once(rep, element))
            return squared_distance(seen, expected, dtype)
        view_shape, axis, parts = runs
        head = (slice(None),) * axis
        seen_view = seen.reshape(view_shape)
        if self.contiguous:  # the turned reference, a copy shared by every candidate: runs of its channels
            moved, turned = self.moved(element).reshape(view_shape), False
        else:
            moved, turned = self.reference.reshape(view_shape), True
        total = 0.0
        for target, source in parts:
            part = moved[head + (source,)]
            total += squared_distance(seen_view[head + (target,)], turn(element, part) if turned else part, dtype)
        return total

    def ranking_error(self, rep: Representation, element: Element, seen: np.ndarray, mask=None) -> float:
        """``fast_rel(seen, self(rep, element), mask, self.norm2(...))``, with ``rho(g) x`` made (and kept) only
        where distance2 cannot do without it."""
        norm2 = self.norm2(rep, element, mask)
        if mask is not None or norm2 is None or self.reference.size < RUNS_FROM_ENTRIES:
            return fast_rel(seen, self(rep, element), mask, norm2)
        return ranking_ratio(self.distance2(rep, element, seen, ranking_dtype(seen, self.reference), keep=True), norm2)

    def _compute(self, rep: Representation, element: Element) -> np.ndarray:
        g, x = self.geometry, self.reference
        if element.is_identity and not g.zero_fill:
            return x
        if isinstance(rep, ImageAction) and x.ndim >= 3:
            return self.moved(element)
        if isinstance(rep, (RegularFieldAction, ChannelPermutationAction)) and element.point is not None:
            moves = x.ndim >= (5 if getattr(rep, "layout", "") == "5d" else 4)
            if moves and self._turns(element) and not self.contiguous:
                # the channel part first, on the contiguous reference (a copy of whole planes), then the
                # spatial part as a view: the same entries as permuting the turned view, at a fraction
                # of the cost of gathering through it
                return turn(element, permute_fibers(rep, self.group, element, x))
            return permute_fibers(rep, self.group, element, self.moved(element) if moves else x)
        return apply_representation(rep, self.group, element, x, stride=g.stride, zero_fill=g.zero_fill,
                                    order=g.order)

    def moved(self, element: Element) -> np.ndarray:
        """The spatial part of ``element`` applied to the reference (cached; a view where it is a flip
        and quarter turns only, as in CONVENTIONS section 1)."""
        if element.label not in self._spatial:
            g, x = self.geometry, self.reference
            if self._turns(element):
                moved = turn(element, x)
                if self.contiguous:
                    moved = np.ascontiguousarray(moved)
            else:
                moved = apply_spatial(element, x, stride=g.stride, zero_fill=g.zero_fill, order=g.order)
            self._spatial[element.label] = moved
        return self._spatial[element.label]

    def leading_bound(self, rep: Representation, element: Element, seen: np.ndarray) -> float | None:
        """A lower bound of ``fast_rel(seen, self(rep, element))`` from the leading channels alone (1 /
        PARTIAL_SLICES of them), for actions that only move entries (so ``||rho(g) x|| = ||x||``): the
        candidate's whole expectation is not computed. None where that does not apply. Ranking
        expectations only (contiguous spatial parts)."""
        return self.leading_bounds([rep], element, seen)[0]

    def leading_bounds(self, reps: list[Representation], element: Element,
                       seen: np.ndarray) -> list[float | None]:
        """leading_bound for each of ``reps``, their leading channels gathered and summed together."""
        x, bounds = self.reference, [None] * len(reps)
        if (not self.contiguous or self.geometry.zero_fill or x.ndim < 3 or seen.shape != x.shape
                or not seen.flags.c_contiguous or not (element.is_identity or self._turns(element))):
            return bounds
        per = x.shape[-2] * x.shape[-1]
        channels = x.size // per if per else 0
        part = channels // PARTIAL_SLICES
        norm2 = self.norm2(reps[0], element, None) * (1 + 1e-3) if reps else 0.0  # rounded up: a bound
        if part < 1 or part * per < 64 or not (norm2 > 0.0 and math.isfinite(norm2)):
            return bounds
        leading = np.arange(part)
        from_x, from_moved = [], []  # (position, the channels of the source that the leading ones read)
        for position, rep in enumerate(reps):
            if type(rep) is Representation:
                from_x.append((position, leading))
            elif isinstance(rep, ImageAction):
                from_moved.append((position, leading))
            elif (isinstance(rep, (RegularFieldAction, ChannelPermutationAction)) and element.point is not None
                  and not element.is_identity and x.ndim >= (5 if getattr(rep, "layout", "") == "5d" else 4)):
                from_moved.append((position, self._channel_map(rep, element)[:part]))
        seen_rows = seen.reshape(channels, per)[:part]
        for gathers, source in ((from_x, lambda: x), (from_moved, lambda: self.moved(element))):
            if not gathers:
                continue
            rows = source().reshape(channels, per)[np.stack([index for _, index in gathers])]
            diff = np.subtract(seen_rows[None], rows, dtype=np.float64)
            for (position, _), total in zip(gathers, np.square(diff, out=diff).sum(axis=(1, 2))):
                bounds[position] = math.sqrt(float(total) / norm2) * (1 - 1e-3)
        return bounds

    def _channel_map(self, rep: Representation, element: Element) -> np.ndarray:
        """For each channel of ``rho(g) x`` (channel axes flattened), the channel of ``x`` it comes from."""
        return channel_map(rep, self.group, element, self.reference.shape[:-2])

    def _turns(self, element: Element) -> bool:
        """Whether ``element`` moves the reference by flips and quarter turns only (a view)."""
        return element.quarter_turns is not None and not element.shifts and self.reference.ndim >= 2
