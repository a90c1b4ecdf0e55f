"""Parse a group spec (``p4``, ``p4m:groupy``, ``c8``, ``so2:36``, ``translation:interior``, ``perm``)."""
from __future__ import annotations

import re

from eqcheck.errors import GroupSpecError, did_you_mean
from eqcheck.groups.base import Group
from eqcheck.groups.euclidean import KINDS, Euclidean3
from eqcheck.groups.permutation import PermutationGroup
from eqcheck.groups.rotation import SO2, FiniteRotationGroup
from eqcheck.groups.translation import MODES, TranslationGroup

#: (spec, one line) for ``eqcheck groups``
REGISTRY: tuple[tuple[str, str], ...] = (
    ("translation", TranslationGroup().summary),
    ("translation:interior[:margin=M]", TranslationGroup(mode="interior").summary),
    ("p4[:shifts]", "rotations by 90 degrees about the centre (C4); ':shifts' adds circular translations"),
    ("p4m[:groupy|:axis=0][:shifts]", "p4 plus mirrors (D4), escnn element order; ':groupy' for GrouPy's, "
                                       "':axis=0' for escnn/e2cnn's up-down mirror"),
    ("cN, e.g. c8", "N-fold rotations; angles off the right angles are interpolated on smooth inputs"),
    ("dN, e.g. d8", "N-fold rotations and mirrors"),
    ("so2[:N][:order=K]", SO2().summary + "; N evenly spaced angles, spline order K"),
    ("perm[:axis=A]", PermutationGroup().summary),
    *((name, Euclidean3(name).summary) for name in KINDS),
)


def _split(spec: str) -> tuple[str, list[str], dict[str, str]]:
    name, *rest = spec.strip().lower().split(":")
    flags = [r for r in rest if r and "=" not in r]
    pairs = [r.split("=", 1) for r in rest if "=" in r]
    options = dict(pairs)
    repeated = sorted({r for r in flags if flags.count(r) > 1} | {k for k, _ in pairs if [p[0] for p in pairs].count(k) > 1})
    if repeated:
        raise GroupSpecError(f"group spec {spec!r}: {repeated[0]!r} is given twice")
    return name, flags, options


#: the most elements a group spec may ask for (cN, dN, so2:N), as for ``--samples``
MAX_ELEMENTS = 360


def _int_option(options: dict[str, str], key: str, spec: str, low: int = 0) -> int | None:
    if key not in options:
        return None
    text = options.pop(key)
    if not re.fullmatch(r"-?\d{1,12}", text) or int(text) < low:
        raise GroupSpecError(f"group spec {spec!r}: {key} must be an integer of at least {low}")
    return int(text)


def _reject_leftovers(spec: str, flags: list[str], options: dict[str, str]) -> None:
    extra = flags + [f"{k}={v}" for k, v in options.items()]
    if extra:
        raise GroupSpecError(f"group spec {spec!r}: unknown option {extra[0]!r}")


def _mirror_axis(options: dict[str, str], spec: str, mirrors: bool, n: int) -> str:
    """``axis=0``: escnn's and e2cnn's up-down mirror (element (1, k) is r^k m); ``axis=1`` the default."""
    axis = _int_option(options, "axis", spec)
    if axis in (None, 1):
        return "escnn"
    if axis != 0 or not mirrors or n % 2:
        raise GroupSpecError(f"group spec {spec!r}: axis=0 (the up-down mirror) applies to p4m and dN with N even")
    return "axis0"


def parse_group(spec: str | Group) -> Group:
    """The group a spec names; ``str(parse_group(s))`` is the canonical form of ``s``."""
    if isinstance(spec, Group):
        return spec
    name, flags, options = _split(spec)
    if name in ("p4", "p4m"):
        convention = "groupy" if "groupy" in flags else _mirror_axis(options, spec, name == "p4m", 4)
        if convention == "groupy" and name == "p4":
            raise GroupSpecError("the 'groupy' element order applies to p4m only")
        shifts = "shifts" in flags
        _reject_leftovers(spec, [f for f in flags if f not in ("groupy", "shifts")], options)
        return FiniteRotationGroup(name=name, n=4, mirrors=name == "p4m", convention=convention, shifts=shifts)
    match = re.fullmatch(r"([cd])(\d+)", name)
    if match:
        n = int(match.group(2))
        if not 1 <= n <= MAX_ELEMENTS:
            raise GroupSpecError(f"group spec {spec!r}: N must be between 1 and {MAX_ELEMENTS}")
        convention = _mirror_axis(options, spec, match.group(1) == "d", n)
        _reject_leftovers(spec, flags, options)
        return FiniteRotationGroup(name=name, n=n, mirrors=match.group(1) == "d", convention=convention)
    if name == "so2":
        order = _int_option(options, "order", spec)
        angles = None
        if flags and re.fullmatch(r"\d{1,12}", flags[0]):
            angles = int(flags.pop(0))
            if not 1 <= angles <= MAX_ELEMENTS:
                raise GroupSpecError(f"group spec {spec!r}: the number of angles must be between 1 and "
                                     f"{MAX_ELEMENTS}")
        _reject_leftovers(spec, flags, options)
        if order is not None and not 0 <= order <= 5:
            raise GroupSpecError(f"group spec {spec!r}: spline order must be 0..5")
        return SO2(angles=angles, order=3 if order is None else order)
    if name == "translation":
        mode = flags.pop(0) if flags else "circular"
        if mode not in MODES:
            raise GroupSpecError(f"group spec {spec!r}: translation mode must be one of {', '.join(MODES)}")
        margin = _int_option(options, "margin", spec)
        _reject_leftovers(spec, flags, options)
        return TranslationGroup(mode=mode, margin=margin)
    if name == "perm":
        axis = _int_option(options, "axis", spec)
        _reject_leftovers(spec, flags, options)
        return PermutationGroup(axis=1 if axis is None else axis)
    if name in KINDS:
        _reject_leftovers(spec, flags, options)
        return Euclidean3(name)
    known = "translation, p4, p4m, cN, dN, so2, perm, so3, o3, se3, e3"
    guess = did_you_mean(name, ["translation", "p4", "p4m", "c4", "c8", "d4", "so2", "perm", *KINDS])
    raise GroupSpecError(f"unknown group {spec!r}{guess} (known: {known}; see 'eqcheck groups')")
