"""Discovering how the last axis of a 3-D group's output transforms: for each tested element g, the
orthogonal M_g that best maps ``f(x)`` to ``f(g.x)`` row by row (Procrustes), fitted on half the rows and
held to the other half, and accepted only where the traces of the M_g are the characters of whole O(3)
irreps: the type is then named as e3nn names it (``2x0e+1x1o+1x2e``; a cross product is ``1x1e``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.discovery import HELD_OUT_FACTOR, FoundAction, fit_channels, too_few_samples
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.reps.o3 import name_irreps, parse_irreps
from eqcheck.reps.signed import dense

#: singular values of the output below this fraction of the largest: directions the data does not reach
SPAN_TOLERANCE = 1e-5
#: fitted matrices this close to e3nn's D(g) are in e3nn's basis
BASIS_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class FoundIrrepsAction(FoundAction):
    """The last axis mixed by the found matrices (translations leave it)."""

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        out = np.asarray(x, dtype=np.float64) @ self.matrices[element.label].T
        return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)

    def fits(self, group: Group, shape, set_size=None):
        return None if shape and shape[-1] == self.size else f"found for a last axis of {self.size}, got {list(shape)}"


def _rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[D, rows]`` columns of the even and of the odd rows (every leading axis flattened): both halves
    hold every batch item, so that neither misses a direction one item's data does not reach."""
    flat = np.asarray(x).reshape(-1, x.shape[-1])
    dtype = np.result_type(flat.dtype, np.float32)
    return np.array(flat[0::2].T, dtype=dtype, order="C"), np.array(flat[1::2].T, dtype=dtype, order="C")


def discover_irreps(group: Group, elements: list[Element], reference: np.ndarray, transformed: list[np.ndarray],
                    tolerance: float) -> FoundIrrepsAction | None:
    """The O(3) representation on the last axis of ``reference``, found and named, or None when the data
    cannot decide it or no whole irreps explain it."""
    if reference.ndim == 0 or reference.shape[-1] < 2 or reference.dtype.kind != "f":
        return None
    dim = reference.shape[-1]
    if too_few_samples(reference, last_axis=True):
        return None
    source = _rows(reference)
    matrices = {}
    for g, y in zip(elements, transformed):
        m, fitted, held_out = fit_channels(source, _rows(y), tolerance)  # NaN errors where data is not finite
        if not held_out <= max(HELD_OUT_FACTOR * fitted, tolerance):
            return None
        matrices[g.label] = dense(m)
    # channels that carry no data (a cross product of a vector with itself) have no type to find: the
    # representation is named on the span of the data, which an equivariant map keeps invariant
    u, singular, _ = np.linalg.svd(np.asarray(source[0], dtype=np.float64), full_matrices=False)
    span = u[:, singular > SPAN_TOLERANCE * singular[0]] if singular[0] > 0 else u[:, :0]
    traces = [float(np.trace(span.T @ matrices[g.label] @ span)) for g in elements]
    name = name_irreps([g.rotation for g in elements], traces, span.shape[1], group.inversion)
    if name is None:
        return None
    irreps = name
    if span.shape[1] < dim:
        name += f" (+{dim - span.shape[1]} channels without data)"
    else:  # e3nn's basis, escnn's, or equivalent to them in another one
        name = next((spec for spec in (name, f"{name}:escnn") if all(
            np.abs(matrices[g.label] - parse_irreps(spec).matrix(g.rotation)).max() <= BASIS_TOLERANCE
            for g in elements)), f"{name} in another basis")
    return FoundIrrepsAction(spec=name, matrices=matrices, equivalent=irreps)
