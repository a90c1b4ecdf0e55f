"""Actions of 3-D groups on a tensor's last axis (row vectors, CONVENTIONS 8): positions ``x R^T + t``,
O(3) irreps features ``f D(g)^T`` (vectors ``1o``, pseudovectors ``1e``, any e3nn irreps string), rank-2
Cartesian tensors ``R P R^T``. A batch axis or not, any number of leading axes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqcheck.actions.representations import Representation
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.reps.o3 import Irreps, parse_irreps


def _float(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _on_last_axis(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x @ matrix^T`` in float64, the result in x's float dtype."""
    out = np.asarray(x, dtype=np.float64) @ matrix.T
    return out.astype(_float(x).dtype, copy=False)


def _fits_3d(group: Group, shape: tuple[int, ...], size: int, what: str) -> str | None:
    if not group.point_cloud:
        return f"{group.spec} does not act on 3-D coordinates"
    if not shape or shape[-1] != size:
        return f"{what} needs a last axis of size {size}, got shape {list(shape)}"
    return None


@dataclass(frozen=True)
class IrrepsAction(Representation):
    """Features typed by O(3) irreps on the last axis: ``f D(g)^T`` (translations leave them)."""

    spec: str = "1x1o"
    irreps: Irreps = field(default_factory=lambda: parse_irreps("1o"))

    def matrix(self, element: Element) -> np.ndarray:
        return self.irreps.matrix(element.rotation)

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        if self.irreps.dim == 1:  # one scalar or pseudoscalar per entry, whatever the tensor's shape
            return (np.asarray(x, dtype=np.float64) * self.matrix(element)[0, 0]).astype(_float(x).dtype, copy=False)
        return _on_last_axis(self.matrix(element), x)

    def fits(self, group, shape, set_size=None):
        if self.irreps.dim == 1:
            return None if group.point_cloud else f"{group.spec} does not act on 3-D coordinates"
        return _fits_3d(group, shape, self.irreps.dim, self.spec)


@dataclass(frozen=True)
class PositionAction(Representation):
    """Points in space on the last axis: ``x R^T + t``."""

    spec: str = "positions"

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        moved = np.asarray(x, dtype=np.float64) @ element.rotation.T
        if element.translation is not None:
            moved = moved + np.asarray(element.translation)
        return moved.astype(_float(x).dtype, copy=False)

    def fits(self, group, shape, set_size=None):
        return _fits_3d(group, shape, 3, "positions")


@dataclass(frozen=True)
class CartesianTensorAction(Representation):
    """A rank-2 Cartesian tensor on the last two axes ``[..., 3, 3]``: ``R P R^T`` (even under inversion)."""

    spec: str = "cartesian"

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        r = element.rotation
        out = r @ np.asarray(x, dtype=np.float64) @ r.T
        return out.astype(_float(x).dtype, copy=False)

    def fits(self, group, shape, set_size=None):
        if not group.point_cloud:
            return f"{group.spec} does not act on 3-D coordinates"
        if len(shape) < 2 or tuple(shape[-2:]) != (3, 3):
            return f"a rank-2 Cartesian tensor needs shape [..., 3, 3], got {list(shape)}"
        return None


#: type names of the 3-D actions besides irreps strings
SPACE_TYPES = ("positions", "cartesian", "cell")


def space_type(spec: str) -> Representation:
    """``positions``, ``cartesian`` (rank 2), ``cell`` (lattice vectors as rows: each row a vector), or an
    irreps string (``vector``, ``pseudovector``, ``2x0e+1x1o``)."""
    text = spec.strip().lower()
    if text == "positions":
        return PositionAction()
    if text in ("cartesian", "rank2"):
        return CartesianTensorAction()
    if text == "cell":
        return IrrepsAction(spec="cell", irreps=parse_irreps("1o"))
    irreps = parse_irreps(text)
    return IrrepsAction(spec=irreps.spec, irreps=irreps)


def space_candidates(group: Group, shape: tuple[int, ...]) -> list[Representation]:
    """What a 3-D group's output may be, simplest first: invariant, a pseudoscalar (under the inversion),
    then on a last axis of 3 a vector, a pseudovector (under the inversion) and positions (under
    translations); a rank-2 tensor on ``[..., 3, 3]``."""
    candidates: list[Representation] = [Representation()]
    if group.inversion:  # a pseudoscalar per entry (a triple product, a chirality), named per channel
        candidates.append(space_type(f"{shape[-1]}x0o" if len(shape) >= 3 else "0o"))
    if shape and shape[-1] == 3:
        candidates.append(space_type("1o"))
        if group.inversion:
            candidates.append(space_type("1e"))
        if group.translations:
            candidates.append(PositionAction())
    if len(shape) >= 2 and tuple(shape[-2:]) == (3, 3):
        candidates.append(CartesianTensorAction())
    return candidates
