"""A model's code runs inside a guard: whatever it raises ends that model's check with one line (exit 3),
what it prints is kept out of the report's stream, and a time limit bounds it.

A model can raise ``SystemExit(0)`` (or call ``os._exit(0)``) or ``KeyboardInterrupt`` to end a Python
program as if all went well; here each becomes a ModelRunError, so the gate's exit code comes from a verdict or an error,
never from the model. A real Ctrl-C (SIGINT while the guard runs) still stops the run: it is re-raised.

The time limit is enforced in two steps: SIGALRM raises inside Python code at the deadline; a model stuck
in native code (which Python cannot interrupt) is stopped by a watchdog thread after a grace period,
which prints one line and exits the process with EXIT_MODEL. Signals work in the main thread only: in
another thread the limit is not enforced.
"""
from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from eqcheck.errors import EXIT_MODEL, ModelRunError
from eqcheck.report.inert import printable

#: the time limit of a check from the command line and the config (0 turns it off)
DEFAULT_TIMEOUT_S = 600.0
#: seconds past the deadline before a model stuck in native code is stopped with the process
HARD_STOP_GRACE_S = 5.0
#: the module behind ``os`` (``posix`` here), whose ``_exit`` a model could call directly
posix_exit = sys.modules[os.name] if os.name in sys.modules else os
#: the process exit that the guard keeps for itself (a model's ``os._exit`` raises SystemExit instead)
_real_exit = os._exit


class _Deadline(BaseException):
    """Raised by the SIGALRM handler: a BaseException, so that a model's ``except Exception`` lets it by."""


@dataclass
class GuardReport:
    """What the guarded code left behind: the text it printed (Python's streams and descriptors 1 and 2)."""

    printed: str = ""
    interrupted: bool = field(default=False, repr=False)

    @property
    def printed_lines(self) -> list[str]:
        return [line for line in self.printed.splitlines() if line.strip()]

    def note(self) -> str | None:
        """One line for the report's notes, the model's text escaped (it could act on a terminal or a CI log)."""
        lines = self.printed_lines
        if not lines:
            return None
        first = printable(lines[0])
        first = first if len(first) <= 120 else first[:117] + "..."
        count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
        return f"the model's code printed {count} during the check (not shown raw); the first: {first}"


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _hard_stop(description: str, timeout: float, done: threading.Event) -> None:
    """The watchdog: a model that ignored the deadline (or is stuck in native code) stops the process."""
    if done.wait(timeout + HARD_STOP_GRACE_S):
        return
    message = (f"eqcheck: error: {printable(description)}: the check did not finish within {timeout:g} s "
               f"(--timeout) and the model does not return; stopped\n")
    os.write(_HARD_STOP_STDERR, message.encode("utf-8", errors="replace"))
    _real_exit(EXIT_MODEL)


def _own_stderr() -> int:
    try:
        return os.dup(2)
    except OSError:
        return 2


#: the terminal's stderr, kept before the guard captures descriptor 2
_HARD_STOP_STDERR = _own_stderr()


#: the process whose exits are disarmed (a child the model's code forks, e.g. a DataLoader worker,
#: exits for real)
_guarded_pid: list[int] = []


def _exit_as_exception(code: int = 0) -> None:
    """``os._exit`` while a model's code runs: a SystemExit, so that it cannot end eqcheck with its code."""
    if _guarded_pid and os.getpid() != _guarded_pid[-1]:
        _real_exit(code)
    raise SystemExit(code)


@contextmanager
def exits_disarmed() -> Iterator[None]:
    """``os._exit`` (and ``posix._exit`` behind it) raise SystemExit in this process while the block runs;
    a child it forks still exits for real."""
    _guarded_pid.append(os.getpid())
    os._exit = posix_exit.__dict__["_exit"] = _exit_as_exception
    try:
        yield
    finally:
        os._exit = posix_exit.__dict__["_exit"] = _real_exit
        _guarded_pid.pop()


