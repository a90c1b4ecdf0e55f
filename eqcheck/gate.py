"""The CI gate: pure functions from results (and what the config expects of them) to an exit code."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_MODEL, EXIT_NOT_EQUIVARIANT, EXIT_USAGE
from eqcheck.result import VerificationResult

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome

#: the status of one listed model
PASSED = "pass"                  # equivariant, as expected
FAILED = "fail"                  # not equivariant, though expected to be
KNOWN_FAILURE = "known-failure"  # not equivariant, and the config says expect = "fail"
UNEXPECTED_PASS = "unexpected-pass"  # equivariant, but the config says expect = "fail": update the config
ERROR = "error"                  # could not be checked (model not loaded or run, options it rejects)

#: when several things go wrong, the exit code of the first kind in this list wins
_EXIT_PRIORITY = (EXIT_USAGE, EXIT_MODEL, EXIT_NOT_EQUIVARIANT)


def exit_code(results: VerificationResult | Iterable[VerificationResult]) -> int:
    """0 when every result passed, 1 otherwise."""
    if isinstance(results, VerificationResult):
        results = [results]
    return EXIT_EQUIVARIANT if all(r.passed for r in results) else EXIT_NOT_EQUIVARIANT


def model_status(outcome: ModelOutcome) -> str:
    """PASSED, FAILED, KNOWN_FAILURE, UNEXPECTED_PASS or ERROR, from the result and the entry's ``expect``."""
    if outcome.result is None:
        return ERROR
    expected_to_fail = outcome.entry.expect == "fail"
    if outcome.result.passed:
        return UNEXPECTED_PASS if expected_to_fail else PASSED
    return KNOWN_FAILURE if expected_to_fail else FAILED


@dataclass(frozen=True)
class CheckVerdict:
    """The gate's answer for a whole config: the exit code, each model's status, and who broke it."""

    exit_code: int
    statuses: tuple[str, ...]
    failed: tuple[str, ...] = ()
    unexpected_passes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_EQUIVARIANT


def gate_checks(outcomes: Sequence[ModelOutcome]) -> CheckVerdict:
    """0 when every model did what its entry expects; else 2 (a model's options were rejected), 3 (a model
    could not be loaded or run) or 1 (a model is not equivariant, or passed while expected to fail)."""
    statuses = tuple(model_status(o) for o in outcomes)
    failed = tuple(o.entry.name for o, s in zip(outcomes, statuses) if s == FAILED)
    unexpected = tuple(o.entry.name for o, s in zip(outcomes, statuses) if s == UNEXPECTED_PASS)
    errors = tuple(o.entry.name for o, s in zip(outcomes, statuses) if s == ERROR)
    codes = {o.error_exit_code for o, s in zip(outcomes, statuses) if s == ERROR}
    if failed or unexpected:
        codes.add(EXIT_NOT_EQUIVARIANT)
    code = next((c for c in _EXIT_PRIORITY if c in codes), EXIT_MODEL if codes else EXIT_EQUIVARIANT)
    return CheckVerdict(exit_code=code, statuses=statuses, failed=failed, unexpected_passes=unexpected,
                        errors=errors)
