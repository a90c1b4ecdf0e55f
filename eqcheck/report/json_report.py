"""The JSON report and its reader. ``format_version`` changes whenever a field changes meaning.

Format history (the reader takes every version):
  2: every output is checked: ``outputs`` (a list, in the model's order, each entry with the fields
     ``output`` had) replaces ``output``; ``passed`` is true only if every output passed. An output's
     ``representation_source`` may be "found" (its channel representation found from the data,
     named by its irreps), or "layers" (nothing passed: the type its last layer computes from exact
     inputs). Additions since (no field changed meaning): 3-D groups' elements carry ``matrix`` (rows)
     and ``translation`` (null elsewhere), so that a failing one can be reproduced; permutations'
     elements ``permutation`` (``new[i] = old[permutation[i]]`` along the set axis; null elsewhere).
  1: first version: passed, group, tolerance, run, output {representation, max_rel_error, elements}, layers.
     Additions since (no field changed meaning, readers of 1 keep working): layers[] filled by the
     per-layer analysis, each with representation_source, representation_margin and cumulative_passed
     besides the first fields; first_failing_layer set. layers[].element_errors: the cumulative error per
     element (optional: [] or absent when not recorded). Numbers JSON has no literal for are the
     strings "nan", "inf", "-inf" (null before; readers take null as NaN). ``eqcheck check --json``
     writes {"kind": "check", passed, exit_code, models: [{name, model, group, expect, status,
     error, result}]}, each result as above (a result has no "kind"). Additions since: each model's
     ``index`` (its position in the config, 0-based) and ``error_exit_code``; ``shard`` ({index, count},
     null when the whole config was checked) and ``config_models`` (how many the config lists), which
     ``eqcheck report`` reads to merge shards.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from eqcheck.result import VerificationResult

if TYPE_CHECKING:
    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict

FORMAT_VERSION = 2
#: the versions ``from_dict`` reads
READABLE_VERSIONS = (1, 2)


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
    return _finite({
        "format_version": FORMAT_VERSION,
        "eqcheck_version": result.run.eqcheck_version,
        "passed": result.passed,
        "group": result.run.group,
        "tolerance": result.tolerance,
        "approximate_tolerance": result.approximate_tolerance,
        "model": {"path": result.run.model, "format": result.run.model_format},
        "run": {k: v for k, v in asdict(result.run).items() if k not in ("model", "model_format", "group")},
        "outputs": [asdict(o) for o in result.outputs],
        "non_determinism": result.non_determinism,
        "diagnoses": [asdict(d) for d in result.diagnoses],
        "layers": [asdict(layer) for layer in result.layers],
        "first_failing_layer": result.first_failing_layer,
        "elapsed_s": result.elapsed_s,
    })


def dumps(result: VerificationResult) -> str:
    return json.dumps(to_dict(result), indent=2)


def check_to_dict(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict, shard: tuple[int, int] | None = None,
                  config_models: int | None = None) -> dict[str, Any]:
    """What ``eqcheck check --json`` writes: the gate's verdict and, per listed model, its status and
    either its result (as ``eqcheck verify --json`` writes it) or the error that stopped it; which shard
    of how many models it is (``eqcheck report`` merges shards)."""
    from eqcheck import __version__

    return {
        "format_version": FORMAT_VERSION,
        "kind": "check",
        "eqcheck_version": __version__,
        "passed": verdict.passed,
        "exit_code": verdict.exit_code,
        "shard": {"index": shard[0], "count": shard[1]} if shard else None,
        "config_models": len(outcomes) if config_models is None else config_models,
        "models": [{
            "index": outcome.index,
            "name": outcome.entry.name,
            "model": outcome.entry.model,
            "group": outcome.group,
            "expect": outcome.entry.expect,
            "status": status,
            "error": outcome.error,
            "error_exit_code": outcome.error_exit_code,
            "result": to_dict(outcome.result) if outcome.result is not None else None,
        } for outcome, status in zip(outcomes, verdict.statuses)],
    }


def dumps_check(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict, shard: tuple[int, int] | None = None,
                config_models: int | None = None) -> str:
    return json.dumps(check_to_dict(outcomes, verdict, shard, config_models), indent=2)


@dataclass(frozen=True)
class CheckFile:
    """A saved ``eqcheck check --json``: its outcomes (config order) and which shard of how many models."""

    outcomes: tuple
    shard: tuple[int, int] | None
    config_models: int


def check_from_dict(data: dict[str, Any]) -> CheckFile:
    """Rebuild a saved check (each model's result by ``from_dict``); FormatError names a bad field."""
    from eqcheck.checks import ModelOutcome
    from eqcheck.config import ModelEntry
    from eqcheck.errors import EXIT_MODEL

    version = _field(data, "format_version")
    if version not in READABLE_VERSIONS:
        raise FormatError(f"unsupported format_version {version!r}")
    models = _field(data, "models")
    if not isinstance(models, list):
        raise FormatError("models must be a list")
    outcomes = []
    for position, item in enumerate(models):
        where = f"models[{position}]"
        result = _field(item, "result", where)
        index = item.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise FormatError(f"{where}.index must be a position, not {index!r}")
        entry = ModelEntry(name=str(_field(item, "name", where)), model=str(_field(item, "model", where)),
                           expect=str(item.get("expect", "pass")))
        exit_code = item.get("error_exit_code", EXIT_MODEL if result is None else 0)
        outcomes.append(ModelOutcome(entry, str(_field(item, "group", where)),
                                     result=from_dict(result) if result is not None else None,
                                     error=item.get("error"), error_exit_code=int(exit_code), index=index))
    shard = data.get("shard")
    if shard is not None:
        k, n = _field(shard, "index", "shard"), _field(shard, "count", "shard")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (k, n)) or not 1 <= k <= n:
            raise FormatError(f"shard must be K of N with 1 <= K <= N, not {k!r} of {n!r}")
        shard = (k, n)
    config_models = data.get("config_models", len(outcomes))
    return CheckFile(tuple(outcomes), shard, int(config_models))


