"""Every option value checked before work starts: a value that would make a check meaningless (a tolerance
that passes anything, no element to test) or hang it is a usage error, never a silent pass."""
from __future__ import annotations

import math
import os
from pathlib import Path

from eqcheck.errors import UsageError

#: more sampled elements than this make a check that no one waits for (and hold as many input copies)
MAX_SAMPLES = 1024
#: the batch of generated inputs
MAX_BATCH_SIZE = 1024
#: seeds numpy and torch both take
MAX_SEED = 2**63 - 1


def _integer(option: str, value, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{option} {value!r}: must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise UsageError(f"{option} {value}: must be an integer {bound}")


def _tolerance(option: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{option} {value!r}: must be a number")
    if not (math.isfinite(value) and 0 < value < 1):
        raise UsageError(f"{option} {value}: must be a number between 0 and 1, exclusive (a relative error of 1 "
                         f"is an output as far from g.f(x) as f(x) itself)")


#: the longest time limit (about 11 days): longer ones overflow the timer
MAX_TIMEOUT_S = 1e6
#: the shortest non-zero one
MIN_TIMEOUT_S = 1e-3


def _timeout(option: str, value) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not (value == 0 or MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S)):
        raise UsageError(f"{option} {value!r}: must be 0 (no limit) or a number of seconds from {MIN_TIMEOUT_S:g} "
                         f"to {MAX_TIMEOUT_S:g}")


#: verify keyword -> (its flag, the check of a value that is not None)
VALIDATORS = {
    "samples": ("--samples", lambda option, v: _integer(option, v, 1, MAX_SAMPLES)),
    "tol": ("--tol", _tolerance),
    "approx_tol": ("--approx-tol", _tolerance),
    "seed": ("--seed", lambda option, v: _integer(option, v, 0, MAX_SEED)),
    "batch_size": ("--batch-size", lambda option, v: _integer(option, v, 1, MAX_BATCH_SIZE)),
    "max_batch": ("--max-batch", lambda option, v: _integer(option, v, 1)),
    "timeout": ("--timeout", _timeout),
}


def check_option(keyword: str, value, option: str | None = None) -> None:
    """Raise UsageError when ``value`` of the verify keyword ``keyword`` cannot give an honest check."""
    if keyword in VALIDATORS and value is not None:
        flag, check = VALIDATORS[keyword]
        check(option or flag, value)


def check_run_options(**values) -> None:
    """Raise UsageError for the first value a check cannot run with honestly (keywords of ``verify``)."""
    for keyword, value in values.items():
        check_option(keyword, value)


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (MemAvailable on Linux), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(count: float) -> str:
    return f"{count / 2**30:.1f} GiB"


def check_memory(bytes_per_copy: int, copies: int, what: str) -> None:
    """Refuse, before allocating, a check whose inputs alone would not fit in the memory left."""
    free = available_memory()
    need = bytes_per_copy * copies
    if free is not None and need > free:
        raise UsageError(f"{what} takes {_gib(bytes_per_copy)} a copy and the check holds {copies} copies "
                         f"({_gib(need)}); this machine has {_gib(free)} free: give a smaller shape")
