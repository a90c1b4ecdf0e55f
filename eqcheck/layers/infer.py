"""Which action an intermediate tensor carries: try every candidate, keep the smallest error, or find the permutation."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from eqcheck.actions.parse import candidate_representations, parse_representation
from eqcheck.actions.representations import (
    ImageAction, RegularFieldAction, Representation, SetAction, apply_representation,
)
from eqcheck.actions.spatial import apply_spatial
from eqcheck.compare import Geometry
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.metrics import sum_of_squares

#: linear assignment is tried on channel axes up to this size (its cost grows as C^3)
MAX_ASSIGNMENT_CHANNELS = 512
#: a permutation found by linear assignment must explain the data to this relative error at least
#: (for C4 the only relation is r^4 = e, which many permutations of a layer that is not equivariant meet)
FOUND_MAX_ERROR = 1e-2


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


def layer_candidates(group: Group, shape: tuple[int, ...], set_size: int | None) -> list[Representation]:
    """Every action that fits a batch-first tensor of ``shape``, simplest first: those of the output
    check, plus a set axis (or a pair of them, as in attention maps) anywhere after the batch."""
    candidates = candidate_representations(group, shape, set_size, 1)
    if group.permutes_sets and set_size:
        axes = [a for a in range(2, len(shape)) if shape[a] == set_size]
        candidates += [SetAction(spec=f"set:axis={a}", axis=a) for a in axes]
        candidates += [SetAxesAction(spec=f"set:axes={a},{a + 1}", axes=(a, a + 1))
                       for a in range(2, len(shape) - 1) if shape[a] == shape[a + 1] == set_size]
    return candidates


def parse_layer_type(spec: str, shape: tuple[int, ...], convention: str = "escnn") -> Representation:
    """A ``--layer-type`` value: any output type spec (``regular`` in the group's ``convention``), or
    ``set:axes=A,B``."""
    name, _, option = spec.strip().lower().partition(":")
    if name == "set" and option.startswith("axes="):
        try:
            axes = tuple(int(a) for a in option[5:].split(","))
        except ValueError:
            raise UsageError(f"--layer-type {spec!r}: axes must be integers (set:axes=2,3)") from None
        return SetAxesAction(spec=f"set:axes={','.join(map(str, axes))}", axes=axes)
    return parse_representation(spec, shape, convention)


#: arrays smaller than this many entries are allocated afresh (cheaper than finding room in a buffer)
SCRATCH_MIN = 1 << 14


class Scratch:
    """Buffers that the differences of an analysis are written into, one per dtype: fresh arrays of
    a few MB are fresh pages, and page faults cost more than the arithmetic on them."""

    def __init__(self) -> None:
        self._buffers: dict[np.dtype, np.ndarray] = {}

    def take(self, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = math.prod(shape)
        buffer = self._buffers.get(dtype)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[dtype] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


def fast_rel(observed: np.ndarray, expected: np.ndarray, mask: np.ndarray | None = None,
             scratch: Scratch | None = None, norm2: float | None = None) -> float:
    """``||a - b|| / ||b||`` for ranking candidates (the difference in float32 is precise enough to
    rank; sums of squares in float64); ``scratch`` holds the difference (the value is the same without
    it); ``norm2``: ``||b||^2`` where it is known."""
    if mask is not None:
        observed, expected = observed[..., mask], expected[..., mask]
    a = np.asarray(observed, dtype=np.float32 if observed.dtype.itemsize <= 4 else np.float64)
    b = np.asarray(expected, dtype=a.dtype)
    if scratch is None or a.shape != b.shape or a.size < SCRATCH_MIN:
        diff, squares = a - b, None
    else:
        diff, squares = np.subtract(a, b, out=scratch.take(a.shape, a.dtype)), scratch.take(a.shape)
    num = sum_of_squares(diff, out=squares)
    den = sum_of_squares(b, out=squares) if norm2 is None else norm2
    if not (np.isfinite(num) and np.isfinite(den)):
        return float("inf")
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))


@functools.lru_cache(maxsize=1024)
def regular_permutation(point_group, point, convention: str, orientation: str) -> np.ndarray:
    """``PointGroup.regular_permutation``, remembered: every layer asks for the same few."""
    return point_group.regular_permutation(point, convention, orientation)


def permute_fibers(rep: Representation, group: Group, element: Element, x: np.ndarray) -> np.ndarray:
    """The channel part of a regular (or found) action, the same index arithmetic as RegularFieldAction
    (np.take along the axis: the same entries as indexing with ``perm`` there, laid out in C order)."""
    if isinstance(rep, ChannelPermutationAction):
        perm = rep.permutation(element)
        return np.take(x.reshape(x.shape[0], len(perm), *x.shape[-2:]), perm, axis=1).reshape(x.shape)
    perm = regular_permutation(group.point_group, element.point, rep.convention, rep.orientation)
    size = len(perm)
    if rep.layout == "5d":
        return np.take(x, perm, axis=2)
    if rep.layout == "field-major":
        return np.take(x.reshape(x.shape[0], -1, size, *x.shape[2:]), perm, axis=2).reshape(x.shape)
    return np.take(x.reshape(x.shape[0], size, -1, *x.shape[2:]), perm, axis=1).reshape(x.shape)


@functools.lru_cache(maxsize=1024)
def _channel_map_cached(rep: Representation, point_group, point, channels: tuple[int, ...]) -> np.ndarray:
    index = np.arange(math.prod(channels)).reshape(channels + (1, 1))
    if isinstance(rep, ChannelPermutationAction):
        perm = dict(rep.table)[point]
        return np.take(index.reshape(index.shape[0], len(perm), 1, 1), perm, axis=1).reshape(-1)
    perm = regular_permutation(point_group, point, rep.convention, rep.orientation)
    if rep.layout == "5d":
        return np.take(index, perm, axis=2).reshape(-1)
    if rep.layout == "field-major":
        return np.take(index.reshape(index.shape[0], -1, len(perm), 1, 1), perm, axis=2).reshape(-1)
    return np.take(index.reshape(index.shape[0], len(perm), -1, 1, 1), perm, axis=1).reshape(-1)


def channel_map(rep: Representation, group: Group, element: Element, channels: tuple[int, ...]) -> np.ndarray:
    """permute_fibers on channel numbers: for each channel of ``rho(g) x`` (batch and channel axes of
    shape ``channels`` flattened), the one of ``x`` it comes from (remembered, as the permutations are)."""
    return _channel_map_cached(rep, group.point_group, element.point, tuple(channels))


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
                return self._turn(element, permute_fibers(rep, self.group, element, x))
            return permute_fibers(rep, self.group, element, self.moved(element) if moves else x)
        return apply_representation(rep, self.group, element, x, stride=g.stride, zero_fill=g.zero_fill,
                                    order=g.order)

    def moved(self, element: Element) -> np.ndarray:
        """The spatial part of ``element`` applied to the reference (cached; a view where it is a flip
        and quarter turns only, as in CONVENTIONS section 1)."""
        if element.label not in self._spatial:
            g, x = self.geometry, self.reference
            if self._turns(element):
                moved = self._turn(element, x)
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
        return element.quarter_turns is not None and element.shift == (0, 0) and self.reference.ndim >= 2

    @staticmethod
    def _turn(element: Element, x: np.ndarray) -> np.ndarray:
        """``np.rot90(np.flip(x, -1) if flip else x, k, axes=(-2, -1))``: the same view (strides
        included), without np.rot90's argument handling, which costs more than the view on small maps."""
        if element.flip:
            x = x[..., ::-1]
        k = element.quarter_turns % 4
        if k == 1:
            return x[..., ::-1].swapaxes(-1, -2)
        if k == 2:
            return x[..., ::-1, ::-1]
        if k == 3:
            return x.swapaxes(-1, -2)[..., ::-1]
        return x


def score(expect: Expectation, rep: Representation, elements: list[Element],
          observed: list[np.ndarray], scratch: Scratch | None = None) -> float:
    """The largest ranking error of ``rep`` over ``elements`` (observed tensors in the same order)."""
    worst = 0.0
    for element, seen in zip(elements, observed):
        mask = expect.geometry.mask(element, rep, seen.shape)
        worst = max(worst, fast_rel(seen, expect(rep, element), mask, scratch, expect.norm2(rep, element, mask)))
    return worst


#: a candidate whose ranking error is shown to be at least this many times the best one's is not
#: scored to the end; a margin at or above this is therefore a lower bound (below it, it is exact)
CLEAR_MARGIN = 10.0
#: the leading channels that bound a candidate's error before it is scored: 1 / PARTIAL_SLICES of them
PARTIAL_SLICES = 8
#: bounds are tried only where the limit is below this (a wrong action is off by order one, and a
#: fraction of its channels shows a fraction of that)
PARTIAL_WORTH = 0.05


def _first_bounds(expect: Expectation, candidates: list[Representation], elements: list[Element],
                  observed: list[np.ndarray]) -> list[float]:
    """Lower bounds of each candidate's ranking error from the first element's leading channels (0: none)."""
    if not elements:
        return [0.0] * len(candidates)
    unmasked = [expect.geometry.mask(elements[0], rep, observed[0].shape) is None for rep in candidates]
    bounds = expect.leading_bounds([rep for rep, ok in zip(candidates, unmasked) if ok], elements[0], observed[0])
    found = iter(bounds)
    return [(next(found) or 0.0) if ok else 0.0 for ok in unmasked]


@dataclass(frozen=True)
class Choice:
    """The action kept for a tensor, its ranking error, and the runner-up's error / its error (exact
    below CLEAR_MARGIN; from CLEAR_MARGIN on, a lower bound)."""

    rep: Representation
    error: float
    margin: float | None
    source: str


def choose(expect: Expectation, candidates: list[Representation], elements: list[Element],
           observed: list[np.ndarray], scratch: Scratch | None = None,
           first: Representation | None = None, cap: float | None = None) -> Choice | None:
    """The candidate with the smallest error; ties go to the simplest (candidates come simplest first).
    Candidates are ranked on the first sample of the batch (the errors of the one kept are then
    measured on all of it); the margin is the runner-up's error over the winner's.

    ``first`` (the likely winner, if known) is scored first. A candidate's error is the worst over the
    elements, so once a lower bound of it (an element's error, or the error on an element's leading
    channels: Expectation.leading_bound) reaches CLEAR_MARGIN times the best complete candidate's, the
    candidate is not scored further: it can neither win nor change which one wins (it is no near tie
    of any candidate that could), so the choice and its error are those of scoring every candidate in
    full; the margin is exact below CLEAR_MARGIN and a lower bound from there on.

    ``cap``: only a candidate whose error is at most ``cap`` is wanted; candidates are dropped as soon
    as a bound reaches it, and None is returned when no candidate is within it (what is returned
    otherwise is what choosing without a cap returns)."""
    uncapped = (expect, candidates, elements, observed, scratch, first)
    if expect.reference.shape[0] > 1 and len(candidates) > 1:
        expect = Expectation(expect.group, expect.reference[:1], expect.geometry, contiguous=True)
        observed = [seen[:1] for seen in observed]
    order = list(range(len(candidates)))
    if first is not None:
        at = next((i for i, rep in enumerate(candidates) if rep == first), None)
        if at is not None:
            order.insert(0, order.pop(at))
    # every candidate's bound on the first element, then candidates scored from the smallest bound up:
    # the likely winner first, so that the others are dropped on the bound already known
    early = _first_bounds(expect, candidates, elements, observed)
    order.sort(key=lambda index: early[index])
    exact: dict[int, float] = {}
    bounds: list[float] = []
    best, last = math.inf, len(elements) - 1
    for index in order:
        rep = candidates[index]
        limit = CLEAR_MARGIN * (best + 1e-12) - 1e-12  # a bound this far off drops the candidate
        if cap is not None:
            limit = min(limit, cap)
        if early[index] >= limit:
            bounds.append(early[index])
            continue
        worst, dropped = 0.0, False
        for position, (element, seen) in enumerate(zip(elements, observed)):
            mask = expect.geometry.mask(element, rep, seen.shape)
            if position and limit < PARTIAL_WORTH and mask is None:  # where a wrong action's bound may reach it
                bound = expect.leading_bound(rep, element, seen)
                if bound is not None and max(worst, bound) >= limit:
                    bounds.append(max(worst, bound))
                    dropped = True
                    break
            worst = max(worst, fast_rel(seen, expect(rep, element), mask, scratch, expect.norm2(rep, element, mask)))
            if worst >= limit and position < last:
                bounds.append(worst)
                dropped = True
                break
        if not dropped:
            exact[index] = worst
            best = min(best, worst)
    if cap is not None and not (best <= cap / CLEAR_MARGIN):  # none within the cap, or bounds not all sound
        return None if not best <= cap else choose(*uncapped)
    scored = [(exact[i], candidates[i]) for i in sorted(exact)]
    best_error, best_rep = scored[0]
    for error, rep in scored[1:]:
        if error < best_error * (1 - 1e-6):
            best_error, best_rep = error, rep

    def same_here(rep: Representation) -> bool:  # e.g. image and invariant on 1x1 maps: no contest
        return all(np.array_equal(expect(rep, g), expect(best_rep, g)) for g in elements)

    others = [e for e, rep in scored
              if rep is not best_rep and not (e <= best_error * (1 + 1e-6) and same_here(rep))] + bounds
    margin = (min(others) + 1e-12) / (best_error + 1e-12) if others else None
    return Choice(best_rep, best_error, margin, "auto")


def channel_matrix(x: np.ndarray) -> np.ndarray:
    """``[B, C, (K,) H, W]`` as one row per channel (the channel axes flattened)."""
    channels = int(np.prod(x.shape[1:-2])) if x.ndim >= 4 else x.shape[1]
    return np.moveaxis(x.reshape(x.shape[0], channels, -1), 1, 0).reshape(channels, -1).astype(np.float64)


def same_channel_norms(observed: np.ndarray, moved: np.ndarray, rtol: float = 1e-3) -> bool:
    """A permutation of channels keeps the multiset of channel norms; rotations keep each norm."""
    a = np.sort(np.linalg.norm(channel_matrix(observed), axis=1))
    b = np.sort(np.linalg.norm(channel_matrix(moved), axis=1))
    return bool(np.all(np.abs(a - b) <= rtol * (b.max() if b.size else 0.0)))


def assignment(observed: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """The channel permutation p minimising ``||observed - moved[:, p]||``: new[i] = old[p[i]]."""
    from scipy.optimize import linear_sum_assignment

    a, b = channel_matrix(observed), channel_matrix(moved)
    cost = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[rows] = cols
    return perm


def homomorphism(group: Group, generators: dict, size: int) -> dict | None:
    """Extend generator permutations to the whole point group; None if the relations do not hold."""
    pg = group.point_group
    table = {pg.identity: np.arange(size)}
    queue = [pg.identity]
    while queue:
        a = queue.pop()
        for s, perm_s in generators.items():
            b = pg.compose(s, a)  # apply a, then s: x[P_a][P_s] = x[P_a[P_s]]
            perm_b = table[a][perm_s]
            if b in table:
                if not np.array_equal(table[b], perm_b):
                    return None
            else:
                table[b] = perm_b
                queue.append(b)
    return table if len(table) == pg.order else None


def find_permutation(expect: Expectation, elements: list[Element], observed: list[np.ndarray]) -> Choice | None:
    """Per generator, the channel permutation that best explains the data (linear assignment), kept
    only when the permutations generate a homomorphism of the point group."""
    group, x = expect.group, expect.reference
    pg = group.point_group
    if pg is None or x.ndim < 4 or not all(e.exact for e in elements):
        return None
    channels = int(np.prod(x.shape[1:-2]))
    if not 2 <= channels <= MAX_ASSIGNMENT_CHANNELS:
        return None
    by_point = {e.point: (e, seen) for e, seen in zip(elements, observed) if e.point is not None}
    if not all(s in by_point for s in pg.generators()):
        return None
    generators = {}
    for s in pg.generators():
        element, seen = by_point[s]
        moved = expect.moved(element)
        if not same_channel_norms(seen, moved):  # no permutation of channels can explain it: skip the O(C^3)
            return None
        generators[s] = assignment(seen, moved)
    table = homomorphism(group, generators, channels)
    if table is None:
        return None
    rep = ChannelPermutationAction(table=tuple((p, tuple(int(i) for i in perm)) for p, perm in table.items()))
    error = score(expect, rep, elements, observed)
    return Choice(rep, error, None, "found") if error < FOUND_MAX_ERROR else None


def scoring_elements(group: Group, elements: list[Element]) -> list[int]:
    """Indices of the few exact elements that tell candidates apart: the point group's generators where
    they act exactly, else the first exact non-identity elements."""
    exact = [i for i, e in enumerate(elements) if e.exact and not e.is_identity]
    pg = group.point_group
    if pg is not None:
        gens = set(pg.generators())
        picked = [i for i in exact if elements[i].point in gens and elements[i].shift == (0, 0)]
        rotations = [i for i in exact if elements[i].point is not None and not elements[i].point.flip]
        if not any(not elements[i].point.flip for i in picked) and rotations:
            picked.append(rotations[0])
        shifted = [i for i in exact if elements[i].shift != (0, 0)]
        picked += shifted[:1]
        if picked:
            return sorted(set(picked))
    chosen = exact[:2]
    if not chosen:
        chosen = [i for i, e in enumerate(elements) if not e.is_identity][:2]
    return chosen or [0]
