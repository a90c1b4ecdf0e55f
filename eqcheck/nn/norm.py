"""Batch normalisation of group feature maps with statistics shared over the group axis."""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class GroupBatchNorm(nn.BatchNorm3d):
    """BatchNorm on ``[B, C, |H|, H, W]``: one mean, variance, weight and bias per field.

    Statistics run over batch, group axis and space, so the layer commutes with any permutation of
    the group axis and any spatial transform: it is equivariant for every point group.
    """

    eqcheck_group: ClassVar[str | None] = None
    eqcheck_input_type: ClassVar[str] = "regular"
    eqcheck_output_type: ClassVar[str] = "regular"

    def __init__(
        self,
        num_fields: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(num_fields, eps, momentum, affine, track_running_stats)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 5:
            raise ValueError(f"GroupBatchNorm expects [B, C, |H|, H, W], got {tuple(input.shape)}")
