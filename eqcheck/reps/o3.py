"""O(3) irreps in e3nn's conventions (CONVENTIONS 8): ``4x0e+2x1o+1x2e``, Wigner D in e3nn's real basis
(l = 1 is (x, y, z): ``D(1o, R) == R``), parity ``D(R) = p^((1-d)/2) D^l(d R)`` with d = det R, and the
characters that name a representation found from the data.

e3nn's real spherical harmonics are the usual real ones (positive coefficients, m = -l..l) with the
polar axis along y: the usual (X, Y, Z) are e3nn's (z, x, y). D^l(R) is read from them:
``Y(R u) = D(R) Y(u)`` on points spread over the sphere, solved once per (l, R).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from eqcheck.errors import UsageError

#: the highest degree a spec may name (D is solved from sampled harmonics: fine far beyond what models use)
MAX_L = 11
_TERM = re.compile(r"(?:(\d+)x)?(\d+)([eo])")


#: escnn's frame: its SO(3) ``irrep(l)(R)`` is e3nn's ``D^l(C R C^T)`` for this cyclic permutation of the
#: axes, every l (its l = 1 is (y, z, x); checked against escnn 1.0.11 in tests/test_euclidean.py)
ESCNN_FRAME = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
#: the bases a spec may name after its irreps (``1x1o:escnn``)
BASES = ("e3nn", "escnn")


@dataclass(frozen=True)
class Irreps:
    """A direct sum of O(3) irreps ``((mul, l, parity), ...)``, parity +1 (e) or -1 (o), in e3nn's basis or
    escnn's (``basis``)."""

    terms: tuple[tuple[int, int, int], ...]
    basis: str = "e3nn"

    @property
    def dim(self) -> int:
        return sum(mul * (2 * l + 1) for mul, l, _ in self.terms)

    @property
    def spec(self) -> str:
        text = "+".join(f"{mul}x{l}{'e' if p > 0 else 'o'}" for mul, l, p in self.terms)
        return text if self.basis == "e3nn" else f"{text}:{self.basis}"

    def copies(self, count: int) -> Irreps:
        """``count`` copies laid one after the other (``[N, 3]`` flattened is ``Nx1o``), adjacent terms of
        the same irrep merged (``1x1o+1x1o`` is ``2x1o``: the same layout)."""
        terms: list[tuple[int, int, int]] = []
        for mul, l, parity in self.terms * count:
            if terms and terms[-1][1:] == (l, parity):
                terms[-1] = (terms[-1][0] + mul, l, parity)
            else:
                terms.append((mul, l, parity))
        return Irreps(tuple(terms), self.basis)

    def matrix(self, rotation: np.ndarray) -> np.ndarray:
        """D(g), block diagonal: each (mul, l, p) block ``mul`` times, for ``rotation`` (det +1 or -1)."""
        if self.basis == "escnn":
            rotation = ESCNN_FRAME @ rotation @ ESCNN_FRAME.T
        det = 1.0 if np.linalg.det(rotation) > 0 else -1.0
        blocks = []
        for mul, l, parity in self.terms:
            block = wigner_d(l, det * rotation) * (parity if det < 0 else 1.0)
            blocks += [block] * mul
        out = np.zeros((self.dim, self.dim))
        start = 0
        for block in blocks:
            size = len(block)
            out[start:start + size, start:start + size] = block
            start += size
        return out


def _split_basis(spec: str) -> tuple[str, str]:
    """``2x1o:escnn`` as ``("2x1o", "escnn")``; the basis is e3nn's where none is named."""
    text, _, basis = spec.strip().lower().replace(" ", "").partition(":")
    return text, basis or "e3nn"


def parse_irreps(spec: str) -> Irreps:
    """``4x0e+2x1o+1x2e``, ``1o``, ``0e``; aliases ``scalar`` (0e), ``pseudoscalar`` (0o), ``vector`` (1o),
    ``pseudovector`` (1e); ``:escnn`` after any of them: in escnn's basis (its l = 1 is (y, z, x))."""
    text, basis = _split_basis(spec)
    if basis not in BASES:
        raise UsageError(f"type {spec!r}: unknown basis {basis!r} ({', '.join(BASES)})")
    text = {"scalar": "0e", "pseudoscalar": "0o", "vector": "1o", "pseudovector": "1e"}.get(text, text)
    terms = []
    for part in text.split("+"):
        match = _TERM.fullmatch(part)
        if match is None:
            raise UsageError(f"type {spec!r}: cannot read {part!r} as an irrep (e3nn's form: 4x0e+2x1o+1x2e)")
        mul, l, parity = int(match.group(1) or 1), int(match.group(2)), 1 if match.group(3) == "e" else -1
        if not 1 <= mul <= 100000 or l > MAX_L:
            raise UsageError(f"type {spec!r}: {part!r} out of range (l <= {MAX_L})")
        terms.append((mul, l, parity))
    return Irreps(tuple(terms), basis)


