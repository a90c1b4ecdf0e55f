"""A model's code runs inside a guard: whatever it raises ends that model's check with one line (exit 3),
what it prints is kept out of the report's stream, and a time limit bounds it.

A model can raise ``SystemExit(0)`` (or call ``os._exit(0)``) or ``KeyboardInterrupt`` to end a Python
program as if all went well; here each becomes a ModelRunError, so the gate's exit code comes from a verdict or an error, never from
the model. A real Ctrl-C (SIGINT while the guard runs) still stops the run: it is re-raised.

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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from eqcheck.errors import EXIT_MODEL, ModelRunError
from eqcheck.report.inert import printable

#: the time limit of a check from the command line and the config (0 turns it off)
DEFAULT_TIMEOUT_S = 600.0
#: seconds past the deadline before a model stuck in native code is stopped with the process
HARD_STOP_GRACE_S = 5.0
#: the process exit that the guard keeps for itself (a model's ``os._exit`` raises SystemExit instead)
_real_exit = os._exit


class _Deadline(BaseException):
    """Raised by the SIGALRM handler: a BaseException, so that a model's ``except Exception`` lets it by."""


@dataclass
class GuardReport:
    """What the guarded code left behind: the text it printed (stdout and stderr, Python-level)."""

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


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _hard_stop(description: str, timeout: float, done: threading.Event) -> None:
    """The watchdog: a model that ignored the deadline (or is stuck in native code) stops the process."""
    if done.wait(timeout + HARD_STOP_GRACE_S):
        return
    sys.__stderr__.write(f"eqcheck: error: {printable(description)}: the check did not finish within "
                         f"{timeout:g} s (--timeout) and the model does not return; stopped\n")
    sys.__stderr__.flush()
    _real_exit(EXIT_MODEL)


def _exit_as_exception(code: int = 0) -> None:
    """``os._exit`` while a model's code runs: a SystemExit, so that it cannot end eqcheck with its code."""
    raise SystemExit(code)


@contextmanager
def guarded(description: str, timeout: float | None = None) -> Iterator[GuardReport]:
    """Run a model's load and check: its ``SystemExit``/``KeyboardInterrupt``/other ``BaseException`` become
    a ModelRunError, its printed text goes to ``GuardReport.printed``, ``timeout`` seconds bound it."""
    report = GuardReport()
    main = _in_main_thread()
    previous_int = previous_alarm = None
    alarm_set = False
    done = threading.Event()

    def on_interrupt(signum, frame):  # a real Ctrl-C: remembered, so that it is not taken for the model's
        report.interrupted = True
        if callable(previous_int):  # the command line's handler remembers it too
            previous_int(signum, frame)
        raise KeyboardInterrupt

    def on_alarm(signum, frame):
        if not done.is_set():  # the check may have ended between the alarm and its handler
            raise _Deadline

    if main:
        previous_int = signal.signal(signal.SIGINT, on_interrupt)
        if timeout and hasattr(signal, "SIGALRM"):
            previous_alarm = signal.signal(signal.SIGALRM, on_alarm)
            alarm_set = True
            signal.setitimer(signal.ITIMER_REAL, timeout)
            threading.Thread(target=_hard_stop, args=(description, timeout, done), daemon=True).start()
    captured = io.StringIO()
    streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    os._exit = _exit_as_exception
    try:
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
        os._exit = _real_exit
        done.set()
        if alarm_set:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous_alarm is None else previous_alarm)
        sys.stdout, sys.stderr = streams
        report.printed = captured.getvalue()
        if main:  # None: the handler was not set from Python; Python's own is the one to restore
            signal.signal(signal.SIGINT, signal.default_int_handler if previous_int is None else previous_int)
