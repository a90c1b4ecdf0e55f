"""Plain-text pieces every reporter shares: number formats, the verdict line, the pytest message."""
from __future__ import annotations

import math

from eqcheck.metrics import worst
from eqcheck.result import LayerResult, VerificationResult


def fmt(value: float | None) -> str:
    """``2.1e-07``; ``nan``/``inf`` as such; ``-`` for missing."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def passes(count: int) -> str:
    return f"{count} forward pass" if count == 1 else f"{count} forward passes"


def output_types(result: VerificationResult) -> str:
    """``invariant``, or ``logits=invariant, features=regular:5d`` for several outputs."""
    if len(result.outputs) == 1:
        return result.outputs[0].representation
    return ", ".join(f"{o.name}={o.representation}" for o in result.outputs)


def largest_error(result: VerificationResult) -> float:
    """The largest rel error over every output (NaN counting as infinite)."""
    return worst(o.max_rel_error for o in result.outputs)


def verdict_line(result: VerificationResult) -> str:
    """One line: the verdict, the group, the largest errors against their tolerances (over every output)."""
    elements = [e for o in result.outputs for e in o.elements]
    exact = worst(e.rel_error for e in elements if e.exact)
    interpolated = [e.rel_error for e in elements if not e.exact]
    errors = f"max rel error {fmt(exact)} (tol {fmt(result.tolerance)})"
    if interpolated:
        errors += f", interpolated angles {fmt(worst(interpolated))} (tol {fmt(result.approximate_tolerance)})"
    several = len(result.outputs) > 1
    if result.passed:
        count = f"{len(result.outputs)} outputs, " if several else ""
        return f"PASS  {result.run.model} is equivariant to {result.run.group}: {count}{errors}"
    if not several:
        output = result.outputs[0]
        failing = [e for e in output.elements if not e.passed]
        return (f"FAIL  {result.run.model} is not equivariant to {result.run.group}: "
                f"{len(failing)} of {len(output.elements)} elements fail; {errors}")
    failed = [o for o in result.outputs if not o.passed]
    which = ", ".join(f"{o.name}: {sum(not e.passed for e in o.elements)} of {len(o.elements)} elements"
                      for o in failed)
    return (f"FAIL  {result.run.model} is not equivariant to {result.run.group}: {len(failed)} of "
            f"{len(result.outputs)} outputs fail ({which}); {errors}")


def failure_message(result: VerificationResult, worst: int = 5) -> str:
    """What pytest shows: the verdict, each failing output's worst elements, the causes, the first failing layer."""
    lines = [verdict_line(result)]
    for output in result.outputs:
        if output.passed and len(result.outputs) > 1:
            continue
        lines.append(f"output {output.name} {list(output.shape)} as {output.representation}; worst elements:")
        for element in sorted(output.elements, key=lambda e: -e.rel_error)[:worst]:
            status = "ok" if element.passed else "FAIL"
            lines.append(f"  {element.element:>16}  rel {fmt(element.rel_error)}  max abs "
                         f"{fmt(element.max_abs_error)}  {status}")
    if result.first_failing_layer:
        lines.append(f"first failing layer: {result.first_failing_layer}")
    for diagnosis in result.diagnoses:
        if diagnosis.severity == "cause":
            lines.append(f"cause: {diagnosis.message}")
    return "\n".join(lines)


SOURCE_HINTS = {"declared": " (declared)", "given": " (given)", "kept": " (kept)", "found": " (found)",
                "block": " (block)"}


def action_text(layer: LayerResult) -> str:
    """The action and how it was chosen; ``?`` when a runner-up came within a factor 10."""
    unclear = layer.representation_source == "auto" and layer.representation_margin is not None \
        and layer.representation_margin < 10
    return layer.representation + SOURCE_HINTS.get(layer.representation_source, "") + (" ?" if unclear else "")
