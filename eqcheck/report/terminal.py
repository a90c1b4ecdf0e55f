"""The terminal report (rich): header, one row per element, the verdict, the reasons."""
from __future__ import annotations

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
                  "found": " (found from the data: its channels' representation, named by its irreps)"
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
    table.add_column("element")
    table.add_column("rel error", justify="right")
    table.add_column("max abs error", justify="right")
    table.add_column("rel/spread", justify="right")
    if interpolated:
        table.add_column("interp. floor", justify="right")
    table.add_column("result")
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


def _layers(result: VerificationResult) -> Table:
    """One row per layer: where the error becomes visible (cumulative) and which layer makes it (local)."""
    table = Table(title=None, show_edge=False, header_style="bold", caption_justify="left",
                  caption="cumulative: error of the layer's output; local: the layer on an exact input, i.e. "
                          "which layer makes the error")
    table.add_column("layer", overflow="fold", min_width=22)
    table.add_column("op", overflow="ellipsis", no_wrap=True, max_width=12)
    table.add_column("shape", overflow="fold", min_width=8)
    table.add_column("action", overflow="fold", min_width=12)
    table.add_column("cumulative", justify="right", no_wrap=True)
    table.add_column("local", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for layer in _layer_rows(result):
        if isinstance(layer, tuple):
            count, cumulative, local = layer
            table.add_row(Text(f"... {count} more layers", style="dim"), "", "", "", fmt(cumulative), fmt(local),
                          Text("ok", style="green"))
            continue
        if layer.name == result.first_failing_layer:
            flag = Text("FAIL <- first", style="bold red")
        elif not layer.passed:
            flag = Text("FAIL", style="red")
        elif layer.representation_source == "block":
            flag = Text("ok, block", style="dim")
        elif layer.representation_source == "undetermined":
            flag = Text("-", style="dim")  # no known action: the layer is not judged
        elif layer.local_rel_error is None and not layer.cumulative_passed:
            flag = Text("-", style="dim")  # no local error separated: nothing to say about the layer itself
        else:
            flag = Text("ok", style="green" if layer.cumulative_passed else "dim")
        table.add_row(plain(layer.name), plain(layer.op), "x".join(str(d) for d in layer.shape),
                      plain(action_text(layer)),
                      fmt(layer.max_rel_error), fmt(layer.local_rel_error), flag)
    return table


def render(result: VerificationResult, console: Console, quiet: bool = False) -> None:
    """Print the report; ``quiet`` prints the verdict line only."""
    style = "bold green" if result.passed else "bold red"
    if quiet:
        console.print(plain(verdict_line(result), style))
        return
    console.print(_header(result))
    console.print()
    for output in result.outputs:
        console.print(_elements(result, output))
        console.print()
    if result.layers:
        console.print(_layers(result))
        console.print()
    console.print(plain(verdict_line(result), style))
    causes = [d for d in result.diagnoses if d.severity == "cause"]
    notes = [d for d in result.diagnoses if d.severity != "cause"]
    for diagnosis in causes[:MAX_CAUSES]:
        console.print(plain(f"  why: {diagnosis.message}", "red"))
    if len(causes) > MAX_CAUSES:
        console.print(Text(f"  why: ... {len(causes) - MAX_CAUSES} more (the JSON and HTML reports list them all)",
                           style="red"))
    for diagnosis in notes:
        console.print(plain(f"  note: {diagnosis.message}", "dim"))
    for note in result.run.notes:
        console.print(plain(f"  note: {note}", "dim"))
