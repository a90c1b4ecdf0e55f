"""GitHub Actions: ``::error`` workflow commands for a failing model and its first failing layer, and the
Markdown that goes to the job's summary page (``$GITHUB_STEP_SUMMARY``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eqcheck.report.inert import markdown_code, markdown_text, printable
from eqcheck.report.text import fmt, largest_error, output_types, verdict_line
from eqcheck.result import VerificationResult

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict


def escape_data(text: str) -> str:
    """The message of a workflow command: one line, ``%`` escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``title=``): also ``:`` and ``,``, which end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, title: str, *lines: str) -> str:
    """One workflow command; each line made printable first, so only our own line breaks reach GitHub."""
    message = "\n".join(printable(line) for line in lines)
    return f"::{kind} title={escape_property(printable(title))}::{escape_data(message)}"


def _first_failing_layer(result: VerificationResult, name: str) -> str | None:
    layer = next((row for row in result.layers if row.name == result.first_failing_layer), None)
    if layer is None:
        return None
    causes = [d.message for d in result.diagnoses if d.layer == layer.name and d.severity == "cause"]
    message = (f"{layer.name} ({layer.op}) makes the error: local rel error {fmt(layer.local_rel_error)} "
               f"> tol {fmt(result.tolerance)}")
    return command("error", f"eqcheck: first failing layer of {name}", message, *(f"why: {c}" for c in causes))


def annotations(result: VerificationResult, name: str | None = None) -> list[str]:
    """Nothing for a passing model; for a failing one, its verdict and its first failing layer."""
    if result.passed:
        return []
    name = name or result.run.model
    lines = [command("error", f"eqcheck: {name} is not equivariant to {result.run.group}", verdict_line(result))]
    layer = _first_failing_layer(result, name)
    return lines + ([layer] if layer else [])


def check_annotations(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> list[str]:
    """``eqcheck check``: an error for each model that broke the gate, a notice for each known failure."""
    from eqcheck.gate import ERROR, FAILED, KNOWN_FAILURE, UNEXPECTED_PASS

    lines: list[str] = []
    for outcome, status in zip(outcomes, verdict.statuses):
        name = outcome.entry.name
        if status == FAILED:
            lines += annotations(outcome.result, name)
        elif status == ERROR:
            lines.append(command("error", f"eqcheck: {name} could not be checked", outcome.error or ""))
        elif status == UNEXPECTED_PASS:
            lines.append(command("error", f"eqcheck: {name} passed but is expected to fail",
                                 verdict_line(outcome.result), 'remove expect = "fail" from its entry'))
        elif status == KNOWN_FAILURE:
            lines.append(command("notice", f"eqcheck: {name} is a known failure", verdict_line(outcome.result)))
    return lines


def step_summary(result: VerificationResult) -> str:
    """Markdown: the verdict, the element table, the first failing layer and its causes."""
    lines = [f"### eqcheck: {'PASS' if result.passed else 'FAIL'} {markdown_code(result.run.model)} under "
             f"{markdown_code(result.run.group)}", "", markdown_text(verdict_line(result))]
    for output in result.outputs:
        if len(result.outputs) > 1:
            lines += ["", f"Output {markdown_code(output.name)} as {markdown_text(output.representation)}"]
        lines += ["", "| element | rel error | max abs error | rel/spread | result |", "|---|---:|---:|---:|---|"]
        for e in output.elements:
            status = "NaN/Inf" if e.nonfinite else ("ok" if e.passed else "**FAIL**")
            lines.append(f"| {markdown_text(e.element)}{'' if e.exact else ' ~'} | {fmt(e.rel_error)} | "
                         f"{fmt(e.max_abs_error)} | {fmt(e.spread_ratio)} | {status} |")
    layer = next((row for row in result.layers if row.name == result.first_failing_layer), None)
    if layer is not None:
        lines += ["", f"First failing layer: {markdown_code(layer.name)} ({markdown_text(layer.op)}), local rel error "
                      f"{fmt(layer.local_rel_error)} (tol {fmt(result.tolerance)})"]
    causes = [d.message for d in result.diagnoses if d.severity == "cause"]
    lines += [""] * bool(causes) + [f"- why: {markdown_text(c)}" for c in causes]
    return "\n".join(lines) + "\n\n"


def check_step_summary(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> str:
    """Markdown: one row per listed model and the gate's verdict."""
    from eqcheck.gate import KNOWN_FAILURE, PASSED
    from eqcheck.report.summary import STATUS_LABELS, check_verdict_line

    lines = [f"### eqcheck check: {'PASS' if verdict.passed else 'FAIL'}", "", markdown_text(check_verdict_line(verdict)),
             "", "| model | group | output | max rel error | tol | first failing layer | result |",
             "|---|---|---|---:|---:|---|---|"]
    for outcome, status in zip(outcomes, verdict.statuses):
        result = outcome.result
        label = STATUS_LABELS[status]
        if result is None:
            lines.append(f"| {markdown_code(outcome.entry.name)} | {markdown_text(outcome.group)} | - | - | - | - | "
                         f"**{label}**: {markdown_text(outcome.error or '')} |")
            continue
        layer = markdown_code(result.first_failing_layer) if result.first_failing_layer else "-"
        label = label if status in (PASSED, KNOWN_FAILURE) else f"**{label}**"
        lines.append(f"| {markdown_code(outcome.entry.name)} | {markdown_text(outcome.group)} | "
                     f"{markdown_text(output_types(result))} "
                     f"| {fmt(largest_error(result))} | {fmt(result.tolerance)} | {layer} | {label} |")
    return "\n".join(lines) + "\n\n"
