"""The numbers of CONVENTIONS section 3, in float64 (``squared_distance`` may sum in float32 where a
caller ranks candidates with it)."""
from __future__ import annotations

import itertools
import math

import numpy as np


def _masked(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x if mask is None else x[..., mask]


#: elements per block of the float64 sums below: a block's float64 copy stays in the cache (1 MiB)
BLOCK_ELEMENTS = 1 << 17


def _blocks(shape: tuple[int, ...]):
    """Index tuples that cut an array of ``shape`` into blocks of about BLOCK_ELEMENTS: every index of
    the leading axes, and slices of the next one (any strided view, a turned image too, is sliced
    without a copy)."""
    inner, axis = 1, len(shape)
    while axis > 0 and inner * shape[axis - 1] <= BLOCK_ELEMENTS:
        axis -= 1
        inner *= shape[axis]
    if axis == 0:
        return iter([()])
    step = max(BLOCK_ELEMENTS // inner, 1)
    cut = [slice(start, start + step) for start in range(0, shape[axis - 1], step)]
    return itertools.product(*(range(n) for n in shape[:axis - 1]), cut)


def sum_of_squares(x: np.ndarray, out: np.ndarray | None = None) -> float:
    """``sum(x ** 2)`` in float64 by numpy's pairwise summation: no BLAS dot, whose threads are woken on
    every call (about 0.2 ms per call on 2 cores, the largest cost of a per-layer analysis before), and
    more accurate than a dot's running sum. ``out``: a float64 array of ``x``'s shape to square into
    (``x`` itself where it may be overwritten); without it, a large ``x`` is summed in blocks, each
    squared into one buffer that stays in the cache (a float64 copy of a large tensor would cost a
    write and a read of twice its size, and fresh pages each time)."""
    x = np.asarray(x)
    if out is not None or x.size <= 4 * BLOCK_ELEMENTS:
        return float(np.square(x, out=out, dtype=np.float64).sum())
    total, buffer = 0.0, np.empty(BLOCK_ELEMENTS, dtype=np.float64)
    for index in _blocks(x.shape):
        block = x[index]
        space = buffer[:block.size].reshape(block.shape)
        total += float(np.square(block, out=space, dtype=np.float64).sum())
    return total


def squared_distance(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> float:
    """``sum((a - b) ** 2)``: the difference and its pairwise sum in ``dtype`` (a float32 sum of squares is
    within about 1e-6 of the float64 one, relative, and 1.6x as fast: no conversion), blocks of it added in
    float64, in blocks that stay in the cache (``a`` and ``b`` of one shape, any strides)."""
    if a.size <= 4 * BLOCK_ELEMENTS:
        diff = np.subtract(a, b, dtype=dtype)
        return float(np.square(diff, out=diff).sum())
    total, buffer = 0.0, np.empty(BLOCK_ELEMENTS, dtype=dtype)
    for index in _blocks(a.shape):
        left, right = a[index], b[index]
        space = buffer[:left.size].reshape(left.shape)
        np.subtract(left, right, out=space, dtype=dtype)
        total += float(np.square(space, out=space).sum())
    return total


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
