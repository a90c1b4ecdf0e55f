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
    path = Path(path)
    if not path.parent.exists():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_reports(result: VerificationResult, *, json_path: str | None = None, quiet: bool = False) -> None:
    from rich.console import Console

    from eqcheck.report import json_report, terminal

    json_to_stdout = json_path == "-"
    console = Console(file=sys.stderr if json_to_stdout else sys.stdout, highlight=False)
    terminal.render(result, console, quiet=quiet)
    if json_path is not None:
        text = json_report.dumps(result)
        if json_to_stdout:
            sys.stdout.write(text + "\n")
        else:
            write_atomically(json_path, text + "\n")
