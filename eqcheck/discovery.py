"""Discovering how a tensor's channels transform, from the data: for each tested element g, the orthogonal
matrix M_g that best maps the spatially moved output ``S_g f(x)`` to ``f(g.x)`` (Procrustes), fitted on
half the samples and held to the other half, accepted only as a representation (M_gh = M_g M_h on the
tested elements), and named by its character (its decomposition into the group's irreps).

A fitted M_g has C^2 degrees of freedom against C values per sample: it is only fitted where the samples
outnumber the channels many times over (``MIN_SAMPLES_PER_CHANNEL``), so that a tensor that is not
equivariant is never explained by it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqcheck.actions.fields import mix_channels, signed_permutation_of
from eqcheck.actions.representations import Representation, _spatial_fits
from eqcheck.actions.spatial import apply_spatial, central_disk, turn
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.reps import character_name, decompose

#: samples (batch items x pixels) per channel below which no matrix is fitted
MIN_SAMPLES_PER_CHANNEL = 4
#: the held-out error may exceed the fitted one by this factor (and the tolerance) before the fit is refused
HELD_OUT_FACTOR = 10.0
#: M_gh against M_g M_h: relations that hold to this are a representation
RELATION_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class FoundAction(Representation):
    """An action whose matrices, one per tested element (by label), were found from the data; they are
    its identity: two fits are two actions, compared and hashed as objects."""

    spec: str = "found"
    matrices: dict = field(default_factory=dict)

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @property
    def size(self) -> int:
        return len(next(iter(self.matrices.values()))) if self.matrices else 0


@dataclass(frozen=True, eq=False)
class FoundFieldAction(FoundAction):
    """Channels (axis 1) mixed by the found matrices, then the spatial action."""

    spatial: bool = True

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        mixed = mix_channels(self.matrices[element.label], None, x)
        if x.ndim >= 4:
            mixed = apply_spatial(element, mixed, stride=stride, zero_fill=zero_fill, order=order)
        return mixed

    def fits(self, group: Group, shape, set_size=None):
        if len(shape) < 2 or shape[1] != self.size:
            return f"found for {self.size} channels, the tensor has shape {list(shape)}"
        return _spatial_fits(group, shape, 4) if len(shape) >= 4 else None


def _samples(x: np.ndarray) -> np.ndarray:
    """``[C, N]``: channels against samples (batch items and pixels)."""
    return np.moveaxis(np.asarray(x, dtype=np.float64), 1, 0).reshape(x.shape[1], -1)


#: samples (batch items x pixels) per channel that a fit and its held-out check each use at least
FIT_SAMPLES_PER_CHANNEL = 12


def _sample_grids(reference: np.ndarray) -> tuple[tuple | None, tuple | None]:
    """Index tuples of the pixels used for the fit and for the held-out check: two bands of whole rows,
    about a third and two thirds down, as many as the channels need (alternate rows where the map is too
    small for bands). Slices, so that each is a view of any tensor, turned ones included, and reads few
    cache lines. None for a ``[B, C]`` tensor (its batch items are split instead)."""
    if reference.ndim == 2:
        return None, None
    batch, channels, h, w = reference.shape
    rows = -(-FIT_SAMPLES_PER_CHANNEL * channels // (batch * w))
    if 3 * rows > h:
        return (..., slice(0, None, 2), slice(None)), (..., slice(1, None, 2), slice(None))
    fit_start = h // 3 - rows // 2
    held_start = max(fit_start + rows, min(2 * h // 3 - rows // 2, h - rows))
    return (..., slice(fit_start, fit_start + rows), slice(None)), (..., slice(held_start, held_start + rows), slice(None))


def _columns(x: np.ndarray, grid: tuple | None, part: int = 0) -> np.ndarray:
    """``[C, samples]``, float32 or wider: the grid's pixels of every batch item; a ``[B, C]`` tensor: half
    of its items (``part`` 0 or 1)."""
    dtype = np.result_type(x.dtype, np.float32)
    if grid is None:
        half = x.shape[0] // 2
        rows = x[:half] if part == 0 else x[half:]
        return np.array(rows.T, dtype=dtype, order="C")
    picked = x[grid]
    return np.array(np.moveaxis(picked, 1, 0), dtype=dtype, order="C").reshape(x.shape[1], -1)


def _pair(y: np.ndarray, fit, held) -> tuple[np.ndarray, np.ndarray]:
    """The columns of ``y`` for the fit and for the held-out check (a ``[B, C]`` tensor: its two halves)."""
    if fit is None:
        return _columns(y, None, 0), _columns(y, None, 1)
    return _columns(y, fit), _columns(y, held)


def fit_channels(source: tuple, target: tuple, tolerance: float) -> tuple[np.ndarray, float, float]:
    """The orthogonal M that maps ``source`` columns to ``target`` columns, with its error on the fit
    half and on the held-out half (NaN where the data is not finite: no fit is then accepted). A signed
    permutation is tried first (what quarter turns and mirrors do to regular, quotient and irrep fields in
    escnn's bases), kept where it explains both halves within ``tolerance``; otherwise Procrustes in
    float64."""
    correlation = target[0] @ source[0].T  # NaN or Inf anywhere in the data shows here
    if not np.isfinite(correlation).all():
        return np.eye(len(correlation)), np.nan, np.nan
    chosen = signed_permutation(correlation)
    if chosen is not None:
        order, signs = chosen
        signs = signs.astype(target[0].dtype)
        errors = [_rel(signs[:, None] * s[order], t) for s, t in zip(source, target)]
        if max(errors) <= tolerance:
            m = np.zeros((len(order), len(order)))
            m[np.arange(len(order)), order] = signs
            return m, errors[0], errors[1]
    source = [np.asarray(s, dtype=np.float64) for s in source]
    target = [np.asarray(t, dtype=np.float64) for t in target]
    m = procrustes(target[0], source[0])
    return m, _rel(m @ source[0], target[0]), _rel(m @ source[1], target[1])


def signed_permutation(correlation: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(order, signs)`` with ``target ~ signs * source[order]`` from ``correlation = target @ source.T``:
    each target channel's most correlated source channel, None where two target channels pick the same."""
    order = np.abs(correlation).argmax(axis=1)
    if len(np.unique(order)) < len(order):
        return None
    return order, np.sign(correlation[np.arange(len(order)), order])


def procrustes(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The orthogonal M minimising ||target - M source||."""
    u, _, vt = np.linalg.svd(target @ source.T)
    return u @ vt


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / norm) if norm > 0 else (0.0 if np.linalg.norm(a) == 0 else np.inf)


def discover(group: Group, elements: list[Element], reference: np.ndarray, transformed: list[np.ndarray],
             tolerance: float) -> FoundFieldAction | None:
    """The channel representation of an output ``[B, C]`` or ``[B, C, H, W]`` found from the data, or None
    when the data cannot decide it or no representation explains it."""
    field_group = group.field_group
    if field_group is None or reference.ndim not in (2, 4) or reference.shape[1] < 2:
        return None
    if reference.ndim == 4 and reference.shape[-1] != reference.shape[-2]:
        return None
    pairs = [(g, y) for g, y in zip(elements, transformed) if not g.shifts]
    exact = [g for g, _ in pairs if g.exact]
    if len(pairs) < len(elements) or not exact:
        return None
    channels = reference.shape[1]
    if reference[:, 0].size < 2 * MIN_SAMPLES_PER_CHANNEL * channels:
        return None
    matrices = {}
    fit, held = _sample_grids(reference)
    generators = _exact_generators(group, pairs)
    if generators is not None:  # a finite group: fit its generators, derive the rest by the group law
        pairs = generators
    for g, y in pairs:
        if g.exact or reference.ndim == 2:  # flips and quarter turns move pixels ([B, C]: none to move)
            moved = reference if reference.ndim == 2 else turn(g, reference)  # a view: nothing copied
            source, target = _pair(moved, fit, held), _pair(y, fit, held)
        else:  # interpolated: the disk that comparisons use, every pixel of it
            mask = central_disk(*reference.shape[-2:])
            moved, inside = _samples(apply_spatial(g, reference)[..., mask]), _samples(y[..., mask])
            half = moved.shape[1] // 2
            source, target = (moved[:, :half], moved[:, half:]), (inside[:, :half], inside[:, half:])
        m, fitted, held_out = fit_channels(source, target, tolerance)
        if not held_out <= max(HELD_OUT_FACTOR * fitted, tolerance):
            return None
        matrices[g.label] = m
    if generators is not None:
        matrices = generate_representation(group, matrices)
        if matrices is None or any(g.label not in matrices for g in exact):
            return None
    elif not is_representation(group, exact, matrices):
        return None
    name = name_representation(group, [g for g in elements if g.label in matrices], matrices)
    return FoundFieldAction(spec=name, matrices=matrices) if name else None


def _exact_generators(group: Group, pairs: list) -> list | None:
    """The (element, output) pairs of a finite point group's generators, where they act exactly."""
    point_group = group.point_group
    if point_group is None or any(g.point is None for g, _ in pairs):
        return None
    by_point = {g.point: (g, y) for g, y in pairs}
    chosen = [by_point.get(s) for s in point_group.generators()]
    if any(c is None or not c[0].exact for c in chosen):
        return None
    return chosen


def generate_representation(group: Group, fitted: dict) -> dict | None:
    """Every element's matrix from the generators' (by label), or None when the relations do not hold
    (two products reaching one element with different matrices). Signed permutations (what quarter turns
    and mirrors do in escnn's bases) are composed as index arrays, exactly."""
    point_group = group.point_group
    generators = {p: fitted[group.from_point(p).label] for p in point_group.generators()}
    size = len(next(iter(generators.values())))
    permutations = {p: signed_permutation_of(m) for p, m in generators.items()}
    if all(order is not None for order, _ in permutations.values()):
        moves = {p: (order, np.ones(size) if signs is None else signs) for p, (order, signs) in permutations.items()}
        # (o1, s1) after (o2, s2): M1 M2 v = s1 * s2[o1] * v[o2[o1]]
        table = _closure(point_group, moves, (np.arange(size), np.ones(size)),
                         lambda g, a: (a[0][g[0]], g[1] * a[1][g[0]]),
                         lambda a, b: np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
        if table is None:
            return None
        dense = {}
        for p, (order, signs) in table.items():
            matrix = np.zeros((size, size))
            matrix[np.arange(size), order] = signs
            dense[group.from_point(p).label] = matrix
        return dense
    table = _closure(point_group, generators, np.eye(size), lambda g, a: g @ a,
                     lambda a, b: np.abs(a - b).max() <= RELATION_TOLERANCE)
    return None if table is None else {group.from_point(p).label: m for p, m in table.items()}


def _closure(point_group, generators: dict, identity, compose, same) -> dict | None:
    """Every element reached from the identity by the generators, with its value (``compose(generator,
    value)``), or None where two products reach one element with values that are not ``same``."""
    table = {point_group.identity: identity}
    queue = [point_group.identity]
    while queue:
        a = queue.pop()
        for s, value in generators.items():
            b, product = point_group.compose(s, a), compose(value, table[a])
            if b in table:
                if not same(table[b], product):
                    return None
            else:
                table[b] = product
                queue.append(b)
    return table


def close_representation(group: Group, fitted: list[tuple[Element, np.ndarray]],
                         limit: int = 64) -> tuple[list[Element], dict] | None:
    """The elements generated by the fitted ones (products, by the group law) and their matrices, or None
    where two products reach one element with different matrices (not a representation) or more than
    ``limit`` elements come out: the quarter turns from rot90 alone, where C8's or SO(2)'s generators
    do not act exactly on a grid."""
    elements = {g.label: g for g, _ in fitted}
    matrices = {g.label: m for g, m in fitted}
    queue = list(elements)
    while queue:
        a = elements[queue.pop()]
        for b in list(elements.values()):
            products = ((group.compose(a, b), matrices[a.label] @ matrices[b.label]),
                        (group.compose(b, a), matrices[b.label] @ matrices[a.label]))
            for product, matrix in products:
                if product.label in matrices:
                    if np.abs(matrices[product.label] - matrix).max() > RELATION_TOLERANCE:
                        return None
                elif len(matrices) >= limit:
                    return None
                else:
                    elements[product.label], matrices[product.label] = product, matrix
                    queue.append(product.label)
    return list(elements.values()), matrices


def is_representation(group: Group, elements: list[Element], matrices: dict) -> bool:
    """M_gh = M_g M_h wherever g h is among the tested elements (an exhaustive finite group: all pairs)."""
    by_label = {g.label: g for g in elements}
    for a in elements:
        for b in elements:
            product = group.compose(a, b).label
            if product in by_label:
                if np.abs(matrices[product] - matrices[a.label] @ matrices[b.label]).max() > RELATION_TOLERANCE:
                    return False
    return True


def name_representation(group: Group, elements: list[Element], matrices: dict) -> str | None:
    """The decomposition into irreps of the field group restricted to the tested elements: by its character
    where every element of a finite group was tested; for SO(2) by its frequencies where the angles tell
    them apart; else by the restriction to the right angles (``... of C4``), or ``found`` with the count."""
    field_group = group.field_group
    if field_group.finite:
        labels = {field_group.label(g): g.label for g in elements}
        if len(labels) == field_group.order and None not in labels:
            characters = {label: float(np.trace(matrices[name])) for label, name in labels.items()}
            terms = decompose(characters, field_group)
            if terms is None:
                return None
            return character_name(terms, field_group)
    if field_group.kind == "so2":
        named = so2_name(group, elements, matrices)
        if named is not None:
            return named
    return c4_name(elements, matrices)


def c4_name(elements: list[Element], matrices: dict) -> str:
    """The restriction to the quarter turns (checked exactly on a grid), ``2*irrep(1) of C4``; ``found(C)``
    where they were not all tested or no whole multiplicities explain them."""
    from eqcheck.reps import FieldGroup

    c4 = FieldGroup("c", 4)
    labels = {c4.label(g): g.label for g in elements if g.exact and c4.label(g) is not None and not g.flip}
    if len(labels) == 4:
        terms = decompose({label: float(np.trace(matrices[name])) for label, name in labels.items()}, c4)
        if terms is not None:
            return f"{character_name(terms, c4)} of C4"
    return f"found({len(next(iter(matrices.values())))})"


#: SO(2) frequencies looked for in a found representation (interpolated rotations blur higher ones)
MAX_SO2_FREQUENCY = 4
#: a multiplicity read from fitted characters is kept where it is this close to a whole number
SO2_ROUNDING = 0.25


def so2_name(group: Group, elements: list[Element], matrices: dict) -> str | None:
    """The decomposition into SO(2) irreps (``2*irrep(1)+trivial``) of matrices fitted at several angles:
    characters ``m_0 + sum_k 2 m_k cos(k theta)`` solved for whole multiplicities that add up to the
    dimension; None where the angles cannot tell the frequencies apart or none fit."""
    from eqcheck.reps import make_rep

    so2 = group.field_group
    angles = {so2.label(g): float(np.trace(matrices[g.label])) for g in elements if not g.flip}
    size = len(next(iter(matrices.values())))
    thetas = np.array(list(angles))
    basis = np.stack([np.ones_like(thetas)] + [2 * np.cos(k * thetas) for k in range(1, MAX_SO2_FREQUENCY + 1)], 1)
    if np.linalg.matrix_rank(basis, tol=1e-6) < MAX_SO2_FREQUENCY + 1:  # the angles cannot tell them apart
        return None
    solved, *_ = np.linalg.lstsq(basis, np.array(list(angles.values())), rcond=None)
    counts = np.round(solved).astype(int)
    if (np.abs(solved - counts).max() > SO2_ROUNDING or (counts < 0).any()
            or counts[0] + 2 * counts[1:].sum() != size):
        return None
    return character_name([(int(m), make_rep("irrep", (k,), so2)) for k, m in enumerate(counts) if m], so2)
