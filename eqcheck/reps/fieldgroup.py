"""The group a field type is defined on (C_N, D_N with its mirror axis, SO(2)), and which of its
elements a tested element is: the one place where a geometric element (flip, angle) becomes a label
that representations evaluate (CONVENTIONS sections 1, 7)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from eqcheck.errors import UsageError
from eqcheck.groups.element import Element
from eqcheck.groups.point import PointElement

#: mirror axes: escnn's default mirror flips columns (X -> -X); ``axis=0`` (escnn, e2cnn) flips rows
MIRROR_AXES = ("cols", "rows")


@dataclass(frozen=True)
class FieldGroup:
    """``C_N`` (``kind='c'``), ``D_N`` (``'d'``, mirror ``axis``) or ``SO(2)`` (``'so2'``, n = 0)."""

    kind: str
    n: int = 0
    axis: str = "cols"

    @property
    def spec(self) -> str:
        if self.kind == "so2":
            return "so2"
        return f"{self.kind}{self.n}" + (":axis=0" if self.axis == "rows" else "")

    @property
    def finite(self) -> bool:
        return self.kind != "so2"

    @property
    def mirrors(self) -> bool:
        return self.kind == "d"

    @property
    def order(self) -> int:
        return self.n * (2 if self.mirrors else 1)

    def elements(self) -> list[PointElement]:
        """escnn's order: index ``N*f + k`` is ``r^k f`` (f this group's mirror)."""
        return [PointElement(f, k, self.n) for f in ((0, 1) if self.mirrors else (0,)) for k in range(self.n)]

    def label(self, element: Element) -> PointElement | float | None:
        """The element of this group that ``element`` (flip columns, then rotate by its angle) is: a
        PointElement, an angle for SO(2), or None when it is not in this group (a 45 degree turn and C4)."""
        if element.flip and not self.mirrors:
            return None
        if self.kind == "so2":
            return element.angle % (2 * math.pi)
        steps = element.angle * self.n / (2 * math.pi)
        k = round(steps)
        if abs(steps - k) > 1e-6:
            return None
        if element.flip and self.axis == "rows":  # r^k f_cols = r^(k - N/2) m_rows
            if self.n % 2:
                return None
            k -= self.n // 2
        return PointElement(int(element.flip), k % self.n, self.n)

    def geometric(self, label: PointElement) -> tuple[bool, float]:
        """(flip columns, angle) of one of this group's elements: the inverse of ``label``."""
        k = label.rot + (self.n // 2 if label.flip and self.axis == "rows" else 0)
        return bool(label.flip), 2 * math.pi * (k % self.n) / self.n


_GROUP = re.compile(r"(c|d)(\d+)(:axis=(0|1))?|so2|o2")


def parse_field_group(text: str) -> FieldGroup:
    """``c8``, ``d4``, ``d4:axis=0``, ``so2``."""
    match = _GROUP.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(f"unknown field group {text!r} (cN, dN, dN:axis=0, so2)")
    if text.strip().lower() == "so2":
        return FieldGroup("so2")
    if text.strip().lower() == "o2":
        raise UsageError("O(2) fields are not supported yet: use dN for a finite subgroup")
    kind, n, axis = match.group(1), int(match.group(2)), match.group(4)
    if not 1 <= n <= 360:
        raise UsageError(f"field group {text!r}: N must be between 1 and 360")
    if axis is not None and kind != "d":
        raise UsageError(f"field group {text!r}: only dN has a mirror axis")
    return FieldGroup(kind, n, "rows" if axis == "0" else "cols")
