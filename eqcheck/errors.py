"""Exit codes and the one exception family that the command line turns into one clear line."""
from __future__ import annotations

EXIT_EQUIVARIANT = 0
EXIT_NOT_EQUIVARIANT = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
#: a real Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


class EqcheckError(Exception):
    """Base of every error eqcheck raises on purpose; ``slug`` names the kind, ``exit_code`` the exit status."""

    slug = "error"
    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(EqcheckError):
    """Bad options: unknown group, malformed shape, an action that does not fit a tensor."""

    slug = "usage"
    exit_code = EXIT_USAGE


class GroupSpecError(UsageError):
    slug = "group"


class ShapeError(UsageError):
    slug = "shape"


class ModelLoadError(EqcheckError):
    """The model file is missing, corrupt, truncated, or refused as unsafe."""

    slug = "model-load"
    exit_code = EXIT_MODEL


class ModelRunError(EqcheckError):
    """The model was loaded but could not run on the inputs given."""

    slug = "model-run"
    exit_code = EXIT_MODEL


def did_you_mean(word: str, choices) -> str:
    """``: did you mean 'p4m'?`` for the closest of ``choices`` to a mistyped ``word``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(word.strip().lower(), list(choices), n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""
