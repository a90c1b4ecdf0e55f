"""Where reports go. Every report path is checked before anything runs: never a file the run reads (the
model and its external data, inputs, weights, the factory's source, the config, the result re-rendered),
never two reports in one file, never a special file replaced. Reports are then written whole or not at all.
"""
from __future__ import annotations

import errno
import mmap
import os
import re
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


def _resolved(path: str | Path) -> str:
    """The file a path names once links and ``..`` are resolved (``missing/../m.onnx`` is ``m.onnx``)."""
    return os.path.realpath(path)


def check_target(option: str, path: str) -> None:
    """One report path: a writable place, or a character device or FIFO (written in place, never replaced)."""
    info = _stat(_resolved(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = _special_kind(info.st_mode)
        if kind is not None:
            raise UsageError(f"{option} {_shown(path)}: it is {kind}, not a file a report can be written to")
        return  # a character device (/dev/null) or a FIFO: written in place
    folder = Path(_resolved(path)).parent
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
    infos = {option: _stat(_resolved(path)) for option, path in files.items()}
    seen: dict[object, str] = {}
    for option, path in files.items():
        info = infos[option]  # a file that exists is known by its inode (hard links too)
        key = (info.st_dev, info.st_ino) if info is not None else _resolved(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file {_shown(path)}: give each report its "
                             f"own path")
        seen[key] = option
    existing = {option: (path, infos[option]) for option, path in files.items()
                if infos[option] is not None and stat.S_ISREG(infos[option].st_mode)}
    if not existing:
        return  # a report path that does not exist yet cannot be a file the run reads
    for read in reads:
        info = _stat(_resolved(read.path))
        if info is None:
            continue
        for option, (path, target) in existing.items():
            if _same_file(info, target):
                raise UsageError(f"{option} {_shown(path)} is {read.what} this run reads: the report would "
                                 f"overwrite it (choose another path)")


#: an ONNX ``StringStringEntryProto`` with key "location" (field 1, 8 bytes), then its value (field 2)
_LOCATION = re.compile(rb"\x0a\x08location\x12")


def onnx_external_data(model: Path) -> list[ReadFile]:
    """The external data files an ONNX model names (``location`` entries of its tensors), read from the
    protobuf bytes without parsing the model; paths relative to the model's folder."""
    folder = model.resolve().parent
    found = []
    try:
        with model.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for match in _LOCATION.finditer(data):
                length, shift, at = 0, 0, match.end()
                while at < len(data) and shift < 35:  # the value's length, a varint
                    byte = data[at]
                    length |= (byte & 0x7F) << shift
                    shift, at = shift + 7, at + 1
                    if not byte & 0x80:
                        break
                location = bytes(data[at:at + length])
                found.append(ReadFile(folder / os.fsdecode(location), f"external data of {_shown(model)}"))
    except (OSError, ValueError):  # empty or unreadable: the loader says so
        return []
    return found


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
    info = _stat(_resolved(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        check_target("report", path)
        _write_in_place(_resolved(path), text)
        return
    target = Path(_resolved(path))
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
