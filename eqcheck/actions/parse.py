"""Type specs (``invariant``, ``image``, ``regular:field-major:cw``, ``set:axis=2``, ``graph``) and candidates."""
from __future__ import annotations

from eqcheck.actions.representations import (
    LAYOUTS, EdgeAction, EdgeIndexAction, GraphAction, ImageAction, RegularFieldAction, Representation, SetAction,
)
from eqcheck.actions.euclidean import SPACE_TYPES, space_candidates, space_type
from eqcheck.actions.fields import FieldTypeAction
from eqcheck.errors import UsageError, did_you_mean
from eqcheck.groups.base import Group
from eqcheck.reps import parse_sum
from eqcheck.reps.o3 import is_irreps_spec

TYPE_NAMES = ("invariant", "image", "regular", "set", "graph", "edge_index", "edge")


def group_convention(group: Group) -> str:
    """The element order a ``regular`` type without one means under ``group`` (``p4m:groupy``: GrouPy's)."""
    return group.convention


def regular_spec(layout: str, convention: str, orientation: str, default: str = "escnn") -> str:
    """The type spec of a regular field; the element order is named where it is not the ``default``
    (the group's: so that the spec, parsed again under the same group, is the same action)."""
    parts = ["regular", layout]
    if convention != default:
        parts.append(convention)
    if orientation != "ccw":
        parts.append(orientation)
    return ":".join(parts)


def parse_representation(spec: str, shape: tuple[int, ...] | None = None,
                         default_convention: str = "escnn", spec_convention: str | None = None,
                         field_group=None) -> Representation:
    """The action a type spec names. ``regular`` without a layout takes 5d for rank-5 tensors, and
    without an element order ``default_convention`` (a user's spec: the group's, ``p4m:groupy`` ->
    GrouPy's). The spec it carries names the order where it is not ``spec_convention`` (the group's;
    by default ``default_convention``). Any other spec is a steerable field type of ``field_group`` (the
    group's, ``eqcheck.reps``): ``vector``, ``irrep(1)``, ``2*regular+irrep(1,1)+trivial``, ``3*regular@c8``."""
    if any(mark in spec for mark in "(+*@") or spec.strip().lower() in ("vector", "quotient"):
        return field_type(spec, field_group)
    name, *options = spec.strip().lower().split(":")
    if name in ("invariant", "trivial"):
        return Representation()
    if name in ("image", "spatial"):
        return ImageAction()
    if name == "regular":
        layout = next((o for o in options if o in LAYOUTS), None)
        if layout is None:
            layout = "5d" if shape is not None and len(shape) == 5 else "field-major"
        named = [c for c in ("groupy", "axis0", "escnn") if c in options]
        convention = named[0] if named else default_convention
        orientation = "cw" if "cw" in options else "ccw"
        unknown = [o for o in options if o not in (*LAYOUTS, "groupy", "axis0", "escnn", "cw", "ccw")]
        if unknown:
            raise UsageError(f"unknown option {unknown[0]!r} in type {spec!r}")
        printed = regular_spec(layout, convention, orientation, spec_convention or default_convention)
        return RegularFieldAction(spec=printed, layout=layout,
                                  convention=convention, orientation=orientation)
    if name == "set":
        axis = _axis_option(options, spec, "set", 1, negative=True)
        return SetAction(spec="set" if axis == 1 else f"set:axis={axis}", axis=axis)
    if name == "graph":
        return GraphAction()
    if name in ("edge_index", "edges"):
        return EdgeIndexAction()
    if name == "edge":
        axis = _axis_option(options, spec, "edge", 0, negative=False)
        return EdgeAction(spec="edge" if axis == 0 else f"edge:axis={axis}", axis=axis)
    layouts = [f"regular:{layout}" for layout in LAYOUTS]
    guess = did_you_mean(spec, [*TYPE_NAMES, *layouts, "vector", "positions", "pseudovector", "cartesian"])
    if not guess and name in LAYOUTS:  # a layout alone: the regular field in it
        guess = f": did you mean 'regular:{name}'?"
    raise UsageError(f"unknown type {spec!r}{guess} (one of: {', '.join(TYPE_NAMES)}, or a field type such as "
                     f"vector, irrep(1), 2*regular+irrep(1)+trivial, 3*regular@c8)")


