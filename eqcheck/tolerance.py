"""Tolerances per dtype, and the rule that decides whether one element passes."""
from __future__ import annotations

from dataclasses import dataclass

#: relative error allowed for elements whose action is exact on the grid (CONVENTIONS section 3)
EXACT_TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "float16": 1e-2, "bfloat16": 5e-2}
#: relative error allowed for interpolated rotations (smooth inputs, central disk): escnn's own protocol
#: (CONVENTIONS 4: rtol 0.1); exact escnn SO(2) and C8 networks with 5x5 kernels reach 5-8e-2 there, by
#: escnn's own transform as by eqcheck's (benchmarks/zoo/heldout)
APPROX_TOLERANCE = 1e-1
#: an interpolated element also fails when its error is this large a fraction of the output's spread
MAX_SPREAD_RATIO = 0.1


@dataclass(frozen=True)
class Tolerance:
    """``exact`` for grid-exact elements; ``approximate`` and ``spread_ratio`` for interpolated ones."""

    exact: float
    approximate: float = APPROX_TOLERANCE
    spread_ratio: float = MAX_SPREAD_RATIO

    @classmethod
    def for_dtype(cls, dtype: str, exact: float | None = None, approximate: float | None = None) -> "Tolerance":
        default = EXACT_TOLERANCE.get(dtype, EXACT_TOLERANCE["float32"])
        return cls(exact=default if exact is None else exact,
                   approximate=APPROX_TOLERANCE if approximate is None else approximate)

    def element_passes(self, rel_error: float, exact: bool, spread: float) -> bool:
        """Exact elements: ``rel <= exact``. Interpolated: ``rel <= approximate`` and ``rel <= ratio * spread``."""
        if rel_error != rel_error:  # NaN
            return False
        if exact:
            return rel_error <= self.exact
        return rel_error <= self.approximate and rel_error <= self.spread_ratio * spread
