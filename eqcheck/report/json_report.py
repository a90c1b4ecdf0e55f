"""The JSON report and its reader. ``format_version`` changes whenever a field changes meaning.

Format history:
  1: first version: passed, group, tolerance, run, output {representation, max_rel_error, elements}, layers.
     Additions since (no field changed meaning, readers of 1 keep working): layers[] filled by the
     per-layer analysis, each with representation_source, representation_margin and cumulative_passed
     besides the first fields; first_failing_layer set. layers[].element_errors: the cumulative error per
     element (optional: [] or absent when not recorded). Numbers JSON has no literal for are the
     strings "nan", "inf", "-inf" (null before; readers take null as NaN). ``eqcheck check --json``
     writes {"kind": "check", passed, exit_code, models: [{name, model, group, expect, status,
     error, result}]}, each result as above (a result has no "kind").
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eqcheck.result import (
    Candidate, Diagnosis, ElementResult, LayerResult, RunInfo, TensorCheck, VerificationResult,
)

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict

FORMAT_VERSION = 1


#: how the numbers JSON has no literal for are written (and read back)
NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _finite(value):
    """JSON has no NaN or Inf: they are written as the strings "nan", "inf", "-inf" (read back by _float)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_dict(result: VerificationResult) -> dict[str, Any]:
    output = asdict(result.output)
    return _finite({
        "format_version": FORMAT_VERSION,
        "eqcheck_version": result.run.eqcheck_version,
        "passed": result.passed,
        "group": result.run.group,
        "tolerance": result.tolerance,
        "approximate_tolerance": result.approximate_tolerance,
        "model": {"path": result.run.model, "format": result.run.model_format},
        "run": {k: v for k, v in asdict(result.run).items() if k not in ("model", "model_format", "group")},
        "output": output,
        "non_determinism": result.non_determinism,
        "diagnoses": [asdict(d) for d in result.diagnoses],
        "layers": [asdict(layer) for layer in result.layers],
        "first_failing_layer": result.first_failing_layer,
        "elapsed_s": result.elapsed_s,
    })


def dumps(result: VerificationResult) -> str:
    return json.dumps(to_dict(result), indent=2)


def check_to_dict(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> dict[str, Any]:
    """What ``eqcheck check --json`` writes: the gate's verdict and, per listed model, its status and
    either its result (as ``eqcheck verify --json`` writes it) or the error that stopped it."""
    from eqcheck import __version__

    return {
        "format_version": FORMAT_VERSION,
        "kind": "check",
        "eqcheck_version": __version__,
        "passed": verdict.passed,
        "exit_code": verdict.exit_code,
        "models": [{
            "name": outcome.entry.name,
            "model": outcome.entry.model,
            "group": outcome.group,
            "expect": outcome.entry.expect,
            "status": status,
            "error": outcome.error,
            "result": to_dict(outcome.result) if outcome.result is not None else None,
        } for outcome, status in zip(outcomes, verdict.statuses)],
    }


def dumps_check(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict) -> str:
    return json.dumps(check_to_dict(outcomes, verdict), indent=2)


def _float(value) -> float:
    """A number as written by _finite (null, from results written before, is NaN)."""
    if value is None:
        return math.nan
    return NONFINITE[value] if isinstance(value, str) else float(value)


def _optional(value) -> float | None:
    return None if value is None else _float(value)


def from_dict(data: dict[str, Any]) -> VerificationResult:
    """Rebuild a result from its JSON form (``eqcheck report`` re-renders saved runs)."""
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported result format_version {data.get('format_version')!r}")
    out = data["output"]
    output = TensorCheck(
        name=out["name"], shape=tuple(out["shape"]), representation=out["representation"],
        elements=tuple(ElementResult(**{**e, "rel_error": _float(e["rel_error"]),
                                        "max_abs_error": _float(e["max_abs_error"]),
                                        "interpolation_floor": _optional(e.get("interpolation_floor")),
                                        "spread_ratio": _optional(e.get("spread_ratio"))})
                       for e in out["elements"]),
        max_rel_error=_float(out["max_rel_error"]), spread=_float(out["spread"]), passed=out["passed"],
        representation_source=out["representation_source"],
        candidates=tuple(Candidate(c["representation"], _float(c["max_rel_error"])) for c in out["candidates"]),
    )
    run = data["run"]
    run_info = RunInfo(model=data["model"]["path"], model_format=data["model"]["format"], group=data["group"],
                       **{**run, "inputs": {k: tuple(v) for k, v in run["inputs"].items()},
                          "notes": tuple(run["notes"])})
    return VerificationResult(
        run=run_info, tolerance=data["tolerance"], approximate_tolerance=data["approximate_tolerance"],
        output=output, passed=data["passed"], non_determinism=_float(data["non_determinism"]),
        diagnoses=tuple(Diagnosis(**d) for d in data["diagnoses"]),
        layers=tuple(LayerResult(**{**layer, "shape": tuple(layer["shape"]),
                                    "max_rel_error": _float(layer["max_rel_error"]),
                                    "local_rel_error": _optional(layer["local_rel_error"]),
                                    "representation_margin": _optional(layer.get("representation_margin")),
                                    "element_errors": tuple(_float(v) for v in layer.get("element_errors", ()))})
                     for layer in data["layers"]),
        first_failing_layer=data["first_failing_layer"], elapsed_s=data.get("elapsed_s", 0.0),
    )
