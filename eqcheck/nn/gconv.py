"""Plane-group convolutions for p4 and p4m (GrouPy names, escnn element order)."""
from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eqcheck.groups.point import PointGroup
from eqcheck.nn.filters import expand_filter_bank, filter_index_table

C4 = PointGroup(4)
D4 = PointGroup(4, mirrors=True)


class PlaneGroupConv(nn.Module):
    """Base of the plane-group convolutions: one filter per field, expanded once per forward pass.

    Input ``[B, C_in, H, W]`` (lifting) or ``[B, C_in, |H|, H, W]``; output ``[B, C_out, |H|, H', W']``
    where orientation ``h`` of the output uses the filter transformed by the group element ``h``.
    """

    point_group: ClassVar[PointGroup]
    lifting: ClassVar[bool]
    eqcheck_group: ClassVar[str]
    eqcheck_input_type: ClassVar[str]
    eqcheck_output_type: ClassVar[str] = "regular"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1 or padding < 0:
            raise ValueError(f"invalid kernel_size={kernel_size}, stride={stride}, padding={padding}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.in_orientations = 1 if self.lifting else self.point_group.order
        filter_shape = (out_channels, in_channels) + (() if self.lifting else (self.in_orientations,))
        self.weight = nn.Parameter(torch.empty(filter_shape + (kernel_size, kernel_size)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        index_table = filter_index_table(self.point_group, kernel_size, self.lifting)
        self.register_buffer("filter_index", index_table, persistent=False)
        bias_index = torch.arange(out_channels).repeat_interleave(self.point_group.order)
        self.register_buffer("bias_index", bias_index, persistent=False)
        self.reset_parameters()

    @property
    def fan_in(self) -> int:
        """Inputs seen by one output value: ``C_in * |H_in| * k * k``."""
        return self.in_channels * self.in_orientations * self.kernel_size * self.kernel_size

    def reset_parameters(self) -> None:
        """He-normal weights for the fan-in over the group axis; bias uniform in ``+-1/sqrt(fan_in)``."""
        nn.init.normal_(self.weight, mean=0.0, std=math.sqrt(2.0 / self.fan_in))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def expanded_weight(self) -> Tensor:
        """The stacked filter bank ``[C_out * |H|, C_in * |H_in|, k, k]``."""
        return expand_filter_bank(self.weight, self.filter_index)

    def expanded_bias(self) -> Tensor | None:
        """One bias per field, repeated over the group axis."""
        if self.bias is None:
            return None
        return self.bias.index_select(0, self.bias_index)

    def forward(self, x: Tensor) -> Tensor:
        expected_dim = 4 if self.lifting else 5
        if x.dim() != expected_dim:
            raise ValueError(f"{type(self).__name__} expects a {expected_dim}-D input, got {tuple(x.shape)}")
        if not self.lifting:
            x = x.flatten(1, 2)
        out = F.conv2d(x, self.expanded_weight(), self.expanded_bias(), self.stride, self.padding)
        # a view (batch -1, the image size read with size(i): both stay dynamic in an export), not
        # unflatten: a traced TorchScript of it exports to ONNX (unflatten's exporter needs a rank that a
        # loaded TorchScript graph does not carry)
        return out.view(-1, self.out_channels, self.point_group.order, out.size(2), out.size(3))

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != 1:
            text += f", stride={self.stride}"
        if self.padding:
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class P4ConvZ2(PlaneGroupConv):
    """Lifting convolution Z2 -> p4: orientation j uses ``rot90(w, j)``."""

    point_group = C4
    lifting = True
    eqcheck_group = "p4"
    eqcheck_input_type = "image"


class P4ConvP4(PlaneGroupConv):
    """Group convolution p4 -> p4: orientation r uses ``roll(rot90(w, r), r, axis=in_orientation)``."""

    point_group = C4
    lifting = False
    eqcheck_group = "p4"
    eqcheck_input_type = "regular"


class P4MConvZ2(PlaneGroupConv):
    """Lifting convolution Z2 -> p4m: element ``r^k f`` (index 4f + k) uses ``rot90(flip_W(w) if f else w, k)``."""

    point_group = D4
    lifting = True
    eqcheck_group = "p4m"
    eqcheck_input_type = "image"


class P4MConvP4M(PlaneGroupConv):
    """Group convolution p4m -> p4m: spatial part as in P4MConvZ2, input orientations by the regular permutation."""

    point_group = D4
    lifting = False
    eqcheck_group = "p4m"
    eqcheck_input_type = "regular"
