"""Inline SVG for the HTML report: the per-layer error chart (log scale) and the layer heat map."""
from __future__ import annotations

import math
from dataclasses import dataclass
from eqcheck.report.inert import html_text as escape
from eqcheck.report.text import fmt
from eqcheck.result import LayerResult, VerificationResult

WIDTH = 1120
LEFT = 120  # decade labels of the chart, row labels of the heat map: both share the layer columns
RIGHT = 24
CUMULATIVE, LOCAL, FAIL, BLOCK, INK, GRID = "#2b5797", "#e08a1e", "#c62828", "#9aa1a9", "#3c4148", "#e4e7eb"
SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def decade(exponent: int) -> str:
    """``10⁻⁷``."""
    return "10" + str(exponent).translate(SUPERSCRIPT)


def _bad(value: float | None) -> bool:
    """NaN or infinite: drawn at the top of the scale (JSON turns them into null, which reads as missing)."""
    return value is not None and not math.isfinite(value)


@dataclass(frozen=True)
class LogScale:
    """Decades ``lo`` to ``hi``; 0 and values below sit on the floor, NaN and infinity on the ceiling."""

    lo: int
    hi: int

    @staticmethod
    def around(values: list[float | None], tolerance: float, span: int = 14) -> "LogScale":
        positive = [v for v in values if v is not None and math.isfinite(v) and v > 0] + [tolerance]
        hi = max(math.ceil(math.log10(max(positive))), math.floor(math.log10(tolerance)) + 1)
        lo = min(math.floor(math.log10(min(positive))), math.floor(math.log10(tolerance)) - 1)
        return LogScale(max(lo, hi - span), hi)

    def fraction(self, value: float) -> float:
        if not math.isfinite(value):
            return 1.0
        if value <= 0:
            return 0.0
        return min(max((math.log10(value) - self.lo) / (self.hi - self.lo), 0.0), 1.0)


@dataclass(frozen=True)
class Columns:
    """One column per layer, shared by the chart and the heat map so that they line up."""

    count: int

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.count, 1)

    def x(self, index: int) -> float:
        return LEFT + (index + 0.5) * self.step

    def every(self, room: float) -> int:
        """Label every n-th column so that labels ``room`` px apart do not overlap."""
        return max(1, math.ceil(room / self.step))


