"""The spatial part of an action: flip and rotate the last two axes about the centre, shift the last
one, two or three (a signal, an image, a voxel grid)."""
from __future__ import annotations

import math

import numpy as np

from eqcheck.groups.element import Element

#: comparisons after an interpolated rotation use the disk of this radius, as a fraction of min(H, W)
DISK_RADIUS_FRACTION = 0.4


def rotate_exact(x: np.ndarray, quarter_turns: int) -> np.ndarray:
    """Counter-clockwise as displayed: the view ``np.rot90(x, k, axes=(-2, -1))`` returns (strides
    included), without its argument handling, which costs more than the view on small feature maps
    (the per-layer analysis turns every captured tensor). Never interpolates."""
    k = quarter_turns % 4
    if k == 1:
        return x[..., ::-1].swapaxes(-1, -2)
    if k == 2:
        return x[..., ::-1, ::-1]
    if k == 3:
        return x.swapaxes(-1, -2)[..., ::-1]
    return x


def turn(element: Element, x: np.ndarray) -> np.ndarray:
    """The flip, then the quarter turns of ``element`` (one without a shift or an interpolated angle),
    as a view of ``x``."""
    return rotate_exact(x[..., ::-1] if element.flip else x, element.quarter_turns)


def rotate_interpolated(x: np.ndarray, angle: float, order: int = 3) -> np.ndarray:
    """Rotation by any angle about ``((H-1)/2, (W-1)/2)``, same sign as ``rot90``; computed in float64."""
    from scipy import ndimage  # spline interpolation done right; imported only when needed

    degrees = math.degrees(angle)
    work = np.asarray(x, dtype=np.float64)
    rotated = ndimage.rotate(work, degrees, axes=(-2, -1), reshape=False, order=order, mode="constant")
    return rotated.astype(x.dtype, copy=False)


def shift_zero_fill(x: np.ndarray, offsets: tuple[int, ...]) -> np.ndarray:
    """Like ``np.roll`` on the last ``len(offsets)`` axes, but what leaves the grid is dropped and zeros
    come in."""
    out = np.zeros_like(x)
    source, target = [], []
    for size, t in zip(x.shape[-len(offsets):], offsets):
        source.append(slice(0, size - t) if t >= 0 else slice(-t, size))
        target.append(slice(t, size) if t >= 0 else slice(0, size + t))
    out[(..., *target)] = x[(..., *source)]
    return out


def apply_spatial(
    element: Element,
    x: np.ndarray,
    *,
    stride: int = 1,
    zero_fill: bool = False,
    order: int = 3,
) -> np.ndarray:
    """Flip, then rotate the last two axes of ``x``, then shift its last ``len(element.shift)`` axes.

    ``stride`` is how many input pixels one pixel of ``x`` spans: a shift of the input by ``t`` moves a
    feature map of total stride S by ``t / S`` (the testing shifts are multiples of S).
    """
    if x.ndim < 2:
        return x
    if element.quarter_turns is None:
        x = rotate_interpolated(x[..., ::-1] if element.flip else x, element.angle, order)
    else:
        x = turn(element, x)
    offsets = tuple(s // stride for s in element.shift)
    if any(offsets) and x.ndim >= len(offsets):
        axes = tuple(range(-len(offsets), 0))
        x = shift_zero_fill(x, offsets) if zero_fill else np.roll(x, offsets, axis=axes)
    return np.ascontiguousarray(x)


def central_disk(height: int, width: int, fraction: float = DISK_RADIUS_FRACTION) -> np.ndarray:
    """Boolean mask of the disk of radius ``fraction * min(H, W)`` about the grid centre."""
    yy, xx = np.mgrid[0:height, 0:width]
    radius = fraction * min(height, width)
    return (yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2 <= radius**2


def soft_disk_window(height: int, width: int) -> np.ndarray:
    """1 inside the comparison disk, falling smoothly to 0 before the inscribed circle.

    Inputs multiplied by it lose nothing when rotated, so an interpolated rotation moves content
    without cutting corners.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.sqrt((yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2) / (min(height, width) / 2)
    inner, outer = 2 * DISK_RADIUS_FRACTION + 0.05, 0.98
    t = np.clip((r - inner) / (outer - inner), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * t))


def interior_mask(sizes: tuple[int, ...], margin: int, shift: tuple[int, ...]) -> np.ndarray:
    """Pixels where a zero-fill shift by ``shift`` commutes with a zero-padded model of reach ``margin``
    (over the last ``len(sizes)`` axes).

    Shifting by t > 0 along an axis zero-fills the first t pixels (which hidden layers with biases do
    not treat as padding) and drops content at the far end: ``margin`` pixels beside both are
    disturbed. An axis that is not shifted loses nothing.
    """
    def valid(size: int, t: int) -> slice:
        if t > 0:
            return slice(t + margin, size - margin)
        if t < 0:
            return slice(margin, size + t - margin)
        return slice(0, size)

    mask = np.zeros(sizes, dtype=bool)
    mask[tuple(valid(size, t) for size, t in zip(sizes, shift))] = True
    return mask
