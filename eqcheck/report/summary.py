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
    """The table (unless ``quiet``) and the verdict line; a model's error goes to stderr (``outputs.py``)."""
    from rich.table import Table
    from rich.text import Text

    if not quiet:
        table = Table(show_edge=False, header_style="bold")
        for column in ("model", "group", "output", "max rel error", "tol", "first failing layer"):
            table.add_column(column, justify="right" if column in ("max rel error", "tol") else "left",
                             overflow="fold")
        table.add_column("result", no_wrap=True)
        for outcome, status in zip(outcomes, verdict.statuses):
            table.add_row(*map(terminal_text, _row(outcome, status)),
                          Text(STATUS_LABELS[status], style=STATUS_STYLES[status]))
        console.print(table)
        console.print()
    console.print(terminal_text(check_verdict_line(verdict), "bold green" if verdict.passed else "bold red"))
