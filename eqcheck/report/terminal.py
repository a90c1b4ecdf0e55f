"""The terminal report (rich): header, one row per element, the layers, the verdict, the reasons; laid out
for the console's width (a compact layer table below ``COMPACT_BELOW`` columns): no name, shape or number
is cut or wrapped (a layer name too long for its column is shortened from the left, the first failing
layer's never), and the verdict and every reason wrap at words under a hanging indent."""
from __future__ import annotations

import re
import textwrap

from rich.console import Console
from rich.table import Table
from rich.text import Text

from eqcheck.metrics import worst
from eqcheck.report.inert import terminal_text as plain
from eqcheck.report.text import action_text, fmt, passes, verdict_line
from eqcheck.result import VerificationResult


def _header(result: VerificationResult) -> Table:
    run = result.run
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("model", plain(f"{run.model} ({run.model_format})"))
    grid.add_row("group", plain(run.group))
    for name, shape in run.inputs.items():
        grid.add_row("input", plain(f"{name} {list(shape)} as {run.input_actions.get(name, '?')} ({run.input_source})"))
    for output in result.outputs:
        chosen = {"auto": " (chosen automatically)",
                  "auto-default": " (no action explains it: the default for its shape)",
                  "found": " (found from the data: its channels' representation, named by its irreps)",
                  "layers": " (no action explains it: what its last layer computes from exact inputs)",
                  }.get(output.representation_source, "")
        grid.add_row("output", plain(f"{output.name} {list(output.shape)} as {output.representation}{chosen}"))
    grid.add_row("dtype", plain(f"{run.dtype} on {run.device}, seed {run.seed}, {passes(run.forward_passes)}"))
    grid.add_row("tolerance", f"{fmt(result.tolerance)} (exact elements), "
                              f"{fmt(result.approximate_tolerance)} (interpolated)")
    spreads = ", ".join(fmt(o.spread) for o in result.outputs)
    grid.add_row("spread", f"{spreads} (output change between unrelated inputs)")
    return grid