def heat_color(value: float | None, tolerance: float) -> str:
    """Pale green far below the tolerance, green up to it, amber just above, dark red five decades above."""
    if value is None:
        return "#eceff1"
    if not math.isfinite(value):
        return "#3d0a0a"
    t = 0.0 if value <= 0 else min(max((math.log10(value) - math.log10(tolerance) + 5) / 10, 0.0), 1.0)
    stops = [(0.0, (244, 249, 244)), (0.5, (150, 205, 145))] if t <= 0.5 else \
        [(0.5, (255, 209, 102)), (0.75, (240, 128, 80)), (1.0, (150, 25, 25))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            w = (t - t0) / (t1 - t0)
            return "#" + "".join(f"{round(a + (b - a) * w):02x}" for a, b in zip(c0, c1))
    return "#961919"


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "\u2026" + name[-(width - 1):]


def _tip(layer: LayerResult, index: int) -> str:
    return escape(f"#{index + 1} {layer.name} ({layer.op}) {layer.representation}: cumulative "
                  f"{fmt(layer.max_rel_error)}, local {fmt(layer.local_rel_error)}")


def _first_index(result: VerificationResult) -> int | None:
    names = [layer.name for layer in result.layers]
    return names.index(result.first_failing_layer) if result.first_failing_layer in names else None


def _series(points: list[tuple[float, float | None, bool]], color: str, dash: str = "") -> list[str]:
    """Polylines through the plottable points, broken where a point is missing, inside a block, or NaN or
    infinite (those have a marker of their own, in a band above the decades)."""
    runs, current = [], []
    for x, y, keep in points:
        if y is None or not keep:
            runs.append(current)
            current = []
        else:
            current.append(f"{_num(x)},{_num(y)}")
    runs.append(current)
    style = f' stroke-dasharray="{dash}"' if dash else ""
    return [f'<polyline class="series" points="{" ".join(run)}" fill="none" stroke="{color}" '
            f'stroke-width="2"{style}/>' for run in runs if len(run) > 1]


def layer_chart(result: VerificationResult) -> str:
    """Cumulative and local error per layer on a log scale, the tolerance line, the first failing layer."""
    layers, columns = result.layers, Columns(len(result.layers))
    top, plot, bottom = 40, 260, 34
    height = top + plot + bottom
    values = [v for layer in layers for v in (layer.max_rel_error, layer.local_rel_error) if v is not None]
    scale = LogScale.around(values, result.tolerance)
    zeros, bad = any(v == 0 for v in values), any(_bad(v) for v in values)
    low, high = top + plot - 26 * zeros, top + 26 * bad  # a band of its own for 0, and for NaN/inf

    def y(value: float | None) -> float | None:
        if value is None:
            return None
        if value == 0 and zeros:
            return top + plot - 6
        if _bad(value):
            return top + 6
        return high + (low - high) * (1 - scale.fraction(value))

    out = [f'<svg id="layer-chart" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="error per layer, log scale">']
    first = _first_index(result)
    if first is not None:
        x0 = columns.x(first) - columns.step / 2
        out.append(f'<rect class="first-failing" x="{_num(x0)}" y="{top}" width="{_num(columns.step)}" '
                   f'height="{plot}" fill="{FAIL}" fill-opacity="0.10"/>')
    stride = 1 if scale.hi - scale.lo <= 10 else 2
    for exponent in range(scale.lo, scale.hi + 1, stride):
        gy = _num(y(10.0 ** exponent))
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy}" y2="{gy}" stroke="{GRID}"/>'
                   f'<text x="{LEFT - 8}" y="{gy}" dy="4" text-anchor="end" class="tick">{decade(exponent)}</text>')
    for flag, band, label in ((zeros, top + plot - 6, "0"), (bad, top + 6, "nan/inf")):
        if flag:
            out.append(f'<text x="{LEFT - 8}" y="{band}" dy="4" text-anchor="end" class="tick">{label}</text>')
    out.append(f'<text class="axis" transform="translate(18 {top + plot / 2}) rotate(-90)" text-anchor="middle">'
               f'relative error</text>')
    every = columns.every(26)
    for index in range(0, len(layers), every):
        out.append(f'<text x="{_num(columns.x(index))}" y="{top + plot + 16}" text-anchor="middle" '
                   f'class="tick">{index + 1}</text>')
    out.append(f'<text x="{WIDTH - RIGHT}" y="{height - 2}" text-anchor="end" class="axis">'
               f'layer, in execution order</text>')
    ty = _num(y(result.tolerance))
    out.append(f'<line class="tolerance" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}" stroke="{FAIL}" '
               f'stroke-width="1.5" stroke-dasharray="6 4"/>'
               f'<text x="{WIDTH - RIGHT - 4}" y="{ty}" dy="-5" text-anchor="end" class="label" fill="{FAIL}">'
               f'tolerance {fmt(result.tolerance)}</text>')
    kept = [layer.representation_source != "block" for layer in layers]
    xs = [columns.x(i) for i in range(len(layers))]
    out += _series([(x, y(layer.max_rel_error), k and not _bad(layer.max_rel_error))
                    for x, layer, k in zip(xs, layers, kept)], CUMULATIVE)
    # local errors are one measurement per layer, not a curve: markers only (each layer on its own input)
    radius = 3.5 if columns.step >= 8 else 2
    for index, (x, layer) in enumerate(zip(xs, layers)):
        tip = f"<title>{_tip(layer, index)}</title>"
        block = layer.representation_source == "block"
        cy = y(layer.max_rel_error)
        if cy is not None:
            fill = "#fff" if block else (FAIL if _bad(layer.max_rel_error) else CUMULATIVE)
            out.append(f'<circle class="point" cx="{_num(x)}" cy="{_num(cy)}" r="{radius}" fill="{fill}" '
                       f'stroke="{BLOCK if block else fill}" stroke-width="1.5">{tip}</circle>')
        ly = y(layer.local_rel_error)
        if ly is not None and not block:
            failing = not layer.passed
            size = radius * (1.8 if failing else 1.0)
            color = FAIL if failing else LOCAL
            out.append(f'<rect class="point local" x="{_num(x - size)}" y="{_num(ly - size)}" '
                       f'width="{_num(2 * size)}" height="{_num(2 * size)}" fill="{color}" '
                       f'transform="rotate(45 {_num(x)} {_num(ly)})">{tip}</rect>')
    if first is not None:
        fx = columns.x(first)
        anchor, dx = ("end", -8) if fx > WIDTH / 2 else ("start", 8)
        out.append(f'<line x1="{_num(fx)}" x2="{_num(fx)}" y1="{top - 6}" y2="{top + plot}" stroke="{FAIL}" '
                   f'stroke-width="1.5"/><text class="label first-label" x="{_num(fx + dx)}" y="{top + 10}" '
                   f'text-anchor="{anchor}" fill="{FAIL}">first failing: {escape(_short(layers[first].name, 48))}'
                   f'</text>')
    out.append(_legend(any(not k for k in kept)))
    out.append("</svg>")
    return "\n".join(out)


def _legend(blocks: bool) -> str:
    items = [(f'<line x1="0" x2="22" y1="0" y2="0" stroke="{CUMULATIVE}" stroke-width="2"/>'
              f'<circle cx="11" cy="0" r="3.5" fill="{CUMULATIVE}"/>', "cumulative: error of the layer's output"),
             (f'<line x1="0" x2="22" y1="0" y2="0" stroke="{LOCAL}" stroke-width="2" stroke-dasharray="5 3"/>'
              f'<rect x="8" y="-3" width="6" height="6" fill="{LOCAL}" transform="rotate(45 11 0)"/>',
              "local: the layer on an exact input"),
             (f'<rect x="8" y="-4" width="8" height="8" fill="{FAIL}" transform="rotate(45 12 0)"/>',
              "layer that makes an error")]
    if blocks:
        items.append((f'<circle cx="11" cy="0" r="3.5" fill="#fff" stroke="{BLOCK}" stroke-width="1.5"/>',
                      "inside an equivariant block"))
    out, x = ['<g class="legend" transform="translate(0 16)">'], LEFT
    for mark, label in items:
        out.append(f'<g transform="translate({x} 0)">{mark}<text x="30" y="4" class="tick">{escape(label)}</text></g>')
        x += 44 + 6.3 * len(label)
    out.append("</g>")
    return "".join(out)