class _CapturedStreams:
    """What the model's code writes while it runs: Python's ``sys.stdout``/``sys.stderr`` and, in the main
    thread, the process's own descriptors 1 and 2 (native code, ``os.write``, ``sys.__stderr__``), all
    kept in one temporary file instead of reaching the terminal or a CI log raw."""

    def __init__(self, descriptors: bool) -> None:
        self.streams = sys.stdout, sys.stderr
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.text = io.TextIOWrapper(self.file, encoding="utf-8", errors="replace", write_through=True)
        self.saved: list[tuple[int, int]] = []
        if descriptors:
            for fd in (1, 2):
                try:
                    self.saved.append((fd, os.dup(fd)))
                except OSError:  # closed: nothing there to protect
                    continue
                _flush(fd)
                os.dup2(self.file.fileno(), fd)
        sys.stdout = sys.stderr = self.text

    def close(self) -> str:
        sys.stdout, sys.stderr = self.streams
        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
        self.text.flush()
        self.file.seek(0)
        printed = self.file.read().decode("utf-8", errors="replace")
        self.text.close()
        return printed


@contextmanager
def silenced() -> Iterator[None]:
    """What eqcheck's own use of a library prints (torch's ONNX exporter dumps graphs) goes nowhere: not
    to the terminal, and not into the model's printed lines either."""
    streams = _CapturedStreams(descriptors=in_main_thread())
    try:
        yield
    finally:
        streams.close()


def _flush(fd: int) -> None:
    stream = {1: sys.__stdout__, 2: sys.__stderr__}.get(fd)
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass


@contextmanager
def guarded(description: str, timeout: float | None = None) -> Iterator[GuardReport]:
    """Run a model's load and check: its ``SystemExit``/``KeyboardInterrupt``/other ``BaseException`` become
    a ModelRunError, its printed text goes to ``GuardReport.printed``, ``timeout`` seconds bound it, and the
    working folder it may change is restored."""
    report = GuardReport()
    main = in_main_thread()
    previous_int = previous_alarm = None
    alarm_set = False
    done = threading.Event()
    folder = os.getcwd()

    def on_interrupt(signum, frame):  # a real Ctrl-C: remembered, so that it is not taken for the model's
        report.interrupted = True
        if callable(previous_int):  # the command line's handler remembers it too
            previous_int(signum, frame)
        raise KeyboardInterrupt

    def on_alarm(signum, frame):
        if not done.is_set():  # the check may have ended between the alarm and its handler
            raise _Deadline

    captured = _CapturedStreams(descriptors=main)
    restore = ExitStack()
    restore.enter_context(exits_disarmed())
    try:
        if main:
            previous_int = signal.signal(signal.SIGINT, on_interrupt)
            if timeout and hasattr(signal, "SIGALRM"):
                previous_alarm = signal.signal(signal.SIGALRM, on_alarm)
                alarm_set = True
                signal.setitimer(signal.ITIMER_REAL, timeout)
                threading.Thread(target=_hard_stop, args=(description, timeout, done), daemon=True).start()
        yield report
    except _Deadline:
        raise ModelRunError(f"the check did not finish within {timeout:g} s (--timeout; 0 turns the limit "
                            f"off)") from None
    except KeyboardInterrupt:
        if report.interrupted:
            raise
        raise ModelRunError("the model's code raised KeyboardInterrupt") from None
    except SystemExit as error:
        raise ModelRunError(f"the model's code raised SystemExit({error.code!r}) (it called sys.exit or "
                            f"exit): the check cannot go on") from None
    except Exception:
        raise
    except BaseException as error:  # GeneratorExit and the like, from model code
        raise ModelRunError(f"the model's code raised {type(error).__name__}") from None
    finally:
        done.set()
        if alarm_set:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous_alarm is None else previous_alarm)
        restore.close()
        report.printed = captured.close()
        if main:  # None: the handler was not set from Python; Python's own is the one to restore
            signal.signal(signal.SIGINT, signal.default_int_handler if previous_int is None else previous_int)
        try:
            os.chdir(folder)
        except OSError:
            pass
