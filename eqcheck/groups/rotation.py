"""Rotation groups about the grid centre: p4, p4m, cN, dN (finite) and so2 (continuous)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element, format_angle, quarter_turns_of
from eqcheck.groups.point import PointElement, PointGroup

#: finite groups up to this order are tested on every element
EXHAUSTIVE_ORDER = 16


def element_label(angle: float, flip: bool, shift: tuple[int, ...] = (0, 0)) -> str:
    """``e``, ``rot90``, ``flip``, ``rot90*flip`` (flip first, then rotate), ``+shift(dy,dx)`` (one offset per
    moved axis)."""
    parts = []
    if abs(angle) % (2 * math.pi) > 1e-12 and abs(abs(angle) % (2 * math.pi) - 2 * math.pi) > 1e-12:
        parts.append(format_angle(angle))
    if flip:
        parts.append("flip")
    label = "*".join(parts)
    if any(shift):
        label = (label + "+" if label else "") + f"shift({','.join(str(v) for v in shift)})"
    return label or "e"


def transform_shift(shift: tuple[int, int], quarter_turns: int, flip: bool) -> tuple[int, int]:
    """Where the rotation and flip of an element carry a shift vector (dy, dx) (rows, columns)."""
    dy, dx = shift
    if flip:
        dx = -dx
    for _ in range(quarter_turns % 4):
        dy, dx = -dx, dy
    return dy, dx


@dataclass(frozen=True)
class FiniteRotationGroup(Group):
    """C_N or D_N acting on images about the centre; ``p4``/``p4m`` are C4/D4 under their G-CNN names."""

    name: str = "p4"
    n: int = 4
    mirrors: bool = False
    convention: str = "escnn"
    shifts: bool = False
    point_group: PointGroup = field(init=False)

    spatial = True
    rotates = True

    @property
    def translates(self) -> bool:  # type: ignore[override]
        return self.shifts

    def __post_init__(self) -> None:
        object.__setattr__(self, "point_group", PointGroup(self.n, self.mirrors))

    @property
    def summary(self) -> str:  # type: ignore[override]
        kind = "rotations and mirrors" if self.mirrors else "rotations"
        return f"{kind} by multiples of {360 / self.n:g} degrees about the grid centre ({self.point_group.name})"

    @property
    def spec(self) -> str:
        options = [o for o, on in (("groupy", self.convention == "groupy"), ("axis=0", self.convention == "axis0"),
                                   ("shifts", self.shifts)) if on]
        return ":".join([self.name, *options])

    @property
    def needs_smooth_inputs(self) -> bool:
        return any(not e.exact for e in map(self.from_point, self.point_group.elements))

    @cached_property
    def field_group(self):
        from eqcheck.reps import FieldGroup

        return FieldGroup("d" if self.mirrors else "c", self.n, "rows" if self.convention == "axis0" else "cols")

    @property
    def samples_elements(self) -> bool:  # type: ignore[override]
        return self.shifts or self.point_group.order > EXHAUSTIVE_ORDER

    def generator_elements(self) -> list[Element]:
        """The rotation by 2*pi/N (and the mirror): what a field type must be defined on."""
        return [self.from_point(p) for p in self.point_group.generators()]

    def from_point(self, p: PointElement, shift: tuple[int, int] = (0, 0)) -> Element:
        if not any(shift):
            return self._unshifted[p]
        return self._element(p, shift)

    @cached_property
    def _unshifted(self) -> dict[PointElement, Element]:
        return {p: self._element(p, (0, 0)) for p in self.point_group.elements}

    def _element(self, p: PointElement, shift: tuple[int, int]) -> Element:
        angle = p.angle
        return Element(
            label=element_label(angle, bool(p.flip), shift),
            angle=angle,
            quarter_turns=quarter_turns_of(angle),
            flip=bool(p.flip),
            shift=shift,
            point=p,
        )

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        points = list(self.point_group.elements)
        if len(points) > max(EXHAUSTIVE_ORDER, ctx.samples):
            exact = [p for p in points if self.from_point(p).exact]
            others = [p for p in points if not self.from_point(p).exact]
            picks = ctx.rng.choice(len(others), size=min(len(others), ctx.samples), replace=False)
            points = exact + [others[i] for i in sorted(picks)]
        elements = [self.from_point(p) for p in points]
        if self.shifts and ctx.spatial_size is not None:
            size = min(ctx.spatial_size)
            for _ in range(ctx.samples):
                p = points[int(ctx.rng.integers(len(points)))]
                dy, dx = (int(v) * ctx.stride for v in ctx.rng.integers(-size // 4, size // 4 + 1, 2) // ctx.stride)
                elements.append(self.from_point(p, (dy, dx)))
        return elements

    def compose(self, a: Element, b: Element) -> Element:
        point = self.point_group.compose(a.point, b.point)
        moved = transform_shift(b.shift, a.quarter_turns or 0, a.flip)
        return self.from_point(point, (a.shift[0] + moved[0], a.shift[1] + moved[1]))

    def inverse(self, a: Element) -> Element:
        point = self.point_group.inverse(a.point)
        inv = self.from_point(point)
        moved = transform_shift(a.shift, inv.quarter_turns or 0, inv.flip)
        return self.from_point(point, (-moved[0], -moved[1]))

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        return self.from_point(self.point_group.identity)


@dataclass(frozen=True)
class SO2(Group):
    """Rotations by any angle: right angles exactly, the others by spline interpolation."""

    angles: int | None = None
    order: int = 3

    name = "so2"
    spatial = True
    rotates = True
    summary = "rotations by any angle; right angles exact, others interpolated on smooth inputs"

    @property
    def interpolation_order(self) -> int:  # type: ignore[override]
        return self.order

    @property
    def spec(self) -> str:
        parts = ["so2"]
        if self.angles is not None:
            parts.append(str(self.angles))
        if self.order != 3:
            parts.append(f"order={self.order}")
        return ":".join(parts)

    @property
    def needs_smooth_inputs(self) -> bool:
        return True

    @cached_property
    def field_group(self):
        from eqcheck.reps import FieldGroup

        return FieldGroup("so2")

    def generator_elements(self) -> list[Element]:
        """A rotation by an angle no finite group holds: a field type must be one of SO(2)'s."""
        return [self.rotation(1.0)]

    def rotation(self, angle: float) -> Element:
        angle = float(angle) % (2 * math.pi)
        return Element(label=element_label(angle, False), angle=angle, quarter_turns=quarter_turns_of(angle))

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        right = [k * math.pi / 2 for k in range(4)]
        if self.angles is not None:
            others = [2 * math.pi * k / self.angles for k in range(self.angles)]
        else:
            others = list(ctx.rng.uniform(0.0, 2 * math.pi, max(ctx.samples - 4, 1)))
        chosen = right + [a for a in others if quarter_turns_of(a) is None]
        return [self.rotation(a) for a in chosen]

    def compose(self, a: Element, b: Element) -> Element:
        return self.rotation(a.angle + b.angle)

    def inverse(self, a: Element) -> Element:
        return self.rotation(-a.angle)

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        return self.rotation(0.0)
