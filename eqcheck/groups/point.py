"""Finite point groups C_N and D_N: elements, the group law, and regular representations."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, order=True)
class PointElement:
    """The element ``r^rot f^flip`` of C_N or D_N: flip first (X -> -X), then rotate by ``rot`` steps.

    ``rot`` counts steps of ``2*pi/N`` counter-clockwise as displayed (CONVENTIONS section 1).
    """

    flip: int
    rot: int
    n: int

    @property
    def label(self) -> str:
        """Short name: ``e``, ``r1``, ``f``, ``r2f``."""
        if self.flip == 0 and self.rot == 0:
            return "e"
        rot = f"r{self.rot}" if self.rot else ""
        return rot + ("f" if self.flip else "")

    @property
    def angle(self) -> float:
        """Rotation angle in radians."""
        return 2.0 * np.pi * self.rot / self.n


@dataclass(frozen=True)
class Words:
    """``elements`` in the order they are reached (the identity first); ``built`` rows ``(b, s, a)``:
    ``elements[b] = generators[s] * elements[a]``, each a new element; ``checked`` rows ``(b, s, a)``, an
    int array: the other products, which land on an element already reached."""

    elements: tuple[PointElement, ...]
    built: tuple[tuple[int, int, int], ...]
    checked: np.ndarray


@dataclass(frozen=True)
class PointGroup:
    """The cyclic group C_N (``mirrors=False``) or the dihedral group D_N (``mirrors=True``)."""

    n: int
    mirrors: bool = False

    @property
    def name(self) -> str:
        return f"{'D' if self.mirrors else 'C'}{self.n}"

    @property
    def order(self) -> int:
        return self.n * (2 if self.mirrors else 1)

    @cached_property
    def elements(self) -> tuple[PointElement, ...]:
        """All elements in escnn's order: index ``N*f + k`` is ``r^k f``."""
        flips = (0, 1) if self.mirrors else (0,)
        return tuple(PointElement(f, k, self.n) for f in flips for k in range(self.n))

    @property
    def identity(self) -> PointElement:
        return PointElement(0, 0, self.n)

    def element(self, rot: int, flip: int = 0) -> PointElement:
        if flip and not self.mirrors:
            raise ValueError(f"{self.name} has no mirrors")
        return PointElement(int(flip) & 1, int(rot) % self.n, self.n)

    def compose(self, a: PointElement, b: PointElement) -> PointElement:
        """``a * b`` (apply b, then a): r^k1 f^a1 r^k2 f^a2 = r^(k1 + (-1)^a1 k2) f^(a1 + a2)."""
        sign = -1 if a.flip else 1
        return PointElement((a.flip + b.flip) % 2, (a.rot + sign * b.rot) % self.n, self.n)

    def inverse(self, a: PointElement) -> PointElement:
        """A mirror is its own inverse; a rotation r^k inverts to r^-k."""
        if a.flip:
            return a
        return PointElement(0, (-a.rot) % self.n, self.n)

    def generators(self) -> tuple[PointElement, ...]:
        gens = [self.element(1)]
        if self.mirrors:
            gens.append(self.element(0, 1))
        return tuple(gens)

    @cached_property
    def words(self) -> Words:
        """How every element is reached from the identity by the generators, and which products of a
        generator and an element must then agree: what a map defined on the generators must satisfy to
        be a homomorphism (every relation of the group is among these products)."""
        generators = self.generators()
        reached = [self.identity]
        index = {self.identity: 0}
        built, checked = [], []
        for a_index, a in enumerate(reached):  # grows as it goes: breadth first
            for s_index, s in enumerate(generators):
                b = self.compose(s, a)
                if b in index:
                    checked.append((index[b], s_index, a_index))
                else:
                    index[b] = len(reached)
                    built.append((len(reached), s_index, a_index))
                    reached.append(b)
        return Words(tuple(reached), tuple(built), np.array(checked, dtype=np.int64).reshape(-1, 3))

    def channel_order(self, convention: str = "escnn", orientation: str = "ccw") -> tuple[PointElement, ...]:
        """The group element that each channel of a regular field stands for.

        ``escnn``: index ``N*f + k`` is ``r^k f``. ``axis0`` (escnn and e2cnn with ``axis=0``, even N):
        index ``N*f + k`` is ``r^k m`` with ``m`` the up-down mirror, ``r^(N/2) f``. ``groupy`` (D4 only):
        index ``4*m + k`` is ``m r^k``, i.e. ``r^(2-k) f``. ``cw`` relabels every element by
        conjugation with the mirror (``r^k -> r^-k``): the clockwise-filter convention, under which
        the group axis rolls by ``-k`` instead of ``+k``.
        """
        if convention == "escnn":
            order = self.elements
        elif convention == "axis0":
            if not (self.mirrors and self.n % 2 == 0):
                raise ValueError("the axis=0 element order is defined for D_N with N even")
            order = tuple(self.element(k + self.n // 2 * f, f) for f in (0, 1) for k in range(self.n))
        elif convention == "groupy":
            if not (self.mirrors and self.n == 4):
                raise ValueError("the GrouPy element order is defined for p4m (D4) only")
            mirror_ud = self.element(2, 1)
            order = tuple(
                self.compose(mirror_ud, self.element(k)) if m else self.element(k)
                for m in (0, 1) for k in range(4)
            )
        else:
            raise ValueError(f"unknown element order {convention!r} (escnn, axis0, groupy)")
        if orientation == "cw":
            order = tuple(PointElement(g.flip, (-g.rot) % self.n, self.n) for g in order)
        elif orientation != "ccw":
            raise ValueError(f"unknown orientation {orientation!r} (ccw, cw)")
        return order

    def regular_permutation(
        self, g: PointElement, convention: str = "escnn", orientation: str = "ccw"
    ) -> np.ndarray:
        """Channel permutation of a regular field under g: ``new[i] = old[perm[i]]``.

        From the left-regular law ``(g . f)(h) = f(g^-1 h)``: channel i (element h_i) takes the
        value of the channel whose element is ``g^-1 h_i``.
        """
        order = self.channel_order(convention, orientation)
        index = {h: i for i, h in enumerate(order)}
        g_inv = self.inverse(g)
        return np.array([index[self.compose(g_inv, h)] for h in order], dtype=np.int64)