def _elements(result: VerificationResult, output) -> Table:
    """One row per element of one output (titled with the output's name where the model has several)."""
    elements = output.elements
    interpolated = any(not e.exact for e in elements)
    title = plain(f"output {output.name}", "bold") if len(result.outputs) > 1 else None
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    table.add_column("element", no_wrap=True, overflow="fold")
    table.add_column("rel error", justify="right", no_wrap=True)
    table.add_column("max abs", justify="right", no_wrap=True)
    table.add_column("rel/spread", justify="right", no_wrap=True)
    if interpolated:
        table.add_column("interp. floor", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for e in elements:
        status = Text("ok", style="green") if e.passed else Text("FAIL", style="bold red")
        if e.nonfinite:
            status = Text("NaN/Inf", style="bold red")
        row = [plain(e.element + ("" if e.exact else " ~")), fmt(e.rel_error), fmt(e.max_abs_error), fmt(e.spread_ratio)]
        if interpolated:
            row.append(fmt(e.interpolation_floor))
        table.add_row(*row, status)
    return table


#: the causes printed; the rest are counted (the first failing layer's come first)
MAX_CAUSES = 8
#: tables with more layers than this fold long runs of passing layers into one row (JSON and HTML keep all)
FOLD_ABOVE = 40
#: a run of passing layers is folded from this length on, keeping its first and last layer
FOLD_RUN = 6


def _layer_rows(result: VerificationResult) -> list:
    """The layers to print, a run of passing layers of a long table as ``(count, worst cumulative,
    worst local)`` between its first and last layer."""
    layers = list(result.layers)
    if len(layers) <= FOLD_ABOVE:
        return layers
    quiet = [layer.passed and layer.cumulative_passed and layer.name != result.first_failing_layer
             for layer in layers]
    rows, start = [], 0
    while start < len(layers):
        end = start
        while end < len(layers) and quiet[end]:
            end += 1
        if end - start >= FOLD_RUN:
            inner = layers[start + 1:end - 1]
            rows += [layers[start], (len(inner), worst(x.max_rel_error for x in inner),
                                     worst(x.local_rel_error or 0.0 for x in inner)), layers[end - 1]]
        else:
            rows += layers[start:end]
        if end < len(layers):
            rows.append(layers[end])
        start = end + 1
    return rows


#: the narrowest a layer name column gets (the first failing layer's name is never shortened)
MIN_NAME = 16
#: the action column is shown where it gets this many columns at least
MIN_ACTION = 10
#: columns between two columns of the layer table (a padding space and the box's divider), and 1 after
GAP = 2
#: what the marks of the layer table mean, printed under it for the marks it uses
LEGEND = {
    "(kept)": "(kept): no action explains the output; it is judged under its input's",
    "(found)": "(found): its channels' representation was found from the data",
    "(declared)": "(declared): the layer states its type",
    "(given)": "(given): set with --layer-type",
    "?": "?: a runner-up action came within a factor 10",
    "ok, block": "ok, block: fails alone, but the layers after it undo the error",
    "-": "-: not judged (no known action, or no local error separated)",
    "FAIL <- first": "FAIL <- first: the first layer that makes an error",
    "FAIL <-": "FAIL <-: the first layer that makes an error",
}


def _flag(result: VerificationResult, layer, short: bool) -> Text:
    if layer.name == result.first_failing_layer:
        return Text("FAIL <-" if short else "FAIL <- first", style="bold red")
    if not layer.passed:
        return Text("FAIL", style="red")
    if layer.representation_source == "block":
        return Text("ok, block", style="dim")
    if layer.representation_source == "undetermined":
        return Text("-", style="dim")  # no known action: the layer is not judged
    if layer.local_rel_error is None and not layer.cumulative_passed:
        return Text("-", style="dim")  # no local error separated: nothing to say about the layer itself
    return Text("ok", style="green" if layer.cumulative_passed else "dim")


def shorten_left(text: str, width: int) -> str:
    """``text`` whole where it fits, else its last ``width - 1`` characters after an ellipsis (the end of a
    layer's path is what tells it apart)."""
    return text if len(text) <= width else "\u2026" + text[len(text) - width + 1:]


def fit_right(text: str, width: int) -> str:
    """``text`` whole where it fits, else cut at the right with an ellipsis."""
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def _column_widths(result: VerificationResult, layers: list, width: int, fold: int = 0) -> dict[str, int]:
    """Each column's width for a table of ``width`` columns (one space between columns): the layer name
    (the first failing one whole), the shape, both errors and the mark always, whole; then the action and
    the op where they fit; the rest goes to the names."""
    text = {
        "shape": ["x".join(str(d) for d in layer.shape) for layer in layers],
        "action": [plain(action_text(layer)).plain for layer in layers],
        "op": [plain(layer.op).plain for layer in layers],
        "name": [plain(layer.name).plain for layer in layers],
    }
    widest = {k: max([len(v) for v in values] + [5]) for k, values in text.items()}
    widest["name"] = max(widest["name"], fold)
    culprit = len(plain(result.first_failing_layer).plain) if result.first_failing_layer else 0
    flag = 13 if result.first_failing_layer else 9
    widths = {"shape": widest["shape"], "cumulative": 8, "local": 8}
    name = max(min(MIN_NAME, widest["name"]), culprit)
    used = name + sum(widths.values()) + flag + GAP * 4 + 1
    if used > width and result.first_failing_layer:  # the short mark of the first failing layer
        flag = 7
        used -= 6
    widths["flag"] = flag
    room = width - used
    if room >= MIN_ACTION + GAP:
        widths["action"] = min(widest["action"], room - GAP)
        room -= widths["action"] + GAP
    if room >= 7 + GAP:
        widths["op"] = min(widest["op"], 12, room - GAP)
        room -= widths["op"] + GAP
    widths["name"] = max(name, min(widest["name"], name + room))
    return widths


def _layers(result: VerificationResult, width: int = 200) -> tuple[Table, list[str]]:
    """One row per layer: where the error becomes visible (cumulative) and which layer makes it (local),
    laid out for ``width`` columns (``_column_widths``); and the legend lines of the marks it used."""
    from rich import box

    rows = _layer_rows(result)
    layers = [r for r in rows if not isinstance(r, tuple)]
    folds = [f"... {r[0]} more layers" for r in rows if isinstance(r, tuple)]
    widths = _column_widths(result, layers, width, max(map(len, folds), default=0))
    short = widths["flag"] < 13
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  header_style="bold")
    table.add_column("layer", no_wrap=True, width=widths["name"])
    if "op" in widths:
        table.add_column("op", no_wrap=True, width=widths["op"])
    table.add_column("shape", no_wrap=True, width=widths["shape"])
    if "action" in widths:
        table.add_column("action", no_wrap=True, width=widths["action"])
    table.add_column("cumul.", justify="right", no_wrap=True, width=8)
    table.add_column("local", justify="right", no_wrap=True, width=8)
    table.add_column("", no_wrap=True, width=widths["flag"])
    marks: set[str] = set()
    for layer in rows:
        if isinstance(layer, tuple):
            count, cumulative, local = layer
            cells = [Text(fit_right(f"... {count} more layers", widths["name"]), style="dim")]
            cells += [""] * (len(table.columns) - 4) + [fmt(cumulative), fmt(local), Text("ok", style="green")]
            table.add_row(*cells)
            continue
        name = plain(layer.name).plain
        flag = _flag(result, layer, short)
        action = plain(action_text(layer)).plain
        marks |= {flag.plain, f"({layer.representation_source})"} | ({"?"} if action.endswith(" ?") else set())
        cells = [Text(name if layer.name == result.first_failing_layer else shorten_left(name, widths["name"]))]
        if "op" in widths:
            cells.append(Text(fit_right(plain(layer.op).plain, widths["op"])))
        cells.append(Text("x".join(str(d) for d in layer.shape)))
        if "action" in widths:
            cells.append(Text(fit_right(action, widths["action"])))
        cells += [fmt(layer.max_rel_error), fmt(layer.local_rel_error), flag]
        table.add_row(*cells)
    legend = ["cumul.: error of the layer's output; local: the layer on an exact input, i.e. which layer makes "
              "the error" + ("" if "action" in widths else " (the action column needs more width)")]
    if "action" not in widths:  # the action's marks are not shown
        marks -= {m for m in marks if m.startswith("(") or m == "?"}
    legend += [text for mark, text in LEGEND.items() if mark in marks]
    return table, legend


