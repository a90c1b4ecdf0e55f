"""eqcheck: is this network equivariant to this group, and if not, where does it break?"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["VerificationResult", "__version__", "assert_equivariant", "parse_group", "verify"]


def __getattr__(name: str):
    # imported lazily so that `eqcheck --help` and `import eqcheck` stay fast (numpy/torch load on use)
    if name in ("verify", "assert_equivariant"):
        from eqcheck import api

        return getattr(api, name)
    if name == "VerificationResult":
        from eqcheck.result import VerificationResult

        return VerificationResult
    if name == "parse_group":
        from eqcheck.groups import parse_group

        return parse_group
    raise AttributeError(f"module 'eqcheck' has no attribute {name!r}")
