"""The CI gate: a pure function from results to an exit code."""
from __future__ import annotations

from collections.abc import Iterable

from eqcheck.errors import EXIT_EQUIVARIANT, EXIT_NOT_EQUIVARIANT
from eqcheck.result import VerificationResult


def exit_code(results: VerificationResult | Iterable[VerificationResult]) -> int:
    """0 when every result passed, 1 otherwise."""
    if isinstance(results, VerificationResult):
        results = [results]
    return EXIT_EQUIVARIANT if all(r.passed for r in results) else EXIT_NOT_EQUIVARIANT
