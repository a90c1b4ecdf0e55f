"""Representations of a field group on a field's channels, each derived from the group law: trivial, the
irreps of C_N, D_N and SO(2) in escnn's conventions, regular, quotient, the geometric vector.

Each is a small immutable value with ``dim``, ``spec`` (what it prints and parses from) and
``matrix(label)``, the orthogonal matrix of one group element (a label from ``FieldGroup.label``);
permutation representations also give ``permutation(label)`` (``new[i] = old[perm[i]]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eqcheck.errors import UsageError
from eqcheck.groups.point import PointGroup
from eqcheck.reps.fieldgroup import FieldGroup


def rotation(angle: float) -> np.ndarray:
    """``[[cos, -sin], [sin, cos]]``, exact at multiples of 90 degrees."""
    quarter = angle / (math.pi / 2)
    if abs(quarter - round(quarter)) < 1e-12:
        c, s = ((1, 0), (0, 1), (-1, 0), (0, -1))[round(quarter) % 4]
    else:
        c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]], dtype=np.float64)


def _angle(group: FieldGroup, label) -> float:
    return label if group.kind == "so2" else 2 * math.pi * label.rot / group.n


@dataclass(frozen=True)
class Rep:
    """A representation of ``group`` on ``dim`` channels."""

    group: FieldGroup
    dim: int
    spec: str

    def matrix(self, label) -> np.ndarray:
        raise NotImplementedError

    def permutation(self, label) -> np.ndarray | None:
        """``perm`` with ``matrix(label) @ x == x[perm]`` where the representation permutes channels."""
        return None

    def character(self, label) -> float:
        return float(np.trace(self.matrix(label)))


@dataclass(frozen=True)
class Trivial(Rep):
    dim: int = 1
    spec: str = "trivial"

    def matrix(self, label):
        return np.ones((1, 1))

    def permutation(self, label):
        return np.zeros(1, dtype=np.int64)


@dataclass(frozen=True)
class CyclicIrrep(Rep):
    """``irrep(k)`` of C_N or SO(2): rotation by ``k * theta`` (2-D), or ``(-1)^j`` for k = N/2 (1-D)."""

    k: int = 1

    def matrix(self, label):
        theta = _angle(self.group, label)
        if self.dim == 1:
            return np.array([[1.0 if self.k == 0 else (-1.0) ** label.rot]])
        return rotation(self.k * theta)


@dataclass(frozen=True)
class DihedralIrrep(Rep):
    """``irrep(j, k)`` of D_N (escnn): j = 1 marks the mirror's sign; 2-D for 0 < k < N/2 with the mirror
    ``diag(1, -1)`` in escnn's basis; 1-D for k = 0 or N/2."""

    j: int = 0
    k: int = 0

    def matrix(self, label):
        if self.dim == 1:
            sign = (-1.0) ** label.flip if self.j else 1.0
            return np.array([[sign * ((-1.0) ** label.rot if self.k else 1.0)]])
        mirror = np.diag([1.0, -1.0]) if label.flip else np.eye(2)
        return rotation(self.k * _angle(self.group, label)) @ mirror


@dataclass(frozen=True)
class Vector(Rep):
    """The geometric vector (x along columns, y up): escnn's ``basespace_action``. Rotation by theta, and a
    mirror of the field group's axis (columns: ``diag(-1, 1)``; rows: ``diag(1, -1)``)."""

    dim: int = 2
    spec: str = "vector"

    def matrix(self, label):
        if self.group.kind == "so2":
            return rotation(label)
        flip, angle = self.group.geometric(label)
        return rotation(angle) @ (np.diag([-1.0, 1.0]) if flip else np.eye(2))


@dataclass(frozen=True)
class Regular(Rep):
    """The regular representation: one channel per element, permuted by the left-regular law, in
    escnn's element order (``convention`` 'escnn') or GrouPy's (D4 only), rolling +k ('ccw') or -k."""

    convention: str = "escnn"
    orientation: str = "ccw"

    def permutation(self, label):
        point_group = PointGroup(self.group.n, self.group.mirrors)
        return point_group.regular_permutation(label, self.convention, self.orientation)

    def matrix(self, label):
        return np.eye(self.dim)[self.permutation(label)]


@dataclass(frozen=True)
class Quotient(Rep):
    """``C_N / C_M``: N/M channels, the rotation ``r`` shifts them by one (``new[i] = old[i - 1]``)."""

    def permutation(self, label):
        return (np.arange(self.dim) - label.rot) % self.dim

    def matrix(self, label):
        return np.eye(self.dim)[self.permutation(label)]


def make_rep(name: str, args: tuple[int, ...], group: FieldGroup) -> Rep:
    """The representation ``name(args)`` of ``group``, as a spec names it."""
    def need(condition: bool, why: str) -> None:
        if not condition:
            raise UsageError(f"{name}{'(' + ','.join(map(str, args)) + ')' if args else ''} of {group.spec}: {why}")

    if name in ("trivial", "invariant"):
        need(not args, "takes no argument")
        return Trivial(group)
    if name == "vector":
        need(not args, "takes no argument")
        return Vector(group)
    if name == "regular":
        need(group.finite and not args, "regular fields need a finite group (cN, dN) and no argument")
        return Regular(group, group.order, "regular")
    if name == "quotient":
        need(group.kind == "c" and len(args) == 1 and args[0] >= 1 and group.n % args[0] == 0,
             "quotient(M) of cN needs M dividing N (the field has N/M channels)")
        return Quotient(group, group.n // args[0], f"quotient({args[0]})")
    if name == "irrep":
        if group.kind == "d":
            need(len(args) == 2 and args[0] in (0, 1) and 0 <= args[1] <= group.n // 2,
                 f"the irreps of {group.spec} are irrep(j,k), j in 0..1, k in 0..{group.n // 2}")
            j, k = args
            one_dim = k == 0 or (group.n % 2 == 0 and k == group.n // 2)
            return DihedralIrrep(group, 1 if one_dim else 2, f"irrep({j},{k})", j, k)
        need(len(args) == 1 and args[0] >= 0, "irrep(k) takes one frequency k >= 0")
        k = args[0]
        if group.kind == "c":
            need(k <= group.n // 2, f"the irreps of {group.spec} are irrep(0) to irrep({group.n // 2})")
            one_dim = k == 0 or (group.n % 2 == 0 and k == group.n // 2)
        else:
            one_dim = k == 0
        return CyclicIrrep(group, 1 if one_dim else 2, f"irrep({k})", k)
    raise UsageError(f"unknown representation {name!r} (trivial, regular, irrep(k), irrep(j,k), quotient(M), "
                     f"vector)")


def irreps(group: FieldGroup) -> list[Rep]:
    """Every irrep of a finite field group, escnn's order (C_N: k = 0..N/2; D_N: (0,0), (1,0), (1,k)...,
    then the 1-D ones of k = N/2)."""
    if group.kind == "c":
        return [make_rep("irrep", (k,), group) for k in range(group.n // 2 + 1)]
    half = group.n // 2
    found = [make_rep("irrep", (0, 0), group), make_rep("irrep", (1, 0), group)]
    found += [make_rep("irrep", (1, k), group) for k in range(1, (group.n + 1) // 2)]
    if group.n % 2 == 0:
        found += [make_rep("irrep", (1, half), group), make_rep("irrep", (0, half), group)]
    return found


__all__ = ["CyclicIrrep", "DihedralIrrep", "Quotient", "Regular", "Rep", "Trivial", "Vector", "irreps", "make_rep",
           "rotation"]
