"""Write the reports a command asked for: terminal always (unless JSON goes to stdout), JSON on request."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from eqcheck.errors import UsageError
from eqcheck.result import VerificationResult


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
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def write_reports(result: VerificationResult, *, json_path: str | None = None, quiet: bool = False) -> None:
    from eqcheck.report import json_report, terminal

    json_to_stdout = json_path == "-"
    console = make_console(sys.stderr if json_to_stdout else sys.stdout)
    terminal.render(result, console, quiet=quiet)
    if json_path is not None:
        text = json_report.dumps(result)
        if json_to_stdout:
            sys.stdout.write(text + "\n")
        else:
            write_atomically(json_path, text + "\n")
