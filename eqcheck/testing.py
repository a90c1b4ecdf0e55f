"""pytest support: ``assert_equivariant`` checks a model and fails the test with a readable message."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eqcheck.groups import Group
    from eqcheck.result import VerificationResult


def assert_equivariant(model, group: str | Group, **options) -> VerificationResult:
    """``eqcheck.verify(model, group, **options)``; raise AssertionError when the model is not equivariant.

    The message names the verdict, the worst elements, the first failing layer and the known causes
    (``eqcheck.report.text.failure_message``). Returns the result when the model passes.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    from eqcheck import api
    from eqcheck.report.text import failure_message

    result = api.verify(model, group, **options)
    if not result.passed:
        raise AssertionError(failure_message(result))
    return result
