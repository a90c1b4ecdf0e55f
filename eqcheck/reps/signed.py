"""Signed permutations: ``rho v = signs * v[order]``, what quarter turns and mirrors do to regular, quotient
and irrep fields in escnn's bases. Kept as index arrays (composed, traced and applied exactly, in O(C)),
and made a dense matrix only where one is asked for."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class SignedPermutation:
    """The matrix with ``signs[i]`` at ``(i, order[i])`` and zeros elsewhere."""

    order: np.ndarray
    signs: np.ndarray
    #: the trace where whoever made it computed it already (for a whole table of them at once)
    known_trace: float | None = None

    @classmethod
    def of(cls, matrix: np.ndarray) -> SignedPermutation | None:
        """``matrix`` as a signed permutation, or None where a row or column holds anything but one +-1."""
        matrix = np.asarray(matrix)
        order = np.abs(matrix).argmax(axis=1)
        signs = matrix[np.arange(len(matrix)), order]
        if not (np.all(np.abs(signs) == 1) and np.count_nonzero(matrix) == len(matrix)
                and len(np.unique(order)) == len(order)):
            return None
        return cls(order, signs.astype(np.float64))

    def __len__(self) -> int:
        return len(self.order)

    @cached_property
    def matrix(self) -> np.ndarray:
        dense = np.zeros((len(self), len(self)))
        dense[np.arange(len(self)), self.order] = self.signs
        return dense

    @property
    def trace(self) -> float:
        if self.known_trace is not None:
            return self.known_trace
        return float(self.signs[self.order == np.arange(len(self))].sum())

    @cached_property
    def unsigned(self) -> bool:
        return bool(np.all(self.signs == 1))

    def after(self, other: SignedPermutation) -> SignedPermutation:
        """``self @ other``: ``s1 * (s2 * v[o2])[o1] = (s1 * s2[o1]) * v[o2[o1]]``."""
        return SignedPermutation(other.order[self.order], self.signs * other.signs[self.order])

    def same(self, other: SignedPermutation) -> bool:
        return bool((self.order == other.order).all() and (self.signs == other.signs).all())

    def apply(self, x: np.ndarray, axis: int = 1) -> np.ndarray:
        """``rho`` on ``axis`` of ``x``, a gather (exact in x's dtype)."""
        moved = np.take(x, self.order, axis=axis)
        if not self.unsigned:
            np.multiply(moved, self.signs.reshape((-1,) + (1,) * (x.ndim - 1 - axis)), out=moved, casting="unsafe")
        return moved


def dense(rho: np.ndarray | SignedPermutation) -> np.ndarray:
    """A channel map as a float64 matrix."""
    return rho.matrix if isinstance(rho, SignedPermutation) else np.asarray(rho, dtype=np.float64)


def trace(rho: np.ndarray | SignedPermutation) -> float:
    return rho.trace if isinstance(rho, SignedPermutation) else float(np.trace(rho))
