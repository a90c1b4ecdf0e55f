"""Write the reports a command asked for: terminal always (on stderr when JSON goes to stdout); JSON, HTML,
JUnit on request; GitHub annotations and step summary when running in GitHub Actions."""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from eqcheck.errors import UsageError
from eqcheck.report.inert import printable
from eqcheck.report.targets import ReadFile, check_targets, write_report
from eqcheck.result import VerificationResult

if TYPE_CHECKING:
    from rich.console import Console

    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict


def make_console(file) -> "Console":
    """A console that never wraps the verdict (pipes and CI logs are not 80 columns) and, with NO_COLOR,
    emits no escape codes at all."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    # the terminal's width, or COLUMNS; 80 off a terminal (a pipe, a CI log) when COLUMNS does not say
    width = None if os.environ.get("COLUMNS") or (hasattr(file, "isatty") and file.isatty()) else 80
    return Console(file=file, highlight=False, soft_wrap=True, no_color=plain, width=width,
                   color_system=None if plain else "auto")


def _load_json(path: str | Path):
    import json

    shown = printable(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{shown} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{shown} is a folder, not a JSON result") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {shown}: {getattr(error, 'strerror', None) or error}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{shown} is not JSON: {error}") from None
    except RecursionError:
        raise UsageError(f"{shown} is not an eqcheck JSON result (nested too deeply)") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise UsageError(f"{shown} is not an eqcheck JSON result ({printable(error)})") from None


def read_saved(path: str | Path):
    """A result saved with ``eqcheck verify --json`` (a VerificationResult) or ``eqcheck check --json`` (a
    ``json_report.CheckFile``); a file that is neither is a usage error naming the field."""
    from eqcheck.report.json_report import FormatError, check_from_dict, from_dict

    data = _load_json(path)
    try:
        if isinstance(data, dict) and data.get("kind") == "check":
            return check_from_dict(data)
        return from_dict(data)
    except FormatError as error:
        raise UsageError(f"{printable(path)} is not an eqcheck JSON result: {printable(error)}") from None


def read_result(path: str | Path) -> VerificationResult:
    """A result saved with ``eqcheck verify --json``."""
    saved = read_saved(path)
    if not isinstance(saved, VerificationResult):
        raise UsageError(f"{printable(path)} holds an eqcheck check, not one model's result")
    return saved


def html_renderer() -> ModuleType:
    """``eqcheck.report.html`` (``render(result) -> str``), imported only when ``--html`` asks for it."""
    try:
        return importlib.import_module("eqcheck.report.html")
    except ModuleNotFoundError as error:
        if error.name != "eqcheck.report.html":
            raise
        raise UsageError("--html: this installation of eqcheck has no HTML report (eqcheck/report/html.py)") from None


def check_outputs(*, json_path: str | None = None, html_path: str | None = None,
                  junit_path: str | None = None, reads: Iterable[ReadFile] = ()) -> None:
    """Fail before any work is done: every report path safe to write (``targets.check_targets``), the HTML
    renderer there."""
    check_targets({"--json": json_path, "--html": html_path, "--junit": junit_path}, reads)
    if html_path is not None:
        html_renderer()


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS", "").strip().lower() not in ("", "0", "false")


def write_github(annotations: Sequence[str], summary: str, stream: TextIO) -> None:
    """In GitHub Actions: the workflow commands on ``stream``, the Markdown appended to $GITHUB_STEP_SUMMARY."""
    if not in_github_actions():
        return
    for line in annotations:
        stream.write(line + "\n")
    stream.flush()
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as summary_file:
                summary_file.write(summary)
        except OSError as error:
            sys.stderr.write(f"eqcheck: warning: cannot append to $GITHUB_STEP_SUMMARY ({printable(path)}): "
                             f"{error.strerror}\n")


def write_reports(result: VerificationResult, *, json_path: str | None = None, html_path: str | None = None,
                  junit_path: str | None = None, quiet: bool = False) -> None:
    """Everything ``eqcheck verify`` and ``eqcheck report`` write for one result."""
    from eqcheck.report import github, json_report, junit, terminal

    stream = sys.stderr if json_path == "-" else sys.stdout
    terminal.render(result, make_console(stream), quiet=quiet)
    if json_path is not None:
        write_report(json_path, json_report.dumps(result) + "\n")
    if html_path is not None:
        write_report(html_path, html_renderer().render(result))
    if junit_path is not None:
        write_report(junit_path, junit.render(result))
    write_github(github.annotations(result), github.step_summary(result), stream)


def write_check_reports(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict, *, json_path: str | None = None,
                        html_path: str | None = None, junit_path: str | None = None, quiet: bool = False,
                        verbose: bool = False, shard: tuple[int, int] | None = None,
                        config_models: int | None = None) -> None:
    """Everything ``eqcheck check`` writes: each model's error on stderr, the summary, JSON, HTML, JUnit,
    GitHub."""
    from eqcheck.gate import ERROR
    from eqcheck.report import github, json_report, junit, summary, terminal

    stream = sys.stderr if json_path == "-" else sys.stdout
    console = make_console(stream)
    if verbose:
        for outcome in outcomes:
            if outcome.result is not None:
                terminal.render(outcome.result, console)
                console.print()
    for outcome, status in zip(outcomes, verdict.statuses):
        if status == ERROR:
            sys.stderr.write(f"eqcheck: error: {printable(outcome.entry.name)}: {printable(outcome.error)}\n")
    summary.render(outcomes, verdict, console, quiet=quiet)
    if json_path is not None:
        write_report(json_path, json_report.dumps_check(outcomes, verdict, shard, config_models) + "\n")
    if html_path is not None:
        write_report(html_path, html_renderer().render_check(outcomes, verdict))
    if junit_path is not None:
        write_report(junit_path, junit.render_checks(outcomes, verdict))
    write_github(github.check_annotations(outcomes, verdict), github.check_step_summary(outcomes, verdict),
                 stream)
