"""Filter banks of plane-group convolutions: transformed copies of a filter, derived from the group law."""
from __future__ import annotations

import torch
from torch import Tensor

from eqcheck.groups.point import PointElement, PointGroup


def spatial_transform(tensor: Tensor, element: PointElement) -> Tensor:
    """The spatial action of a C4/D4 element on the last two axes: ``rot90(flip_W(t) if f else t, k)``."""
    if element.n != 4:
        raise ValueError(f"only 90-degree rotations act exactly on a grid, got C{element.n}/D{element.n}")
    if element.flip:
        tensor = torch.flip(tensor, dims=(-1,))
    return torch.rot90(tensor, element.rot, dims=(-2, -1))


def transform_filter(weight: Tensor, group: PointGroup, element: PointElement, lifting: bool) -> Tensor:
    """One transformed copy of a filter bank, the reference (slow) form of the expansion.

    ``weight`` is ``[..., k, k]`` for a lifting layer and ``[..., |H|, k, k]`` for a group layer.
    A group layer's input-orientation axis is permuted by the regular representation of the
    element (``new[i] = old[perm[i]]``), so that for C4 it rolls by +k (GrouPy's ``roll(rot90(w, r), r)``).
    """
    moved = spatial_transform(weight, element)
    if lifting:
        return moved
    permutation = torch.as_tensor(group.regular_permutation(element), device=weight.device)
    return moved.index_select(-3, permutation)


def filter_index_table(group: PointGroup, kernel_size: int, lifting: bool) -> Tensor:
    """Index table ``[|H|, n_in, k, k]`` into a flattened filter ``[n_in * k * k]``.

    Entry ``[h, i, y, x]`` says which entry of the untransformed filter lands at input orientation
    ``i`` and position ``(y, x)`` of the copy for output orientation ``h``. It is obtained by applying
    :func:`transform_filter` to the indices themselves, so it is never typed by hand.
    """
    in_orientations = 1 if lifting else group.order
    positions = torch.arange(in_orientations * kernel_size * kernel_size, dtype=torch.int64)
    shape = (kernel_size, kernel_size) if lifting else (in_orientations, kernel_size, kernel_size)
    positions = positions.reshape(shape)
    copies = [transform_filter(positions, group, element, lifting) for element in group.elements]
    return torch.stack(copies).reshape(group.order, in_orientations, kernel_size, kernel_size)


def expand_filter_bank(weight: Tensor, index_table: Tensor) -> Tensor:
    """All transformed copies of ``weight`` in one gather, laid out for a single ``F.conv2d``.

    ``weight`` is ``[C_out, C_in, k, k]`` (lifting) or ``[C_out, C_in, |H|, k, k]``; ``index_table``
    comes from :func:`filter_index_table`. Returns ``[C_out * |H|, C_in * n_in, k, k]`` with output
    channel ``field * |H| + h`` and input channel ``field * n_in + i`` (CONVENTIONS section 2).
    """
    order, in_orientations, kernel_h, kernel_w = index_table.shape
    out_channels, in_channels = weight.shape[0], weight.shape[1]
    flat = weight.reshape(out_channels, in_channels, in_orientations * kernel_h * kernel_w)
    gathered = flat.index_select(2, index_table.reshape(-1))
    gathered = gathered.reshape(out_channels, in_channels, order, in_orientations, kernel_h, kernel_w)
    return gathered.transpose(1, 2).reshape(out_channels * order, in_channels * in_orientations, kernel_h, kernel_w)
