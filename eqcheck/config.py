"""The ``[tool.eqcheck]`` table of a pyproject.toml: defaults, the list of models, their verify options.

Precedence, highest first: command-line flags > a ``[[tool.eqcheck.models]]`` entry > the
``[tool.eqcheck]`` defaults > the built-in defaults of ``eqcheck.verify``. Paths in the file (``path``,
``input``, ``weights``) are relative to the folder of the file.
"""
from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqcheck.errors import UsageError
from eqcheck.groups.registry import parse_group
from eqcheck.validation import check_option

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(UsageError):
    """The config file is missing, is not TOML, or has an unknown key, a wrong type or a missing value."""

    slug = "config"


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_shape(value: Any) -> bool:
    """``"2,1,28,28"``, ``[2, 1, 28, 28]``, ``["a=2,3", "b=2,4"]`` or ``{a = [2, 3]}``."""
    def dims(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(_is_int(d) and d > 0 for d in v)

    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return dims(value) or (bool(value) and all(isinstance(v, str) for v in value))
    if isinstance(value, dict):
        return bool(value) and all(dims(v) for v in value.values())
    return False


def _is_declarations(value: Any) -> bool:
    """``["x=image"]`` or ``{x = "image"}`` (``--act``, ``--layer-type``)."""
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


#: key in the file -> (keyword of eqcheck.verify, type check, what the type is called in messages); a key may
#: also be written with underscores (input_shape)
OPTION_KEYS: dict[str, tuple[str, Any, str]] = {
    "group": ("group", _is_str, "a group spec string"),
    "input-shape": ("input_shape", _is_shape, 'a shape ("B,C,H,W", a list of positive ints, or NAME=shape strings)'),
    "input": ("inputs", _is_str, "a path (.npy or .npz)"),
    "input-file": ("inputs", _is_str, "a path (.npy or .npz)"),
    "act": ("act", _is_declarations, 'NAME=TYPE strings or a table of NAME = "TYPE"'),
    "output-type": ("output_type", lambda v: _is_str(v) or _is_declarations(v),
                    'a type, NAME=TYPE strings or a table of NAME = "TYPE"'),
    "output": ("output", _is_str, "an output name"),
    "tol": ("tol", _is_number, "a number"),
    "tolerance": ("tol", _is_number, "a number"),
    "approx-tol": ("approx_tol", _is_number, "a number"),
    "seed": ("seed", _is_int, "an integer"),
    "samples": ("samples", _is_int, "an integer"),
    "batch-size": ("batch_size", _is_int, "an integer"),
    "max-batch": ("max_batch", _is_int, "an integer"),
    "dtype": ("dtype", _is_str, "float32 or float64"),
    "device": ("device", _is_str, "cpu or cuda"),
    "weights": ("weights", _is_str, "a path"),
    "unsafe-load": ("unsafe_load", _is_bool, "true or false"),
    "tf32": ("allow_tf32", _is_bool, "true or false"),
    "train-mode": ("train_mode", _is_bool, "true or false"),
    "per-layer": ("per_layer", _is_bool, "true or false"),
    "timeout": ("timeout", _is_number, "a number of seconds (0: no limit)"),
    "layer-type": ("layer_types", _is_declarations, 'NAME=TYPE strings or a table of NAME = "TYPE"'),
}
#: keys of a model entry only
ENTRY_KEYS = {"path": "a model path or file.py:attr spec", "name": "a string", "expect": '"pass" or "fail"'}
#: options whose value is a path relative to the config file
PATH_OPTIONS = ("inputs", "weights")
EXPECTATIONS = ("pass", "fail")


@dataclass(frozen=True)
class ModelEntry:
    """One ``[[tool.eqcheck.models]]`` entry: the model spec (paths resolved), its options, what it should do."""

    name: str
    model: str
    options: Mapping[str, Any] = field(default_factory=dict)
    expect: str = "pass"


@dataclass(frozen=True)
class CheckConfig:
    """A parsed ``[tool.eqcheck]`` table: where it came from, the defaults, the models in file order."""

    source: Path
    defaults: Mapping[str, Any]
    models: tuple[ModelEntry, ...]


def find_config(start: Path | None = None) -> Path:
    """The nearest pyproject.toml in ``start`` (the working folder) or a folder above it."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no pyproject.toml in {start} or a folder above it (give one with --config)")


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(sorted(known))}")


def _resolve_path(value: str, base: Path) -> str:
    """``value`` taken relative to ``base``, written relative to the working folder when it lies inside it."""
    path = Path(value)
    if path.is_absolute():
        return value
    path = (base / path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def resolve_model_spec(spec: str, base: Path) -> str:
    """A file path or ``file.py:attr`` is taken relative to ``base``; ``package.module:attr`` is left as is."""
    head, sep, attr = spec.rpartition(":")
    if sep and head.endswith(".py"):
        return f"{_resolve_path(head, base)}:{attr}"
    if sep and _MODULE.fullmatch(head):
        return spec  # an importable module
    return _resolve_path(spec, base)


def _options(table: Mapping[str, Any], where: str, base: Path, extra: Mapping[str, str]) -> dict[str, Any]:
    """Check every key and value of a table; return verify keywords, with paths resolved against ``base``."""
    options: dict[str, Any] = {}
    written: dict[str, str] = {}  # verify keyword -> the key that set it
    for key, value in table.items():
        name = key.replace("_", "-")  # input_shape as well as input-shape
        if name in extra:
            continue
        if name not in OPTION_KEYS:
            raise _unknown(key, [*OPTION_KEYS, *extra], where)
        keyword, is_valid, described = OPTION_KEYS[name]
        if not is_valid(value):
            raise ConfigError(f"{where}: {key} must be {described}, not {value!r}")
        try:
            check_option(keyword, value, option=key)
            if keyword == "group":
                parse_group(value)
        except UsageError as error:
            raise ConfigError(f"{where}: {error.message}") from None
        if keyword in written:
            raise ConfigError(f"{where}: {written[keyword]} and {key} are the same option: give one of them")
        written[keyword] = key
        if keyword in PATH_OPTIONS:
            value = _resolve_path(value, base)
        elif isinstance(value, dict) and _is_declarations(value):  # as NAME=TYPE flags: verify checks the names
            value = [f"{name}={spec}" for name, spec in value.items()]
        options[keyword] = value
    return options


def _entry(table: Any, index: int, base: Path, defaults: Mapping[str, Any]) -> ModelEntry:
    where = f"[[tool.eqcheck.models]] #{index}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with at least path and group")
    if isinstance(table.get("path"), str):
        where += f" ({table['path']})"
    options = _options(table, where, base, ENTRY_KEYS)
    for key in ("path", "name", "expect"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key} must be {ENTRY_KEYS[key]}, not {table[key]!r}")
    if not table.get("path"):
        raise ConfigError(f"{where}: missing path (the model file, or file.py:attr)")
    if "group" not in options and "group" not in defaults:
        raise ConfigError(f"{where}: missing group (set it here or in [tool.eqcheck])")
    expect = table.get("expect", "pass")
    if expect not in EXPECTATIONS:
        raise ConfigError(f"{where}: expect must be {ENTRY_KEYS['expect']}, not {expect!r}")
    return ModelEntry(name=table.get("name", table["path"]), model=resolve_model_spec(table["path"], base),
                      options=options, expect=expect)


def parse_config(data: Mapping[str, Any], source: Path) -> CheckConfig:
    """Validate the ``[tool.eqcheck]`` table of parsed TOML ``data`` read from ``source``."""
    table = data.get("tool", {}).get("eqcheck") if isinstance(data.get("tool"), dict) else None
    if table is None:
        raise ConfigError(f"{source}: no [tool.eqcheck] table")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: tool.eqcheck must be a table")
    base = source.parent
    defaults = _options(table, f"{source}: [tool.eqcheck]", base, {"models": "a list of tables"})
    models = table.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{source}: list the models to check as [[tool.eqcheck.models]] tables "
                          f"(each with path and group)")
    entries = tuple(_entry(m, i, base, defaults) for i, m in enumerate(models, start=1))
    names = [e.name for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{source}: model names must be unique (set name = ...): {', '.join(repeated)}")
    return CheckConfig(source=source, defaults=defaults, models=entries)


def load_config(path: str | Path | None = None) -> CheckConfig:
    """Read and validate a config file; ``None`` finds the nearest pyproject.toml."""
    source = find_config() if path is None else Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {source} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {source} is a folder") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {source}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    return parse_config(data, source)


def config_reads(config: CheckConfig):
    """Every file ``eqcheck check`` reads: the config itself and each model's files (report paths may not
    name one); a generator, as ``models.sources.check_reads``."""
    from eqcheck.models.sources import check_reads
    from eqcheck.report.targets import ReadFile

    yield ReadFile(config.source, "the config")
    for entry in config.models:
        options = {**config.defaults, **entry.options}
        yield from check_reads(entry.model, options.get("inputs"), options.get("weights"))


def resolve_options(entry: ModelEntry, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """Keywords for ``eqcheck.verify``: flags (non-None ``overrides``) > entry > defaults > built-in."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return {**defaults, **entry.options, **given}
