"""Run every model a config lists (the library side of ``eqcheck check``): one outcome per model, in order."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eqcheck.config import CheckConfig, ModelEntry, resolve_options
from eqcheck.errors import EXIT_MODEL, EqcheckError
from eqcheck.guard import DEFAULT_TIMEOUT_S
from eqcheck.result import VerificationResult

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelOutcome:
    """One listed model: its result, or the one-line error that stopped it (and that error's exit code)."""

    entry: ModelEntry
    group: str
    result: VerificationResult | None = None
    error: str | None = None
    error_exit_code: int = 0


def _stage(progress: Progress | None, label: str) -> Progress | None:
    if progress is None:
        return None
    return lambda stage, done, total: progress(f"{label}: {stage}", done, total)


def check_model(entry: ModelEntry, options: Mapping[str, Any], progress: Progress | None = None,
                command: str | None = None) -> ModelOutcome:
    """``eqcheck.verify`` on one entry; an error of this model becomes its outcome, not an exception."""
    from eqcheck.api import verify

    options = {"timeout": DEFAULT_TIMEOUT_S, **options}
    group = options.pop("group")
    try:
        result = verify(entry.model, group, progress=progress, command=command, **options)
    except EqcheckError as error:
        return ModelOutcome(entry, str(group), error=error.message, error_exit_code=error.exit_code)
    except KeyboardInterrupt:  # a real Ctrl-C (verify's guard turns the model's own into an error)
        raise
    except BaseException as error:  # one broken model must not hide the others' verdicts
        if os.environ.get("EQCHECK_DEBUG"):
            raise
        return ModelOutcome(entry, str(group), error=f"internal error: {type(error).__name__}: {error}",
                            error_exit_code=EXIT_MODEL)
    return ModelOutcome(entry, str(group), result=result)


def run_checks(config: CheckConfig, overrides: Mapping[str, Any] | None = None,
               progress: Progress | None = None, command: str | None = None) -> tuple[ModelOutcome, ...]:
    """Check every model of ``config`` with its resolved options (see ``config.resolve_options``)."""
    outcomes = []
    total = len(config.models)
    for index, entry in enumerate(config.models, start=1):
        label = f"[{index}/{total}] {entry.name}"
        if progress is not None:
            progress(f"{label}: loading", 0, 0)
        options = resolve_options(entry, config.defaults, overrides or {})
        outcomes.append(check_model(entry, options, _stage(progress, label), command))
    return tuple(outcomes)
