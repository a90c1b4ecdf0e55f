"""Write the reports a command asked for: terminal always (on stderr when JSON goes to stdout); JSON, HTML,
JUnit on request; GitHub annotations and step summary when running in GitHub Actions."""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from eqcheck.errors import UsageError
from eqcheck.result import VerificationResult

if TYPE_CHECKING:
    from rich.console import Console

    from eqcheck.checks import ModelOutcome
    from eqcheck.gate import CheckVerdict


def write_atomically(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: nothing half-written is left behind."""
    path = check_writable(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: str | Path) -> Path:
    """Fail before any work is done when a report cannot be written at ``path``."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {path.parent} is not writable")
    return path


def make_console(file) -> "Console":
    """A console that never wraps the verdict (pipes and CI logs are not 80 columns) and, with NO_COLOR,
    emits no escape codes at all."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    # rich assumes 80 columns off a terminal; logs and pipes have room for the per-layer table
    width = None if os.environ.get("COLUMNS") or (hasattr(file, "isatty") and file.isatty()) else 160
    return Console(file=file, highlight=False, soft_wrap=True, no_color=plain, width=width,
                   color_system=None if plain else "auto")


def read_result(path: str | Path) -> VerificationResult:
    """A result saved with ``--json``; a file that is not one is a usage error."""
    import json

    from eqcheck.report.json_report import from_dict

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not JSON: {error}") from None
    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise UsageError(f"{path} is not an eqcheck JSON result ({detail})") from None


def html_renderer() -> ModuleType:
    """``eqcheck.report.html`` (``render(result) -> str``), imported only when ``--html`` asks for it."""
    try:
        return importlib.import_module("eqcheck.report.html")
    except ModuleNotFoundError as error:
        if error.name != "eqcheck.report.html":
            raise
        raise UsageError("--html: this installation of eqcheck has no HTML report (eqcheck/report/html.py)") from None


def check_outputs(*, json_path: str | None = None, html_path: str | None = None,
                  junit_path: str | None = None) -> None:
    """Fail before any work is done: every report path writable, the HTML renderer there."""
    for path in (json_path, html_path, junit_path):
        if path not in (None, "-"):
            check_writable(path)
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
            sys.stderr.write(f"eqcheck: warning: cannot append to $GITHUB_STEP_SUMMARY ({path}): {error.strerror}\n")


def _write_json(path: str, text: str) -> None:
    """``-``: standard output (the terminal report then goes to stderr); else the file, atomically."""
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        write_atomically(path, text + "\n")


def write_reports(result: VerificationResult, *, json_path: str | None = None, html_path: str | None = None,
                  junit_path: str | None = None, quiet: bool = False) -> None:
    """Everything ``eqcheck verify`` and ``eqcheck report`` write for one result."""
    from eqcheck.report import github, json_report, junit, terminal

    stream = sys.stderr if json_path == "-" else sys.stdout
    terminal.render(result, make_console(stream), quiet=quiet)
    if json_path is not None:
        _write_json(json_path, json_report.dumps(result))
    if html_path is not None:
        write_atomically(html_path, html_renderer().render(result))
    if junit_path is not None:
        write_atomically(junit_path, junit.render(result))
    write_github(github.annotations(result), github.step_summary(result), stream)


def write_check_reports(outcomes: Sequence[ModelOutcome], verdict: CheckVerdict, *, json_path: str | None = None,
                        html_path: str | None = None, junit_path: str | None = None, quiet: bool = False,
                        verbose: bool = False) -> None:
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
            sys.stderr.write(f"eqcheck: error: {outcome.entry.name}: {outcome.error}\n")
    summary.render(outcomes, verdict, console, quiet=quiet)
    if json_path is not None:
        _write_json(json_path, json_report.dumps_check(outcomes, verdict))
    if html_path is not None:
        write_atomically(html_path, html_renderer().render_check(outcomes, verdict))
    if junit_path is not None:
        write_atomically(junit_path, junit.render_checks(outcomes, verdict))
    write_github(github.check_annotations(outcomes, verdict), github.check_step_summary(outcomes, verdict),
                 stream)
