"""Which action an intermediate tensor carries: try every candidate, keep the smallest error, or find the permutation."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eqcheck.actions.representations import Representation, relabel_nodes
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.layers.expectation import Expectation
from eqcheck.layers.layer_actions import ChannelPermutationAction, RowOrderAction

#: linear assignment is tried on channel axes up to this size (its cost grows as C^3)
MAX_ASSIGNMENT_CHANNELS = 512
#: a permutation found by linear assignment must explain the data to this relative error at least
#: (for C4 the only relation is r^4 = e, which many permutations of a layer that is not equivariant meet)
FOUND_MAX_ERROR = 1e-2


def score(expect: Expectation, rep: Representation, elements: list[Element],
          observed: list[np.ndarray]) -> float:
    """The largest ranking error of ``rep`` over ``elements`` (observed tensors in the same order)."""
    worst = 0.0
    for element, seen in zip(elements, observed):
        mask = expect.geometry.mask(element, rep, seen.shape)
        worst = max(worst, expect.ranking_error(rep, element, seen, mask))
    return worst


#: a candidate whose ranking error is shown to be at least this many times the best one's is not
#: scored to the end; a margin at or above this is therefore a lower bound (below it, it is exact)
CLEAR_MARGIN = 10.0
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
           observed: list[np.ndarray], first: Representation | None = None,
           cap: float | None = None, batched: bool = True) -> Choice | None:
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
    otherwise is what choosing without a cap returns). ``batched``: False where axis 0 is no batch (a
    graph or a point cloud run alone): every candidate is then ranked on the whole tensor."""
    uncapped = (expect, candidates, elements, observed, first, None, batched)
    if batched and expect.reference.shape[0] > 1 and len(candidates) > 1:
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
            worst = max(worst, expect.ranking_error(rep, element, seen, mask))
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


def could_be_orthogonal(observed: np.ndarray, moved: np.ndarray, error: float) -> bool:
    """Whether some orthogonal channel matrix M could map ``moved`` to ``observed`` (both ``[C, samples]``)
    within ``error`` relative: M keeps every sample's norm, and ``| |a_p| - |M b_p| | <= |a_p - M b_p|``,
    so the samples' norms must already agree that well. One pass over the data, where Procrustes costs an
    SVD: a layer that is not equivariant is told apart before it."""
    a, b = np.linalg.norm(observed, axis=0), np.linalg.norm(moved, axis=0)
    return bool(np.linalg.norm(a - b) <= error * np.linalg.norm(b))


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


def find_row_order(expect: Expectation, elements: list[Element], observed: list[np.ndarray],
                   set_size: int | None) -> Choice | None:
    """For a tensor of a sparse graph (``perm:axis=0``) whose rows are not its nodes (messages over the
    edges and self loops ``[E', F]``, the nodes they go to ``[E']``): per element, the order that lists
    each observed row as a row of the reference (of node labels: as relabelled by the permutation), kept
    only where every element's rows are matched (within FOUND_MAX_ERROR, then scored). Matching rows of
    many values fits no free parameters: a tensor that is not equivariant keeps no multiset of rows.
    Node-level tensors are left to the node permutation itself (a model that reorders its nodes as it
    likes is not equivariant)."""
    group, x = expect.group, expect.reference
    if not group.permutes_sets or group.set_axis != 0 or x.ndim < 1 or len(x) < 2 or len(x) == set_size:
        return None
    if x.dtype.kind not in "fiu":
        return None
    node_labels = x.dtype.kind in "iu"
    if node_labels and not (set_size and x.size and 0 <= x.min() and x.max() < set_size):
        return None
    orders = {}
    for element, seen in zip(elements, observed):
        if seen.shape != x.shape:
            return None
        expected = relabel_nodes(element, x) if node_labels and element.permutation else x
        order = match_rows(seen.reshape(len(seen), -1).astype(np.float64),
                           expected.reshape(len(x), -1).astype(np.float64))
        if order is None:
            return None
        orders[element.label] = order
    rep = RowOrderAction(orders=orders, node_labels=node_labels)
    error = score(expect, rep, elements, observed)
    return Choice(rep, error, None, "found") if error < FOUND_MAX_ERROR else None


