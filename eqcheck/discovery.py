"""Discovering how a tensor's channels transform, from the data: for each tested element g, the orthogonal
matrix M_g that best maps the spatially moved output ``S_g f(x)`` to ``f(g.x)`` (Procrustes), fitted on
half the samples and held to the other half, accepted only as a representation (M_gh = M_g M_h on the
tested elements), and named by its character (its decomposition into the group's irreps).

A fitted M_g has C^2 degrees of freedom against C values per sample: it is only fitted where the samples
outnumber the channels many times over (``MIN_SAMPLES_PER_CHANNEL``), so that a tensor that is not
equivariant is never explained by it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from eqcheck.actions.fields import mix_channels
from eqcheck.actions.representations import FittedAction, _spatial_fits
from eqcheck.actions.spatial import apply_spatial, central_disk, turn
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.reps import character_name, decompose
from eqcheck.reps.signed import SignedPermutation, dense, trace

#: samples (batch items x pixels) per channel below which no matrix is fitted
MIN_SAMPLES_PER_CHANNEL = 4
#: the held-out error may exceed the fitted one by this factor (and the tolerance) before the fit is refused
HELD_OUT_FACTOR = 10.0
#: M_gh against M_g M_h: relations that hold to this are a representation
RELATION_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class FoundAction(FittedAction):
    """An action whose matrices, one per tested element (by label: a float64 array or a
    ``SignedPermutation``), were found from the data."""

    spec: str = "found"
    matrices: dict = field(default_factory=dict)
    #: the named type it is equivalent to (the same irreps in another basis), if any: a tensor that failed
    #: under that type is not excused by its change of basis
    equivalent: str | None = None

    @property
    def size(self) -> int:
        return len(next(iter(self.matrices.values()))) if self.matrices else 0


@dataclass(frozen=True, eq=False)
class FoundFieldAction(FoundAction):
    """Channels (axis 1) mixed by the found matrices, then the spatial action."""

    spatial: bool = True

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        mixed = mix_channels(self.matrices[element.label], x)
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


def too_few_samples(x: np.ndarray, last_axis: bool) -> bool:
    """Whether ``x`` (batch first) holds too few samples per channel for its representation to be found
    (``MIN_SAMPLES_PER_CHANNEL`` on each half): channels on the last axis (3-D groups: rows are samples),
    or on axis 1 (a group axis folded in where there is one: ``[B, C, K, H, W]``)."""
    if x.ndim == 0 or (not last_axis and x.ndim < 2):
        return True
    if last_axis:
        dim = x.shape[-1]
        return x.size // max(dim, 1) < 2 * MIN_SAMPLES_PER_CHANNEL * dim
    channels = math.prod(x.shape[1:-2]) if x.ndim >= 4 else x.shape[1]
    return x[:, 0].size < 2 * MIN_SAMPLES_PER_CHANNEL * channels


#: samples (batch items x pixels) per channel that a Procrustes fit and its held-out check each use at least
FIT_SAMPLES_PER_CHANNEL = 12
#: ... that choose a signed permutation, and that it is then held to: it has C log 2C bits to choose, not
#: C^2 reals, and each of the C channels must match its source to the tolerance on every held-out sample
SIGNED_FIT_SAMPLES_PER_CHANNEL, SIGNED_HELD_SAMPLES_PER_CHANNEL = 2, 4


def _sample_grids(reference: np.ndarray, fit_per_channel: int,
                  held_per_channel: int | None = None) -> tuple[tuple | None, tuple | None]:
    """Index tuples of the pixels used for the fit and for the held-out check, ``fit_per_channel`` and
    ``held_per_channel`` (the same by default) samples per channel at least: two square patches on the
    diagonal, about a third and two thirds of the way down, clear of the borders where they can be
    (alternate rows where the map is too small for them). Slices, so that each is a view of any tensor,
    turned ones included; squares, so that a patch of a quarter-turned view reads a few cache lines per
    channel, as a patch of the tensor itself does (a row of a turned view is a column of the tensor under
    it: a cache line per pixel). None for a ``[B, C]`` tensor (its batch items are split instead)."""
    if reference.ndim == 2:
        return None, None
    batch, channels, h, w = reference.shape
    fit_side = _patch_side(fit_per_channel * channels, batch)
    held_side = _patch_side((held_per_channel or fit_per_channel) * channels, batch)
    size = min(h, w)
    if fit_side + held_side > size:
        return (..., slice(0, None, 2), slice(None)), (..., slice(1, None, 2), slice(None))
    fit_start = max(0, size // 3 - fit_side // 2)
    held_start = max(fit_start + fit_side, min(2 * size // 3 - held_side // 2, size - held_side))
    return ((..., slice(fit_start, fit_start + fit_side), slice(fit_start, fit_start + fit_side)),
            (..., slice(held_start, held_start + held_side), slice(held_start, held_start + held_side)))


def _patch_side(samples: int, batch: int) -> int:
    """The side of the smallest square patch whose pixels, over ``batch`` items, give ``samples``."""
    return math.isqrt(max(-(-samples // batch) - 1, 0)) + 1


def _halves(xs: list[np.ndarray], part: int) -> np.ndarray:
    """``[len(xs), C, samples]``, float32 or wider: half of the batch items (``part`` 0 or 1) of each of the
    ``[B, C]`` tensors ``xs``, channels first."""
    half = xs[0].shape[0] // 2
    return np.stack([(x[:half] if part == 0 else x[half:]).T for x in xs]).astype(
        np.result_type(xs[0].dtype, np.float32), copy=False)


def _pair(ys: list[np.ndarray], fit, held) -> tuple[np.ndarray, np.ndarray]:
    """The columns of each of ``ys`` for the fit and for the held-out check (a ``[B, C]`` tensor: its two
    halves), ``[len(ys), C, samples]`` each: two views of one array that each tensor's pixels are copied
    into."""
    if fit is None:
        return _halves(ys, 0), _halves(ys, 1)
    parts = [ys[0][grid].swapaxes(0, 1).shape for grid in (fit, held)]  # [C, B, rows, columns] each
    sizes = [math.prod(shape[1:]) for shape in parts]
    out = np.empty((len(ys), parts[0][0], sum(sizes)), dtype=np.result_type(ys[0].dtype, np.float32))
    for target, y in zip(out, ys):
        target[:, :sizes[0]].reshape(parts[0])[...] = y[fit].swapaxes(0, 1)
        target[:, sizes[0]:].reshape(parts[1])[...] = y[held].swapaxes(0, 1)
    return out[:, :, :sizes[0]], out[:, :, sizes[0]:]


Fit = tuple  # (rho, error on the fit half, error on the held-out half)


def fit_channels(source: tuple, target: tuple, tolerance: float) -> Fit:
    """The orthogonal rho that maps ``source`` columns ``[C, samples]`` to ``target`` columns, with its
    error on the fit half and on the held-out half (NaN where the data is not finite: no fit is then
    accepted): a signed permutation where one explains the held-out half within ``tolerance``, else
    Procrustes."""
    chosen = fit_signed_permutations(tuple(s[None] for s in source), tuple(t[None] for t in target), tolerance)
    return chosen[0] or fit_orthogonal(source, target)


def fit_signed_permutations(source: tuple, target: tuple, tolerance: float) -> list[Fit | None]:
    """For each of the stacked ``[G, C, samples]`` source and target columns (fit half, held-out half),
    ``(rho, error, error)`` with rho a ``SignedPermutation`` (what quarter turns and mirrors do to regular,
    quotient and irrep fields in escnn's bases), chosen by the correlation of the fit half and kept where
    it explains the held-out half within ``tolerance`` (its one error, given for both); else None. All
    at once: a few numpy calls whatever G is."""
    correlation = target[0] @ source[0].transpose(0, 2, 1)  # [G, C, C]; NaN or Inf in the data shows here
    norms = np.sqrt(np.einsum("gij,gij->gi", source[0], source[0]))
    norms[norms == 0] = 1
    order = np.abs(correlation / norms[:, None, :]).argmax(axis=2)  # each target channel's best source
    stacked, channels = order.shape
    best = correlation.reshape(stacked, -1)[np.arange(stacked)[:, None], order + channels * np.arange(channels)]
    signs = np.where(best < 0, -1.0, 1.0)  # 0: a dead channel
    bijective = (np.sort(order, axis=1) == np.arange(channels)).all(axis=1)
    moved = source[1][np.arange(stacked)[:, None], order]  # each target channel's source, [G, C, samples]
    moved *= signs.astype(moved.dtype)[..., None]
    errors = _rel_stacked(moved, target[1])  # moved is a copy: overwritten
    finite = np.isfinite(correlation).all(axis=(1, 2))
    return [(SignedPermutation(o, s), e, e) if ok and keep and e <= tolerance else None
            for o, s, e, ok, keep in zip(order, signs, errors, bijective, finite)]


def _rel_stacked(a: np.ndarray, b: np.ndarray) -> list[float]:
    """``||a_g - b_g|| / ||b_g||`` for each g of the stacked ``[G, C, samples]`` arrays (inf where b_g is 0
    and a_g is not, 0 where both are; NaN where either is not finite). Overwrites ``a``. Sums in the
    arrays' own precision: a relative error of its last digits, not a difference of large sums."""
    a -= b  # a is a scratch copy
    diffs = np.einsum("gij,gij->g", a, a).tolist()
    norms = np.einsum("gij,gij->g", b, b).tolist()
    return [math.sqrt(d / n) if n > 0 else (0.0 if d == 0 else math.inf) for d, n in zip(diffs, norms)]


def fit_orthogonal(source: tuple, target: tuple) -> Fit:
    """``(M, fitted, held_out)`` with M the orthogonal matrix of least squares (Procrustes, float64), fitted
    on the first half; NaN errors where the data is not finite."""
    source = [np.asarray(s, dtype=np.float64) for s in source]
    target = [np.asarray(t, dtype=np.float64) for t in target]
    correlation = target[0] @ source[0].T
    if not np.isfinite(correlation).all():
        return np.eye(len(correlation)), np.nan, np.nan
    m = nearest_orthogonal(correlation)
    return m, _rel(m @ source[0], target[0]), _rel(m @ source[1], target[1])


def procrustes(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The orthogonal M minimising ||target - M source||."""
    return nearest_orthogonal(target @ source.T)


def nearest_orthogonal(correlation: np.ndarray) -> np.ndarray:
    """The orthogonal M maximising trace(M^T correlation): U V^T of its SVD."""
    u, _, vt = np.linalg.svd(correlation)
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
    if too_few_samples(reference, last_axis=False):
        return None
    matrices = {}
    signed_grids = _sample_grids(reference, SIGNED_FIT_SAMPLES_PER_CHANNEL, SIGNED_HELD_SAMPLES_PER_CHANNEL)
    grids = _sample_grids(reference, FIT_SAMPLES_PER_CHANNEL)
    generators = _exact_generators(group, pairs)
    if generators is not None:  # a finite group: fit its generators, derive the rest by the group law
        pairs = generators
    # flips and quarter turns move pixels exactly ([B, C]: none to move): signed permutations, all at once
    exact_pairs = [(g, y) for g, y in pairs if g.exact or reference.ndim == 2]
    turned = {g.label: reference if reference.ndim == 2 else turn(g, reference) for g, _ in exact_pairs}  # views
    if exact_pairs:
        signed = fit_signed_permutations(_pair(list(turned.values()), *signed_grids),
                                         _pair([y for _, y in exact_pairs], *signed_grids), tolerance)
        matrices.update({g.label: fit[0] for (g, _), fit in zip(exact_pairs, signed) if fit is not None})
    for g, y in pairs:
        if g.label in matrices:
            continue
        if g.label in turned:  # no signed permutation explains it: Procrustes, on more samples
            source = tuple(c[0] for c in _pair([turned[g.label]], *grids))
            target = tuple(c[0] for c in _pair([y], *grids))
        else:  # interpolated: the disk that comparisons use, every pixel of it
            mask = central_disk(*reference.shape[-2:])
            moved, inside = _samples(apply_spatial(g, reference)[..., mask]), _samples(y[..., mask])
            half = moved.shape[1] // 2
            source, target = (moved[:, :half], moved[:, half:]), (inside[:, :half], inside[:, half:])
        m, fitted, held_out = fit_orthogonal(source, target)
        if not held_out <= max(HELD_OUT_FACTOR * fitted, tolerance):
            return None
        matrices[g.label] = m
    if generators is not None:
        matrices = generate_representation(group, matrices)
        if matrices is None or any(g.label not in matrices for g in exact):
            return None
    elif not is_representation(group, exact, matrices):
        return None
    tested = [g for g in elements if g.label in matrices]
    name = name_representation(group, tested, matrices)
    return FoundFieldAction(spec=declarable_name(group, name, tested, matrices), matrices=matrices) if name else None


#: a found matrix is the named type's where every entry agrees to this
BASIS_TOLERANCE = 1e-6
#: an entry of a matrix fitted to interpolated data (Procrustes) that shows two channels mix
FITTED_ENTRY = 0.2


def declarable_name(group: Group, name: str, elements: list[Element], matrices: dict) -> str:
    """``name`` where the named type (parsed as ``--output-type`` would parse it) has the found matrices,
    so that declaring it checks the same action; else the fields named in the order the channels hold
    them (escnn's ``FieldType`` order: ``trivial+irrep(1)+...``) where that type has them; else ``name in
    another basis``: the same irreps in another order or basis (a C8 field restricted to C4, quotient
    fields named by their irreps), which the name alone does not declare."""
    if " of " in name or name.startswith("found") or _has_matrices(group, name, elements, matrices):
        return name
    ordered = _name_in_channel_order(group, elements, matrices)
    names = [n for n in (name, ordered) if n]
    # the geometric vector is the frequency-1 irrep in another basis (escnn's basespace action)
    names += [n.replace(irrep, "vector") for n in names for irrep in ("irrep(1,1)", "irrep(1)") if irrep in n]
    for candidate in dict.fromkeys(names[1:]):
        if _has_matrices(group, candidate, elements, matrices):
            return candidate
    return f"{name} in another basis"


def _has_matrices(group: Group, spec: str, elements: list[Element], matrices: dict) -> bool:
    """Whether the type ``spec`` names has the found matrices on the exactly tested elements."""
    field_group = group.field_group
    elements = [g for g in elements if g.exact]  # the others' matrices were fitted to interpolated data
    labels = [field_group.label(g) for g in elements]
    if not elements or None in labels:
        return False
    for label, g in zip(labels, elements):
        named = _named_matrix(spec, field_group, label)
        found = matrices[g.label]
        if named is None or len(named) != len(found):
            return False
        if isinstance(found, SignedPermutation):  # compare the entries the permutation holds, and the count
            rows = np.arange(len(found))
            if not (np.abs(named[rows, found.order] - found.signs).max() <= BASIS_TOLERANCE
                    and np.count_nonzero(np.abs(named) > BASIS_TOLERANCE) == len(found)):
                return False
        elif np.abs(named - found).max() > BASIS_TOLERANCE:
            return False
    return True


@lru_cache(maxsize=512)
def _named_matrix(spec: str, field_group, label) -> np.ndarray | None:
    """rho(label) of the type ``spec`` names (None where no spec parses it): the same few names recur."""
    from eqcheck.actions.parse import field_type

    try:
        return field_type(spec, field_group).rep.matrix(label)
    except Exception:  # noqa: BLE001 (a name no spec parses is not declarable as it is)
        return None


def _name_in_channel_order(group: Group, elements: list[Element], matrices: dict) -> str | None:
    """The found representation as a sum of its blocks in channel order (the channels that the matrices
    mix with one another, where each block is a run of channels), each named on its own; None where the
    blocks are not runs or one has no name."""
    # which channels mix: exactly on a grid, clearly where the matrix was fitted to interpolated data
    mixed = sum(np.abs(dense(matrices[g.label])) > (BASIS_TOLERANCE if g.exact else FITTED_ENTRY) for g in elements)
    size, start, names = len(mixed), 0, []
    while start < size:
        end = start + 1
        while end < size and (mixed[start:end, end:].any() or mixed[end:, start:end].any()):
            end += 1
        block = {g.label: dense(matrices[g.label])[start:end, start:end] for g in elements}
        named = name_representation(group, elements, block)
        if not named or " of " in named or named.startswith("found"):
            return None
        names.append(named)
        start = end
    merged: list[tuple[int, str]] = []  # runs of one field: 2*regular, not regular+regular
    for named in names:
        count, _, base = named.partition("*")
        if "+" in named or not count.isdigit():
            count, base = "1", named
        if merged and merged[-1][1] == base and "+" not in base:
            merged[-1] = (merged[-1][0] + int(count), base)
        else:
            merged.append((int(count), base))
    return "+".join(base if count == 1 else f"{count}*{base}" for count, base in merged)


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
    """Every element's matrix from the generators' (by label), or None when the relations do not hold (a
    product of a generator and an element that lands on a reached element with another matrix). Signed
    permutations (what quarter turns and mirrors do in escnn's bases) are composed as index arrays,
    exactly, and stay signed permutations; the relations are checked all at once."""
    point_group = group.point_group
    generators = [fitted[group.from_point(p).label] for p in point_group.generators()]
    words = point_group.words
    if all(isinstance(m, SignedPermutation) for m in generators):
        table = _generate_signed(words, generators)
    else:
        table = _generate_dense(words, [dense(m) for m in generators])
    return None if table is None else {group.from_point(p).label: m for p, m in zip(words.elements, table)}


def _generate_signed(words, generators: list[SignedPermutation]) -> list[SignedPermutation] | None:
    """The table by the group law on signed index arrays ``signs * (order + 1)``: composing with a
    generator is one gather and one product."""
    size = len(generators[0])
    g_orders = np.stack([g.order for g in generators])
    g_signs = np.stack([g.signs for g in generators]).astype(np.int64)
    table = np.empty((len(words.elements), size), dtype=np.int64)
    table[0] = np.arange(1, size + 1)
    for b, s, a in words.built:  # breadth first: b is the next new element
        np.multiply(table[a][g_orders[s]], g_signs[s], out=table[b])
    if len(words.checked):  # every other product at once
        b, s, a = words.checked.T
        if not (np.take_along_axis(table[a], g_orders[s], 1) * g_signs[s] == table[b]).all():
            return None
    orders, signs = np.abs(table) - 1, np.sign(table).astype(np.float64)
    traces = np.where(orders == np.arange(size), signs, 0.0).sum(axis=1).tolist()
    return [SignedPermutation(o, v, t) for o, v, t in zip(orders, signs, traces)]


def _generate_dense(words, generators: list[np.ndarray]) -> list[np.ndarray] | None:
    size = len(generators[0])
    table = np.empty((len(words.elements), size, size))
    table[0] = np.eye(size)
    for b, s, a in words.built:
        table[b] = generators[s] @ table[a]
    if len(words.checked):
        b, s, a = words.checked.T
        if np.abs(np.stack(generators)[s] @ table[a] - table[b]).max() > RELATION_TOLERANCE:
            return None
    return list(table)


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
                composed = dense(matrices[a.label]) @ dense(matrices[b.label])
                if np.abs(dense(matrices[product]) - composed).max() > RELATION_TOLERANCE:
                    return False
    return True


def name_representation(group: Group, elements: list[Element], matrices: dict) -> str | None:
    """The decomposition into irreps of the field group restricted to the tested elements: by its character
    where every element of a finite group was tested; for SO(2) by its frequencies where the angles tell
    them apart; else by the restriction to the right angles (``... of C4``), or ``found`` with the count."""
    field_group = group.field_group
    if field_group.finite:
        labels = _field_labels(field_group, tuple(elements))
        if len(labels) == field_group.order and None not in labels:
            return _named_by_character(field_group, tuple((label, trace(matrices[name]))
                                                          for label, name in labels.items()))
    if field_group.kind == "so2":
        named = so2_name(group, elements, matrices)
        if named is not None:
            return named
    return c4_name(elements, matrices)


@lru_cache(maxsize=256)
def _field_labels(field_group, elements: tuple[Element, ...]) -> dict:
    """Each element's label in the field group (the group's own element, or None), by the element's label:
    the same for every tensor of a check."""
    return {field_group.label(g): g.label for g in elements}


@lru_cache(maxsize=256)
def _named_by_character(field_group, characters: tuple) -> str | None:
    """The decomposition named from ``(element label, character)`` pairs, or None where the multiplicities
    are not whole: the same few characters recur for every tensor of a check."""
    terms = decompose(dict(characters), field_group)
    return None if terms is None else character_name(terms, field_group)


def c4_name(elements: list[Element], matrices: dict) -> str:
    """The restriction to the quarter turns (checked exactly on a grid), ``2*irrep(1) of C4``; ``found(C)``
    where they were not all tested or no whole multiplicities explain them."""
    from eqcheck.reps import FieldGroup

    c4 = FieldGroup("c", 4)
    labels = {c4.label(g): g.label for g in elements if g.exact and c4.label(g) is not None and not g.flip}
    if len(labels) == 4:
        terms = decompose({label: trace(matrices[name]) for label, name in labels.items()}, c4)
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
    angles = {so2.label(g): trace(matrices[g.label]) for g in elements if not g.flip}
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
