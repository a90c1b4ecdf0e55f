"""Deep Sets layers (Zaheer et al. 2017): permutation-equivariant and -invariant maps on set axis 1."""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

SET_REDUCTIONS = ("sum", "mean", "max")


def pool_set(x: Tensor, reduction: str, keepdim: bool = False) -> Tensor:
    """Sum, mean or max over the set axis 1 of ``[B, N, D]``."""
    if reduction == "sum":
        return x.sum(dim=1, keepdim=keepdim)
    if reduction == "mean":
        return x.mean(dim=1, keepdim=keepdim)
    if reduction == "max":
        return x.amax(dim=1, keepdim=keepdim)
    raise ValueError(f"unknown set reduction {reduction!r} ({', '.join(SET_REDUCTIONS)})")


class DeepSetsLayer(nn.Module):
    """``[B, N, D_in] -> [B, N, D_out]``: ``x @ Lambda + pool(x) @ Gamma + bias``, equivariant on axis 1."""

    eqcheck_group: ClassVar[str] = "perm"
    eqcheck_input_type: ClassVar[str] = "set"
    eqcheck_output_type: ClassVar[str] = "set"

    def __init__(self, in_features: int, out_features: int, pool: str = "sum", bias: bool = True) -> None:
        super().__init__()
        if pool not in SET_REDUCTIONS:
            raise ValueError(f"unknown set reduction {pool!r} ({', '.join(SET_REDUCTIONS)})")
        self.in_features = in_features
        self.out_features = out_features
        self.pool = pool
        self.element_weight = nn.Parameter(torch.empty(in_features, out_features))  # Lambda
        self.pooled_weight = nn.Parameter(torch.empty(in_features, out_features))  # Gamma
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal Lambda and Gamma, each for half of the fan-in; bias uniform in ``+-1/sqrt(D_in)``."""
        std = math.sqrt(1.0 / self.in_features)
        nn.init.normal_(self.element_weight, 0.0, std)
        nn.init.normal_(self.pooled_weight, 0.0, std)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"DeepSetsLayer expects [B, N, D], got {tuple(x.shape)}")
        out = x @ self.element_weight + pool_set(x, self.pool, keepdim=True) @ self.pooled_weight
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, pool={self.pool!r}, bias={self.bias is not None}"


class SetPool(nn.Module):
    """``[B, N, D] -> [B, D]``: sum, mean or max over the set axis, invariant to permutations."""

    eqcheck_group: ClassVar[str] = "perm"
    eqcheck_input_type: ClassVar[str] = "set"
    eqcheck_output_type: ClassVar[str] = "invariant"

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        if reduction not in SET_REDUCTIONS:
            raise ValueError(f"unknown set reduction {reduction!r} ({', '.join(SET_REDUCTIONS)})")
        self.reduction = reduction

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"SetPool expects [B, N, D], got {tuple(x.shape)}")
        return pool_set(x, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