def wrapped(text: str, width: int, indent: int) -> str:
    """``text`` wrapped at words to ``width`` columns, continuation lines indented by ``indent`` (a word
    longer than a line, such as a long path, is never cut)."""
    glued = re.sub(r"(\(tol|error|errors) (\S+)", lambda m: f"{m.group(1)}\u00a0{m.group(2)}", text)
    return textwrap.fill(glued, width=max(width, indent + 20), subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False).replace("\u00a0", " ")


def render(result: VerificationResult, console: Console, quiet: bool = False) -> None:
    """Print the report; ``quiet`` prints the verdict line only."""
    style = "bold green" if result.passed else "bold red"
    if quiet:  # one line, whatever the width: what a script greps
        console.print(plain(verdict_line(result), style), soft_wrap=True)
        return
    console.print(_header(result))
    console.print()
    for output in result.outputs:
        console.print(_elements(result, output))
        console.print()
    width = console.width
    if result.layers:
        table, legend = _layers(result, width)
        console.print(table)
        for line in legend:
            console.print(Text(wrapped(plain(line).plain, width, 2), style="dim"), soft_wrap=True)
        console.print()

    def say(text: str, style: str, indent: int) -> None:
        console.print(Text(wrapped(plain(text).plain, width, indent), style=style), soft_wrap=True)

    say(verdict_line(result), style, 6)
    causes = [d for d in result.diagnoses if d.severity == "cause"]
    notes = [d for d in result.diagnoses if d.severity != "cause"]
    for diagnosis in causes[:MAX_CAUSES]:
        say(f"  why: {diagnosis.message}", "red", 7)
    if len(causes) > MAX_CAUSES:
        say(f"  why: ... {len(causes) - MAX_CAUSES} more (the JSON and HTML reports list them all)", "red", 7)
    for diagnosis in notes:
        say(f"  note: {diagnosis.message}", "dim", 8)
    for note in result.run.notes:
        say(f"  note: {note}", "dim", 8)
