"""Direct sums of representations, as field types list their fields (escnn's ``FieldType``): contiguous
channel blocks in order. A spec such as ``2*regular+irrep(1)+trivial`` or ``3*regular@c8`` parses to a
DirectSum and prints back; a sum is named by its character (its decomposition into irreps)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from eqcheck.errors import UsageError
from eqcheck.reps.fieldgroup import FieldGroup, parse_field_group
from eqcheck.reps.irreps import Rep, irreps, make_rep

_TERM = re.compile(r"(?:(\d+)\s*\*\s*)?([a-z_]+)(?:\(([\d,\s]*)\))?")


@dataclass(frozen=True)
class DirectSum:
    """``terms``: (multiplicity, representation) in channel order; ``group`` the field group they share."""

    group: FieldGroup
    terms: tuple[tuple[int, Rep], ...]
    #: the group the spec names explicitly (``@c8``) when it is not the tested group's own
    explicit_group: bool = False

    @property
    def dim(self) -> int:
        return sum(m * rep.dim for m, rep in self.terms)

    @property
    def spec(self) -> str:
        text = "+".join(rep.spec if m == 1 else f"{m}*{rep.spec}" for m, rep in self.terms)
        return f"{text}@{self.group.spec}" if self.explicit_group else text

    @cached_property
    def blocks(self) -> tuple[Rep, ...]:
        return tuple(rep for m, rep in self.terms for _ in range(m))

    def permutation(self, label) -> np.ndarray | None:
        """The channel permutation where every block permutes (regular, quotient, trivial), else None."""
        parts, offset = [], 0
        for rep in self.blocks:
            perm = rep.permutation(label)
            if perm is None:
                return None
            parts.append(perm + offset)
            offset += rep.dim
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def matrix(self, label) -> np.ndarray:
        """Block-diagonal ``rho(g)`` over the fields."""
        out = np.zeros((self.dim, self.dim))
        offset = 0
        for rep in self.blocks:
            out[offset:offset + rep.dim, offset:offset + rep.dim] = rep.matrix(label)
            offset += rep.dim
        return out


def parse_sum(spec: str, default_group: FieldGroup | None) -> DirectSum:
    """``2*regular+irrep(1)+trivial``, ``vector``, ``3*regular@c8``, ``irrep(1,1)@d4:axis=0``."""
    body, _, group_text = spec.strip().lower().partition("@")
    if group_text:
        group = parse_field_group(group_text)
    elif default_group is None:
        raise UsageError(f"type {spec!r}: the group has no rotations or mirrors to act on channels")
    else:
        group = default_group
    terms = []
    for text in body.replace(" ", "").split("+"):
        match = _TERM.fullmatch(text)
        if match is None:
            raise UsageError(f"type {spec!r}: cannot read {text!r} (e.g. 2*regular+irrep(1)+trivial)")
        count, name, args = match.groups()
        numbers = tuple(int(a) for a in args.split(",") if a.strip()) if args else ()
        count = int(count) if count else 1
        if not 1 <= count <= 100000:
            raise UsageError(f"type {spec!r}: multiplicity {count} out of range")
        terms.append((count, make_rep(name, numbers, group)))
    return DirectSum(group, tuple(terms), explicit_group=bool(group_text) and group != default_group)


def decompose(characters: dict, group: FieldGroup) -> list[tuple[int, Rep]] | None:
    """Multiplicities of the irreps of ``group`` in a representation given by its character on every
    element (``<chi, chi_i> / <chi_i, chi_i>``: a real 2-D irrep of C_N is two complex ones, so its own
    norm is 2|G|); None when they are not whole numbers (not a representation)."""
    elements, reps, table = _character_table(group)
    totals = table @ np.array([characters[g] for g in elements])
    counts = np.round(totals)
    if np.abs(totals - counts).max() > 0.05:
        return None
    return [(int(count), irrep) for count, irrep in zip(counts.tolist(), reps) if count]


@lru_cache(maxsize=None)
def _character_table(group: FieldGroup) -> tuple[list, list[Rep], np.ndarray]:
    """The group's elements, its irreps, and their characters on them, each row divided by its own norm
    (a row per irrep; derived once per group)."""
    elements = group.elements()
    reps = irreps(group)
    table = np.array([[irrep.character(g) for g in elements] for irrep in reps], dtype=np.float64)
    return elements, reps, table / np.einsum("ij,ij->i", table, table)[:, None]


def character_name(terms: list[tuple[int, Rep]], group: FieldGroup) -> str:
    """``2*irrep(1)+trivial`` (largest fields first), ``3*regular`` where the multiplicities are those of
    copies of the regular representation (each irrep as often as its dimension)."""
    counts = {rep.spec: m for m, rep in terms}
    reps = {rep.spec: rep for _, rep in terms}
    names = []
    if group.finite:  # as many copies of the regular representation as the multiplicities hold, named so
        regular = _regular_multiplicities(group)
        copies = min(counts.get(name, 0) // m for name, m in regular.items())
        if copies:
            names.append("regular" if copies == 1 else f"{copies}*regular")
            counts = {name: m - copies * regular.get(name, 0) for name, m in counts.items()}
    ordered = sorted((name for name, m in counts.items() if m), key=lambda n: (-reps[n].dim, _short(n)))
    names += [_short(name) if counts[name] == 1 else f"{counts[name]}*{_short(name)}" for name in ordered]
    return "+".join(names)


@lru_cache(maxsize=None)
def _regular_multiplicities(group: FieldGroup) -> dict[str, int]:
    """Each irrep's multiplicity in the regular representation (its dimension), by spec."""
    identity = group.elements()[0]
    return {rep.spec: m for m, rep in decompose({g: float(group.order if g == identity else 0)
                                                  for g in group.elements()}, group)}


def _short(spec: str) -> str:
    return "trivial" if spec in ("irrep(0)", "irrep(0,0)") else spec
