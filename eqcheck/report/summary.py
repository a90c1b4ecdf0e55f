"""The summary of ``eqcheck check``: one row per listed model, then the gate's verdict naming who broke it."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eqcheck.gate import ERROR, FAILED, KNOWN_FAILURE, PASSED, UNEXPECTED_PASS, CheckVerdict
from eqcheck.report.inert import terminal_text
from eqcheck.report.text import fmt, largest_error, output_types

if TYPE_CHECKING:
    from rich.console import Console

    from eqcheck.checks import ModelOutcome

STATUS_LABELS = {PASSED: "PASS", FAILED: "FAIL", KNOWN_FAILURE: "known failure",
                 UNEXPECTED_PASS: "FAIL (passed, expected to fail)", ERROR: "ERROR"}
STATUS_STYLES = {PASSED: "green", FAILED: "bold red", KNOWN_FAILURE: "yellow", UNEXPECTED_PASS: "bold red",
                 ERROR: "bold red"}


def check_verdict_line(verdict: CheckVerdict) -> str:
    """``PASS  2 models: all as expected`` or ``FAIL  1 of 2 models not equivariant: z2cnn.onnx``."""
    total = len(verdict.statuses)
    models = f"{total} model{'s' if total != 1 else ''}"
    if verdict.passed:
        known = verdict.statuses.count(KNOWN_FAILURE)
        return f"PASS  {models} checked: all as expected" + (f" ({known} known failure{'s' if known > 1 else ''})"
                                                             if known else "")
    parts = []
    if verdict.failed:
        parts.append(f"{len(verdict.failed)} of {models} not equivariant: {', '.join(verdict.failed)}")
    if verdict.unexpected_passes:
        parts.append(f"passed but expected to fail (remove expect = \"fail\"): "
                     f"{', '.join(verdict.unexpected_passes)}")
    if verdict.errors:
        parts.append(f"could not be checked: {', '.join(verdict.errors)}")
    return f"{'ERROR' if verdict.errors else 'FAIL'}  " + "; ".join(parts)


def _row(outcome: ModelOutcome, status: str) -> list[str]:
    result = outcome.result
    if result is None:
        return [outcome.entry.name, outcome.group, "-", "-", "-", "-"]
    return [outcome.entry.name, outcome.group, output_types(result), fmt(largest_error(result)),
            fmt(result.tolerance), result.first_failing_layer or "-"]


def render(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict, console: Console, quiet: bool = False) -> None:
    """The table (unless ``quiet``) and the verdict line; a model's error goes to stderr (``outputs.py``).
    The table fits the console: no cell wraps; the model and the first failing layer are shortened from
    the left, the output types from the right, where the width asks it."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from eqcheck.report.terminal import GAP, fit_right, shorten_left, wrapped

    if not quiet:
        headers = ("model", "group", "output", "max rel", "tol", "first failing layer", "result")
        rows = [[terminal_text(cell).plain for cell in _row(outcome, status)] + [STATUS_LABELS[status]]
                for outcome, status in zip(outcomes, verdict.statuses)]
        widest = [max([len(row[i]) for row in rows] + [len(headers[i]) if i not in (0, 2, 5) else 5])
                  for i in range(len(headers))]
        fixed = widest[1] + widest[3] + widest[4] + widest[6] + GAP * (len(headers) - 1) + 1
        room = max(0, console.width - fixed)
        widths = dict(zip(range(len(headers)), widest))
        # the room left: the output types (up to 12), then the model names (leaving the layer 12), the rest
        widths[2] = max(5, min(widest[2], 12, room // 3))
        widths[0] = max(5, min(widest[0], room - widths[2] - min(widest[5], 12)))
        widths[5] = max(5, min(widest[5], room - widths[2] - widths[0]))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                      header_style="bold")
        for i, column in enumerate(headers):
            table.add_column(column, justify="right" if column in ("max rel", "tol") else "left", no_wrap=True,
                             width=widths[i])
        for row, status in zip(rows, verdict.statuses):
            cells = [shorten_left(row[0], widths[0]), row[1], fit_right(row[2], widths[2]), row[3], row[4],
                     shorten_left(row[5], widths[5])]
            table.add_row(*map(Text, cells), Text(row[6], style=STATUS_STYLES[status]))
        console.print(table)
        console.print()
    line = terminal_text(check_verdict_line(verdict)).plain
    console.print(Text(line if quiet else wrapped(line, console.width, 6),
                       style="bold green" if verdict.passed else "bold red"), soft_wrap=True)
