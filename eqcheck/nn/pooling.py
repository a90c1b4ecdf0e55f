"""Pooling over the group axis, over space on group feature maps, and global spatial pooling."""
from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

REDUCTIONS = ("max", "mean")


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r} ({', '.join(REDUCTIONS)})")
    return reduction


class GroupPool(nn.Module):
    """``[B, C, |H|, H, W] -> [B, C, H, W]``: max or mean over the group axis, invariant to the point group."""

    eqcheck_group: ClassVar[str | None] = None
    eqcheck_input_type: ClassVar[str] = "regular"
    eqcheck_output_type: ClassVar[str] = "image"

    def __init__(self, reduction: str = "max") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"GroupPool expects [B, C, |H|, H, W], got {tuple(x.shape)}")
        if self.reduction == "max":
            return x.amax(dim=2)
        return x.mean(dim=2)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class GroupSpatialMaxPool(nn.Module):
    """Spatial max pooling of a group feature map, each orientation channel on its own (GrouPy's plane pooling).

    Exact for p4/p4m only when ``(N + 2 * padding - kernel_size) % stride == 0`` (CONVENTIONS section 5).
    """

    eqcheck_group: ClassVar[str | None] = None
    eqcheck_input_type: ClassVar[str] = "regular"
    eqcheck_output_type: ClassVar[str] = "regular"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"GroupSpatialMaxPool expects [B, C, |H|, H, W], got {tuple(x.shape)}")
        kernel = (1, self.kernel_size, self.kernel_size)
        stride = (1, self.stride, self.stride)
        padding = (0, self.padding, self.padding)
        return F.max_pool3d(x, kernel, stride, padding)  # one MaxPool node, the group axis untouched

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class SpatialPool(nn.Module):
    """``[B, C, H, W] -> [B, C]``: max or mean over space, invariant to any point group acting on the plane."""

    eqcheck_group: ClassVar[str | None] = None
    eqcheck_input_type: ClassVar[str] = "image"
    eqcheck_output_type: ClassVar[str] = "invariant"

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"SpatialPool expects [B, C, H, W], got {tuple(x.shape)}")
        if self.reduction == "max":
            return x.amax(dim=(-2, -1))
        return x.mean(dim=(-2, -1))

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
