"""Errors of one captured tensor, the exact inputs that replace a broken one, and a tensor's geometry."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eqcheck.actions.representations import Representation
from eqcheck.compare import Geometry
from eqcheck.groups.element import Element
from eqcheck.layers.expectation import RUNS_FROM_ENTRIES, Expectation
from eqcheck.layers.trace import from_batch_first
from eqcheck.metrics import squared_distance, sum_of_squares, worst
from eqcheck.tolerance import Tolerance


@dataclass(frozen=True)
class TensorErrors:
    """The worst error of one tensor over the testing elements, the verdict, and the identity's error."""

    worst: float
    passed: bool
    #: the error of the identity element: the same input gave a different output (non-determinism)
    identity: float = 0.0
    #: the error of every testing element, in order
    errors: tuple[float, ...] = ()


def _rel(observed: np.ndarray, expected: np.ndarray, norm: float | None, mask) -> float:
    """``||a - b|| / ||b||``, the difference and both norms in float64 (``norm``: ``||b||`` if known)."""
    if mask is not None:
        observed, expected = observed[..., mask], expected[..., mask]
    return _ratio(math.sqrt(squared_distance(observed, expected)), norm64(expected) if norm is None else norm)


def _ratio(num: float, norm: float) -> float:
    if not (math.isfinite(num) and math.isfinite(norm)):
        return math.nan
    if norm == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / norm


def norm64(x: np.ndarray) -> float:
    return math.sqrt(sum_of_squares(x))


def tensor_errors(expect: Expectation, rep: Representation, elements: list[Element],
                  observed: list[np.ndarray], tolerance: Tolerance, spread: float) -> TensorErrors:
    """``||h(g.x) - rho(g) h(x)|| / ||rho(g) h(x)||`` per element (CONVENTIONS section 3, float64).
    Where nothing is masked the actions only move entries, so ``||rho(g) h(x)|| = ||h(x)||``."""
    norm = None if expect.geometry.zero_fill else norm64(expect.reference)
    large = expect.reference.size >= RUNS_FROM_ENTRIES
    errors = []
    for element, seen in zip(elements, observed):
        mask = expect.geometry.mask(element, rep, expect.reference.shape)  # rho(g) x has x's shape
        if large and norm is not None and mask is None:  # the difference without making rho(g) x where it can
            same = element.is_identity and same_memory(seen, expect.reference)  # the reference itself (the
            # identity of a run with exact inputs)
            errors.append(0.0 if same else _ratio(math.sqrt(expect.distance2(rep, element, seen)), norm))
            continue
        expected = expect.once(rep, element)
        errors.append(0.0 if same_memory(seen, expected) else _rel(seen, expected, norm if mask is None else None,
                                                                   mask))
    passed = all(tolerance.element_passes(rel, e.exact, spread) for rel, e in zip(errors, elements))
    identity = next((rel for rel, e in zip(errors, elements) if e.is_identity), 0.0)
    return TensorErrors(worst(errors), passed, identity, tuple(errors))


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` are the same entries: one array, or views of the same memory with one layout."""
    return a is b or (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
                      and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def transformed_input(expect: Expectation, rep: Representation, element: Element, axis: int,
                      dtype: np.dtype) -> np.ndarray:
    """``rho(g) h`` for a captured input whose batch sits on ``axis`` (the result keeps that layout): the
    expectation's own array, a view where it is one (stacking the items for a run copies it once)."""
    return from_batch_first(np.asarray(expect(rep, element), dtype=dtype), axis)


def spread64(reference: np.ndarray, other: np.ndarray) -> float:
    """``||f(x') - f(x)|| / ||f(x)||`` in float64 (metrics.spread without the max abs)."""
    return _rel(other, reference, None, None)


def tensor_geometry(shape: tuple[int, ...], input_size: int | None, base: Geometry) -> Geometry:
    """The geometry of a tensor: its stride from its width, the comparison margin scaled to it."""
    stride = 1
    if input_size and len(shape) >= 3 and shape[-1] and input_size % shape[-1] == 0:
        stride = input_size // shape[-1]
    margin = base.margin
    if margin is not None:
        reach = margin * max(base.stride, 1)
        margin = -(-reach // stride)
    return Geometry(stride=stride, zero_fill=base.zero_fill, margin=margin, order=base.order)
