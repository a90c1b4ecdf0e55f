"""Where reports go. Every report path is checked before anything runs: never a file the run reads (the
model and its external data, inputs, weights, the factory's source, the config, the result re-rendered),
never two reports in one file, never a special file replaced. Reports are then written whole or not at all.
"""
from __future__ import annotations

import errno
import mmap
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eqcheck.errors import UsageError
from eqcheck.report.inert import printable

#: the only report that may go to standard output (the terminal report then goes to stderr)
STDOUT = "-"


@dataclass(frozen=True)
class ReadFile:
    """A file the run reads, and what it is (for the message that refuses to overwrite it)."""

    path: Path
    what: str


def _shown(path: str | Path) -> str:
    return printable(path)


def _stat(path: str | Path) -> os.stat_result | None:
    """``os.stat`` following links; None when nothing is there (or a link points nowhere)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise UsageError(f"cannot write {_shown(path)}: {error.strerror}") from None


def _special_kind(mode: int) -> str | None:
    """What a non-regular file is, for those a report may not replace."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None


def check_target(option: str, path: str) -> None:
    """One report path: a writable place, or a character device or FIFO (written in place, never replaced)."""
    info = _stat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = _special_kind(info.st_mode)
        if kind is not None:
            raise UsageError(f"{option} {_shown(path)}: it is {kind}, not a file a report can be written to")
        return  # a character device (/dev/null) or a FIFO: written in place
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir():
        raise UsageError(f"{option} {_shown(path)}: folder {_shown(folder)} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {_shown(path)}: folder {_shown(folder)} is not writable")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_targets(targets: Mapping[str, str | None], reads: Iterable[ReadFile] = ()) -> None:
    """Fail before any work is done: each path writable; ``-`` only for ``--json``; no two reports in one
    file; no report over a file the run reads (compared as files: links and ``..`` do not hide one)."""
    given = {option: path for option, path in targets.items() if path is not None}
    for option, path in given.items():
        if path == STDOUT and option != "--json":
            raise UsageError(f"{option} -: only --json can go to standard output; give a file name")
        if path == "":
            raise UsageError(f"{option}: empty path")
    files = {option: path for option, path in given.items() if path != STDOUT}
    for option, path in files.items():
        check_target(option, path)
    seen: dict[object, str] = {}
    for option, path in files.items():
        info = _stat(path)  # a file that exists is known by its inode (hard links too), one to come by its path
        key = (info.st_dev, info.st_ino) if info is not None else os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {_shown(path)}: give each report its "
                             f"own path")
        seen[key] = option
    existing = {option: (path, info) for option, path in files.items()
                if (info := _stat(path)) is not None and stat.S_ISREG(info.st_mode)}
    if not existing:
        return  # a report path that does not exist yet cannot be a file the run reads
    for read in reads:
        info = _stat(read.path)
        if info is None:
            continue
        for option, (path, target) in existing.items():
            if _same_file(info, target):
                raise UsageError(f"{option} {_shown(path)} is {read.what} this run reads: the report would "
                                 f"overwrite it (choose another path)")


def onnx_external_data(model: Path, candidates: Iterable[str]) -> list[ReadFile]:
    """Which of ``candidates`` (existing report paths) an ONNX file may name as external data.

    External data locations are stored as plain strings relative to the model's folder; a report path
    under that folder whose relative name occurs in the file's bytes is taken as read (never overwritten).
    """
    folder = model.resolve().parent
    names = []
    for candidate in candidates:
        try:
            relative = Path(os.path.realpath(candidate)).relative_to(folder)
        except ValueError:
            continue
        names.append((candidate, str(relative).encode()))
    if not names:
        return []
    try:
        with model.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return [ReadFile(Path(c), f"external data of {_shown(model)}") for c, name in names
                    if data.find(name) >= 0]
    except (OSError, ValueError):  # empty or unreadable: the loader says so
        return []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_in_place(path: str, text: str) -> None:
    """A character device or a FIFO: opened as it is (a FIFO without a reader is refused, not waited on)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise UsageError(f"cannot write {_shown(path)}: it is a FIFO with no reader") from None
        raise UsageError(f"cannot write {_shown(path)}: {error.strerror}") from None
    try:
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        raise UsageError(f"cannot write {_shown(path)}: {error.strerror}") from None


def write_report(path: str, text: str) -> None:
    """``-``: standard output. A file: written to a temporary file beside it, then renamed over it, so nothing
    half-written is left (a symbolic link writes its target and stays a link). A character device or FIFO:
    written in place."""
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    info = _stat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        check_target("report", path)
        _write_in_place(path, text)
        return
    target = Path(os.path.realpath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise UsageError(f"cannot write {_shown(path)}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write {_shown(path)}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
