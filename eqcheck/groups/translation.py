"""2-D translations: circular shifts (exact for circular padding) or zero-fill shifts seen in the interior."""
from __future__ import annotations

from dataclasses import dataclass

from eqcheck.groups.base import Group, SamplingContext
from eqcheck.groups.element import Element
from eqcheck.groups.rotation import element_label

MODES = ("circular", "interior")


@dataclass(frozen=True)
class TranslationGroup(Group):
    """Integer shifts (dy, dx). ``interior`` compares only pixels at least ``margin`` from every edge."""

    mode: str = "circular"
    margin: int | None = None

    name = "translation"
    spatial = True

    @property
    def summary(self) -> str:  # type: ignore[override]
        if self.mode == "circular":
            return "2-D circular shifts (exact for circular padding)"
        return "2-D zero-fill shifts compared away from the border (margin given or probed)"

    @property
    def spec(self) -> str:
        parts = ["translation"]
        if self.mode != "circular":
            parts.append(self.mode)
        if self.margin is not None:
            parts.append(f"margin={self.margin}")
        return ":".join(parts)

    def shift(self, dy: int, dx: int) -> Element:
        return Element(label=element_label(0.0, False, (dy, dx)), shift=(int(dy), int(dx)))

    def testing_elements(self, ctx: SamplingContext) -> list[Element]:
        """Shifts up to a quarter of the image, multiples of the model's total stride."""
        size = min(ctx.spatial_size) if ctx.spatial_size else 8
        reach = max(size // 4 // ctx.stride, 1)
        elements = [self.identity()]
        seen = {(0, 0)}
        for _ in range(ctx.samples * 4):
            if len(elements) > ctx.samples:
                break
            dy, dx = (int(v) * ctx.stride for v in ctx.rng.integers(-reach, reach + 1, 2))
            if (dy, dx) not in seen:
                seen.add((dy, dx))
                elements.append(self.shift(dy, dx))
        return elements

    def compose(self, a: Element, b: Element) -> Element:
        return self.shift(a.shift[0] + b.shift[0], a.shift[1] + b.shift[1])

    def inverse(self, a: Element) -> Element:
        return self.shift(-a.shift[0], -a.shift[1])

    def identity(self, ctx: SamplingContext | None = None) -> Element:
        return self.shift(0, 0)
