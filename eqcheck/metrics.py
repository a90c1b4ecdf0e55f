"""The numbers of CONVENTIONS section 3, always in float64."""
from __future__ import annotations

import math

import numpy as np


def _masked(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x if mask is None else x[..., mask]


def sum_of_squares(x: np.ndarray, out: np.ndarray | None = None) -> float:
    """``sum(x ** 2)`` in float64 by numpy's pairwise summation: no BLAS dot, whose threads are woken on
    every call (about 0.2 ms per call on 2 cores, the largest cost of a per-layer analysis before), and
    more accurate than a dot's running sum. ``out``: a float64 array of ``x``'s shape to square into
    (``x`` itself where it may be overwritten); without it one is allocated."""
    return float(np.square(x, out=out, dtype=np.float64).sum())


def worst(values) -> float:
    """The largest of ``values`` (errors), NaN counting as infinite; 0 for none."""
    return max((math.inf if v != v else float(v) for v in values), default=0.0)


def relative_error(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """``(||a - b|| / ||b||, max |a - b|)`` over the whole batch, restricted to ``mask`` on the last two axes."""
    a64, b64 = _masked(a, mask), _masked(b, mask)
    diff = np.array(a64 - b64, ndmin=1)  # an array even for one number (a point cloud's energy)
    if diff.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(diff)))
    norm_diff = math.sqrt(sum_of_squares(diff, out=diff))  # diff is a fresh array
    norm_b = math.sqrt(sum_of_squares(b64))
    if not math.isfinite(norm_diff) or not math.isfinite(norm_b):
        return math.nan, max_abs
    if norm_b == 0.0:
        return (0.0 if norm_diff == 0.0 else math.inf), max_abs
    return norm_diff / norm_b, max_abs


def spread(reference: np.ndarray, other: np.ndarray) -> float:
    """``||f(x) - f(x')|| / ||f(x)||``: how much the output moves between unrelated inputs."""
    rel, _ = relative_error(other, reference)
    return rel


def all_finite(x: np.ndarray) -> bool:
    return bool(np.isfinite(x).all()) if np.issubdtype(np.asarray(x).dtype, np.floating) else True
