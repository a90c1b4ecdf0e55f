"""One group element as the actions see it: a spatial part, a point-group part, a set permutation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.groups.point import PointElement


@dataclass(frozen=True)
class Element:
    """A testing element. Each part is optional; the spatial action is flip, then rotate, then shift.

    - ``point``: the element of the finite point group (drives regular-field channel permutations);
    - ``angle``: rotation in radians, counter-clockwise as displayed; ``quarter_turns`` is set when the
      angle is a multiple of 90 degrees, so that the action is an exact ``rot90`` and never interpolates;
    - ``flip``: mirror X -> -X, applied first;
    - ``shift``: translation in input pixels of the last ``len(shift)`` axes ((dy, dx) on an image, (dx,) on
      a signal, (dz, dy, dx) on a voxel grid), applied last;
    - ``permutation``: new[i] = old[permutation[i]] along a set axis;
    - ``matrix``: a 3-D rotation or improper rotation (det -1: with the inversion), row-major, acting on
      row vectors as ``x R^T``; ``translation``: the 3-D shift added after it (``x R^T + t``).
    """

    label: str
    angle: float = 0.0
    quarter_turns: int | None = 0
    flip: bool = False
    shift: tuple[int, ...] = (0, 0)
    point: PointElement | None = None
    permutation: tuple[int, ...] | None = None
    matrix: tuple[tuple[float, float, float], ...] | None = None
    translation: tuple[float, float, float] | None = None

    @property
    def rotation(self) -> np.ndarray:
        """``matrix`` as a float64 ``[3, 3]`` array (the identity where there is none)."""
        return np.eye(3) if self.matrix is None else np.array(self.matrix, dtype=np.float64)

    @property
    def exact(self) -> bool:
        """True when the action on a pixel grid needs no interpolation."""
        return self.quarter_turns is not None

    @property
    def is_identity(self) -> bool:
        perm_identity = self.permutation is None or all(i == p for i, p in enumerate(self.permutation))
        still = (self.matrix is None or np.array_equal(self.rotation, np.eye(3))) and not any(self.translation or ())
        return self.quarter_turns == 0 and not self.flip and not self.shifts and perm_identity and still

    @property
    def shifts(self) -> bool:
        """True when the element translates."""
        return any(self.shift)


def quarter_turns_of(angle: float) -> int | None:
    """The number of quarter turns if ``angle`` is a multiple of 90 degrees (to 1e-9 rad), else None."""
    turns = angle / (np.pi / 2)
    nearest = round(turns)
    return nearest % 4 if abs(turns - nearest) < 1e-9 else None


def format_angle(angle: float) -> str:
    degrees = np.degrees(angle) % 360.0
    return f"rot{degrees:g}"