def layer_elements(result: VerificationResult) -> list[tuple[str, float]]:
    """Names and tolerances of the elements behind ``LayerResult.element_errors`` (() when none recorded)."""
    count = max((len(layer.element_errors) for layer in result.layers), default=0)
    if not count:
        return []
    elements = result.output.elements
    if len(elements) != count:
        elements = tuple(e for e in elements if e.exact)
    if len(elements) != count:
        return [(f"element {i + 1}", result.tolerance) for i in range(count)]
    return [(e.element, result.tolerance if e.exact else result.approximate_tolerance) for e in elements]


def heat_map(result: VerificationResult) -> str:
    """Layers (columns, as in the chart) by elements, or by cumulative and local error when the result
    holds no per-element layer errors; each cell coloured by its error against the tolerance."""
    layers, columns = result.layers, Columns(len(result.layers))
    elements = layer_elements(result)
    rows: list[tuple[str, float, list[float | None]]] = [
        (name, tol, [layer.element_errors[i] if i < len(layer.element_errors) else None for layer in layers])
        for i, (name, tol) in enumerate(elements)]
    if not rows:
        rows.append(("cumulative", result.tolerance, [layer.max_rel_error for layer in layers]))
    rows.append(("local", result.tolerance, [layer.local_rel_error for layer in layers]))
    longest = max((len(_short(layer.name)) for layer in layers), default=0)
    top, row_height, label_room = 40, 22, 16 + round(0.72 * 7 * longest)
    height = top + row_height * len(rows) + label_room
    out = [f'<svg id="layer-heatmap" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="error per layer and element">',
           _heat_legend(result, any(layer.representation_source == "block" for layer in layers))]
    first = _first_index(result)
    for r, (name, tol, values) in enumerate(rows):
        ry = top + r * row_height
        out.append(f'<text x="{LEFT - 8}" y="{ry + row_height / 2}" dy="4" text-anchor="end" class="tick">'
                   f'{escape(_short(name, 16))}</text>')
        for index, (layer, value) in enumerate(zip(layers, values)):
            block = layer.representation_source == "block"
            color = "#e3e6ea" if block else heat_color(value, tol)
            note = " (inside an equivariant block)" if block else ""
            out.append(f'<rect class="cell" x="{_num(LEFT + index * columns.step)}" y="{ry}" '
                       f'width="{_num(columns.step)}" height="{row_height}" fill="{color}" stroke="#fff">'
                       f'<title>{escape(f"{layer.name} · {name}: {fmt(value)}{note}")}</title></rect>')
    bottom = top + row_height * len(rows)
    if first is not None:
        out.append(f'<rect class="first-failing" x="{_num(LEFT + first * columns.step)}" y="{top - 3}" '
                   f'width="{_num(columns.step)}" height="{bottom - top + 6}" fill="none" stroke="{FAIL}" '
                   f'stroke-width="2"/>')
    every = columns.every(17)
    for index in range(len(layers)):
        if index % every and index != first:
            continue
        cls = "tick first-label" if index == first else "tick"
        out.append(f'<text class="{cls}" text-anchor="end" transform="translate({_num(columns.x(index) + 4)} '
                   f'{bottom + 10}) rotate(-45)">{escape(_short(layers[index].name))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _heat_legend(result: VerificationResult, blocks: bool) -> str:
    """The colour scale: five decades either side of the tolerance."""
    tol, width, x0 = result.tolerance, 240, WIDTH - RIGHT - 280
    stops = "".join(f'<rect x="{x0 + i * width / 40:.0f}" y="8" width="{width / 40 + 0.6:.1f}" height="10" '
                    f'fill="{heat_color(10 ** (math.log10(tol) - 5 + i * 10 / 39), tol)}"/>' for i in range(40))
    lo, hi = math.floor(math.log10(tol)) - 5, math.floor(math.log10(tol)) + 5
    return (f'<g class="legend">{stops}'
            f'<text x="{x0 - 6}" y="17" text-anchor="end" class="tick">\u2264{decade(lo)}</text>'
            f'<text x="{x0 + width + 4}" y="17" class="tick">\u2265{decade(hi)}</text>'
            f'<line x1="{x0 + width / 2}" x2="{x0 + width / 2}" y1="5" y2="21" stroke="{INK}"/>'
            f'<text x="{x0 + width / 2}" y="32" text-anchor="middle" class="tick">tolerance</text>'
            + (f'<rect x="{LEFT}" y="8" width="10" height="10" fill="#e3e6ea"/>'
               f'<text x="{LEFT + 16}" y="17" class="tick">inside an equivariant block: no action of its own</text>'
               if blocks else "") + '</g>')
