"""Translations of a signal, an image or a voxel grid: circular shifts (exact for circular padding) or
zero-fill shifts seen in the interior."""
from __future__ import annotations

from dataclasses import dataclass

from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element
from eqcheck.groups.rotation import element_label

MODES = ("circular", "interior")


@dataclass(frozen=True)
class TranslationGroup(Group):
    """Integer shifts of the last 1, 2 or 3 axes (``[B, C, L]``, ``[B, C, H, W]``, ``[B, C, D, H, W]``).
    ``interior`` compares only pixels at least ``margin`` from every edge."""

    mode: str = "circular"
    margin: int | None = None

    name = "translation"
    spatial = True
    translates = True

    @property
    def zero_fill(self) -> bool:  # type: ignore[override]
        return self.mode == "interior"

    @property
    def summary(self) -> str:  # type: ignore[override]
        if self.mode == "circular":
            return "circular shifts of signals, images and voxel grids (exact for circular padding)"
        return "zero-fill shifts compared away from the border (margin given or probed)"

    @property
    def spec(self) -> str:
        parts = ["translation"]
        if self.mode != "circular":
            parts.append(self.mode)
        if self.margin is not None:
            parts.append(f"margin={self.margin}")
        return ":".join(parts)

    def spatial_rank(self, ndim: int) -> int:
        """The axes after batch and channels: 1 for ``[B, C, L]`` (and ``[B, L]``), 2 for images, 3 for voxels."""
        return min(max(ndim - 2, 1), 3)

    def shift(self, *offsets: int) -> Element:
        offsets = tuple(int(v) for v in offsets)
        return Element(label=element_label(0.0, False, offsets), shift=offsets)

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        """Shifts up to a quarter of the size on every moved axis, multiples of the model's total stride."""
        sizes = ctx.spatial_size or (8, 8)
        reach = max(min(sizes) // 4 // ctx.stride, 1)
        identity = self.shift(*(0,) * len(sizes))
        elements = [identity]
        seen = {identity.shift}
        for _ in range(ctx.samples * 4):
            if len(elements) > ctx.samples:
                break
            offsets = tuple(int(v) * ctx.stride for v in ctx.rng.integers(-reach, reach + 1, len(sizes)))
            if offsets not in seen:
                seen.add(offsets)
                elements.append(self.shift(*offsets))
        return elements

    def compose(self, a: Element, b: Element) -> Element:
        return self.shift(*(x + y for x, y in zip(a.shift, b.shift)))

    def inverse(self, a: Element) -> Element:
        return self.shift(*(-x for x in a.shift))

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        return self.shift(*(0,) * (len(ctx.spatial_size) if ctx and ctx.spatial_size else 2))