def match_rows(seen: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """The order with ``seen[i]`` close to ``rows[order[i]]``, or None: rows paired by their sorted
    projections on a fixed direction, then by linear assignment where rounding swapped near ties."""
    direction = np.random.default_rng(0).standard_normal(rows.shape[1])
    order = np.empty(len(rows), dtype=np.int64)
    order[np.argsort(seen @ direction, kind="stable")] = np.argsort(rows @ direction, kind="stable")
    norm = np.linalg.norm(seen)
    if np.linalg.norm(seen - rows[order]) <= FOUND_MAX_ERROR * norm:
        return order
    if len(rows) > MAX_ASSIGNMENT_CHANNELS:
        return None
    order = assignment(seen.T, rows.T)
    return order if np.linalg.norm(seen - rows[order]) <= FOUND_MAX_ERROR * norm else None


def find_matrices(expect: Expectation, elements: list[Element], observed: list[np.ndarray]) -> Choice | None:
    """Per generator, the orthogonal channel matrix that best explains the data (Procrustes, as the output's
    discovery), kept only when the matrices generate a representation of the point group (the relations
    hold) that explains every element: steerable fields (irreps, vectors, quotients) of a hidden tensor.
    Where the generators do not act exactly on the grid (C8's 45 degrees, SO(2)), each exact element's
    matrix is fitted and the relations among them checked (the quarter turns: named by C4)."""
    from eqcheck.discovery import (
        MIN_SAMPLES_PER_CHANNEL, FoundFieldAction, close_representation, generate_representation, name_representation,
    )

    group, x = expect.group, expect.reference
    if group.field_group is None or x.ndim != 4 or not all(e.exact for e in elements):
        return None
    channels = x.shape[1]
    if not 2 <= channels <= MAX_ASSIGNMENT_CHANNELS or x[:, 0].size < MIN_SAMPLES_PER_CHANNEL * channels:
        return None
    pg = group.point_group
    by_point = {e.point: (e, seen) for e, seen in zip(elements, observed) if e.point is not None and not e.shifts}
    if pg is not None and all(s in by_point for s in pg.generators()):
        fitted = {}
        for s in pg.generators():
            element, seen = by_point[s]
            target, source = channel_matrix(seen), channel_matrix(expect.moved(element))
            if not could_be_orthogonal(target, source, FOUND_MAX_ERROR):
                return None
            fitted[element.label] = _channel_fit(target, source)
        matrices = generate_representation(group, fitted)
        named = [group.from_point(p) for p in pg.elements]
    elif any(e.shifts for e in elements):
        return None
    else:  # each exact element's matrix; the others the tested ones reach by the group law
        pairs = [(e, channel_matrix(seen), channel_matrix(expect.moved(e))) for e, seen in zip(elements, observed)
                 if not e.is_identity]
        if not all(could_be_orthogonal(target, source, FOUND_MAX_ERROR) for _, target, source in pairs):
            return None
        closed = close_representation(group, [(e, _channel_fit(target, source)) for e, target, source in pairs])
        named, matrices = closed if closed is not None else ([], None)
    if matrices is None:
        return None
    name = name_representation(group, named, matrices)
    if name is None:
        return None
    rep = FoundFieldAction(spec=name, matrices=matrices)
    error = score(expect, rep, elements, observed)
    return Choice(rep, error, None, "found") if error < FOUND_MAX_ERROR else None


#: a signed permutation fitted to a hidden tensor's channels is kept where it explains the held-out half to this
SIGNED_FIT_TOLERANCE = 1e-4


def _channel_fit(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The channel matrix mapping ``source`` columns to ``target`` ones: a signed permutation where one explains
    the held-out half (quarter turns of regular, quotient and irrep fields in escnn's bases: exact even where
    the channels are linearly dependent, as quotient fields of one input channel are, which leaves a least
    squares fit free on what the data does not span), else the orthogonal Procrustes fit."""
    from eqcheck.discovery import fit_channels
    from eqcheck.reps.signed import dense

    half = target.shape[1] // 2
    rho, _, _ = fit_channels((source[:, :half], source[:, half:]), (target[:, :half], target[:, half:]),
                             SIGNED_FIT_TOLERANCE)
    return dense(rho)


def find_irreps(expect: Expectation, elements: list[Element], observed: list[np.ndarray],
                tolerance: float) -> Choice | None:
    """A 3-D group's hidden tensor: its O(3) irreps on the last axis, found as the output's are
    (discovery_o3), over every element of the analysis."""
    from eqcheck.discovery_o3 import discover_irreps

    found = discover_irreps(expect.group, elements, expect.reference, observed, tolerance)
    if found is None:
        return None
    error = score(expect, found, elements, observed)
    return Choice(found, error, None, "found") if error < FOUND_MAX_ERROR else None


def scoring_elements(group: Group, elements: list[Element]) -> list[int]:
    """Indices of the few exact elements that tell candidates apart: the point group's generators where
    they act exactly, else the first exact non-identity elements."""
    exact = [i for i, e in enumerate(elements) if e.exact and not e.is_identity]
    pg = group.point_group
    if pg is not None:
        gens = set(pg.generators())
        picked = [i for i in exact if elements[i].point in gens and not elements[i].shifts]
        rotations = [i for i in exact if elements[i].point is not None and not elements[i].point.flip]
        if not any(not elements[i].point.flip for i in picked) and rotations:
            picked.append(rotations[0])
        shifted = [i for i in exact if elements[i].shifts]
        picked += shifted[:1]
        if picked:
            return sorted(set(picked))
    chosen = exact[:2]
    if not chosen:
        chosen = [i for i, e in enumerate(elements) if not e.is_identity][:2]
    return chosen or [0]
