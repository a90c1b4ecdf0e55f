"""The progress bar of a long check: rich's Progress on stderr, shown only once a run has taken a moment,
cleared when it ends, and driven by ``verify``'s ``progress(stage, done, total)`` callback."""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from eqcheck.report.inert import printable

#: seconds before the bar appears: a quick check prints its report and nothing else
DELAY_S = 0.5


class ProgressBar:
    """A callable for ``verify(progress=...)``; a timer shows the bar after ``delay`` seconds."""

    def __init__(self, stream: TextIO, delay: float = DELAY_S, description: str = "checking") -> None:
        self._given = stream
        self._own = stream = _own_copy(stream)  # the check captures descriptor 2 while model code runs (guard.py)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from eqcheck.report.outputs import make_console

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=make_console(stream),
                                 transient=True, redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task(description, total=None)
        self.shown = False
        self._closed = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(delay, self._show)
        self._timer.daemon = True

    def __call__(self, stage: str, done: int, total: int) -> None:
        """One step of ``stage``; a total of 0 means the stage has started and has no count yet."""
        stage = printable(stage)  # a config entry's name may hold control characters
        if total > 0:
            self.progress.update(self.task, description=stage, completed=done, total=total)
        else:  # rich keeps a task's total when given None: a fresh task is an indeterminate one
            self.progress.remove_task(self.task)
            self.task = self.progress.add_task(stage, total=None)

    def _show(self) -> None:
        with self._lock:
            if not self._closed:
                self.progress.start()
                self.shown = True

    def __enter__(self) -> ProgressBar:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._closed = True
            self._timer.cancel()
            if self.shown:
                self.progress.stop()
            if self._own is not self._given:
                self._own.close()


def _own_copy(stream: TextIO) -> TextIO:
    """A stream on a duplicate of ``stream``'s descriptor, which keeps reaching the terminal while the
    original descriptor is redirected."""
    try:
        return os.fdopen(os.dup(stream.fileno()), "w", encoding=getattr(stream, "encoding", None) or "utf-8")
    except (AttributeError, OSError, ValueError):
        return stream


def wanted(stream: TextIO, quiet: bool) -> bool:
    """Only for a person watching: not with ``-q``, not into a pipe, a file or a dumb terminal."""
    is_terminal = hasattr(stream, "isatty") and stream.isatty()
    return not quiet and is_terminal and os.environ.get("TERM") != "dumb"


@contextmanager
def progress_bar(quiet: bool = False, stream: TextIO | None = None, delay: float = DELAY_S,
                 description: str = "checking") -> Iterator[ProgressBar | None]:
    """``with progress_bar(quiet) as progress: verify(..., progress=progress)``; ``None`` when not wanted."""
    stream = stream or sys.stderr
    if not wanted(stream, quiet):
        yield None
        return
    with ProgressBar(stream, delay, description) as bar:
        yield bar