def _axis_option(options: list[str], spec: str, name: str, default: int, negative: bool) -> int:
    """The axis of ``NAME:axis=A`` (``default`` without one); any other option is a usage error."""
    axis = default
    for option in options:
        key, _, value = option.partition("=")
        if key != "axis" or not (value.lstrip("-") if negative else value).isdigit():
            raise UsageError(f"unknown option {option!r} in type {spec!r} ({name}:axis=A)")
        axis = int(value)
    return axis


def parse_type(spec: str, group: Group, shape: tuple[int, ...] | None = None) -> Representation:
    """A user's type spec under ``group``: a 3-D group's own types (``positions``, ``1o``, ``4x0e+1x1e``,
    ``vector``, ``cartesian``, ``cell``), or any spec of :func:`parse_representation` (``invariant``, ``set``...)."""
    text = spec.strip().lower()
    if group.point_cloud and (text in SPACE_TYPES or text in ("vector", "rank2") or is_irreps_spec(text)):
        return space_type(text)
    try:
        return parse_representation(spec, shape, group_convention(group), field_group=group.field_group)
    except UsageError as error:
        if not (group.point_cloud and error.message.startswith("unknown type")):
            raise
        raise UsageError(f"unknown type {spec!r} under {group.spec} (one of: invariant, positions, vector (1o), "
                         f"pseudovector (1e), an e3nn irreps string such as 4x0e+2x1o+1x2e, cartesian, cell, set, "
                         f"edge_index, edge)") from None


def field_type(spec: str, field_group) -> FieldTypeAction:
    """A steerable field type of ``field_group`` (or of the group its spec names after ``@``)."""
    rep = parse_sum(spec, field_group)
    return FieldTypeAction(spec=rep.spec, rep=rep)


def regular_candidates(group: Group, shape: tuple[int, ...]) -> list[Representation]:
    """Every layout, element order and orientation a regular field of this shape could have."""
    layouts = ("5d",) if len(shape) == 5 else ("field-major", "group-major")
    point_group = group.point_group
    conventions = ["escnn"]
    if point_group and point_group.mirrors and point_group.n % 2 == 0:
        conventions.append("axis0")  # escnn / e2cnn with the up-down mirror
    if point_group and point_group.mirrors and point_group.n == 4:
        conventions.append("groupy")
    return [
        RegularFieldAction(spec=regular_spec(lay, conv, ori, group_convention(group)), layout=lay, convention=conv,
                           orientation=ori)
        for lay in layouts for conv in conventions for ori in ("ccw", "cw")
    ]


def candidate_representations(group: Group, shape: tuple[int, ...], set_size: int | None = None,
                              set_axis: int = 1) -> list[Representation]:
    """The actions that fit a tensor of ``shape``, simplest first (ties go to the simplest)."""
    if group.point_cloud:
        return [c for c in space_candidates(group, shape) if c.fits(group, shape, set_size) is None]
    candidates: list[Representation] = [Representation(), ImageAction()]
    if group.point_group is not None and group.point_group.order > 1:
        candidates += regular_candidates(group, shape)
    candidates += [SetAction(spec="set" if set_axis == 1 else f"set:axis={set_axis}", axis=set_axis),
                   GraphAction(), EdgeAction()]
    return [c for c in candidates if c.fits(group, shape, set_size) is None]


def default_representation(group: Group, shape: tuple[int, ...], candidates: list[Representation]) -> Representation:
    """The action a tensor of this shape most likely carries, among ``candidates``.

    Regular fields (the group's order, counter-clockwise) where the channels allow them and the
    tensor has spatial axes, else the image action; a set axis for permutations; invariant for
    ``[B, C]``. Used when no candidate explains a failing model's output.
    """
    by_spec = {c.spec: c for c in candidates}
    convention = group_convention(group)
    layout = "5d" if len(shape) == 5 else "field-major"
    preferences = []
    if len(shape) >= 4:
        preferences.append(regular_spec(layout, convention, "ccw", convention))
    if len(shape) >= 3:
        preferences += ["image", "set"]
    preferences += ["set", f"set:axis={group.set_axis}", "invariant"]
    for spec in preferences:
        if spec in by_spec:
            return by_spec[spec]
    return candidates[0]
