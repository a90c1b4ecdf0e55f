"""Steerable field types (escnn's ``FieldType``): ``rho(g)`` on the channels (a direct sum of the field
group's representations, ``eqcheck.reps``) after the spatial action, ``(g . f)(x) = rho(g) f(g^-1 x)``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.actions.representations import Representation, _spatial_fits
from eqcheck.actions.spatial import apply_spatial
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.reps import DirectSum
from eqcheck.reps.signed import SignedPermutation


def mix_channels(rho: np.ndarray | SignedPermutation, x: np.ndarray) -> np.ndarray:
    """``rho x`` along axis 1: a gather where rho is a signed permutation (given, or a matrix that is one:
    quarter turns and mirrors of most field types), exact in x's dtype; otherwise a matrix product in
    float64 (the result in x's dtype)."""
    permutation = rho if isinstance(rho, SignedPermutation) else SignedPermutation.of(rho)
    if permutation is not None:
        return permutation.apply(x, axis=1)
    mixed = np.tensordot(rho, x.astype(np.float64, copy=False), axes=([1], [1]))
    return np.moveaxis(mixed, 0, 1).astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


@dataclass(frozen=True)
class FieldTypeAction(Representation):
    """Channels ``[B, C, ...]`` carry ``rep`` (C = rep.dim); images ``[B, C, H, W]`` also move spatially."""

    spec: str = "trivial"
    spatial: bool = True
    rep: DirectSum | None = None

    def channel_part(self, element: Element, x: np.ndarray) -> np.ndarray:
        label = self.rep.group.label(element)
        if label is None:
            raise ValueError(f"{element.label} is not an element of {self.rep.group.spec}")
        permutation = self.rep.permutation(label)
        if permutation is not None:
            return SignedPermutation(permutation, np.ones(len(permutation))).apply(x, axis=1)
        return mix_channels(self.rep.matrix(label), x)

    def apply(self, element, x, *, stride=1, zero_fill=False, order=3):
        moved = self.channel_part(element, x)
        if x.ndim >= 4:
            moved = apply_spatial(element, moved, stride=stride, zero_fill=zero_fill, order=order)
        return moved

    def fits(self, group: Group, shape: tuple[int, ...], set_size: int | None = None) -> str | None:
        if group.field_group is None:
            return f"{group.spec} does not act on channels"
        missing = [e.label for e in group.generator_elements() if self.rep.group.label(e) is None]
        if missing:
            return (f"{self.rep.spec} is a field of {self.rep.group.spec}, which has no element {missing[0]} of "
                    f"{group.spec}")
        if len(shape) < 2 or shape[1] != self.rep.dim:
            return f"{self.rep.spec} has {self.rep.dim} channels, the tensor has shape {list(shape)}"
        if len(shape) >= 4:
            return _spatial_fits(group, shape, 4)
        if len(shape) == 3:
            return f"a field type needs [B, C] or [B, C, H, W], got {list(shape)}"
        return None
