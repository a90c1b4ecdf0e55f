"""Errors of one tensor under every testing element, for one candidate action."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.actions.representations import Representation, apply_representation
from eqcheck.actions.spatial import central_disk, interior_mask
from eqcheck.errors import UsageError
from eqcheck.groups.base import Group
from eqcheck.groups.element import Element
from eqcheck.metrics import all_finite, relative_error
from eqcheck.result import ElementResult
from eqcheck.tolerance import Tolerance


@dataclass(frozen=True)
class Geometry:
    """How a tensor sits relative to the input: its stride, and which pixels a comparison may use."""

    stride: int = 1
    zero_fill: bool = False
    #: pixels this close to an edge are left out of comparisons (interior translations)
    margin: int | None = None
    order: int = 3

    def mask(self, element: Element, rep: Representation, shape: tuple[int, ...]) -> np.ndarray | None:
        if not rep.spatial or len(shape) < 3:
            return None
        if not element.exact:
            return central_disk(*shape[-2:])
        if self.zero_fill and self.margin is not None:
            sizes = tuple(shape[-len(element.shift):])
            shift = tuple(t // self.stride for t in element.shift)
            mask = interior_mask(sizes, self.margin, shift)
            if not mask.any():
                raise UsageError(f"nothing is left to compare for {element.label}: the model's reach "
                                 f"({self.margin} px from each edge) covers the {'x'.join(map(str, sizes))} "
                                 f"output; use a larger input (--input-shape) or set translation:interior:margin=M")
            return mask
        return None


def element_errors(
    group: Group,
    rep: Representation,
    elements: list[Element],
    reference: np.ndarray,
    transformed: list[np.ndarray],
    geometry: Geometry,
    tolerance: Tolerance,
    spread: float,
    floors: dict[str, float],
) -> tuple[ElementResult, ...]:
    """``rel = ||f(g.x) - g.f(x)|| / ||g.f(x)||`` per element, judged against the tolerance."""
    results = []
    reference_finite = all_finite(reference)
    for element, output in zip(elements, transformed):
        expected = apply_representation(rep, group, element, reference, stride=geometry.stride,
                                        zero_fill=geometry.zero_fill, order=geometry.order)
        mask = geometry.mask(element, rep, output.shape)
        rel, max_abs = relative_error(output, expected, mask)
        nonfinite = not (reference_finite and all_finite(output))
        ratio = rel / spread if spread > 0 else None
        results.append(ElementResult(
            element=element.label,
            rel_error=rel,
            max_abs_error=max_abs,
            passed=not nonfinite and tolerance.element_passes(rel, element.exact, spread),
            exact=element.exact,
            interpolation_floor=floors.get(element.label),
            spread_ratio=ratio,
            nonfinite=nonfinite,
            matrix=element.matrix,
            translation=element.translation,
            permutation=None if element.permutation is None else tuple(int(i) for i in element.permutation),
        ))
    return tuple(results)