class FormatError(ValueError):
    """A JSON file that is not an eqcheck result; the message names the field."""


def _number(value, where: str) -> float:
    """A number as written by _finite (null, from results written before, is NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, str) and value in NONFINITE:
        return NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(f"{where} must be a number, not {_kind(value)}")
    return float(value)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _value(hint, value, where: str):
    """``value`` read as the annotated type ``hint`` (str, int, float, bool, X | None, tuple[T, ...],
    dict[str, T], a result dataclass)."""
    if hint is float:
        return _number(value, where)
    if hint in (str, int, bool):
        valid = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        if not valid:
            raise FormatError(f"{where} must be {_KINDS[hint]}, not {_kind(value)}")
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise FormatError(f"{where} must be a list, not {_kind(value)}")
        return tuple(_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise FormatError(f"{where} must be an object, not {_kind(value)}")
        return {k: _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if is_dataclass(hint):
        return _build(hint, value, where)
    raise TypeError(f"no reader for {hint!r}")  # pragma: no cover - a result field of a new type


_KINDS = {str: "a string", int: "an integer", bool: "true or false"}


def _build(cls, data, where: str):
    """A result dataclass from its JSON object (at ``where``, "" for the top): every field checked against
    its annotation, unknown keys (from newer writers) ignored."""
    if not isinstance(data, dict):
        raise FormatError(f"{where or 'the file'} must be an object, not {_kind(data)}")
    hints = get_type_hints(cls)
    values = {}
    for f in fields(cls):
        name = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            values[f.name] = _value(hints[f.name], data[f.name], name)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise FormatError(f"missing field {name}")
    return cls(**values)


def _field(data: dict, key: str, where: str = ""):
    if not isinstance(data, dict):
        raise FormatError(f"{where or 'the file'} must be an object, not {_kind(data)}")
    if key not in data:
        raise FormatError(f"missing field {where + '.' if where else ''}{key}")
    return data[key]


def from_dict(data: dict[str, Any]) -> VerificationResult:
    """Rebuild a result from its JSON form (``eqcheck report`` re-renders saved runs); a file that is not one
    raises FormatError naming the field."""
    version = _field(data, "format_version")
    if version not in READABLE_VERSIONS:
        raise FormatError(f"unsupported result format_version {version!r} (this eqcheck reads "
                          f"{', '.join(map(str, READABLE_VERSIONS))})")
    if version == 1:  # one output, as "output"
        data = {**data, "outputs": [_field(data, "output")]}
    outputs = _field(data, "outputs")
    if not isinstance(outputs, list) or not outputs:
        raise FormatError("outputs must be a non-empty list")
    model, run = _field(data, "model"), _field(data, "run")
    if not isinstance(run, dict):
        raise FormatError(f"run must be an object, not {_kind(run)}")
    run = {**run, "model": _field(model, "path", "model"), "model_format": _field(model, "format", "model"),
           "group": _field(data, "group")}
    result = _build(VerificationResult, {**data, "run": run}, "")
    for name in ("tolerance", "approximate_tolerance"):
        value = getattr(result, name)
        if not (math.isfinite(value) and 0 < value < 1):
            raise FormatError(f"{name} must be a number between 0 and 1, not {value!r}")
    return result
