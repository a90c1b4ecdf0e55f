"""3-D groups on point clouds and irreps features: SO(3), O(3) (with the inversion), SE(3) and E(3) (with
translations). Elements carry their matrix and translation; ``x R^T + t`` on row vectors (CONVENTIONS 8)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element

#: names, and whether each has the inversion and translations
KINDS = {"so3": (False, False), "o3": (True, False), "se3": (False, True), "e3": (True, True)}

#: fixed testing elements every run starts with (after the identity), so that two runs share them:
#: a quarter turn about z and a third of a turn about (1, 1, 1), which permutes the axes
FIXED_ROTATIONS = (
    ((0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
)


def haar_rotation(rng: np.random.Generator) -> np.ndarray:
    """A Haar-uniform rotation: a uniform unit quaternion (a normalised Gaussian 4-vector) as a matrix."""
    w, x, y, z = (q := rng.standard_normal(4)) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotation_angle(matrix: np.ndarray) -> float:
    """The angle of the rotation ``det(R) R`` (in [0, pi])."""
    proper = np.linalg.det(matrix) * matrix
    return float(np.arccos(np.clip((np.trace(proper) - 1) / 2, -1.0, 1.0)))


@dataclass(frozen=True)
class Euclidean3(Group):
    """SO(3), O(3), SE(3) or E(3) acting on 3-D coordinates and on features typed by O(3) irreps."""

    name: str = "so3"

    point_cloud = True

    @property
    def spec(self) -> str:
        return self.name

    @property
    def summary(self) -> str:  # type: ignore[override]
        return {"so3": "3-D rotations (Haar-uniform) of point clouds, vectors and irreps features",
                "o3": "3-D rotations and the inversion: tells vectors (1o) from pseudovectors (1e)",
                "se3": "3-D rotations and translations: positions move, vectors and features rotate",
                "e3": "3-D rotations, the inversion and translations"}[self.name]

    @property
    def inversion(self) -> bool:
        return KINDS[self.name][0]

    @property
    def translations(self) -> bool:
        return KINDS[self.name][1]

    def element(self, matrix: np.ndarray, translation: np.ndarray | None, label: str) -> Element:
        matrix = np.asarray(matrix, dtype=np.float64)
        return Element(label=label, matrix=tuple(tuple(float(v) for v in row) for row in matrix),
                       translation=None if translation is None else tuple(float(v) for v in translation))

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        """The identity, the fixed rotations, then Haar-uniform ones; under O(3) the inversion and every
        other sampled element composed with it; with translations, each non-identity element shifted by
        a standard normal vector, and one pure translation. Drawn from the run's seeded generator."""
        elements = [self.identity(ctx)]
        matrices = [(np.array(r), f"rot{i + 1}") for i, r in enumerate(FIXED_ROTATIONS)]
        matrices += [(haar_rotation(ctx.rng), f"rot{i + 1}") for i in range(len(FIXED_ROTATIONS), max(ctx.samples, 2))]
        if self.inversion:
            matrices = [(-np.eye(3), "inv")] + [(-m, f"{label}*inv") if i % 2 else (m, label)
                                                for i, (m, label) in enumerate(matrices)]
        for matrix, label in matrices:
            shift = ctx.rng.standard_normal(3) if self.translations else None
            elements.append(self.element(matrix, shift, label + ("+t" if shift is not None else "")))
        if self.translations:
            elements.append(self.element(np.eye(3), ctx.rng.standard_normal(3), "t"))
        return elements

    def compose(self, a: Element, b: Element) -> Element:
        matrix = a.rotation @ b.rotation
        shift = a.rotation @ np.asarray(b.translation or (0.0, 0.0, 0.0)) + np.asarray(a.translation or (0.0,) * 3)
        return self.element(matrix, shift if self.translations else None, f"{a.label}*{b.label}")

    def inverse(self, a: Element) -> Element:
        matrix = a.rotation.T
        shift = -matrix @ np.asarray(a.translation or (0.0, 0.0, 0.0))
        return self.element(matrix, shift if self.translations else None, f"{a.label}^-1")

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        return self.element(np.eye(3), None, "e")