def is_irreps_spec(spec: str) -> bool:
    text, basis = _split_basis(spec)
    if basis not in BASES:
        return False
    return text in ("scalar", "pseudoscalar", "vector", "pseudovector") or all(
        _TERM.fullmatch(part) for part in text.split("+"))


def _real_harmonics(l: int, points: np.ndarray) -> np.ndarray:
    """``[2l+1, M]``: e3nn's real spherical harmonics of degree l (up to one factor per l) at unit vectors."""
    from scipy.special import sph_harm_y

    big_x, big_y, big_z = points[:, 2], points[:, 0], points[:, 1]  # the usual axes are e3nn's (z, x, y)
    polar = np.arccos(np.clip(big_z, -1.0, 1.0))
    azimuth = np.arctan2(big_y, big_x)
    rows = []
    for m in range(-l, l + 1):
        value = sph_harm_y(l, abs(m), polar, azimuth)
        if m < 0:
            rows.append(np.sqrt(2) * (-1) ** m * value.imag)
        elif m == 0:
            rows.append(value.real)
        else:
            rows.append(np.sqrt(2) * (-1) ** m * value.real)
    return np.array(rows)


@lru_cache(maxsize=None)
def _sample_points(l: int) -> np.ndarray:
    rng = np.random.default_rng(12345 + l)
    points = rng.standard_normal((4 * (2 * l + 1) + 8, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def wigner_d(l: int, rotation: np.ndarray) -> np.ndarray:
    """D^l(R) of a proper rotation in e3nn's real basis: ``Y(R u) = D Y(u)``."""
    if l == 0:
        return np.ones((1, 1))
    if l == 1:
        return np.asarray(rotation, dtype=np.float64).copy()
    points = _sample_points(l)
    here, there = _real_harmonics(l, points), _real_harmonics(l, points @ np.asarray(rotation).T)
    solved = np.linalg.lstsq(here.T, there.T, rcond=None)[0].T
    u, _, vt = np.linalg.svd(solved)  # orthogonal to rounding: polish it
    return u @ vt


def character(l: int, parity: int, rotation: np.ndarray) -> float:
    """trace D_{l,p}(g): ``sin((l + 1/2) theta) / sin(theta / 2)`` of d R's angle, times p where d = -1."""
    det = 1.0 if np.linalg.det(rotation) > 0 else -1.0
    proper = det * np.asarray(rotation)
    theta = float(np.arccos(np.clip((np.trace(proper) - 1) / 2, -1.0, 1.0)))
    value = 2 * l + 1.0 if abs(theta) < 1e-9 else np.sin((l + 0.5) * theta) / np.sin(theta / 2)
    return float(value * (parity if det < 0 else 1.0))


#: degrees looked for when a representation found from the data is named
MAX_NAMED_L = 4


def name_irreps(rotations: list[np.ndarray], traces: list[float], dim: int, inversion: bool) -> str | None:
    """The irreps (e3nn's string, in the order of its ``Irreps.sort()``) whose characters give ``traces`` at ``rotations``,
    or None where no whole multiplicities adding up to ``dim`` do, or the elements cannot tell them apart."""
    parities = (-1, 1) if inversion else (1,)  # e3nn's Irreps.sort(): l ascending, odd before even
    columns = [(l, p) for l in range(MAX_NAMED_L + 1) for p in parities]
    basis = np.array([[character(l, p, r) for l, p in columns] for r in rotations])
    if np.linalg.matrix_rank(basis, tol=1e-6) < len(columns):
        return None
    solved = np.linalg.lstsq(basis, np.asarray(traces), rcond=None)[0]
    counts = np.round(solved).astype(int)
    if np.abs(solved - counts).max() > 0.25 or (counts < 0).any():
        return None
    if sum(int(m) * (2 * l + 1) for m, (l, _) in zip(counts, columns)) != dim:
        return None
    # without the inversion, parity is not seen: named as spherical harmonics are, (-1)^l (1o, 2e)
    terms = tuple((int(m), l, p if inversion else (-1) ** l) for m, (l, p) in zip(counts, columns) if m)
    return Irreps(terms).spec
