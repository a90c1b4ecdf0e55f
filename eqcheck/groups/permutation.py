"""Permutations of a set axis (and of both node axes of a graph adjacency)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element


@dataclass(frozen=True)
class PermutationGroup(Group):
    """S_N acting on axis ``axis`` (default 1 of ``[B, N, D]``): ``x.index_select(axis, p)``."""

    axis: int = 1

    name = "perm"
    permutes_sets = True

    @property
    def set_axis(self) -> int:  # type: ignore[override]
        return self.axis
    summary = "permutations of a set axis (default axis 1 of [B, N, D]); graphs on both node axes"

    @property
    def spec(self) -> str:
        return "perm" if self.axis == 1 else f"perm:axis={self.axis}"

    def permutation(self, perm, index: int | None = None) -> Element:
        perm = tuple(int(i) for i in perm)
        identity = all(i == p for i, p in enumerate(perm))
        label = "e" if identity else (f"perm{index}" if index is not None else "perm")
        return Element(label=label, permutation=perm)

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        if ctx.set_size is None:
            raise ValueError("the set size must be known to sample permutations")
        n = ctx.set_size
        elements = [self.identity(ctx)]
        if n < 2:
            return elements
        # a single transposition first: the smallest change a position-aware model notices
        swap = list(range(n))
        swap[0], swap[1] = 1, 0
        elements.append(self.permutation(swap, 1))
        for i in range(2, ctx.samples + 1):
            elements.append(self.permutation(ctx.rng.permutation(n), i))
        return elements

    def compose(self, a: Element, b: Element) -> Element:
        # act(a, act(b, x)) = x[:, b][:, a] = x[:, b[a]]
        return self.permutation(np.asarray(b.permutation)[np.asarray(a.permutation)])

    def inverse(self, a: Element) -> Element:
        return self.permutation(np.argsort(np.asarray(a.permutation)))

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        n = ctx.set_size if ctx and ctx.set_size else 0
        return self.permutation(range(n))
